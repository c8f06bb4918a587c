"""The landing's SQL, one function per statement.

Identifiers come from the envelope's field names, which `envelope.decode`
has already restricted to letters, digits and '_', and are always quoted.
Values are never put into SQL text: they travel in the Arrow staging table
or as bound parameters.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ingest.schema import TIMESTAMPTZ

# Columns the landing adds to every table (DESIGN.md warehouse layout).
SYSTEM_COLUMNS: dict[str, str] = {
    "_source_ts": TIMESTAMPTZ,
    "_ingested_at": TIMESTAMPTZ,
    "_deleted": "BOOLEAN",
    "_kafka_partition": "INTEGER",
    "_kafka_offset": "BIGINT",
}
HIDDEN_IN_VIEW = ("_deleted", "_kafka_partition", "_kafka_offset")


def q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def create_table(table: str, columns: Mapping[str, str]) -> str:
    cols = [f"{q(c)} {t}" for c, t in columns.items()]
    cols += [f"{q(c)} {t}" for c, t in SYSTEM_COLUMNS.items()]
    return f"CREATE TABLE main.{q(table)} ({', '.join(cols)})"


def create_live_view(table: str) -> str:
    """The view people query: current rows only, bookkeeping columns hidden.

    `SELECT *` is re-bound on every query, so added columns show up without
    re-creating the view.
    """
    hidden = ", ".join(HIDDEN_IN_VIEW)
    return (
        f"CREATE OR REPLACE VIEW live.{q(table)} AS "
        f"SELECT * EXCLUDE ({hidden}) FROM main.{q(table)} WHERE NOT _deleted"
    )


def add_column(table: str, column: str, type_: str) -> str:
    return f"ALTER TABLE main.{q(table)} ADD COLUMN {q(column)} {type_}"


def widen_column(table: str, column: str, type_: str) -> str:
    return f"ALTER TABLE main.{q(table)} ALTER COLUMN {q(column)} TYPE {type_}"


def table_columns() -> str:
    return (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    )


def merge_changes(table: str, staging: str, primary_key: Sequence[str], columns: Mapping[str, str]) -> str:
    """Apply the staged changes: newer wins, ties go to the later Kafka offset.

    - a staged upsert or delete WITH a row replaces the row's columns;
    - a delete WITHOUT a row only marks the tombstone and keeps the columns;
    - an older change than what the warehouse holds changes nothing, so
      replays and duplicates are harmless.
    """
    t, s = q(table), staging
    on = " AND ".join(f"t.{q(k)} = CAST(s.{q(k)} AS {columns[k]})" for k in primary_key)
    newer = (
        "(t._source_ts IS NULL OR s._source_ts > t._source_ts "
        "OR (s._source_ts = t._source_ts AND s._kafka_offset >= t._kafka_offset))"
    )
    set_cols = [
        f"{q(c)} = CASE WHEN s._row_present THEN CAST(s.{q(c)} AS {ty}) ELSE t.{q(c)} END"
        for c, ty in columns.items()
        if c not in primary_key
    ]
    set_cols += [
        "_source_ts = s._source_ts",
        "_ingested_at = now()",
        "_deleted = s._is_delete",
        "_kafka_partition = s._kafka_partition",
        "_kafka_offset = s._kafka_offset",
    ]
    insert_cols = [q(c) for c in columns] + ["_source_ts", "_ingested_at", "_deleted", "_kafka_partition", "_kafka_offset"]
    insert_vals = [f"CAST(s.{q(c)} AS {ty})" for c, ty in columns.items()] + [
        "s._source_ts", "now()", "s._is_delete", "s._kafka_partition", "s._kafka_offset",
    ]
    return (
        f"MERGE INTO main.{t} AS t USING {s} AS s ON {on} "
        f"WHEN MATCHED AND {newer} THEN UPDATE SET {', '.join(set_cols)} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(insert_cols)}) VALUES ({', '.join(insert_vals)})"
    )


def insert_dead_letters(staging: str) -> str:
    """New dead letters only: a re-delivered bad message is not recorded twice."""
    return (
        f"INSERT INTO _meta.dead_letters SELECT s.* FROM {staging} AS s "
        "WHERE NOT EXISTS (SELECT 1 FROM _meta.dead_letters d WHERE d.topic = s.topic "
        "AND d.\"partition\" = s.\"partition\" AND d.\"offset\" = s.\"offset\" AND d.raw_sha256 = s.raw_sha256)"
    )


def delete_offsets(staging: str) -> str:
    return (
        f"DELETE FROM _meta.offsets o USING {staging} s "
        "WHERE o.topic = s.topic AND o.\"partition\" = s.\"partition\""
    )


def delete_partitions(staging: str) -> str:
    return (
        f"DELETE FROM _meta.partitions o USING {staging} s "
        "WHERE o.topic = s.topic AND o.\"partition\" = s.\"partition\""
    )


def insert_offsets(staging: str) -> str:
    return f"INSERT INTO _meta.offsets SELECT topic, \"partition\", next_offset, now() FROM {staging}"


def insert_batch() -> str:
    return (
        "INSERT INTO _meta.batches (batch_id, started_at, committed_at, messages, upserts, deletes, "
        "skipped_stale, dead_letters, seconds, tables, offsets, lag_messages) "
        "VALUES ($batch_id, $started_at, now(), $messages, $upserts, $deletes, $skipped, $dead, $seconds, "
        "$tables, $offsets, $lag)"
    )


def next_batch_id() -> str:
    return "SELECT coalesce(max(batch_id), 0) + 1 FROM _meta.batches"


def replace_heartbeat() -> str:
    return (
        "INSERT INTO _meta.heartbeat (worker, beat_at, started_at, state, pid, host, last_batch_id, lag_messages, message) "
        "VALUES ($worker, now(), $started_at, $state, $pid, $host, $last_batch_id, $lag, $message)"
    )


def replace_partitions(staging: str) -> str:
    return (
        f"INSERT INTO _meta.partitions SELECT topic, \"partition\", next_offset, high_watermark, lag_messages, "
        f"state, reason, now() FROM {staging}"
    )
