"""A decoded batch (`decode.py`) → the warehouse, in ONE transaction with the offsets that cover it.

Everything a batch changes — new tables and columns, widened types, the rows
(merged: newer wins), the dead letters, `_meta.offsets`, the `_meta.batches`
row, the heartbeat and the partition states — commits together or not at all.
A worker killed at any moment therefore restarts from offsets that match the
rows exactly: nothing twice, nothing lost.

No PRIMARY KEY / UNIQUE constraints (DuckDB's ART indexes have open WAL-replay
bugs after kill -9 with upserts, duckdb#15836/#18732/#25395): rows stay unique
because the batch is deduped first and then MERGEd on the key.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

import duckdb
import pyarrow as pa

from ingest import landing_sql as sql
from ingest.control import ControlBatch, status_rows
from ingest.decode import DecodedBatch, DecodedTopic
from ingest.failpoints import Failpoints
from ingest.identifiers import SYSTEM_COLUMNS, own_columns
from ingest.schema import normalise, plan_columns

META_SQL = Path(__file__).with_name("sql") / "meta.sql"


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    next_offset: int | None
    high_watermark: int | None
    state: str = "ok"  # ok | stopped
    reason: str | None = None

    @property
    def lag(self) -> int | None:
        if self.high_watermark is None or self.next_offset is None:
            return None
        return max(0, self.high_watermark - self.next_offset)


@dataclass(frozen=True)
class Heartbeat:
    worker: str
    started_at: datetime
    state: str
    pid: int
    host: str
    lag: int | None
    message: str | None = None


@dataclass
class LandingResult:
    batch_id: int
    upserts: int = 0
    deletes: int = 0
    skipped_stale: int = 0
    dead_letters: int = 0
    seconds: float = 0.0
    tables: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # table → user column → type, after the batch


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(META_SQL.read_text(encoding="utf-8"))


def stored_offsets(con: duckdb.DuckDBPyConnection, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    rows = con.execute(
        "SELECT topic, \"partition\", next_offset FROM _meta.offsets WHERE list_contains($topics, topic)",
        {"topics": list(topics)},
    ).fetchall()
    return {(t, p): o for t, p, o in rows}


def forget_offsets(con: duckdb.DuckDBPyConnection, topics: Sequence[str]) -> int:
    """The transport was replaced by an empty one: read every topic from its start."""
    con.execute("BEGIN")
    n = con.execute("SELECT count(*) FROM _meta.offsets WHERE list_contains($t, topic)", {"t": list(topics)}).fetchone()[0]
    con.execute("DELETE FROM _meta.offsets WHERE list_contains($t, topic)", {"t": list(topics)})
    con.execute("DELETE FROM _meta.partitions WHERE list_contains($t, topic)", {"t": list(topics)})
    con.execute("COMMIT")
    return n


def land_batch(
    con: duckdb.DuckDBPyConnection,
    batch: DecodedBatch,
    heartbeat: Heartbeat,
    partitions: Sequence[PartitionState],
    started_at: datetime,
    failpoints: Failpoints | None = None,
    guard: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> LandingResult:
    """Land a decoded batch and everything that describes it in one transaction; then CHECKPOINT.

    `guard(con)` runs first inside the transaction and may refuse the batch by
    raising (several workers on a lake: the partitions must still be this
    worker's, ingest/leases.py); the transaction is then rolled back.
    Returns only after the commit.
    """
    fp = failpoints or Failpoints(None)
    t0 = time.perf_counter()
    fp.hit("before_transaction")
    con.execute("BEGIN TRANSACTION")
    try:
        if guard is not None:
            guard(con)
        batch_id = con.execute(sql.next_batch_id()).fetchone()[0]
        result = LandingResult(batch_id=batch_id)
        existing = _existing_columns(con)
        landed_tables = []
        for i, decoded in enumerate(batch.topics):
            if _land_topic(con, decoded, existing, result):
                landed_tables.append(decoded.table)
            if i == 0:
                fp.hit("mid_merge")
        _write_offsets(con, batch)
        _write_partitions(con, partitions)
        _write_heartbeat(con, heartbeat, batch_id)
        write_control(con, batch.control, existing)
        result.tables = sorted(landed_tables)
        result.seconds = time.perf_counter() - t0
        lag = sum(p.lag or 0 for p in partitions) if partitions else None
        con.execute(
            sql.insert_batch(),
            {
                "kind": "kafka",
                "batch_id": batch_id,
                "started_at": started_at,
                "messages": batch.messages,
                "upserts": result.upserts,
                "deletes": result.deletes,
                "skipped": result.skipped_stale,
                "dead": result.dead_letters,
                "seconds": result.seconds,
                "tables": result.tables,
                "offsets": json.dumps({f"{t}/{p}": [a, b] for (t, p), (a, b) in sorted(batch.offsets.items())}),
                "lag": lag,
            },
        )
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    fp.hit("after_commit")
    fp.hit("during_checkpoint", delay=0.0005)
    # Keep the WAL small so a restart after a crash replays little (docs/design.md). Not on a lake:
    # there CHECKPOINT is the whole maintenance (merge files, expire snapshots), run by `ingest maintain`.
    if not is_lake(con):
        con.execute("CHECKPOINT")
    result.seconds = time.perf_counter() - t0
    result.columns = {t: own_columns(cols) for t, cols in existing.items()}
    return result


@dataclass
class ReplayLanding:
    batch_id: int
    replayed: int  # dead letters that pass today's rules (applied, or older than what the warehouse holds)
    skipped_stale: int
    dead_letters: int  # still failing
    reasons: dict[str, int]  # why they still fail → how many
    schema_changes: list[str]


def land_replay(con: duckdb.DuckDBPyConnection, batch: DecodedBatch, started_at: datetime) -> ReplayLanding:
    """Land dead letters decoded again (`ingest.replay`) in ONE transaction with their "replayed" marks.

    Those that pass land like any change (newer wins); those that still fail
    stay dead letters, with when they were tried and why they still fail. A
    `_meta.batches` row of kind 'replay' (no offsets) records the run and
    moves the data version.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = con.execute(sql.next_batch_id()).fetchone()[0]
        result = LandingResult(batch_id=batch_id)
        existing = _existing_columns(con)
        still: list[pa.Table] = []
        reasons: dict[str, int] = {}
        for decoded in batch.topics:
            if decoded.dead_letters is not None:
                still.append(decoded.dead_letters.select(["topic", "partition", "offset", "reason"]))
                for reason in decoded.dead_letters.column("reason").to_pylist():
                    reasons[reason] = reasons.get(reason, 0) + 1
            if _land_topic(con, dataclasses.replace(decoded, dead_letters=None), existing, result):
                result.tables.append(decoded.table)
        failing = pa.concat_tables(still) if still else pa.table({
            "topic": pa.array([], pa.string()), "partition": pa.array([], pa.int32()),
            "offset": pa.array([], pa.int64()), "reason": pa.array([], pa.string())})
        tried = batch.raw.records.select(["topic", "partition", "offset"])
        con.register("_tried", tried)
        con.register("_failing", failing)
        try:
            con.execute(sql.note_replay_failures("_failing"))
            replayed = con.execute(sql.mark_replayed("_tried", "_failing"), {"batch_id": batch_id}).fetchall()
        finally:
            con.unregister("_tried")
            con.unregister("_failing")
        con.execute(sql.insert_batch(), {
            "kind": "replay", "batch_id": batch_id, "started_at": started_at, "messages": batch.messages,
            "upserts": result.upserts, "deletes": result.deletes, "skipped": result.skipped_stale,
            "dead": failing.num_rows, "seconds": 0.0, "tables": sorted(set(result.tables)), "offsets": "{}", "lag": None,
        })
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    con.execute("CHECKPOINT")
    return ReplayLanding(batch_id, len({tuple(r) for r in replayed}), result.skipped_stale, failing.num_rows, reasons,
                         result.schema_changes)


def declared_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Every table's declared column types, as the newest schema record said (`_meta.declared_columns`)."""
    out: dict[str, dict[str, str]] = {}
    for table, column, type_ in con.execute(sql.declared_columns()).fetchall():
        out.setdefault(table, {})[column] = type_
    return out


def user_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Every warehouse table's own columns and their types (the landing's system columns left out)."""
    return {t: own_columns(cols) for t, cols in _existing_columns(con).items()}


def write_heartbeat(con: duckdb.DuckDBPyConnection, heartbeat: Heartbeat, partitions: Sequence[PartitionState],
                    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> None:
    """An idle beat: tiny transaction, so the write lock is held for milliseconds. `also(con)` runs inside it
    (a lake worker renews its leases there)."""
    con.execute("BEGIN TRANSACTION")
    try:
        if also is not None:
            also(con)
        last = con.execute("SELECT max(batch_id) FROM _meta.batches").fetchone()[0]
        _write_partitions(con, partitions)
        _write_heartbeat(con, heartbeat, last)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


# ─────────────────────────────────────────────────────────────── helpers ──


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _existing_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for table, column, type_ in con.execute(sql.table_columns()).fetchall():
        out.setdefault(table, {})[column] = normalise(type_)
    return out


def _land_topic(
    con: duckdb.DuckDBPyConnection,
    decoded: DecodedTopic,
    existing: dict[str, dict[str, str]],
    result: LandingResult,
) -> bool:
    """Dead-letter, evolve the schema and MERGE one topic's decoded changes.

    `existing` (table → column → type) is kept up to date with the DDL run
    here. Returns whether any valid change reached the table.
    """
    table, primary_key = decoded.table, decoded.primary_key
    if decoded.dead_letters is not None:
        con.register("_dead", decoded.dead_letters)
        try:
            con.execute(sql.insert_dead_letters("_dead"), {"batch_id": result.batch_id})
        finally:
            con.unregister("_dead")
        result.dead_letters += decoded.rejected
    if decoded.schema is not None:
        _declare(con, decoded, existing, result)
    if decoded.stage is None:
        return False
    table_columns = _evolve(con, table, decoded.incoming, existing, result)
    con.register("_stage", decoded.stage)
    try:
        staged = set(primary_key) | set(decoded.fields)
        columns = own_columns(table_columns)
        if is_lake(con):
            # DuckLake has no MERGE … RETURNING: count what the merge will apply first (same transaction).
            upserts, deletes = con.execute(sql.count_applicable(table, primary_key, columns)).fetchone()
            con.execute(sql.merge_changes(table, primary_key, columns, staged, returning=False))
        else:
            applied = con.execute(sql.merge_changes(table, primary_key, columns, staged)).fetchall()
            deletes = sum(1 for (d,) in applied if d)
            upserts = len(applied) - deletes
    finally:
        con.unregister("_stage")
    result.deletes += deletes
    result.upserts += upserts
    result.skipped_stale += decoded.valid - upserts - deletes
    return True


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con`'s default database is a DuckLake (ingest/warehouse_lake.py) rather than a DuckDB file."""
    row = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return row is not None and row[0] == "ducklake"


def _evolve(con: duckdb.DuckDBPyConnection, table: str, incoming: dict[str, str | None],
            existing: dict[str, dict[str, str]], result: LandingResult) -> dict[str, str]:
    """Create the table, add and widen columns so that `incoming` (column → type its values need) fits.

    Returns the table's columns after the change (kept in `existing` too).
    """
    table_columns = existing.get(table)
    types, changes_needed = plan_columns(own_columns(table_columns or {}), incoming)
    if table_columns is None:
        con.execute(sql.create_table(table, types))
        con.execute(sql.create_live_view(table))
        _record_schema_change(con, result.batch_id, table, None, "create_table", None, None)
        result.schema_changes.append(f"created {table}")
        table_columns = existing[table] = {**types, **SYSTEM_COLUMNS}
        return table_columns
    for ch in changes_needed:
        if ch.change == "add_column":
            con.execute(sql.add_column(table, ch.column, ch.new_type))
        else:
            con.execute(sql.widen_column(table, ch.column, ch.new_type))
        table_columns[ch.column] = ch.new_type
        _record_schema_change(con, result.batch_id, table, ch.column, ch.change, ch.old_type, ch.new_type)
        result.schema_changes.append(f"{table}.{ch.column}: {ch.change} {ch.old_type or ''}→{ch.new_type}")
    return table_columns


def _declare(con: duckdb.DuckDBPyConnection, decoded: DecodedTopic, existing: dict[str, dict[str, str]],
             result: LandingResult) -> None:
    """A schema record: remember the declared types, and give the table every declared column.

    A column's type follows its declaration where that widens it (INTEGER →
    BIGINT after a migration at the source); a column already wider keeps
    its type (the values are still checked against the declaration).
    """
    schema, table = decoded.schema, decoded.table
    assert schema is not None
    rows = con.execute("SELECT column_name, declared_type, schema_id FROM _meta.declared_columns WHERE table_name = $t",
                       {"t": table}).fetchall()
    before = {c: t for c, t, _ in rows}
    if rows and rows[0][2] == schema.schema_id and table in existing:
        return
    if before != schema.columns:
        changed = []
        for column in dict.fromkeys([*before, *schema.columns]):
            old, new = before.get(column), schema.columns.get(column)
            if old != new:
                _record_schema_change(con, result.batch_id, table, column, "declare", old, new)
                changed.append(f"{column} {old or '-'}→{new or '-'}")
        result.schema_changes.append(
            f"{table}: column types declared by the source ({len(schema.columns)} columns)" if not before
            else f"{table}: declared types changed: {', '.join(changed)}")
        con.execute(sql.forget_declared_columns(), {"table": table})
        con.execute(sql.insert_declared_columns(), {
            "table": table, "names": list(schema.columns), "types": list(schema.columns.values()),
            "schema_id": schema.schema_id, "batch_id": result.batch_id,
        })
    _evolve(con, table, dict(schema.columns), existing, result)


def _record_schema_change(con, batch_id, table, column, change, old, new) -> None:
    con.execute(
        sql.insert_schema_change(),
        {"batch_id": batch_id, "table": table, "column": column, "change": change, "old": old, "new": new},
    )


def _replace_partition_rows(con: duckdb.DuckDBPyConnection, target: str, columns: dict[str, pa.Array]) -> None:
    """Replace the rows of `target` (a `_meta` table keyed by topic and partition) with `columns`."""
    con.register("_staging_rows", pa.table(columns))
    try:
        con.execute(sql.delete_partition_rows(target, "_staging_rows"))
        con.execute(sql.insert_partition_rows(target, "_staging_rows"))
    finally:
        con.unregister("_staging_rows")


def _write_offsets(con: duckdb.DuckDBPyConnection, batch: DecodedBatch) -> None:
    if not batch.offsets:
        return
    items = sorted(batch.offsets.items())
    _replace_partition_rows(con, "_meta.offsets", {
        "topic": pa.array([t for (t, _), _ in items], pa.string()),
        "partition": pa.array([p for (_, p), _ in items], pa.int32()),
        "next_offset": pa.array([n for _, (_, n) in items], pa.int64()),
    })


def _write_partitions(con: duckdb.DuckDBPyConnection, partitions: Sequence[PartitionState]) -> None:
    if not partitions:
        return
    _replace_partition_rows(con, "_meta.partitions", {
        "topic": pa.array([p.topic for p in partitions], pa.string()),
        "partition": pa.array([p.partition for p in partitions], pa.int32()),
        "next_offset": pa.array([p.next_offset for p in partitions], pa.int64()),
        "high_watermark": pa.array([p.high_watermark for p in partitions], pa.int64()),
        "lag_messages": pa.array([p.lag for p in partitions], pa.int64()),
        "state": pa.array([p.state for p in partitions], pa.string()),
        "reason": pa.array([p.reason for p in partitions], pa.string()),
    })


def write_control(con: duckdb.DuckDBPyConnection, control: ControlBatch,
                  existing: dict[str, dict[str, str]] | None = None) -> None:
    """The exporters' newest status records, and the completeness checks of their counts, inside the
    caller's transaction (the batch's: the counts are compared with the rows as this batch leaves them)."""
    if not control:
        return
    for counts in control.counts.values():
        _check_completeness(con, counts, existing if existing is not None else _existing_columns(con))
    exporters, tables = status_rows(control.statuses.values())
    for row in exporters:
        con.execute(sql.forget_older_exporter_status(), {"exporter": row["exporter"], "exported_at": row["exported_at"]})
        con.execute(sql.insert_exporter_status(), row)
        con.execute(sql.forget_older_exporter_tables(), {"exporter": row["exporter"], "exported_at": row["exported_at"]})
    for row in tables:
        con.execute(sql.insert_exporter_table(), row)


def _check_completeness(con: duckdb.DuckDBPyConnection, counts, existing: dict[str, dict[str, str]]) -> None:
    """Compare one table's source counts per day with the warehouse at the same watermark; record the outcome.

    The table name comes from a Kafka message: it is used only if the
    warehouse catalog has that table (then quoted as an identifier); a table
    not landed yet counts 0 rows.
    """
    if not counts.days:
        return
    as_of = datetime.fromisoformat(counts.as_of)
    first = min(counts.days)
    since = datetime.fromisoformat(f"{first}T00:00:00+09:00")
    held: dict[str, int] = {}
    if counts.table in existing:
        held = {d: n for d, n in con.execute(sql.warehouse_day_counts(counts.table), {"since": since, "as_of": as_of}).fetchall()}
    key = {"exporter": counts.exporter, "table": counts.table}
    before = dict(con.execute(sql.previous_mismatch_passes(), key).fetchall())
    days = sorted(set(counts.days) | {d for d in held if d >= first})
    con.execute(sql.forget_completeness_days(), {**key, "days": days})
    for day in days:
        source, warehouse = counts.days.get(day, 0), held.get(day, 0)
        streak = 0 if source == warehouse else before.get(day, 0) + 1
        con.execute(sql.insert_completeness(), {
            **key, "day": day, "as_of": as_of, "source_rows": source, "warehouse_rows": warehouse,
            "mismatch_passes": streak, "resent": day in counts.resent_days,
        })


def heartbeat_in_transaction(con: duckdb.DuckDBPyConnection, hb: Heartbeat) -> None:
    """The heartbeat row, inside the caller's transaction (a lake worker's lease round carries it)."""
    last = con.execute("SELECT max(batch_id) FROM _meta.batches").fetchone()[0]
    _write_heartbeat(con, hb, last)


def _write_heartbeat(con: duckdb.DuckDBPyConnection, hb: Heartbeat, last_batch_id: int | None) -> None:
    con.execute("DELETE FROM _meta.heartbeat WHERE worker = $w", {"w": hb.worker})
    con.execute(
        sql.insert_heartbeat(),
        {
            "worker": hb.worker,
            "started_at": hb.started_at,
            "state": hb.state,
            "pid": hb.pid,
            "host": hb.host,
            "last_batch_id": last_batch_id,
            "lag": hb.lag,
            "message": hb.message,
        },
    )
