"""Source → Kafka: copy changed rows of every configured table, without personal data.

One pass, per table: read the table's column types at the source and, when
they are new to this process, publish a schema record to every partition of
the table's topic first (so each partition carries the types ahead of the
rows that need them); then start at the stored watermark minus `overlap_seconds`
(rows whose transaction committed late are re-read; the worker's `source_ts`
rule drops what it already has), read keyset chunks of `chunk_rows` on
(watermark column, primary key), check each chunk for personal-looking values,
publish it as envelopes with acks=all, and only after the broker acknowledged
every message of the chunk persist the new watermark. `--once` runs one pass;
otherwise a pass starts every `interval_seconds`.

Promises:
- only allow-listed columns are read (the SELECT names them) and sent; `hash =
  true` columns go out as HMAC-SHA256(PII_HASH_KEY); the key is never logged;
- a table whose listed columns carry personal-looking values stops with an
  error naming table, column and pattern (never the value); the others go on;
- the watermark never moves past a row the broker did not acknowledge; while
  the broker is unreachable the exporter retries with backoff, logging the
  outage once and the recovery once;
- the exporter never waits for, or looks at, the worker;
- one log line per pass that sent anything, warnings only for what needs a person.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ingest import control
from ingest.config import ConfigError, KafkaConfig, PipelineConfig, TableSpec, load_config
from ingest.governor import Governor, limit_statement_time
from ingest.envelope import SCHEMA_KEY, encode_envelope, encode_key, encode_schema_record, schema_id
from ingest.pii import PiiDetected, find_pii, keyed_hash
from ingest.source import (
    SEOUL,
    Cursor,
    SourceRow,
    SourceTableError,
    TableReader,
    connect,
    describe,
    to_json_value,
)
from ingest.watermarks import Watermark, WatermarkStore

log = logging.getLogger("ingest.export")

EXIT_OK, EXIT_FAILED = 0, 1
PROGRESS_SECONDS = 10.0  # a pass that runs longer (the first load) logs how far it got this often
BEHIND_CAP = 50_000_000  # counting the rows still to send stops here (bounded cost on a huge backlog)
HARD_DELETE_MAX_KEYS = 1_000_000  # keys remembered per table for hard deletes (~120 MB per million); more: not checked


class BrokerUnavailable(RuntimeError):
    """Some message of a chunk was not acknowledged; the chunk will be sent again."""


# ───────────────────────────────────────────────────────── pure helpers ──


def require_hash_key(cfg: PipelineConfig) -> None:
    """Refuse to start when a `hash = true` column exists and PII_HASH_KEY is unset."""
    if cfg.pii_hash_key:
        return
    for spec in cfg.tables.values():
        for col in spec.columns:
            if col.hash:
                raise ConfigError(
                    f"{cfg.path}: [tables.{spec.name}.columns] {col.name} has hash = true but env PII_HASH_KEY "
                    f"is not set — set it to a long random secret, the same on every run (or joins break)"
                )


def envelope_for(spec: TableSpec, row: SourceRow, hash_key: bytes | None, exported_at: str,
                 to_json: dict | None = None) -> tuple[bytes, bytes]:
    """(Kafka key, Kafka value) of one source row. Soft-deleted rows go out as op=delete.

    `to_json` (column → converter, `TableReader.to_json`) sends each value as
    its declared type wants it; without it, `to_json_value`.
    """
    out: dict[str, Any] = {}
    for col in spec.columns:
        value = row.values[col.name]
        convert = to_json.get(col.name, to_json_value) if to_json else to_json_value
        out[col.name] = keyed_hash(value, hash_key) if col.hash else convert(value)  # type: ignore[arg-type]
    pk = {k: out[k] for k in spec.primary_key}
    deleted = spec.soft_delete is not None and row.values.get(spec.soft_delete) is not None
    value = encode_envelope(
        spec.name,
        "delete" if deleted else "upsert",
        pk,
        out,
        row.ts.isoformat(timespec="microseconds"),
        exported_at,
    )
    return encode_key(pk), value


def pass_start(mark: Watermark | None, overlap_seconds: float) -> Cursor | None:
    """Where a pass begins: the watermark minus the overlap window (inclusive), or exactly after it."""
    if mark is None:
        return None
    ts = mark.ts_datetime()
    if overlap_seconds > 0:
        return Cursor(ts=ts - timedelta(seconds=overlap_seconds), pk=None)
    return Cursor(ts=ts, pk=mark.pk)


def later(a: Watermark | None, b: Watermark) -> Watermark:
    """The watermark never moves backwards (an overlap re-read ends below it)."""
    if a is None:
        return b
    ka = (a.ts_datetime(), a.pk)
    kb = (b.ts_datetime(), b.pk)
    try:
        return b if kb >= ka else Watermark(a.ts, a.pk, b.rows_sent)
    except TypeError:  # pk values of mixed types: compare timestamps only
        return b if kb[0] >= ka[0] else Watermark(a.ts, a.pk, b.rows_sent)


def _beyond(row: SourceRow, mark: Watermark | None) -> bool:
    """Whether a row lies past the watermark the pass started from (not just re-read by the overlap window)."""
    if mark is None:
        return True
    try:
        return (row.ts, row.pk) > (mark.ts_datetime(), mark.pk)
    except TypeError:  # pk values of mixed types: compare timestamps only
        return row.ts > mark.ts_datetime()


def grown_settled_days(previous: tuple[datetime, dict[str, int]] | None, days: dict[str, int],
                       overlap_seconds: float) -> list[str]:
    """Days whose count grew although they had ended before the previous pass's watermark minus the overlap.

    New changes carry a current `updated_at`, so such a day cannot grow by the
    normal flow: the new rows were committed late, behind the exporter's back.
    """
    if previous is None:
        return []
    as_of, before = previous
    settled_before = as_of - timedelta(seconds=overlap_seconds)
    out = []
    for day, n in sorted(days.items()):
        day_end = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=SEOUL) + timedelta(days=1)
        if day_end <= settled_before and n > before.get(day, 0):
            out.append(day)
    return out


def now_iso() -> str:
    return datetime.now(SEOUL).isoformat(timespec="microseconds")


# ───────────────────────────────────────────────────────────── Kafka side ──


class Publisher:
    """A KafkaProducer with acks=all that reports a chunk as acknowledged, or raises."""

    def __init__(self, kafka: KafkaConfig, delivery_timeout_s: float = 30.0):
        self.kafka = kafka
        self.delivery_timeout_s = delivery_timeout_s
        self.stall_after_s = 3.0
        self._producer = None

    def _connect(self):
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.kafka.bootstrap_servers,
                    client_id=f"{self.kafka.client_id}-exporter",
                    acks="all",
                    linger_ms=10,
                    batch_size=512 * 1024,
                    max_request_size=8 * 1024 * 1024,
                    request_timeout_ms=10_000,
                    delivery_timeout_ms=int(self.delivery_timeout_s * 1000),
                    max_block_ms=10_000,
                    reconnect_backoff_max_ms=2_000,
                )
            except KafkaError as exc:
                raise BrokerUnavailable(f"cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}") from None
        return self._producer

    def ensure_topics(self, topics: list[str]) -> None:
        """Create missing topics with `[kafka] partitions` partitions."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.kafka.bootstrap_servers,
                client_id=f"{self.kafka.client_id}-exporter-admin",
                request_timeout_ms=10_000,
            )
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot reach Kafka at {self.kafka.bootstrap_servers}: {exc}") from None
        try:
            existing = set(admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                brokers = len(admin.describe_cluster().get("brokers", [])) or 1
                replicas = min(3, brokers)
                new = [NewTopic(t, num_partitions=self.kafka.partitions, replication_factor=replicas) for t in missing]
                try:
                    admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass
                log.info("created topic(s) %s with %d partition(s)", ", ".join(missing), self.kafka.partitions)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot create topics on Kafka: {exc}") from None
        finally:
            admin.close()

    def publish(self, topic: str, messages: list[tuple[bytes, bytes]], on_stall=None) -> None:
        """Returns only after the broker acknowledged every message; otherwise raises BrokerUnavailable.

        `on_stall(reason)` is called when acknowledgements have not come for a
        few seconds (the producer keeps retrying until its delivery timeout).
        """
        from kafka.errors import KafkaError, KafkaTimeoutError

        producer = self._connect()
        deadline = time.monotonic() + self.delivery_timeout_s + 5
        try:
            futures = [producer.send(topic, key=k, value=v) for k, v in messages]
            while True:
                try:
                    producer.flush(timeout=self.stall_after_s)
                    break
                except KafkaTimeoutError:
                    if time.monotonic() >= deadline:
                        break
                    if on_stall is not None:
                        on_stall(f"no acknowledgement from {self.kafka.bootstrap_servers} for {self.stall_after_s:g} s")
        except KafkaError as exc:
            self.reset()
            raise BrokerUnavailable(f"send to {topic} failed: {exc}") from None
        for f in futures:
            if not f.is_done or f.failed():
                reason = f.exception if f.is_done else "no acknowledgement in time"
                self.reset()
                raise BrokerUnavailable(f"send to {topic} not acknowledged: {reason}")

    def publish_everywhere(self, topic: str, key: bytes, value: bytes) -> int:
        """Send one message to every partition of `topic`; returns how many, once all are acknowledged."""
        from kafka.errors import KafkaError

        producer = self._connect()
        try:
            partitions = sorted(producer.partitions_for(topic) or ())
            futures = [producer.send(topic, key=key, value=value, partition=p) for p in partitions]
            producer.flush(timeout=self.delivery_timeout_s)
        except KafkaError as exc:
            self.reset()
            raise BrokerUnavailable(f"send to {topic} failed: {exc}") from None
        if not partitions or any(not f.is_done or f.failed() for f in futures):
            self.reset()
            raise BrokerUnavailable(f"schema record to {topic} not acknowledged")
        return len(partitions)

    def reset(self) -> None:
        """Drop the producer after a failure; the next chunk starts with a fresh connection."""
        if self._producer is not None:
            try:
                self._producer.close(timeout=0)
            except Exception:  # closing a broken producer may raise; nothing to keep
                pass
            self._producer = None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


# ─────────────────────────────────────────────────────────────── the loop ──


@dataclass
class _Failpoint:
    """Test hook (env EXPORT_FAILPOINT via config): SIGKILL this process at a named point."""

    spec: str | None
    chunks: int = 0

    def hit(self, point: str) -> None:
        if not self.spec:
            return
        name, _, n = self.spec.partition(":")
        if name == point and self.chunks == int(n or 1):
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Exporter:
    cfg: PipelineConfig
    publisher: Publisher
    state: WatermarkStore
    readers: dict[str, TableReader]
    stop: threading.Event = field(default_factory=threading.Event)
    stopped_tables: dict[str, str] = field(default_factory=dict)  # table → reason
    source_errors: dict[str, str] = field(default_factory=dict)  # table → last read failure (retried)
    sent_schemas: dict[str, str] = field(default_factory=dict)  # table → schema id published by this process
    new_rows: dict[str, int] = field(default_factory=dict)  # table → rows beyond its watermark, this pass
    source_failing: set[str] = field(default_factory=set)  # tables whose reads fail (logged once until they work)
    query_seconds: dict[str, list[float]] = field(default_factory=dict)  # table → source read times, this pass
    broker_outage: str | None = None  # the last lost link to the broker, told in status records for a while after
    _outage_since: str | None = None
    _outage_reported_until: float = 0.0
    last_counts: dict[str, tuple[datetime, dict[str, int]]] = field(default_factory=dict)  # table → (as_of, day counts)
    completeness_due: float = 0.0  # monotonic time of the next completeness pass
    pending_resend: dict[str, list[str]] = field(default_factory=dict)  # table → days the next pass re-sends
    rows_behind: dict[str, int] = field(default_factory=dict)  # table → source rows past its watermark, last counted
    day_keys: dict[str, dict[str, set]] = field(default_factory=dict)  # table without soft delete → day → source keys
    _too_big_warned: set[str] = field(default_factory=set)
    _last_status_at: float = 0.0
    _broker_down: bool = False
    _failpoint: _Failpoint | None = None

    def __post_init__(self):
        self._failpoint = _Failpoint(getattr(self.cfg.exporter, "failpoint", None))
        self.engine = None
        ex = self.cfg.exporter
        self.governor = Governor(ex.max_rows_per_second, ex.slow_read_seconds, ex.max_backoff_seconds)

    def run_pass(self) -> dict[str, int]:
        """One pass over every healthy table; returns rows sent per table (and logs one line if any were)."""
        sent: dict[str, int] = {}
        started = time.monotonic()
        self.query_seconds = {}
        if self.broker_outage and not self._broker_down and time.monotonic() > self._outage_reported_until:
            self.broker_outage = None
        for name in list(self.readers):
            if name in self.stopped_tables or self.stop.is_set():
                continue
            self.source_errors.pop(name, None)
            if not self.governor.before_read(self.stop, self.keep_reporting):  # backing off: even the column list waits
                break
            try:
                reader = self.readers[name] = self.refresh(self.readers[name])
                self.publish_schema(reader)
                sent[name] = self.export_table(reader)
            except PiiDetected as exc:
                self.stopped_tables[name] = str(exc)
                log.error("%s", exc)
            except SourceTableError as exc:
                self.stopped_tables[name] = str(exc)
                log.error("table %s stopped: %s", name, exc)
            except sa.exc.DBAPIError as exc:
                # The source is unreachable or refused the read: nothing was sent
                # for this chunk and the watermark did not move; the next pass retries.
                # Only the driver's message: SQLAlchemy's text would add the statement.
                self.source_errors[name] = f"source read failed: {exc.orig}"
                self.governor.after_failure(str(exc.orig)[:200])
                if name not in self.source_failing:  # once per outage, not once per pass
                    self.source_failing.add(name)
                    log.warning("table %s: source read failed (%s); retrying every pass", name, exc.orig)
                continue
            if name in self.source_failing:
                self.source_failing.discard(name)
                log.warning("table %s: the source answers again; export resumes", name)
        new = {name: self.new_rows.get(name, 0) for name in sent}
        if any(new.values()):  # rows re-read only by the overlap window are not news: they go to DEBUG
            newest = max((self.state.get(name).ts for name in new if new[name] and self.state.get(name)), default="-")
            log.info("sent %s new row(s) in %.1f s (%s); newest change %s", f"{sum(new.values()):,}",
                     time.monotonic() - started, ", ".join(f"{name} {n:,}" for name, n in new.items() if n), newest)
        elif any(sent.values()):
            log.debug("pass: %d row(s) of the overlap window re-sent, nothing new", sum(sent.values()))
        if not self.stop.is_set():
            self.publish_status(sent, time.monotonic() - started)
        return sent

    # -- configuration changes without a restart
    def apply_tables(self, new: PipelineConfig) -> list[str]:
        """Take the [tables.*] of a re-read pipeline.toml: a stopped table whose section changed is tried again
        (that is how a table stopped by the PII guard resumes once its columns are fixed), changed sections are
        read with their new column list, removed ones stop being read. Returns the tables (re)started."""
        started = []
        for name in list(self.readers):
            if name not in new.tables:
                self.readers.pop(name)
                self.stopped_tables.pop(name, None)
                log.info("table %s: removed from pipeline.toml; no longer exported", name)
        for name, spec in new.tables.items():
            old = self.cfg.tables.get(name)
            if old == spec and name in self.readers:
                continue
            if old == spec and name in self.stopped_tables:
                continue  # nothing changed: still stopped for the same reason
            try:
                self.readers[name] = describe(self.engine, spec)
            except SourceTableError as exc:
                self.stopped_tables[name] = str(exc)
                log.error("table %s still not exported: %s", name, exc)
                continue
            except sa.exc.DBAPIError as exc:
                log.warning("table %s: configuration changed but the source cannot be read (%s); tried again on the "
                            "next change", name, exc.orig)
                continue
            was_stopped = self.stopped_tables.pop(name, None)
            self.sent_schemas.pop(name, None)
            started.append(name)
            log.warning("table %s: configuration changed in pipeline.toml; %s", name,
                        "export resumes" if was_stopped else "exported with its new columns")
        self.cfg = dataclasses.replace(self.cfg, tables=new.tables)
        return started

    # -- the completeness proof (docs/operations.md, "Completeness")
    def completeness_pass(self) -> dict[str, control.TableCounts]:
        """Per table: rows per day of the watermark column as of its watermark, sent on the control topic.

        Bounded cost: one index range scan per table over `completeness_days`
        days. A day already settled at the previous pass (ended before that
        pass's watermark minus the overlap window) whose count grew can only
        have received rows behind the exporter's back (a transaction that
        committed long after its `updated_at`): that day is re-sent at the
        start of the next pass — after the counts showing the gap reached the
        warehouse, so the difference is seen and then healed. The worker's
        newer-wins merge makes the re-send harmless.
        """
        ex = self.cfg.exporter
        out = {}
        for name, reader in list(self.readers.items()):
            mark = self.state.get(name)
            if name in self.stopped_tables or name in self.source_failing or mark is None or self.stop.is_set():
                continue
            as_of = mark.ts_datetime()
            local = as_of.astimezone(SEOUL)
            since = datetime(local.year, local.month, local.day, tzinfo=SEOUL) - timedelta(days=ex.completeness_days - 1)
            resent = self.pending_resend.pop(name, [])
            for day in resent:  # flagged by the previous pass: its counts showed the gap, these heal it
                try:
                    n = self.resend_day(reader, day)
                except sa.exc.DBAPIError as exc:
                    self.pending_resend[name] = resent
                    log.warning("table %s: re-sending %s failed (%s); tried again next time", name, day, exc.orig)
                    break
                log.warning("table %s: rows appeared at the source for %s behind the exporter's back (committed "
                            "after the overlap window); that day was re-sent (%s row(s))", name, day, f"{n:,}")
            if name in self.pending_resend:
                continue
            if not self.governor.before_read(self.stop):
                break
            asked = time.monotonic()
            try:
                days = reader.day_counts(self.engine, since, as_of)
            except sa.exc.DBAPIError as exc:
                self.governor.after_failure(str(exc.orig)[:200])
                log.warning("table %s: completeness count failed (%s); tried again next time", name, exc.orig)
                continue
            took = time.monotonic() - asked
            self.governor.after_read(0, took)
            counts = control.TableCounts(ex.exporter_id, name, mark.ts, days, now_iso(), took, tuple(resent))
            key, value = control.encode_counts(counts)
            self._publish_until_acknowledged(control.control_topic(self.cfg.kafka), [(key, value)])
            grown = grown_settled_days(self.last_counts.get(name), days, ex.overlap_seconds)
            if grown:
                self.pending_resend[name] = grown
            previous = self.last_counts.get(name)
            self.last_counts[name] = (as_of, days)
            out[name] = counts
            if reader.spec.soft_delete is None:
                try:
                    self.find_hard_deletes(reader, previous[1] if previous else None, days, as_of)
                except sa.exc.DBAPIError as exc:
                    self.day_keys.pop(name, None)  # start the baseline afresh next time
                    log.warning("table %s: looking for deleted rows failed (%s); tried again next time", name, exc.orig)
        return out

    def find_hard_deletes(self, reader: TableReader, before: dict[str, int] | None, days: dict[str, int],
                          as_of: datetime) -> int:
        """Rows deleted at the source of a table without a soft-delete column: sent as deletes (tombstones downstream).

        Range by range: the keys of each day of the window are remembered; a
        day whose count changed is read again (index-only), and keys that left
        it are looked up by primary key — those the table no longer has were
        deleted. Keys that moved (an update changed `updated_at`) are still
        found and left alone. Returns how many deletes were sent.
        """
        spec = reader.spec
        known = self.day_keys.setdefault(spec.name, {})
        if sum(days.values()) > HARD_DELETE_MAX_KEYS:
            if known or not self.stop.is_set() and spec.name not in self._too_big_warned:
                self._too_big_warned.add(spec.name)
                log.warning("table %s: more than %s rows in the completeness window; hard deletes are not looked for "
                            "(shorten completeness_days)", spec.name, f"{HARD_DELETE_MAX_KEYS:,}")
            known.clear()
            return 0
        vanished: set[tuple] = set()
        for day in sorted(set(days) | set(known)):
            if day in known and before is not None and before.get(day) == days.get(day):
                continue  # same count as last time: nothing left this day (a delete plus a late insert is missed)
            start = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=SEOUL)
            now_keys = reader.keys_between(self.engine, start, start + timedelta(days=1), as_of) if day in days else set()
            if day in known:
                vanished |= known[day] - now_keys
            if day in days:
                known[day] = now_keys
            else:
                known.pop(day, None)  # left the window
        if not vanished:
            return 0
        gone = sorted(vanished - reader.existing_keys(self.engine, sorted(vanished)), key=repr)
        if not gone:
            return 0
        stamp = now_iso()
        messages = []
        for pk in gone:
            values = dict(zip(spec.primary_key, pk))
            out = {}
            for col in spec.primary_key:
                column = spec.column(col)
                convert = reader.to_json.get(col, to_json_value)
                out[col] = keyed_hash(values[col], self.cfg.pii_hash_key) if column is not None and column.hash \
                    else convert(values[col])
            messages.append((encode_key(out), encode_envelope(spec.name, "delete", out, None, stamp, stamp)))
        self._publish_until_acknowledged(self.cfg.kafka.topic_for(spec.name), messages)
        log.warning("table %s: %s row(s) deleted at the source (no soft-delete column) found by the completeness "
                    "pass; sent as deletes", spec.name, f"{len(gone):,}")
        return len(gone)

    def resend_day(self, reader: TableReader, day: str) -> int:
        """Send every row of one day of the watermark column again (keyset chunks; the watermark stays put)."""
        spec = reader.spec
        topic = self.cfg.kafka.topic_for(spec.name)
        start = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=SEOUL)
        until = start + timedelta(days=1)
        checked = [c.name for c in spec.columns if not c.hash]
        cursor: Cursor | None = Cursor(ts=start, pk=None)
        total = 0
        self.governor.begin()
        while not self.stop.is_set() and self.governor.before_read(self.stop):
            asked = time.monotonic()
            rows = reader.read_chunk(self.engine, cursor, self.cfg.exporter.chunk_rows, until=until)
            self.governor.after_read(len(rows), time.monotonic() - asked)
            if not rows:
                break
            finding = find_pii(spec.name, (r.values for r in rows), checked)
            if finding is not None:
                raise PiiDetected(finding)
            exported_at = now_iso()
            self._publish_until_acknowledged(
                topic, [envelope_for(spec, r, self.cfg.pii_hash_key, exported_at, reader.to_json) for r in rows])
            total += len(rows)
            if len(rows) < self.cfg.exporter.chunk_rows:
                break
            cursor = Cursor(ts=rows[-1].ts, pk=rows[-1].pk)
        return total

    # -- the heartbeat through the chain (ingest/control.py)
    def status(self, sent: dict[str, int], pass_seconds: float, state: str | None = None) -> control.ExporterStatus:
        """This pass as the status record tells it: per table watermark, rows, errors, stops and source read times."""
        tables = []
        for name in self.cfg.tables:
            mark = self.state.get(name)
            times = self.query_seconds.get(name, [])
            tables.append(control.TableStatus(
                table=name, watermark=mark.ts if mark else None, rows_sent=sent.get(name, 0),
                rows_total=mark.rows_sent if mark else 0, error=self.source_errors.get(name),
                stopped=self.stopped_tables.get(name), queries=len(times),
                query_seconds_max=max(times, default=0.0), query_seconds_total=sum(times),
                rows_behind=self.rows_behind.get(name),
            ))
        running = [t for t in tables if not t.stopped]
        if state is None and any(t.rows_behind for t in running):
            state = control.CATCHING_UP
        if state is None:
            if running and all(t.error for t in running):
                state = control.SOURCE_UNREACHABLE
            elif any(t.error or t.stopped for t in tables):
                state = control.DEGRADED
            else:
                state = control.OK
        message = None
        if state == control.SOURCE_UNREACHABLE:
            message = (f"the exporter cannot read the source ({next(t.error for t in running)}) — check the "
                       "database server, the network to it and the exporter user's grants")
        elif self.stopped_tables:
            message = (f"table(s) {', '.join(sorted(self.stopped_tables))} stopped — fix [tables.<t>] in "
                       "pipeline.toml; the exporter picks the change up by itself")
        return control.ExporterStatus(
            exporter=self.cfg.exporter.exporter_id, state=state, exported_at=now_iso(), pass_seconds=pass_seconds,
            tables=tuple(tables), message=message, broker_outage=self.broker_outage,
        )

    def keep_reporting(self) -> None:
        """During a long wait (back-off, the ceiling): a status at least every `interval_seconds`, so slow is not silent."""
        if time.monotonic() - self._last_status_at >= max(1.0, self.cfg.exporter.interval_seconds):
            self.publish_status({}, 0.0)

    def publish_status(self, sent: dict[str, int], pass_seconds: float, state: str | None = None) -> bool:
        """One status record on the control topic; a broker that does not take it is retried next pass, not waited for."""
        self._last_status_at = time.monotonic()
        key, value = control.encode_status(self.status(sent, pass_seconds, state))
        try:
            self.publisher.publish(control.control_topic(self.cfg.kafka), [(key, value)])
        except BrokerUnavailable as exc:
            self._note_broker_down(str(exc))
            return False
        self._broker_back()
        return True

    def refresh(self, reader: TableReader) -> TableReader:
        """The table's reader with its column types as the source has them now (a migration may change them)."""
        if self.engine is None:
            return reader
        fresh = describe(self.engine, reader.spec)
        if fresh.declared != reader.declared:
            changed = sorted(c for c in fresh.declared if fresh.declared[c] != reader.declared.get(c))
            log.info("table %s: column types changed at the source (%s)", reader.spec.name, ", ".join(changed))
        return fresh

    def publish_schema(self, reader: TableReader) -> None:
        """A schema record to every partition of the table's topic, when this process has not sent this schema yet.

        Sent, and acknowledged, before any row of the pass: within a partition
        it precedes every change that needs it.
        """
        spec = reader.spec
        declared = {c: t for c, t in reader.declared.items() if t is not None}
        sid = schema_id(spec.primary_key, declared)
        if self.sent_schemas.get(spec.name) == sid:
            return
        topic = self.cfg.kafka.topic_for(spec.name)
        value = encode_schema_record(spec.name, spec.primary_key, declared, now_iso())
        delay = 0.5
        while True:
            try:
                self.publisher.publish_everywhere(topic, SCHEMA_KEY, value)
                break
            except BrokerUnavailable as exc:
                self._note_broker_down(str(exc))
                if self.stop.wait(delay):
                    raise _Stopping() from None
                delay = min(delay * 2, 15.0)
        self.sent_schemas[spec.name] = sid
        log.debug("table %s: schema %s published (%d column types)", spec.name, sid, len(declared))

    def export_table(self, reader: TableReader) -> int:
        spec = reader.spec
        ex = self.cfg.exporter
        topic = self.cfg.kafka.topic_for(spec.name)
        checked = [c.name for c in spec.columns if not c.hash]
        mark = self.state.get(spec.name)
        before = mark
        cursor = pass_start(mark, ex.overlap_seconds)
        total = 0
        self.new_rows[spec.name] = 0
        progress_at = time.monotonic() + PROGRESS_SECONDS
        times = self.query_seconds.setdefault(spec.name, [])
        self.governor.begin()
        first = True  # run_pass waited out any back-off just before this table
        while not self.stop.is_set():
            if not first and not self.governor.before_read(self.stop, self.keep_reporting):
                break
            first = False
            asked = time.monotonic()
            rows = reader.read_chunk(self.engine, cursor, ex.chunk_rows)
            times.append(time.monotonic() - asked)
            self.governor.after_read(len(rows), times[-1])
            if not rows:
                self.rows_behind[spec.name] = 0
                break
            finding = find_pii(spec.name, (r.values for r in rows), checked)
            if finding is not None:
                raise PiiDetected(finding)
            exported_at = now_iso()
            messages = [envelope_for(spec, r, self.cfg.pii_hash_key, exported_at, reader.to_json) for r in rows]
            self._publish_until_acknowledged(topic, messages)
            self._failpoint.chunks += 1
            self._failpoint.hit("before_save")
            last = rows[-1]
            sent_so_far = (mark.rows_sent if mark else 0) + len(rows)
            mark = later(mark, Watermark(last.ts.isoformat(timespec="microseconds"), last.pk, sent_so_far))
            self.state.save(spec.name, mark)
            self._failpoint.hit("after_chunk")
            total += len(rows)
            self.new_rows[spec.name] += sum(1 for r in rows if _beyond(r, before))
            backlog = total == len(rows) == ex.chunk_rows  # a full first chunk: more waits (a first load, an outage)
            if backlog or time.monotonic() >= progress_at:  # a long pass: say how far it got, here and downstream
                progress_at = time.monotonic() + PROGRESS_SECONDS
                if not backlog:
                    log.info("%s: %s row(s) sent so far, up to changes of %s", spec.name, f"{total:,}", mark.ts)
                self.rows_behind[spec.name] = reader.rows_after(self.engine, last.ts, BEHIND_CAP)
                self.publish_status({spec.name: total}, time.monotonic() - progress_at + PROGRESS_SECONDS,
                                    control.CATCHING_UP)
            if len(rows) < ex.chunk_rows:
                self.rows_behind[spec.name] = 0  # read to the end: nothing changed after the watermark is unsent
                break
            cursor = Cursor(ts=last.ts, pk=last.pk)
        return total

    def _publish_until_acknowledged(self, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
        delay = 0.5
        while True:
            try:
                self.publisher.publish(topic, messages, on_stall=self._note_broker_down)
            except BrokerUnavailable as exc:
                self._note_broker_down(str(exc))
                if self.stop.wait(delay):
                    raise _Stopping() from None
                delay = min(delay * 2, 15.0)
                continue
            self._broker_back()
            return

    def _note_broker_down(self, reason: str) -> None:
        if not self._broker_down:
            self._broker_down = True
            self._outage_since = now_iso()
            self.broker_outage = f"exporter ↔ broker link lost since {self._outage_since}: {reason}"
            log.warning("Kafka unavailable (%s); watermarks stay put, retrying with backoff", reason)

    def _broker_back(self) -> None:
        """The broker acknowledged again: status records tell the outage (from – until) for the next ten minutes."""
        if self._broker_down:
            self._broker_down = False
            reason = (self.broker_outage or "").split(": ", 1)[-1]
            self.broker_outage = f"exporter ↔ broker link lost from {self._outage_since} until {now_iso()}: {reason}"
            self._outage_reported_until = time.monotonic() + 600
            log.warning("Kafka reachable again; export resumes")


class _Stopping(Exception):
    """SIGTERM/SIGINT while waiting for the broker: abandon the unacknowledged chunk."""


def _describe_tables(cfg: PipelineConfig, engine) -> tuple[dict[str, TableReader], dict[str, str]]:
    readers, failed = {}, {}
    for name, spec in cfg.tables.items():
        try:
            readers[name] = describe(engine, spec)
        except SourceTableError as exc:
            failed[name] = str(exc)
            log.error("table %s not exported: %s", name, exc)
            continue
        if readers[name].index_name is None:
            log.warning(
                "table %s: no index at the source starts with %s — every chunk would scan the whole table; "
                "ask the DBA for: CREATE INDEX ix_%s_%s ON %s (%s, %s)",
                name, spec.watermark, name, spec.watermark, name, spec.watermark, ", ".join(spec.primary_key),
            )
    return readers, failed


def run_exporter(cfg: PipelineConfig, once: bool, reset_watermarks: bool) -> int:
    """`python -m ingest export`: one pass (`once`) or a pass every interval until SIGTERM/SIGINT."""
    require_hash_key(cfg)
    assert cfg.exporter is not None and cfg.kafka is not None and cfg.source is not None
    engine = connect(cfg.source)
    limit_statement_time(engine, cfg.exporter.statement_timeout_seconds)
    state = WatermarkStore(cfg.exporter.state_path)
    if reset_watermarks:
        log.info("watermarks reset: every table is exported from its first row")
        state.reset()
    publisher = Publisher(cfg.kafka)
    exporter = Exporter(cfg, publisher, state, {})
    exporter.engine = engine

    def _on_signal(signum, _frame):
        exporter.stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    watched = _ConfigFile(cfg.path)
    try:
        _ensure_topics(exporter, [control.control_topic(cfg.kafka)])
        if not _describe_until_readable(exporter, once):
            return EXIT_FAILED
        readers = exporter.readers
        _ensure_topics(exporter, [cfg.kafka.topic_for(t) for t in readers])
        while not exporter.stop.is_set():
            started = time.monotonic()
            changed = watched.changed()
            if changed is not None:
                new_tables = exporter.apply_tables(changed)
                if new_tables:
                    _ensure_topics(exporter, [cfg.kafka.topic_for(t) for t in new_tables])
            exporter.source_errors.clear()
            exporter.run_pass()
            if cfg.exporter.completeness_seconds > 0 and time.monotonic() >= exporter.completeness_due \
                    and not exporter.stop.is_set():
                exporter.completeness_due = time.monotonic() + cfg.exporter.completeness_seconds
                exporter.completeness_pass()
            if once:
                break
            exporter.stop.wait(max(0.0, cfg.exporter.interval_seconds - (time.monotonic() - started)))
    except _Stopping:
        pass
    finally:
        if not once and not exporter._broker_down:  # a clean stop says so; a killed exporter simply falls silent
            try:
                exporter.publish_status({}, 0.0, control.STOPPING)
            except Exception:  # noqa: BLE001 - stopping anyway; the watchdog sees the silence
                pass
        publisher.close()
        engine.dispose()
    failures = {**exporter.stopped_tables, **(exporter.source_errors if once else {})}
    if failures:
        for name, reason in failures.items():
            print(f"export: table {name} stopped: {reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _describe_until_readable(exporter: Exporter, once: bool) -> bool:
    """Read the source tables' column lists; while the source cannot be reached, say so on the control topic
    (state source_unreachable) and retry with backoff instead of dying. False: stopped, or `once` and unreachable."""
    cfg = exporter.cfg
    delay = 1.0
    while not exporter.stop.is_set():
        try:
            readers, failed = _describe_tables(cfg, exporter.engine)
        except sa.exc.DBAPIError as exc:
            reason = f"source read failed: {exc.orig}"
            exporter.source_errors = {t: reason for t in cfg.tables}
            exporter.governor.after_failure(str(exc.orig)[:200])
            if not exporter.source_failing:
                exporter.source_failing = set(cfg.tables)
                log.warning("the source cannot be read at start (%s); retrying with backoff", exc.orig)
            exporter.publish_status({}, 0.0)
            if once:
                print(f"export: {reason}", file=sys.stderr)
                return False
            exporter.stop.wait(delay)
            delay = min(delay * 2, 30.0)
            continue
        if exporter.source_failing:
            log.warning("the source answers again; export starts")
        exporter.readers, exporter.stopped_tables = readers, dict(failed)
        exporter.source_errors, exporter.source_failing = {}, set()
        return True
    return False


class _ConfigFile:
    """pipeline.toml, re-read when it changes (its [tables.*] only: [source] and [kafka] need a restart)."""

    def __init__(self, path):
        self.path = path
        self._stamp = self._mtime()
        self._warned: str | None = None

    def _mtime(self):
        try:
            st = os.stat(self.path)
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            return None

    def changed(self) -> PipelineConfig | None:
        stamp = self._mtime()
        if stamp is None or stamp == self._stamp:
            return None
        try:
            new = load_config(self.path, needs=("source", "kafka", "exporter", "tables"))
            require_hash_key(new)
        except ConfigError as exc:
            if str(exc) != self._warned:  # once per broken version of the file
                self._warned = str(exc)
                log.error("pipeline.toml changed but is not valid (%s); going on with the previous version", exc)
            return None
        self._stamp, self._warned = stamp, None
        log.info("pipeline.toml changed: table sections re-read")
        return new


def _ensure_topics(exporter: Exporter, topics: list[str]) -> None:
    delay = 0.5
    announced = False
    while True:
        try:
            exporter.publisher.ensure_topics(topics)
            if announced:
                log.warning("Kafka reachable again; export starts")
            return
        except BrokerUnavailable as exc:
            if not announced:
                announced = True
                log.warning("Kafka unavailable at start (%s); retrying with backoff", exc)
            if exporter.stop.wait(delay):
                raise _Stopping() from None
            delay = min(delay * 2, 15.0)
