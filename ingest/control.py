"""The control topic: what the exporter says about itself, carried by Kafka to the warehouse.

Why a topic and not a file or a port: the exporter runs next to the source
database and the worker next to the warehouse; the only thing they share is
Kafka. So each exporter pass ends with a small status record on
`<topic_prefix>._control` (docs/contracts.md, "Control records"), the worker
lands it in `_meta.exporter_status` / `_meta.exporter_tables` in the same
transaction as the batch that carried it, and the watchdog and the Pipeline
page judge the whole chain from the warehouse side (`ingest/health.py`).

A control record is not a row change: it never becomes a dead letter and
never reaches a user table. A record this code cannot read is skipped with a
log line (a newer exporter may send kinds this worker does not know yet).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ingest.config import KafkaConfig

log = logging.getLogger("ingest.control")

CONTROL_SUFFIX = "_control"
VERSION = 1
STATUS = "status"
COUNTS = "counts"

# Exporter states, worst first where several apply (the record carries one).
SOURCE_UNREACHABLE = "source_unreachable"  # no table could be read this pass
DEGRADED = "degraded"  # some tables stopped (PII guard, missing column) or failed to read
OK = "ok"
STOPPING = "stopping"  # the last record of a cleanly stopped exporter
CATCHING_UP = "catching_up"  # sent during a long pass (the first load, after an outage): rows_behind says how far


def control_topic(kafka: KafkaConfig) -> str:
    """`<topic_prefix>._control`: a table name cannot start with a dot, so it never collides with a table topic."""
    return f"{kafka.topic_prefix}.{CONTROL_SUFFIX}"


@dataclass(frozen=True)
class TableStatus:
    """One table as the exporter saw it during the pass."""

    table: str
    watermark: str | None = None  # ISO-8601 with offset: the newest change acknowledged by the broker
    rows_sent: int = 0  # this pass
    rows_total: int = 0  # since the watermarks were last reset
    error: str | None = None  # the source read failed this pass (retried next pass)
    stopped: str | None = None  # stopped by the PII guard or a configuration mismatch, with the reason
    queries: int = 0
    query_seconds_max: float = 0.0
    query_seconds_total: float = 0.0
    rows_behind: int | None = None  # source rows changed after the watermark when this was sent (None: not counted)


@dataclass(frozen=True)
class ExporterStatus:
    exporter: str
    state: str
    exported_at: str  # ISO-8601 with offset, the exporter's clock
    pass_seconds: float = 0.0
    tables: tuple[TableStatus, ...] = ()
    message: str | None = None  # what is wrong and what to do, in one line
    broker_outage: str | None = None  # the exporter could not reach the broker during this pass (why)

    @property
    def rows_sent(self) -> int:
        return sum(t.rows_sent for t in self.tables)

    @property
    def rows_behind(self) -> int | None:
        known = [t.rows_behind for t in self.tables if t.rows_behind is not None]
        return sum(known) if known else None

    @property
    def stopped_tables(self) -> dict[str, str]:
        return {t.table: t.stopped for t in self.tables if t.stopped}

    @property
    def errors(self) -> dict[str, str]:
        return {t.table: t.error for t in self.tables if t.error}

    def exported_datetime(self) -> datetime:
        return datetime.fromisoformat(self.exported_at)


def status_key(exporter: str) -> bytes:
    """One key per exporter: a compacted control topic keeps each exporter's newest status."""
    return f"status/{exporter}".encode()


def encode_status(status: ExporterStatus) -> tuple[bytes, bytes]:
    """(Kafka key, value) of a status record."""
    value = {
        "op": STATUS,
        "v": VERSION,
        "exporter": status.exporter,
        "state": status.state,
        "exported_at": status.exported_at,
        "pass_seconds": round(status.pass_seconds, 3),
        "message": status.message,
        "broker_outage": status.broker_outage,
        "rows_sent": status.rows_sent,
        "errors": status.errors,
        "stopped_tables": status.stopped_tables,
        "tables": {
            t.table: {
                "watermark": t.watermark, "rows_sent": t.rows_sent, "rows_total": t.rows_total, "error": t.error,
                "stopped": t.stopped, "queries": t.queries, "query_seconds_max": round(t.query_seconds_max, 4),
                "query_seconds_total": round(t.query_seconds_total, 4), "rows_behind": t.rows_behind,
            }
            for t in status.tables
        },
    }
    return status_key(status.exporter), orjson.dumps(value)


@dataclass(frozen=True)
class TableCounts:
    """The completeness proof's source side: rows per day of the watermark column, as of a watermark.

    `days` maps a local (Asia/Seoul) date "YYYY-MM-DD" to how many source rows
    have a watermark value on that day and not after `as_of` — every one of
    them has been acknowledged by the broker, so the warehouse must hold them.
    """

    exporter: str
    table: str
    as_of: str  # ISO-8601 with offset: the table's watermark when counted
    days: dict[str, int]
    exported_at: str
    query_seconds: float = 0.0
    resent_days: tuple[str, ...] = ()  # days this pass re-sends because rows appeared behind the exporter's back

    def exported_datetime(self) -> datetime:
        return datetime.fromisoformat(self.exported_at)


def counts_key(exporter: str, table: str) -> bytes:
    return f"counts/{exporter}/{table}".encode()


def encode_counts(counts: TableCounts) -> tuple[bytes, bytes]:
    value = {"op": COUNTS, "v": VERSION, "exporter": counts.exporter, "table": counts.table, "as_of": counts.as_of,
             "days": counts.days, "exported_at": counts.exported_at, "query_seconds": round(counts.query_seconds, 4),
             "resent_days": list(counts.resent_days)}
    return counts_key(counts.exporter, counts.table), orjson.dumps(value)


def _decode_counts(doc: dict) -> TableCounts:
    as_of = str(doc["as_of"])
    datetime.fromisoformat(as_of)
    days = {str(d): int(n) for d, n in dict(doc["days"]).items()}
    for d in days:
        datetime.strptime(d, "%Y-%m-%d")
    return TableCounts(str(doc["exporter"]), str(doc["table"]), as_of, days, str(doc["exported_at"]),
                       float(doc.get("query_seconds") or 0), tuple(doc.get("resent_days") or ()))


class NotControl(ValueError):
    """A control-topic message this worker cannot read (skipped, never a dead letter)."""


def decode_control(raw: bytes) -> "ExporterStatus | TableCounts":
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise NotControl(f"not JSON: {exc}") from None
    op = doc.get("op") if isinstance(doc, dict) else None
    if op == COUNTS:
        try:
            return _decode_counts(doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise NotControl(f"counts record malformed: {type(exc).__name__}: {exc}") from None
    if op != STATUS:
        raise NotControl(f"op {op!r} is not a kind this worker knows")
    try:
        exported_at = str(doc["exported_at"])
        datetime.fromisoformat(exported_at)
        tables = tuple(
            TableStatus(
                table=str(name), watermark=t.get("watermark"), rows_sent=int(t.get("rows_sent") or 0),
                rows_total=int(t.get("rows_total") or 0), error=t.get("error"), stopped=t.get("stopped"),
                queries=int(t.get("queries") or 0), query_seconds_max=float(t.get("query_seconds_max") or 0),
                query_seconds_total=float(t.get("query_seconds_total") or 0),
                rows_behind=None if t.get("rows_behind") is None else int(t["rows_behind"]),
            )
            for name, t in (doc.get("tables") or {}).items()
        )
        return ExporterStatus(
            exporter=str(doc["exporter"]), state=str(doc["state"]), exported_at=exported_at,
            pass_seconds=float(doc.get("pass_seconds") or 0), tables=tables, message=doc.get("message"),
            broker_outage=doc.get("broker_outage"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NotControl(f"status record malformed: {type(exc).__name__}: {exc}") from None


@dataclass
class ControlBatch:
    """The control records of one raw batch: the newest status per exporter (older ones change nothing)."""

    statuses: dict[str, ExporterStatus] = field(default_factory=dict)
    counts: dict[tuple[str, str], TableCounts] = field(default_factory=dict)  # (exporter, table) → newest
    skipped: int = 0

    def add(self, record: "ExporterStatus | TableCounts") -> None:
        if isinstance(record, TableCounts):
            held_counts = self.counts.get((record.exporter, record.table))
            if held_counts is None or record.exported_datetime() >= held_counts.exported_datetime():
                self.counts[(record.exporter, record.table)] = record
            return
        status = record
        held = self.statuses.get(status.exporter)
        if held is None or status.exported_datetime() >= held.exported_datetime():
            self.statuses[status.exporter] = status

    def __bool__(self) -> bool:
        return bool(self.statuses or self.counts)


def read_control(records: pa.Table, topic: str | None) -> ControlBatch:
    """The control records among a raw batch's records (`batch.RAW_SCHEMA`)."""
    out = ControlBatch()
    if topic is None or records.num_rows == 0:
        return out
    mine = records.filter(pc.equal(records.column("topic"), topic))
    for value in mine.column("value").to_pylist():
        if value is None:
            continue  # a tombstone for a compacted key: nothing to record
        try:
            out.add(decode_control(value))
        except NotControl as exc:
            out.skipped += 1
            log.warning("control record skipped (%s); it is not a row change and is not dead-lettered", exc)
    return out


def status_rows(statuses: Iterable[ExporterStatus]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(exporter rows, table rows) as `_meta.exporter_status` / `_meta.exporter_tables` hold them."""
    exporters, tables = [], []
    for s in statuses:
        exporters.append({
            "exporter": s.exporter, "state": s.state, "exported_at": s.exported_datetime(),
            "pass_seconds": s.pass_seconds, "rows_sent": s.rows_sent, "message": s.message,
            "broker_outage": s.broker_outage,
            "errors": [f"{k}: {v}" for k, v in sorted(s.errors.items())],
            "stopped_tables": sorted(s.stopped_tables), "rows_behind": s.rows_behind,
        })
        for t in s.tables:
            tables.append({
                "exporter": s.exporter, "table_name": t.table,
                "watermark": datetime.fromisoformat(t.watermark) if t.watermark else None,
                "rows_sent": t.rows_sent, "rows_total": t.rows_total, "error": t.error, "stopped": t.stopped,
                "queries": t.queries, "query_seconds_max": t.query_seconds_max,
                "query_seconds_total": t.query_seconds_total, "exported_at": s.exported_datetime(),
                "rows_behind": t.rows_behind,
            })
    return exporters, tables
