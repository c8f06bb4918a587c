"""One health model of the whole chain, judged from the warehouse side.

The watchdog (`ingest/watchdog.py`, mails) and the Pipeline page
(`dashboard/pipeline_health.py`, `pages/pipeline.py`) read the same `_meta`
tables with the same statements here and call a link down by the same rules,
so the page never says "fine" while a mail says "down" (or the other way).
Everything is judged from what reached the warehouse: the worker's heartbeat
and partition states, and the exporter's status records that came through
Kafka (`ingest/control.py`). That works when the exporter runs next to the
source database and the worker next to the warehouse, sharing only Kafka.

Layout: `read()` is the only I/O (one short read of `_meta` through a
`fetch(sql) -> rows` callable, so the watchdog's DuckDB connection and the
app's cached reader both fit); `worker_verdict` and `exporter_problems` are
pure and decide.

The named problems (`Problem.key`), each with what to do:
- worker_down — no heartbeat for `alert_after` (a hung worker counts as down);
- broker_unreachable — the worker is alive but cannot reach Kafka;
- lag — the worker is too far behind the high watermarks;
- exporter_silent:<id> — no status from that exporter for `alert_after`: it is
  down, or its link to the broker is cut (the warehouse side cannot tell which);
- source_unreachable:<id> — the exporter runs but cannot read the source;
- table_stopped:<table> — the PII guard (or a column mismatch) stopped a table;
- partition_stopped:<topic>/<p>, dead_letters — the worker's own findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

Fetch = Callable[[str], Sequence[Sequence[Any]]]

HEARTBEAT_SQL = """
SELECT beat_at, state, pid, lag_messages, message, started_at, host, last_batch_id, NULL AS worker
FROM _meta.heartbeat WHERE worker = 'worker'
ORDER BY beat_at DESC LIMIT 1
"""
# Several workers on a lake (ingest/leases.py): the one to judge is the worker with the OLDEST beat among those
# that still own partitions — a dead worker whose partitions were taken over owns none and no longer counts,
# one whose partitions nobody took over is down. With no owner at all (every worker stopped), the newest beat.
# The lag is then the sum over partitions (each worker's own total covers only its partitions).
LEASED_HEARTBEAT_SQL = """
WITH owners AS (SELECT DISTINCT owner FROM _meta.leases WHERE owner IS NOT NULL)
SELECT beat_at, state, pid, NULL AS lag_messages, message, started_at, host, last_batch_id, worker
FROM _meta.heartbeat
ORDER BY worker IN (SELECT owner FROM owners) DESC,
         CASE WHEN worker IN (SELECT owner FROM owners) THEN beat_at END ASC NULLS LAST,
         beat_at DESC
LIMIT 1
"""
LEASES_META_SQL = """
SELECT (SELECT count(*) FROM _meta.leases WHERE owner IS NOT NULL)
     + (SELECT count(*) FROM _meta.heartbeat WHERE worker <> 'worker')
"""
# One row per worker of a lake (the Pipeline page's workers table): its heartbeat and the partitions it holds now.
# A partition may have been registered twice (ingest/leases.py: harmless), hence the DISTINCT.
WORKERS_SQL = """
WITH held AS (
    SELECT owner AS worker, list(topic || ':' || "partition" ORDER BY topic, "partition") AS partitions,
           min(lease_until) AS lease_until
    FROM (SELECT DISTINCT topic, "partition", owner, lease_until FROM _meta.leases WHERE owner IS NOT NULL)
    GROUP BY owner
)
SELECT coalesce(h.worker, l.worker) AS worker, h.beat_at, h.state, h.host, h.pid, l.partitions, l.lease_until
FROM _meta.heartbeat h FULL OUTER JOIN held l ON l.worker = h.worker
ORDER BY 1
"""
LEASES_TABLE_SQL = "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_meta' AND table_name = 'leases'"
PARTITIONS_SQL = 'SELECT topic, "partition", lag_messages, state, reason FROM _meta.partitions ORDER BY topic, "partition"'
DEAD_LETTERS_SQL = "SELECT topic, count(*) FROM _meta.dead_letters GROUP BY topic ORDER BY topic"
EXPORTERS_SQL = """
SELECT exporter, state, exported_at, landed_at, message, broker_outage, stopped_tables, errors, rows_sent, rows_behind
FROM _meta.exporter_status ORDER BY exporter
"""
EXPORTER_TABLES_SQL = """
SELECT exporter, table_name, stopped, error, watermark FROM _meta.exporter_tables
WHERE stopped IS NOT NULL ORDER BY exporter, table_name
"""
COMPLETENESS_SQL = """
SELECT c.table_name, strftime(c.day, '%Y-%m-%d') AS day, c.as_of, c.source_rows, c.warehouse_rows, c.mismatch_passes,
       c.checked_at
FROM _meta.completeness c
JOIN (SELECT table_name, max(checked_at) AS last FROM _meta.completeness GROUP BY table_name) l
  ON l.table_name = c.table_name AND c.checked_at = l.last
ORDER BY c.table_name, c.day
"""
COMPLETENESS_META_SQL = "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_meta' AND table_name = 'completeness'"
EXPORTER_META_SQL = "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_meta' AND table_name = 'exporter_status'"


# ──────────────────────────────────────────────────────────── the facts ──


@dataclass(frozen=True)
class PartitionStatus:
    topic: str
    partition: int
    lag_messages: int | None
    state: str
    reason: str | None


@dataclass(frozen=True)
class ExporterReport:
    """An exporter's newest status record as the warehouse holds it."""

    exporter: str
    state: str  # ok | degraded | source_unreachable | stopping
    exported_at: datetime
    message: str | None = None
    broker_outage: str | None = None
    stopped_tables: dict[str, str] | None = None  # table → reason
    errors: tuple[str, ...] = ()
    rows_behind: int | None = None  # source rows past the watermarks when it reported (catching up)

    def age(self, now: datetime) -> timedelta:
        return now - self.exported_at


@dataclass(frozen=True)
class DayCheck:
    """One table and day of the completeness proof, as last checked."""

    table: str
    day: str  # YYYY-MM-DD, Asia/Seoul
    as_of: datetime
    source_rows: int
    warehouse_rows: int
    mismatch_passes: int
    checked_at: datetime

    @property
    def difference(self) -> int:
        """How many more rows the source has (negative: the warehouse has more, e.g. rows deleted at the source)."""
        return self.source_rows - self.warehouse_rows


@dataclass(frozen=True)
class Observation:
    """What one look at the warehouse showed. `unreadable` says why nothing else is known."""

    at: datetime
    unreadable: str | None = None  # None | "missing" | "busy" | "no_heartbeat" | "error: …"
    heartbeat_at: datetime | None = None
    worker_state: str | None = None
    worker_pid: int | None = None
    worker_message: str | None = None
    heartbeat_lag: int | None = None
    partitions: tuple[PartitionStatus, ...] = ()
    dead_letters_by_topic: tuple[tuple[str, int], ...] | None = None
    exporters: tuple[ExporterReport, ...] = ()
    completeness: tuple[DayCheck, ...] = ()
    worker_started_at: datetime | None = None
    worker_host: str | None = None
    last_batch_id: int | None = None
    worker_id: str | None = None  # on a lake, which worker's beat is judged (None on a single file: one worker)

    @property
    def lag_messages(self) -> int | None:
        """The worker's own total if it wrote one, else the sum over partitions."""
        if self.heartbeat_lag is not None:
            return self.heartbeat_lag
        lags = [p.lag_messages for p in self.partitions if p.lag_messages is not None]
        return sum(lags) if lags else None

    @property
    def dead_letters(self) -> int | None:
        if self.dead_letters_by_topic is None:
            return None
        return sum(n for _, n in self.dead_letters_by_topic)

    @property
    def heartbeat_age(self) -> timedelta | None:
        return None if self.heartbeat_at is None else self.at - self.heartbeat_at


def aware(value: Any) -> datetime | None:
    """A timestamp from DuckDB or pandas as an aware datetime (naive ones are UTC); None for missing."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "to_pydatetime"):
        try:
            value = value.to_pydatetime()
        except ValueError:
            return None
    if not isinstance(value, datetime) or value != value:  # pandas' NaT is a datetime, and unequal to itself
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _int(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def read(fetch: Fetch, now: datetime) -> Observation:
    """One look at `_meta`. Raises what `fetch` raises (the caller knows its own connection's errors)."""
    leased = list(fetch(LEASES_TABLE_SQL))[0][0] and list(fetch(LEASES_META_SQL))[0][0]
    beat = list(fetch(LEASED_HEARTBEAT_SQL if leased else HEARTBEAT_SQL))
    parts = fetch(PARTITIONS_SQL)
    dead = fetch(DEAD_LETTERS_SQL)
    exporters = read_exporters(fetch)
    checks = read_completeness(fetch)
    partitions = tuple(PartitionStatus(str(t), int(p), _int(lag), str(st), _text(reason)) for t, p, lag, st, reason in parts)
    dead_letters = tuple((str(t), int(n)) for t, n in dead)
    if not beat:
        return Observation(now, unreadable="no_heartbeat", partitions=partitions, dead_letters_by_topic=dead_letters,
                           exporters=exporters, completeness=checks)
    beat_at, worker_state, pid, lag, message, started_at, host, last_batch, worker_id = beat[0]
    return Observation(
        now, heartbeat_at=aware(beat_at), worker_state=str(worker_state), worker_pid=_int(pid),
        worker_message=_text(message), heartbeat_lag=_int(lag), partitions=partitions,
        dead_letters_by_topic=dead_letters, exporters=exporters, completeness=checks, worker_started_at=aware(started_at),
        worker_host=_text(host), last_batch_id=_int(last_batch), worker_id=_text(worker_id),
    )


def read_exporters(fetch: Fetch) -> tuple[ExporterReport, ...]:
    """Every exporter's newest status (none before the first status record, or in a warehouse from before them)."""
    if not list(fetch(EXPORTER_META_SQL))[0][0]:
        return ()
    stopped: dict[str, dict[str, str]] = {}
    for exporter, table, reason, _error, _wm in fetch(EXPORTER_TABLES_SQL):
        stopped.setdefault(str(exporter), {})[str(table)] = str(reason)
    out = []
    for exporter, state, exported_at, _landed, message, outage, stopped_list, errors, _rows, behind in fetch(EXPORTERS_SQL):
        names = list(stopped_list) if stopped_list is not None and not isinstance(stopped_list, float) else []
        reasons = stopped.get(str(exporter), {})
        out.append(ExporterReport(
            exporter=str(exporter), state=str(state), exported_at=aware(exported_at), message=_text(message),
            broker_outage=_text(outage), stopped_tables={n: reasons.get(n, "") for n in names},
            errors=tuple(errors) if errors is not None and not isinstance(errors, float) else (),
            rows_behind=_int(behind),
        ))
    return tuple(out)


def read_completeness(fetch: Fetch) -> tuple[DayCheck, ...]:
    """Each table's days as of its latest completeness check (none before the first counts arrived)."""
    if not list(fetch(COMPLETENESS_META_SQL))[0][0]:
        return ()
    return tuple(
        DayCheck(str(t), str(d), aware(a), int(s), int(w), int(m), aware(c))
        for t, d, a, s, w, m, c in fetch(COMPLETENESS_SQL)
    )


@dataclass(frozen=True)
class LakeWorker:
    """One worker of a lake: its last heartbeat and the partitions it holds ("topic:partition")."""

    worker: str
    beat_at: datetime | None
    state: str | None
    host: str | None
    pid: int | None
    partitions: tuple[str, ...]
    lease_until: datetime | None  # the earliest end of its leases (it renews them all at once)


def read_workers(fetch: Fetch) -> tuple[LakeWorker, ...]:
    """Every worker that beat or holds a lease, by id; none on a warehouse without leases (a single file)."""
    if not list(fetch(LEASES_TABLE_SQL))[0][0]:
        return ()
    return tuple(
        LakeWorker(str(w), aware(beat), _text(state), _text(host), _int(pid),
                   tuple(parts) if parts is not None and not isinstance(parts, float) else (), aware(until))
        for w, beat, state, host, pid, parts, until in fetch(WORKERS_SQL)
    )


# ──────────────────────────────────────────────────────── the judgments ──


WORKER_OK, WORKER_LATE, WORKER_DOWN, WORKER_MISSING = "ok", "late", "down", "missing"


def worker_verdict(obs: Observation, alert_after: timedelta) -> str:
    """ok | late | down | missing — the one rule for "the worker is down": its heartbeat's AGE.

    A hung (SIGSTOPped) worker is down once its last beat is older than
    `alert_after`, even though its PID exists; one that said "stopped" is
    late until then (a restart takes seconds and must not read as an outage).
    """
    age = obs.heartbeat_age
    if age is None:
        return WORKER_MISSING
    if age > alert_after:
        return WORKER_DOWN
    if age > alert_after / 2 or obs.worker_state in ("broker_unreachable", "degraded", "stopped"):
        return WORKER_LATE
    return WORKER_OK


WORKER_HOLDS_NONE = "holds_none"


def lake_worker_verdict(w: LakeWorker, now: datetime, alert_after: timedelta) -> str:
    """ok | late | down for a worker that holds partitions — `worker_verdict` on its own heartbeat; holds_none
    for one that holds none: the watchdog does not judge it (LEASED_HEARTBEAT_SQL), its partitions went to others."""
    if not w.partitions:
        return WORKER_HOLDS_NONE
    return worker_verdict(Observation(now, heartbeat_at=w.beat_at, worker_state=w.state), alert_after)


@dataclass(frozen=True)
class Problem:
    key: str
    title: str  # mail subject after "ALERT", and the page's headline
    body: str  # what is known and what to do


def exporter_problems(obs: Observation, alert_after: timedelta) -> dict[str, Problem] | None:
    """The exporter-side problems present now, keyed; None when they cannot be judged this time.

    They can be judged only while the worker lands (a fresh heartbeat, broker
    reachable): otherwise status records cannot arrive and the worker's own
    problem is the one to report.
    """
    age = obs.heartbeat_age
    if age is None or age > alert_after or obs.worker_state in ("broker_unreachable", "stopped"):
        return None
    out: dict[str, Problem] = {}
    for ex in obs.exporters:
        silent = ex.age(obs.at)
        if silent > alert_after:
            last = f"Its last status ({_stamp(ex.exported_at)}) said '{ex.state}'."
            if ex.state == "stopping":
                last += " It was stopped on purpose."
            key = f"exporter_silent:{ex.exporter}"
            out[key] = Problem(
                key, f"exporter '{ex.exporter}' silent for {age_text(silent)}",
                f"No status record from the exporter '{ex.exporter}' has reached the warehouse for {age_text(silent)} "
                f"(limit {age_text(alert_after)}), while the worker is landing.\n{last}\n"
                "Either the exporter process is down, or the link between the exporter and Kafka "
                "(exporter ↔ broker) is cut. Nothing is lost: the exporter resumes from its watermark.\n\n"
                "What to do: on the exporter host, systemctl status datadesk-exporter; "
                "journalctl -u datadesk-exporter -n 100; check that it reaches the Kafka bootstrap servers.",
            )
            continue  # an old status says nothing about now
        if ex.state == "source_unreachable":
            key = f"source_unreachable:{ex.exporter}"
            out[key] = Problem(
                key, f"source unreachable from exporter '{ex.exporter}'",
                f"The exporter '{ex.exporter}' runs but could not read any table at the source.\n"
                f"Its message: {_cut(ex.message) or '(none)'}\n"
                + "".join(f"  {_cut(e)}\n" for e in ex.errors[:10])
                + "\nNothing new reaches the warehouse until it can read again; it retries every pass by itself.\n"
                "What to do: check the database server, the network to it, and the exporter user's grants "
                "(SHOW GRANTS FOR the exporter user).",
            )
        for table, reason in sorted((ex.stopped_tables or {}).items()):
            key = f"table_stopped:{table}"
            out[key] = Problem(
                key, f"table {table} stopped by the exporter",
                f"The exporter '{ex.exporter}' stopped exporting the table {table}.\n"
                f"Reason: {_cut(reason) or '(see the exporter log)'}\n\n"
                "The other tables go on. What to do: fix [tables." + table + "] in pipeline.toml on the exporter host "
                "(drop or hash the column the PII guard named, or fix the column list); the exporter re-reads the "
                "file and resumes the table by itself, no restart needed.",
            )
    return out


def recovery(obs: Observation, key: str) -> tuple[str, str]:
    """(title, text) of the recovery of an exporter-side problem that is gone now."""
    kind, _, who = key.partition(":")
    title = {"exporter_silent": f"exporter '{who}' reports again",
             "source_unreachable": f"source readable again from exporter '{who}'",
             "table_stopped": f"table {who} exported again"}.get(kind, key)
    reports = [ex for ex in obs.exporters if kind == "table_stopped" or ex.exporter == who]
    if not reports:
        return title, f"{title[0].upper()}{title[1:]}."
    ex = reports[0]
    text = (f"{title[0].upper()}{title[1:]}: the exporter '{ex.exporter}' reports state '{ex.state}' "
            f"({age_text(max(ex.age(obs.at), timedelta(0)))} ago).")
    if ex.broker_outage:
        text += f"\nDuring its last pass it had lost the broker (exporter ↔ broker link): {_cut(ex.broker_outage)}"
    return title, text


CAUGHT_UP_LAG = 5_000  # Kafka messages the worker may be behind and still count as caught up (one batch or so)


def rows_behind(obs: Observation) -> int | None:
    """Rows not in the warehouse yet: what the exporters still have to send plus what waits in Kafka.

    None when nothing is known (no exporter status, no lag figure). Zero (or
    a worker lag within CAUGHT_UP_LAG with nothing left at the exporters)
    means caught up.
    """
    known = [ex.rows_behind for ex in obs.exporters if ex.rows_behind is not None]
    lag = obs.lag_messages
    if not known and lag is None:
        return None
    return sum(known) + (lag or 0)


def caught_up(obs: Observation) -> bool:
    exporters = sum(ex.rows_behind or 0 for ex in obs.exporters)
    return exporters == 0 and (obs.lag_messages or 0) <= CAUGHT_UP_LAG


def completeness_problems(obs: Observation, mismatch_passes: int) -> dict[str, Problem]:
    """Tables whose counts differed from the source on `mismatch_passes` checks in a row (a re-send did not heal them)."""
    out: dict[str, Problem] = {}
    by_table: dict[str, list[DayCheck]] = {}
    for c in obs.completeness:
        if c.mismatch_passes >= mismatch_passes:
            by_table.setdefault(c.table, []).append(c)
    for table, days in sorted(by_table.items()):
        key = f"completeness:{table}"
        lines = "".join(f"  {d.day}: source {d.source_rows:,}, warehouse {d.warehouse_rows:,} ({_signed(d.difference)})\n"
                        for d in days[:14])
        out[key] = Problem(
            key, f"completeness mismatch: {table}",
            f"The warehouse's table {table} does not match the source as of {_stamp(days[0].as_of)}, "
            f"on {mismatch_passes} or more checks in a row:\n{lines}\n"
            "More rows at the source: rows were committed behind the exporter's back and its re-send did not "
            "heal them (check the exporter log). More rows in the warehouse: rows were deleted at the source of a "
            "table without a soft-delete column (see docs/operations.md, \"Completeness\").",
        )
    return out


def completeness_recovery(obs: Observation, key: str) -> tuple[str, str]:
    table = key.partition(":")[2]
    days = [c for c in obs.completeness if c.table == table]
    when = f" as of {_stamp(days[0].as_of)}" if days else ""
    return f"completeness: {table} matches the source again", f"The table {table} matches the source{when}."


def _signed(n: int) -> str:
    return f"the source has {n:,} more" if n > 0 else f"the warehouse has {-n:,} more"


# ──────────────────────────────────────────────────────────── wording ──

_TEXT_LIMIT = 300


def age_text(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    return f"{s // 3600} h {s % 3600 // 60} min"


def _stamp(at: datetime) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _cut(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"
