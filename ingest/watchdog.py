"""The watchdog: a separate process that e-mails when the chain stops, and when it recovers.

A dead worker cannot report its own death, and the exporter may run on
another machine: so this process reads what reached the warehouse (`_meta`:
the worker's heartbeat and partitions, dead letters, the exporters' status
records and the completeness checks) through short read-only connections —
with the statements and rules of `ingest/health.py`, which the Pipeline page
uses too — and decides.

Layout (a pure core, I/O at the edges):
- `observe()`    reads the warehouse once → an `Observation` (`health.read`);
- `decide()`     Observation + `WatchState` → new state + the `Notice`s to send
                 (pure: no clock, no file, no network — the tests drive it directly);
- `run_watchdog` the loop: observe, decide, record in the alert history,
                 hand the mail to `ingest.mail.Mailer` (which never blocks), save state.

Problems and when they open / close (one e-mail each way, never a storm; a
problem closes only after staying away `[alerts] hold_down_seconds`, so a
flapping link stays one open problem):
- worker_down: the heartbeat is older than `alert_after_seconds` (`health.worker_verdict`).
  The AGE decides, not whether the PID exists, so a hung (SIGSTOPped) worker counts as
  down. No warehouse file, no heartbeat row, or a file locked for the whole
  time (a worker frozen mid-write) count the same, measured from the last
  heartbeat seen or, if none was ever seen, from the watchdog's start. A
  freshly started watchdog (reboot, `make run`) gives the worker
  `alert_after_seconds` to beat again before it calls an old heartbeat down;
  `--once` judges the state as it is.
- lag: above `max_lag_messages` on two consecutive checks; closes at the first
  check at or below it.
- dead_letters: the count grew since the last check; closes once no new dead
  letter arrived for `alert_after_seconds`.
- partition_stopped:<topic>/<partition>: the worker stopped that partition
  (e.g. a stored offset the broker no longer has); closes when it runs again.
- broker_unreachable: the worker is alive but has reported
  `broker_unreachable` for longer than `alert_after_seconds`.
- exporter_silent:<id>, source_unreachable:<id>, table_stopped:<table>: from the
  exporters' status records (`health.exporter_problems`), judged only while the
  worker lands — otherwise the worker's problem is the one named.
- completeness:<table>: a table's counts differed from the source on
  `[alerts] mismatch_passes` checks in a row (`health.completeness_problems`).

The open problems survive a restart (`[alerts] state_path`, written
atomically), so a restarted watchdog neither repeats nor forgets an alert.
Every alert and recovery is appended to `[alerts] history_path` (JSON lines,
read by the Pipeline page); that file is also the outbox: a mail not yet
delivered when the watchdog stops is sent when it starts again.

Alerts carry only table/topic names, counts, ages, states and the worker's
own status text — never row contents or dead-letter payloads (they may hold
whatever a broken producer put in them).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from ingest.config import AlertsConfig, PipelineConfig, WarehouseConfig
from ingest import health
from ingest.health import Observation, PartitionStatus, age_text as _age  # noqa: F401 (PartitionStatus: tests)
from ingest.mail import Mailer, Outgoing
from ingest import warehouse_target
from ingest.warehouse_file import WarehouseBusy, WarehouseMissing, open_reader

log = logging.getLogger("ingest.watchdog")

SUBJECT_PREFIX = "[datadesk]"
STATE_VERSION = 1
RESEND_OUTBOX_HOURS = 24  # undelivered mail older than this is not re-sent after a restart
_TEXT_LIMIT = 300  # worker/partition status texts are cut to this many characters in a mail


# ──────────────────────────────────────────────────────────── the facts ──


@dataclass(frozen=True)
class Limits:
    alert_after: timedelta
    max_lag_messages: int
    host: str = "this server"
    mismatch_passes: int = 3  # completeness checks in a row with a difference before an alert
    # A problem closes only once it has stayed away this long, so a flapping link
    # sends one alert and one recovery, not a pair per flap.
    hold_down: timedelta = timedelta(0)
    # A watchdog that has just started (after a reboot, or with `make run`) reads the
    # heartbeat the worker left before everything stopped: give the worker
    # alert_after to beat again before calling it down. `--once` checks the state as it is.
    startup_grace: bool = True

    @classmethod
    def from_config(cls, alerts: AlertsConfig, host: str | None = None, startup_grace: bool = True) -> "Limits":
        return cls(timedelta(seconds=alerts.alert_after_seconds), alerts.max_lag_messages,
                   host or socket.gethostname(), alerts.mismatch_passes, timedelta(seconds=alerts.hold_down_seconds),
                   startup_grace)


@dataclass(frozen=True)
class Notice:
    """One e-mail to send: `kind` is "alert" when a problem opens, "recovery" when it closes."""

    kind: str
    problem: str
    subject: str
    body: str


@dataclass
class OpenProblem:
    since: datetime
    subject: str


@dataclass
class WatchState:
    """What the watchdog remembers between checks; `persisted` fields survive a restart."""

    open: dict[str, OpenProblem] = field(default_factory=dict)
    lag_streak: int = 0
    dead_letters_seen: int | None = None
    dead_letters_grew_at: datetime | None = None
    clear_since: dict[str, datetime] = field(default_factory=dict)  # open problem → first check it was gone (hold-down)
    # Not persisted: measured afresh by each watchdog run.
    started_at: datetime | None = None
    last_beat_at: datetime | None = None
    broker_unreachable_since: datetime | None = None

    def to_json(self, checked_at: datetime) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "checked_at": checked_at.isoformat(),
            "pid": os.getpid(),
            "open": {k: {"since": p.since.isoformat(), "subject": p.subject} for k, p in sorted(self.open.items())},
            "lag_streak": self.lag_streak,
            "dead_letters_seen": self.dead_letters_seen,
            "dead_letters_grew_at": self.dead_letters_grew_at.isoformat() if self.dead_letters_grew_at else None,
            "clear_since": {k: v.isoformat() for k, v in sorted(self.clear_since.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "WatchState":
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {data.get('version')!r}")
        return cls(
            open={k: OpenProblem(datetime.fromisoformat(v["since"]), v["subject"]) for k, v in data.get("open", {}).items()},
            lag_streak=int(data.get("lag_streak", 0)),
            dead_letters_seen=data.get("dead_letters_seen"),
            dead_letters_grew_at=datetime.fromisoformat(data["dead_letters_grew_at"]) if data.get("dead_letters_grew_at") else None,
            # A restart inside a hold-down keeps counting it (absent in files from before the hold-down existed).
            clear_since={k: datetime.fromisoformat(v) for k, v in (data.get("clear_since") or {}).items()},
        )


# ──────────────────────────────────────────────────────── the decisions ──


def decide(obs: Observation, previous: WatchState, limits: Limits) -> tuple[WatchState, list[Notice]]:
    """Pure: compare one observation with what was known; return the new state and what to send.

    Each problem opens with exactly one alert notice and closes with exactly one
    recovery notice; while it stays open nothing is sent.
    """
    state = dataclasses.replace(previous, open=dict(previous.open))
    if state.started_at is None:
        state.started_at = obs.at
    notices: list[Notice] = []

    state.clear_since = dict(previous.clear_since)

    def open_(problem: str, title: str, body: str) -> None:
        state.clear_since.pop(problem, None)
        if problem in state.open:
            return
        subject = f"{SUBJECT_PREFIX} ALERT {title}"
        state.open[problem] = OpenProblem(obs.at, subject)
        notices.append(Notice("alert", problem, subject, _body(body, obs.at, limits, "alert")))

    def close(problem: str, title: str, body: str) -> None:
        if problem not in state.open:
            return
        gone_since = state.clear_since.setdefault(problem, obs.at)
        if obs.at - gone_since < limits.hold_down:
            return  # hold-down: a flapping link stays one open problem
        state.clear_since.pop(problem, None)
        opened = state.open.pop(problem)
        lasted = f"\nThe problem lasted {_age(obs.at - opened.since)} (since {_stamp(opened.since)})."
        subject = f"{SUBJECT_PREFIX} RECOVERED {title}"
        notices.append(Notice("recovery", problem, subject, _body(body + lasted, obs.at, limits, "recovery")))

    _decide_worker(obs, state, limits, open_, close)
    worker_fresh = obs.heartbeat_at is not None and obs.at - obs.heartbeat_at <= limits.alert_after
    if worker_fresh:
        _decide_lag(obs, state, limits, open_, close)
        _decide_broker(obs, state, limits, open_, close)
    if obs.unreadable is None:
        _decide_dead_letters(obs, state, limits, open_, close)
        _decide_partitions(obs, state, open_, close)
    _decide_exporters(obs, state, limits, open_, close)
    if obs.unreadable is None:
        _decide_completeness(obs, state, limits, open_, close)
    return state, notices


def _decide_completeness(obs, state, limits, open_, close) -> None:
    present = health.completeness_problems(obs, limits.mismatch_passes)
    for key, problem in sorted(present.items()):
        open_(key, problem.title, problem.body)
    for key in sorted(k for k in state.open if k.startswith("completeness:") and k not in present):
        close(key, *health.completeness_recovery(obs, key))


_EXPORTER_PROBLEMS = ("exporter_silent:", "source_unreachable:", "table_stopped:")


def _decide_exporters(obs, state, limits, open_, close) -> None:
    """The exporter side, from its status records (`health.exporter_problems`); unjudgeable while the worker is not landing."""
    present = health.exporter_problems(obs, limits.alert_after)
    if present is None:
        return
    for key, problem in sorted(present.items()):
        open_(key, problem.title, problem.body)
    for key in sorted(k for k in state.open if k.startswith(_EXPORTER_PROBLEMS) and k not in present):
        title, text = health.recovery(obs, key)
        close(key, title, text)


def _decide_worker(obs, state, limits, open_, close) -> None:
    watched = obs.at - state.started_at if limits.startup_grace else timedelta.max
    if obs.heartbeat_at is not None:
        state.last_beat_at = obs.heartbeat_at
        age = obs.at - obs.heartbeat_at
        if health.worker_verdict(obs, limits.alert_after) == health.WORKER_DOWN and watched > limits.alert_after:
            open_(
                "worker_down",
                f"worker{_named(obs)} down: no heartbeat for {_age(age)}",
                f"The last heartbeat of the ingest worker{_named(obs)} is {_age(age)} old "
                f"(limit {_age(limits.alert_after)}).\n"
                f"Its last reported state was '{obs.worker_state}' ({_where(obs)}).\n"
                f"{_worker_message(obs)}"
                "New data stops reaching the warehouse until it runs again. The watchdog judges by the\n"
                "heartbeat's age, so a hung (stopped) process counts as down even if its PID exists.\n\n"
                "What to do: systemctl status datadesk-worker; journalctl -u datadesk-worker -n 100",
            )
        elif age <= limits.alert_after:
            last = _age(max(age, timedelta(0)))
            close(
                "worker_down",
                "worker down: heartbeat is back",
                # On a lake the worker judged now may not be the one that was down (its partitions were taken over):
                # say what holds for all of them, and whose is the oldest beat.
                f"Every worker holding partitions is writing heartbeats again; the oldest beat, {last} ago, is from "
                f"worker{_named(obs)} (state '{obs.worker_state}', {_where(obs)})." if obs.worker_id else
                f"The ingest worker is writing heartbeats again (last one {last} ago, state '{obs.worker_state}', "
                f"{_where(obs)}).",
            )
        return
    # No heartbeat could be read this time: measure from the last one seen, or from our start.
    since = state.last_beat_at or state.started_at
    silent = obs.at - since
    if silent <= limits.alert_after or watched <= limits.alert_after:
        return
    if obs.unreadable == "missing":
        why = (
            "The warehouse file does not exist: the worker has not landed anything since the watchdog "
            f"started {_age(silent)} ago."
        )
    elif obs.unreadable == "busy":
        why = (
            f"The warehouse file has stayed locked by a writer, so no heartbeat was readable for {_age(silent)}: "
            "a worker frozen in the middle of a write (stopped process, full disk) holds it."
        )
    elif obs.unreadable == "no_heartbeat":
        why = f"The warehouse has no heartbeat from the worker ({_age(silent)} since the watchdog started)."
    else:
        why = f"The warehouse could not be read for {_age(silent)} ({obs.unreadable})."
    open_(
        "worker_down",
        f"worker down: no heartbeat for {_age(silent)}",
        f"{why}\nNew data stops reaching the warehouse until the worker runs again.\n\n"
        "What to do: systemctl status datadesk-worker; journalctl -u datadesk-worker -n 100",
    )


def _decide_lag(obs, state, limits, open_, close) -> None:
    lag = obs.lag_messages
    if lag is None:
        return
    if lag > limits.max_lag_messages:
        state.lag_streak += 1
        if state.lag_streak >= 2:
            open_(
                "lag",
                f"worker lagging: {lag:,} messages behind",
                f"The worker is {lag:,} Kafka messages behind (limit {limits.max_lag_messages:,}) on two "
                f"consecutive checks.\n{_lag_lines(obs)}\n"
                "Data in the app is older than usual. Check the worker's batch times on the Pipeline page\n"
                "and whether the server is short of CPU, memory or disk.",
            )
    else:
        state.lag_streak = 0
        close("lag", "worker lag back to normal",
              f"The worker is {lag:,} messages behind (limit {limits.max_lag_messages:,}).")


def _decide_broker(obs, state, limits, open_, close) -> None:
    if obs.worker_state == "broker_unreachable":
        state.broker_unreachable_since = state.broker_unreachable_since or obs.at
        stuck = obs.at - state.broker_unreachable_since
        if stuck > limits.alert_after:
            open_(
                "broker_unreachable",
                "Kafka unreachable from the worker",
                f"The worker is running but has not reached Kafka for at least {_age(stuck)}.\n"
                f"{_worker_message(obs)}"
                "Nothing is lost (the exporter's messages wait in Kafka, or the exporter retries), but the\n"
                "warehouse does not advance. Check the Kafka cluster and the network to it.",
            )
    else:
        state.broker_unreachable_since = None
        close("broker_unreachable", "Kafka reachable again",
              f"The worker reaches Kafka again (state '{obs.worker_state}').")


def _decide_dead_letters(obs, state, limits, open_, close) -> None:
    count = obs.dead_letters
    if count is None:
        return
    # Never seen before: every existing dead letter is news (nobody was told yet).
    seen = state.dead_letters_seen if state.dead_letters_seen is not None else 0
    if count > seen:
        per_topic = "\n".join(f"  {topic}: {n:,}" for topic, n in obs.dead_letters_by_topic or ())
        open_(
            "dead_letters",
            f"{count - seen:,} new dead letter(s)",
            f"{count - seen:,} Kafka message(s) could not be landed and went to the dead-letter table "
            f"(_meta.dead_letters, {count:,} in total).\nPer topic (total):\n{per_topic}\n\n"
            "Nothing was dropped: each one is kept with its reason. Open the Pipeline page for the reasons\n"
            "and raw payloads; usually the exporter or a producer sent a malformed message.",
        )
        state.dead_letters_grew_at = obs.at
    elif count == seen and "dead_letters" in state.open:
        quiet_since = state.dead_letters_grew_at or obs.at
        if obs.at - quiet_since >= limits.alert_after:
            close("dead_letters", "no new dead letters",
                  f"No new dead letter for {_age(obs.at - quiet_since)}; {count:,} remain in _meta.dead_letters "
                  "for inspection on the Pipeline page.")
    # count < seen: the warehouse was rebuilt; start counting from its number.
    state.dead_letters_seen = count


def _decide_partitions(obs, state, open_, close) -> None:
    stopped = {f"partition_stopped:{p.topic}/{p.partition}": p for p in obs.partitions if p.state == "stopped"}
    for problem, p in sorted(stopped.items()):
        open_(
            problem,
            f"partition stopped: {p.topic}/{p.partition}",
            f"The worker stopped reading {p.topic} partition {p.partition}.\n"
            f"Reason given by the worker: {_cut(p.reason) or '(none)'}\n\n"
            "The other partitions go on. See docs/operations.md, \"A stopped partition\", before resetting anything.",
        )
    for problem in sorted(k for k in state.open if k.startswith("partition_stopped:") and k not in stopped):
        where = problem.split(":", 1)[1]
        close(problem, f"partition running again: {where}", f"The worker reads {where} again.")


# ────────────────────────────────────────────────────────── wording ──


def _stamp(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def _named(obs: Observation) -> str:
    """ " 'b'" for the judged worker of a lake, where several share the partitions; nothing on a single file."""
    return f" '{obs.worker_id}'" if obs.worker_id else ""


def _where(obs: Observation) -> str:
    """Where to look for the process: its host (on a lake the workers may be on several machines) and pid."""
    return ", ".join(x for x in (f"host {obs.worker_host}" if obs.worker_host and obs.worker_id else "",
                                 f"pid {obs.worker_pid}") if x)


def _worker_message(obs: Observation) -> str:
    return f"The worker's last message: {_cut(obs.worker_message)}\n" if obs.worker_message else ""


def _lag_lines(obs: Observation) -> str:
    rows = [p for p in obs.partitions if p.lag_messages]
    rows.sort(key=lambda p: -(p.lag_messages or 0))
    return "\n".join(f"  {p.topic}/{p.partition}: {p.lag_messages:,}" for p in rows[:10])


def _body(text: str, at: datetime, limits: Limits, kind: str) -> str:
    footer = (
        f"\n\n--\nChecked at {_stamp(at)} by the datadesk watchdog on {limits.host}.\n"
        + ("You get one mail when a problem starts and one when it ends; no repeats in between."
           if kind == "alert" else "This closes the alert sent earlier for the same problem.")
    )
    return text.rstrip() + footer


# ──────────────────────────────────────────────────────── I/O: reading ──


def observe(warehouse: Path | WarehouseConfig, now: datetime, timeout: float = 5.0) -> Observation:
    """One short read-only look at `_meta` (`health.read`); never raises for a missing, locked or half-built file.

    `warehouse`: the file's path, or the `[warehouse]` configuration (a file or a lake).
    """
    opened = (warehouse_target.open_for_reading(warehouse, timeout=timeout) if isinstance(warehouse, WarehouseConfig)
              else open_reader(warehouse, timeout=timeout))
    try:
        with opened as con:
            return health.read(lambda sql: con.execute(sql).fetchall(), now)
    except WarehouseMissing:
        return Observation(now, unreadable="missing")
    except WarehouseBusy:
        return Observation(now, unreadable="busy")
    except duckdb.CatalogException:  # the worker has not created _meta yet
        return Observation(now, unreadable="no_heartbeat")
    except duckdb.Error as exc:
        log.warning("reading %s failed: %s", warehouse, exc)
        return Observation(now, unreadable=f"error: {type(exc).__name__}")


# ─────────────────────────────────────────────── I/O: state and history ──


def load_state(path: Path) -> WatchState:
    try:
        return WatchState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return WatchState()
    except (ValueError, KeyError, TypeError) as exc:
        # A damaged state file must not silence the watchdog: start afresh (at worst one repeat mail).
        log.warning("%s is unreadable (%s) — starting with no open alerts", path, exc)
        return WatchState()


def _write_atomically(path: Path, text: str) -> None:
    """Readers (and a crash) see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_state(path: Path, state: WatchState, checked_at: datetime) -> None:
    _write_atomically(path, json.dumps(state.to_json(checked_at), indent=1) + "\n")


class AlertHistory:
    """`[alerts] history_path`: one JSON object per line, oldest first.

    Fields: id, at, kind (alert|recovery), problem, subject, body, channel
    (smtp|log), delivered (bool), attempts, error, final (no more attempts
    will be made). A line is written when the notice is decided and updated in
    place (atomic rewrite) when its mail was delivered or given up, so the file
    doubles as the outbox after a restart. Only this process writes it.
    """

    MAX_LINES = 5000

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line after a power cut: skip it
        return out

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def update(self, record_id: str, **changes: Any) -> None:
        with self._lock:
            records = self.read()
            for r in records:
                if r.get("id") == record_id:
                    r.update(changes)
            records = records[-self.MAX_LINES:]
            _write_atomically(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))

    def outbox(self, now: datetime) -> list[dict[str, Any]]:
        """Mail decided earlier but neither delivered nor given up (e.g. the watchdog was stopped)."""
        cutoff = now - timedelta(hours=RESEND_OUTBOX_HOURS)
        return [
            r for r in self.read()
            if r.get("channel") == "smtp" and not r.get("delivered") and not r.get("final")
            and datetime.fromisoformat(r["at"]) >= cutoff
        ]

    def record_outcome(self, message: Outgoing) -> None:
        if message.channel != "smtp":
            return
        self.update(
            message.id,
            delivered=message.delivered,
            attempts=message.attempts,
            error=message.error,
            final=True,
            delivered_at=datetime.now(timezone.utc).astimezone().isoformat() if message.delivered else None,
        )


# ──────────────────────────────────────────────────────────── the loop ──


def run_watchdog(cfg: PipelineConfig, once: bool = False, stop: threading.Event | None = None) -> int:
    """`python -m ingest watchdog`: check every `check_seconds` until SIGTERM/SIGINT (or once).

    `stop` lets an embedding caller (a test thread) end the loop instead of a signal.
    """
    assert cfg.alerts is not None and cfg.warehouse is not None
    alerts = cfg.alerts
    limits = Limits.from_config(alerts, startup_grace=not once)
    if once:  # a single check (cron) judges the state as it is: nothing to hold a recovery against
        limits = dataclasses.replace(limits, hold_down=timedelta(0))
    history = AlertHistory(alerts.history_path)
    mailer = Mailer(alerts, on_outcome=history.record_outcome)
    state = load_state(alerts.state_path)
    stop = stop or threading.Event()

    def on_signal(signum, _frame):
        log.info("%s received: stopping after this check", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    for record in history.outbox(datetime.now(timezone.utc)) if mailer.enabled else ():
        log.info("re-sending undelivered alert mail from before the restart: %s", record["subject"])
        mailer.submit(Outgoing(id=record["id"], subject=record["subject"], body=record["body"]))
    where = f"{alerts.smtp_host}:{alerts.smtp_port} → {len(alerts.recipients)} recipient(s)" if mailer.enabled else "the log (no smtp_host)"
    log.info(
        "watching %s every %g s: alert after %g s without heartbeat or lag > %d; alerts go to %s; open: %s",
        cfg.warehouse.path, alerts.check_seconds, alerts.alert_after_seconds, alerts.max_lag_messages,
        where, ", ".join(sorted(state.open)) or "none",
    )
    read_timeout = max(0.5, min(5.0, alerts.check_seconds))
    try:
        while True:
            now = datetime.now(timezone.utc)
            obs = observe(cfg.warehouse, now, timeout=read_timeout)
            state, notices = decide(obs, state, limits)
            for notice in notices:
                _send(notice, now, history, mailer)
            save_state(alerts.state_path, state, now)
            if once:
                log.info("checked once: open problems: %s", ", ".join(sorted(state.open)) or "none")
                break
            if stop.wait(alerts.check_seconds):
                break
    finally:
        # Once-mode waits for its mail (a cron job wants it out); the daemon only briefly —
        # anything undelivered stays in the outbox for the next start.
        mailer.close(grace=60.0 if once else 3.0)
    return 0


def _send(notice: Notice, now: datetime, history: AlertHistory, mailer: Mailer) -> None:
    message = Outgoing(id=uuid.uuid4().hex, subject=notice.subject, body=notice.body)
    if mailer.enabled:  # without SMTP the mailer logs the whole message itself
        (log.warning if notice.kind == "alert" else log.info)("%s", notice.subject)
    history.append({
        "id": message.id,
        "at": now.astimezone().isoformat(),
        "kind": notice.kind,
        "problem": notice.problem,
        "subject": notice.subject,
        "body": notice.body,
        "channel": "smtp" if mailer.enabled else "log",
        "delivered": False,
        "attempts": 0,
        "error": None,
        "final": not mailer.enabled,
    })
    mailer.submit(message)
