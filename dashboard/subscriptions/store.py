"""Subscriptions, alerts and their delivery log in the app-state store (020_subscriptions.sql).

One function per statement. The page writes subscriptions and alerts; the
scheduler claims slots and records each attempt. Both go through here, so
the rules of the log (one row per subscription and slot, states moving only
forward) live in one file.

Times are stored as ISO text with their offset (Asia/Seoul), which sorts and
compares correctly as text because every value has the same offset.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

from dashboard.app_state import transaction
from dashboard.subscriptions.schedule import SEOUL, Schedule

KINDS = ("report", "view")  # 'view' = a saved view (same target shape: kind, ref, params)
FORMATS = ("xlsx", "csv")
CONDITIONS = ("above", "below", "no_rows")
_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def iso(moment: datetime) -> str:
    return moment.astimezone(SEOUL).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(SEOUL)


def recipients_problem(recipients: Iterable[str]) -> str | None:
    """None when every address looks like one (and there is at least one), else which is wrong."""
    items = [r.strip() for r in recipients if r.strip()]
    if not items:
        return "no recipients — list at least one e-mail address"
    bad = [r for r in items if not _ADDRESS.match(r)]
    return f"not an e-mail address: {', '.join(bad)}" if bad else None


def split_recipients(text: str) -> list[str]:
    """'a@x.kr, b@x.kr; c@x.kr' (or one per line) → the addresses, in order, without repeats."""
    return list(dict.fromkeys(p.strip() for p in re.split(r"[,;\s]+", text or "") if p.strip()))


@dataclass(frozen=True)
class Subscription:
    id: int
    kind: str
    ref: str
    params: Mapping[str, str]
    schedule: Schedule
    recipients: tuple[str, ...]
    format: str
    skip_empty: bool
    lang: str
    paused: bool
    created_at: datetime
    updated_at: datetime
    owner: str | None = None  # the e-mail of who set it up; mails are rendered with their access rules
    owner_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    ref: str
    params: Mapping[str, str]
    measure: str | None
    condition: str
    threshold: float | None
    hours: float | None
    time_column: str | None
    recipients: tuple[str, ...]
    lang: str
    check_minutes: float
    paused: bool
    created_at: datetime
    state: Mapping[str, Any] = field(default_factory=dict)
    owner: str | None = None
    owner_groups: tuple[str, ...] = ()


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        id=row["id"], kind=row["kind"], ref=row["ref"], params=json.loads(row["params"]),
        schedule=Schedule(row["frequency"], row["at_time"], row["weekday"], row["month_day"]),
        recipients=tuple(json.loads(row["recipients"])), format=row["format"], skip_empty=bool(row["skip_empty"]),
        lang=row["lang"], paused=bool(row["paused"]), created_at=parse_iso(row["created_at"]),
        updated_at=parse_iso(row["updated_at"]), **_owner(row),
    )


def _owner(row: sqlite3.Row) -> dict[str, Any]:
    return {"owner": row["owner"], "owner_groups": tuple(json.loads(row["owner_groups"] or "[]"))}


# ───────────────────────────────────────────────────────── subscriptions ──


def add_subscription(conn: sqlite3.Connection, *, ref: str, params: Mapping[str, str], schedule: Schedule,
                     recipients: Iterable[str], now: datetime, kind: str = "report", format: str = "xlsx",
                     skip_empty: bool = True, lang: str = "ko", owner: str | None = None,
                     owner_groups: Iterable[str] = ()) -> int:
    """A new subscription; its first slot is the first one after `now` (nothing is sent for the past)."""
    recipients = list(recipients)
    problem = recipients_problem(recipients)
    if problem:
        raise ValueError(problem)
    if kind not in KINDS or format not in FORMATS:
        raise ValueError(f"kind must be one of {KINDS}, format one of {FORMATS}")
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO subscriptions (kind, ref, params, frequency, weekday, month_day, at_time, recipients,"
            " format, skip_empty, lang, created_at, updated_at, owner, owner_groups)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (kind, ref, json.dumps(dict(params), ensure_ascii=False), schedule.frequency, schedule.weekday,
             schedule.month_day, schedule.at, json.dumps(recipients), format, int(skip_empty), lang, iso(now), iso(now),
             owner, json.dumps(list(owner_groups))),
        )
        return int(cur.lastrowid)


def update_subscription(conn: sqlite3.Connection, sub_id: int, *, params: Mapping[str, str], schedule: Schedule,
                        recipients: Iterable[str], format: str, skip_empty: bool, lang: str, now: datetime) -> None:
    recipients = list(recipients)
    problem = recipients_problem(recipients)
    if problem:
        raise ValueError(problem)
    with transaction(conn):
        conn.execute(
            "UPDATE subscriptions SET params = ?, frequency = ?, weekday = ?, month_day = ?, at_time = ?,"
            " recipients = ?, format = ?, skip_empty = ?, lang = ?, updated_at = ? WHERE id = ?",
            (json.dumps(dict(params), ensure_ascii=False), schedule.frequency, schedule.weekday, schedule.month_day,
             schedule.at, json.dumps(recipients), format, int(skip_empty), lang, iso(now), sub_id),
        )


def set_subscription_paused(conn: sqlite3.Connection, sub_id: int, paused: bool, now: datetime) -> None:
    """Pause or resume. Resuming moves `updated_at`, so slots that passed while paused are not sent as "missed"."""
    with transaction(conn):
        conn.execute("UPDATE subscriptions SET paused = ?, updated_at = ? WHERE id = ?", (int(paused), iso(now), sub_id))


def delete_subscription(conn: sqlite3.Connection, sub_id: int) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,))


def subscriptions(conn: sqlite3.Connection) -> list[Subscription]:
    return [_subscription(r) for r in conn.execute("SELECT * FROM subscriptions ORDER BY id")]


def subscription(conn: sqlite3.Connection, sub_id: int) -> Subscription | None:
    row = conn.execute("SELECT * FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
    return _subscription(row) if row else None


# ──────────────────────────────────────────────────────────── delivery log ──


def message_id(kind: str, owner_id: int, key: str, domain: str) -> str:
    """A Message-ID derived from (subscription, slot): a re-sent mail carries the same one, so it is recognisable."""
    compact = re.sub(r"[^0-9A-Za-z]", "", key)
    return f"<datadesk.{kind}-{owner_id}.{compact}@{domain or 'localhost'}>"


def last_logged_slot(conn: sqlite3.Connection, sub_id: int) -> str | None:
    """The newest scheduled slot in the log (send-now rows aside)."""
    row = conn.execute(
        "SELECT max(slot) FROM deliveries WHERE subscription_id = ? AND slot NOT LIKE 'now:%'", (sub_id,)
    ).fetchone()
    return row[0]


def claim_slot(conn: sqlite3.Connection, sub_id: int, slot: str, *, now: datetime, late: bool, msg_id: str,
               missed: Iterable[str] = ()) -> bool:
    """Write the slot into the log as due (and older passed-over slots as missed), all or nothing.

    Returns False when the slot was already in the log: the primary key
    (subscription, slot) is what makes a second mail for it impossible.
    """
    with transaction(conn):
        cur = conn.execute(
            "INSERT OR IGNORE INTO deliveries (subscription_id, slot, state, late, next_attempt_at, claimed_at, message_id)"
            " VALUES (?, ?, 'due', ?, ?, ?, ?)", (sub_id, slot, int(late), iso(now), iso(now), msg_id))
        if cur.rowcount == 0:
            return False
        for old in missed:
            conn.execute(
                "INSERT OR IGNORE INTO deliveries (subscription_id, slot, state, claimed_at, finished_at, message_id, error)"
                " VALUES (?, ?, 'missed', ?, ?, '', 'the scheduler was not running; only the latest missed slot is sent')",
                (sub_id, old, iso(now), iso(now)))
    return True


def request_send_now(conn: sqlite3.Connection, sub_id: int, now: datetime, domain: str) -> str:
    """"Send now" from the page: a slot of its own (`now:<time>`), picked up by the scheduler's next tick."""
    slot = "now:" + iso(now)
    claim_slot(conn, sub_id, slot, now=now, late=False, msg_id=message_id("sub", sub_id, slot, domain))
    return slot


def open_deliveries(conn: sqlite3.Connection, now: datetime) -> list[sqlite3.Row]:
    """Claimed slots whose (next) attempt is due, oldest first."""
    return conn.execute(
        "SELECT * FROM deliveries WHERE state IN ('due', 'sending') AND next_attempt_at <= ? ORDER BY next_attempt_at, slot",
        (iso(now),)).fetchall()


def start_attempt(conn: sqlite3.Connection, row: sqlite3.Row) -> bool:
    """Mark the attempt under way BEFORE talking to the server; a row found 'sending' later was interrupted.

    Compare-and-set on (state, attempts) as read: returns False when another
    scheduler took this attempt meanwhile (then this one leaves it alone).
    """
    with transaction(conn):
        cur = conn.execute(
            "UPDATE deliveries SET resent = resent + (state = 'sending'), state = 'sending', attempts = attempts + 1"
            " WHERE subscription_id = ? AND slot = ? AND state = ? AND attempts = ?",
            (row["subscription_id"], row["slot"], row["state"], row["attempts"]))
        return cur.rowcount == 1


def finish_delivery(conn: sqlite3.Connection, sub_id: int, slot: str, *, state: str, now: datetime, rows: int | None,
                    size: int | None = None, linked: bool = False, late: bool = False, error: str | None = None) -> None:
    assert state in ("sent", "skipped", "failed")
    with transaction(conn):
        conn.execute(
            "UPDATE deliveries SET state = ?, finished_at = ?, rows = ?, bytes = ?, linked = ?, late = max(late, ?),"
            " error = ?, next_attempt_at = NULL WHERE subscription_id = ? AND slot = ?",
            (state, iso(now), rows, size, int(linked), int(late), error, sub_id, slot))


def retry_later(conn: sqlite3.Connection, sub_id: int, slot: str, *, at: datetime, error: str) -> None:
    """The server could not take it now: back to due, tried again at `at` (this subscription only)."""
    with transaction(conn):
        conn.execute(
            "UPDATE deliveries SET state = 'due', next_attempt_at = ?, error = ? WHERE subscription_id = ? AND slot = ?",
            (iso(at), error, sub_id, slot))


def deliveries(conn: sqlite3.Connection, sub_id: int | None = None) -> list[sqlite3.Row]:
    if sub_id is None:
        return conn.execute("SELECT * FROM deliveries ORDER BY subscription_id, slot").fetchall()
    return conn.execute("SELECT * FROM deliveries WHERE subscription_id = ? ORDER BY slot", (sub_id,)).fetchall()


def last_delivery(conn: sqlite3.Connection, sub_id: int) -> sqlite3.Row | None:
    """The latest finished or attempted delivery (what the page shows as "last delivery")."""
    return conn.execute(
        "SELECT * FROM deliveries WHERE subscription_id = ? AND state != 'missed'"
        " ORDER BY coalesce(finished_at, claimed_at) DESC LIMIT 1", (sub_id,)).fetchone()


# ────────────────────────────────────────────────────────────────── alerts ──


def _alert(row: sqlite3.Row) -> Alert:
    keys = row.keys()
    state = {k: row[k] for k in ("active", "value", "checked_at", "data_version", "transitions", "broken") if k in keys}
    return Alert(
        id=row["id"], kind=row["kind"], ref=row["ref"], params=json.loads(row["params"]), measure=row["measure"],
        condition=row["condition"], threshold=row["threshold"], hours=row["hours"], time_column=row["time_column"],
        recipients=tuple(json.loads(row["recipients"])), lang=row["lang"], check_minutes=row["check_minutes"],
        paused=bool(row["paused"]), created_at=parse_iso(row["created_at"]), state=state, **_owner(row),
    )


def add_alert(conn: sqlite3.Connection, *, ref: str, params: Mapping[str, str], condition: str,
              recipients: Iterable[str], now: datetime, measure: str | None = None, threshold: float | None = None,
              hours: float | None = None, time_column: str | None = None, kind: str = "report", lang: str = "ko",
              check_minutes: float = 60.0, owner: str | None = None, owner_groups: Iterable[str] = ()) -> int:
    recipients = list(recipients)
    problem = recipients_problem(recipients)
    if problem:
        raise ValueError(problem)
    if condition not in CONDITIONS:
        raise ValueError(f"condition {condition!r} — pick one of {', '.join(CONDITIONS)}")
    if condition in ("above", "below") and (measure is None or threshold is None):
        raise ValueError("above / below need a measure (a numeric column) and a threshold")
    if condition == "no_rows" and (not hours or not time_column):
        raise ValueError("'no rows for N hours' needs N and the result's time column")
    with transaction(conn):
        cur = conn.execute(
            "INSERT INTO alerts (kind, ref, params, measure, condition, threshold, hours, time_column, recipients, lang,"
            " check_minutes, created_at, updated_at, owner, owner_groups) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (kind, ref, json.dumps(dict(params), ensure_ascii=False), measure, condition, threshold, hours, time_column,
             json.dumps(recipients), lang, check_minutes, iso(now), iso(now), owner, json.dumps(list(owner_groups))))
        alert_id = int(cur.lastrowid)
        conn.execute("INSERT INTO alert_state (alert_id) VALUES (?)", (alert_id,))
        return alert_id


def alerts(conn: sqlite3.Connection) -> list[Alert]:
    return [_alert(r) for r in conn.execute(
        "SELECT a.*, s.active, s.value, s.checked_at, s.data_version, s.transitions, s.broken"
        " FROM alerts a LEFT JOIN alert_state s ON s.alert_id = a.id ORDER BY a.id")]


def update_alert(conn: sqlite3.Connection, alert_id: int, *, threshold: float | None, hours: float | None,
                 recipients: Iterable[str], now: datetime) -> None:
    """Change the line and who hears about it; the alert's state stays (a change of line is judged at the next check)."""
    recipients = list(recipients)
    problem = recipients_problem(recipients)
    if problem:
        raise ValueError(problem)
    with transaction(conn):
        conn.execute("UPDATE alerts SET threshold = ?, hours = ?, recipients = ?, updated_at = ? WHERE id = ?",
                     (threshold, hours, json.dumps(recipients), iso(now), alert_id))
        # Judge the new line at the next round, not after check_minutes.
        conn.execute("UPDATE alert_state SET checked_at = NULL WHERE alert_id = ?", (alert_id,))


def last_alert_event(conn: sqlite3.Connection, alert_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM alert_events WHERE alert_id = ? ORDER BY seq DESC LIMIT 1", (alert_id,)).fetchone()


def set_alert_paused(conn: sqlite3.Connection, alert_id: int, paused: bool, now: datetime) -> None:
    with transaction(conn):
        conn.execute("UPDATE alerts SET paused = ?, updated_at = ? WHERE id = ?", (int(paused), iso(now), alert_id))


def delete_alert(conn: sqlite3.Connection, alert_id: int) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM alerts WHERE id = ?", (alert_id,))


def _add_event(conn: sqlite3.Connection, alert_id: int, seq: int, change: str, value: float | None, now: datetime,
               domain: str, reason: str | None = None) -> None:
    """One change of an alert's state, due to be mailed now (its message id fixed, so a resend is the same mail)."""
    conn.execute(
        "INSERT INTO alert_events (alert_id, seq, change, value, at, state, next_attempt_at, message_id, reason)"
        " VALUES (?, ?, ?, ?, ?, 'due', ?, ?, ?)",
        (alert_id, seq, change, value, iso(now), iso(now), message_id("alert", alert_id, f"{seq}", domain), reason))


def record_check(conn: sqlite3.Connection, alert_id: int, *, active: bool, value: float | None, now: datetime,
                 data_version: str, domain: str) -> str | None:
    """Store one check's outcome; when `active` changed, add the event to mail (in the same transaction).

    Returns 'fired' / 'cleared' when the state changed, else None — so a
    condition that stays true sends nothing more.
    """
    with transaction(conn):
        row = conn.execute("SELECT active, transitions FROM alert_state WHERE alert_id = ?", (alert_id,)).fetchone()
        was = bool(row["active"]) if row else False
        transitions = row["transitions"] if row else 0
        change = None
        if active != was:
            change = "fired" if active else "cleared"
            transitions += 1
            _add_event(conn, alert_id, transitions, change, value, now, domain)
        conn.execute(
            "INSERT INTO alert_state (alert_id, active, value, checked_at, data_version, transitions) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (alert_id) DO UPDATE SET active = excluded.active, value = excluded.value,"
            " checked_at = excluded.checked_at, data_version = excluded.data_version, transitions = excluded.transitions,"
            " broken = NULL",
            (alert_id, int(active), value, iso(now), data_version, transitions))
    return change


BROKEN_REASONS = ("view_missing", "report_missing", "no_access")


def record_broken(conn: sqlite3.Connection, alert_id: int, *, reason: str, now: datetime, data_version: str,
                  domain: str) -> bool:
    """The alert cannot be checked (`reason`): one 'broken' event to mail, the first time only.

    Returns True when this is news. Later checks that fail the same way add
    nothing; a check that succeeds again clears it (`record_check`), so a
    second breakage is mailed again.
    """
    if reason not in BROKEN_REASONS:
        raise ValueError(f"reason {reason!r} — one of {', '.join(BROKEN_REASONS)}")
    with transaction(conn):
        row = conn.execute("SELECT transitions, broken FROM alert_state WHERE alert_id = ?", (alert_id,)).fetchone()
        if row is not None and row["broken"]:
            conn.execute("UPDATE alert_state SET checked_at = ?, data_version = ? WHERE alert_id = ?",
                         (iso(now), data_version, alert_id))
            return False
        transitions = (row["transitions"] if row else 0) + 1
        _add_event(conn, alert_id, transitions, "broken", None, now, domain, reason)
        conn.execute(
            "INSERT INTO alert_state (alert_id, checked_at, data_version, transitions, broken) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (alert_id) DO UPDATE SET checked_at = excluded.checked_at, data_version = excluded.data_version,"
            " transitions = excluded.transitions, broken = excluded.broken",
            (alert_id, iso(now), data_version, transitions, reason))
    return True


def open_alert_events(conn: sqlite3.Connection, now: datetime) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM alert_events WHERE state IN ('due', 'sending') AND next_attempt_at <= ? ORDER BY at, alert_id, seq",
        (iso(now),)).fetchall()


def start_alert_attempt(conn: sqlite3.Connection, row: sqlite3.Row) -> bool:
    """As `start_attempt`, for an alert's event."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE alert_events SET resent = resent + (state = 'sending'), state = 'sending', attempts = attempts + 1"
            " WHERE alert_id = ? AND seq = ? AND state = ? AND attempts = ?",
            (row["alert_id"], row["seq"], row["state"], row["attempts"]))
        return cur.rowcount == 1


def finish_alert_event(conn: sqlite3.Connection, alert_id: int, seq: int, *, state: str, now: datetime,
                       error: str | None = None) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE alert_events SET state = ?, finished_at = ?, error = ?, next_attempt_at = NULL WHERE alert_id = ? AND seq = ?",
            (state, iso(now), error, alert_id, seq))


def retry_alert_later(conn: sqlite3.Connection, alert_id: int, seq: int, *, at: datetime, error: str) -> None:
    with transaction(conn):
        conn.execute("UPDATE alert_events SET state = 'due', next_attempt_at = ?, error = ? WHERE alert_id = ? AND seq = ?",
                     (iso(at), error, alert_id, seq))


def alert_events(conn: sqlite3.Connection, alert_id: int | None = None) -> list[sqlite3.Row]:
    if alert_id is None:
        return conn.execute("SELECT * FROM alert_events ORDER BY alert_id, seq").fetchall()
    return conn.execute("SELECT * FROM alert_events WHERE alert_id = ? ORDER BY seq", (alert_id,)).fetchall()
