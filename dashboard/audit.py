"""The audit trail: who signed in, downloaded what (and how many rows), and changed which saved view,
subscription or alert — so that "who took which data out, and when" has a complete answer.

One table, `audit`, in the app-state store (dashboard/app_state/030_audit.sql);
the admin page (pages/admin.py) lists it. It holds only what the person asked
for (page, table or report, filters as the screen wrote them, format,
parameters) and a download's row count — never customer data from the rows.

The rule for a failed audit write: the action does not happen, and the
person is told. A download is recorded *before* its file is served; when the
row cannot be written the file is refused (Streamlit shows "Failed to
generate file", the log says why, and the page shows `audit_failed` when the
store cannot be opened at all). A change to a saved view, subscription or
alert is written in the same transaction as its audit row, so neither exists
without the other. Writes are one short INSERT on a store that waits at most
`app_state.BUSY_TIMEOUT_SECONDS` for a writer, so recording never blocks long.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Mapping

from dashboard import app_state
from dashboard.access import Person
from dashboard.app_state import AppStateError, transaction
from dashboard.i18n import SEOUL, t

log = logging.getLogger(__name__)

SIGN_IN = "sign_in"
DOWNLOAD = "download"
# Every action the app records (an allow-list: a typo in a page must fail in its tests, not go unnoticed).
ACTIONS = (
    SIGN_IN, DOWNLOAD,
    "saved_view_save", "saved_view_rename", "saved_view_update", "saved_view_delete",
    "subscription_create", "subscription_update", "subscription_pause", "subscription_resume",
    "subscription_delete", "subscription_send_now",
    "alert_create", "alert_update", "alert_pause", "alert_resume", "alert_delete",
)
TARGET_MAX = 300
DEFAULT_LIMIT = 500


class AuditError(AppStateError):
    """The audit row could not be written, so the action was not done; the message says what to do."""


@dataclass(frozen=True)
class Entry:
    id: int
    at: str
    who: str
    role: str | None
    action: str
    target: str
    detail: dict[str, Any] | None
    rows: int | None


@dataclass(frozen=True)
class PersonSummary:
    who: str
    last_sign_in: str | None
    downloads: int
    downloaded_rows: int
    last_seen: str


def now_iso(moment: datetime | None = None) -> str:
    """ISO 8601 with the Seoul offset, to the second: every `at` has the same shape, so text order is time order."""
    return (moment or datetime.now(SEOUL)).astimezone(SEOUL).isoformat(timespec="seconds")


def store_of(conn_or_config) -> Path:
    """The store file for a `PipelineConfig`, or a path given directly."""
    if isinstance(conn_or_config, (str, Path)):
        return Path(conn_or_config)
    return app_state.store_path(conn_or_config)


def current_page() -> str:
    """The url path of the page this run draws ("explore", "reports"), or "" outside a page run."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        pages = ctx.pages_manager.get_pages()
        info = pages.get(ctx.pages_manager.current_page_script_hash) or {}
        return str(info.get("url_pathname") or "")
    except Exception:  # noqa: BLE001 - no Streamlit run (a script, the scheduler, a test)
        return ""


def _insert(conn: sqlite3.Connection, person: Person, action: str, target: str,
            detail: Mapping[str, Any] | None, rows: int | None, at: str) -> int:
    text = None if detail is None else json.dumps(dict(detail), ensure_ascii=False, sort_keys=True, default=str)
    cur = conn.execute(
        "INSERT INTO audit (at, who, role, action, target, detail, rows) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, person.label, person.role, action, str(target or "")[:TARGET_MAX], text,
         None if rows is None else int(rows)))
    return int(cur.lastrowid)


def record(conn_or_config, person: Person, action: str, target: str, detail: Mapping[str, Any] | None = None,
           rows: int | None = None, *, at: datetime | None = None) -> int:
    """Write one audit row; returns its id. Raises AuditError (logged) when it cannot be written.

    `conn_or_config`: an open store connection — the row joins its open
    transaction, so a page writes the change and its record together — or a
    `PipelineConfig` / store path, for a row on its own (downloads, sign-in).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to dashboard.audit.ACTIONS")
    if rows is not None and rows < 0:
        raise ValueError("rows must be 0 or more")
    stamp = now_iso(at)
    try:
        if isinstance(conn_or_config, sqlite3.Connection):
            return _insert(conn_or_config, person, action, target, detail, rows, stamp)
        with app_state.connect(store_of(conn_or_config)) as conn, transaction(conn):
            return _insert(conn, person, action, target, detail, rows, stamp)
    except (sqlite3.Error, AppStateError) as exc:
        log.error("audit: could not record %s by %s on %r: %s", action, person.label, target, exc)
        raise AuditError(t("audit_failed", msg=str(exc))) from exc


def record_sign_in(config, person: Person) -> int:
    """The sign-in hook (dashboard/access/login.py calls it once per new session of a signed-in person).

    Raises AuditError when the row cannot be written: the sign-in gate should
    show the message and stop, like any other action the trail cannot record.
    """
    return record(config, person, SIGN_IN, person.label,
                  {"groups": list(person.groups)} if person.groups else None)


def check_writable(conn_or_config) -> str | None:
    """None when the audit trail can be written now, else the message to show (pages disable downloads then)."""
    try:
        if isinstance(conn_or_config, sqlite3.Connection):
            conn_or_config.execute("SELECT 1 FROM audit LIMIT 1").fetchall()
        else:
            with app_state.connect(store_of(conn_or_config)) as conn:
                conn.execute("SELECT 1 FROM audit LIMIT 1").fetchall()
    except (sqlite3.Error, AppStateError) as exc:
        log.error("audit: the trail cannot be written: %s", exc)
        return t("audit_failed", msg=str(exc))
    return None


# ───────────────────────────────────────────────────────────── reading ──


def _where(who: str | None, action: str | None, since: date | None, until: date | None,
           search: str) -> tuple[str, list[Any]]:
    """The WHERE clause for the filters; dates are Seoul days, `until` included."""
    parts, args = [], []
    if who:
        parts.append("who = ?")
        args.append(who)
    if action:
        parts.append("action = ?")
        args.append(action)
    if since:
        parts.append("at >= ?")
        args.append(now_iso(datetime.combine(since, datetime.min.time(), SEOUL)))
    if until:
        parts.append("at < ?")
        args.append(now_iso(datetime.combine(until + timedelta(days=1), datetime.min.time(), SEOUL)))
    if search and search.strip():
        parts.append("lower(target) LIKE ? ESCAPE '\\'")
        args.append("%" + search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(id=row["id"], at=row["at"], who=row["who"], role=row["role"], action=row["action"],
                 target=row["target"], detail=json.loads(row["detail"]) if row["detail"] else None, rows=row["rows"])


def entries(conn: sqlite3.Connection, *, who: str | None = None, action: str | None = None, since: date | None = None,
            until: date | None = None, search: str = "", limit: int = DEFAULT_LIMIT) -> list[Entry]:
    """The rows matching the filters, newest first, at most `limit`."""
    where, args = _where(who, action, since, until, search)
    rows = conn.execute(f"SELECT * FROM audit{where} ORDER BY at DESC, id DESC LIMIT ?", (*args, int(limit))).fetchall()
    return [_entry(r) for r in rows]


def count(conn: sqlite3.Connection, *, who: str | None = None, action: str | None = None, since: date | None = None,
          until: date | None = None, search: str = "") -> int:
    """How many rows match the filters (the listing may show fewer: its limit)."""
    where, args = _where(who, action, since, until, search)
    return int(conn.execute(f"SELECT count(*) FROM audit{where}", args).fetchone()[0])


def counts_by_action(conn: sqlite3.Connection, *, who: str | None = None, action: str | None = None,
                     since: date | None = None, until: date | None = None, search: str = "") -> dict[str, int]:
    """action → rows matching the filters, most frequent first."""
    where, args = _where(who, action, since, until, search)
    rows = conn.execute(f"SELECT action, count(*) AS n FROM audit{where} GROUP BY action ORDER BY n DESC, action",
                        args).fetchall()
    return {r["action"]: int(r["n"]) for r in rows}


def downloaded_rows(conn: sqlite3.Connection, *, who: str | None = None, action: str | None = None,
                    since: date | None = None, until: date | None = None, search: str = "") -> int:
    """The rows in all downloaded files matching the filters."""
    where, args = _where(who, action, since, until, search)
    where = (where + " AND" if where else " WHERE") + " action = ?"
    return int(conn.execute(f"SELECT ifnull(sum(rows), 0) FROM audit{where}", (*args, DOWNLOAD)).fetchone()[0])


def people(conn: sqlite3.Connection) -> list[PersonSummary]:
    """Everyone in the trail: last sign-in, downloads (and their rows), last action — most recent first."""
    rows = conn.execute(
        "SELECT who,"
        " max(CASE WHEN action = ? THEN at END) AS last_sign_in,"
        " sum(action = ?) AS downloads,"
        " sum(CASE WHEN action = ? THEN ifnull(rows, 0) ELSE 0 END) AS downloaded_rows,"
        " max(at) AS last_seen"
        " FROM audit GROUP BY who ORDER BY last_seen DESC, who",
        (SIGN_IN, DOWNLOAD, DOWNLOAD)).fetchall()
    return [PersonSummary(r["who"], r["last_sign_in"], int(r["downloads"] or 0), int(r["downloaded_rows"] or 0),
                          r["last_seen"]) for r in rows]


def who_values(conn: sqlite3.Connection) -> list[str]:
    """Every person in the trail (for the admin page's filter), alphabetically."""
    return [r[0] for r in conn.execute("SELECT DISTINCT who FROM audit ORDER BY who")]
