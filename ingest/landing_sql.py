"""The landing's SQL, one function per statement: DDL, the MERGE, dead letters, bookkeeping.

These run on the warehouse file inside the batch's one transaction; what
they read comes ready from the decode stage (`decode_sql`, registered as
Arrow tables `_stage` and `_dead`).

Identifiers come from the config (validated names) or from row fields that
the decode stage has already restricted to the column-name rule (`identifiers.py`);
they are always quoted. Message values never enter SQL text: they arrive in
registered Arrow tables or as parameters.
"""

from __future__ import annotations

from typing import Collection, Mapping, Sequence

from ingest.identifiers import HIDDEN_IN_VIEW, SYSTEM_COLUMNS, q

# ──────────────────────────────────────────────────────── dead letters ──


def insert_dead_letters(source: str) -> str:
    """New dead letters only: a re-delivered bad message is not recorded twice.

    `source` is a registered table of the rejected messages (topic, partition,
    offset, key, value, reason) — `decode.DecodedTopic.dead_letters`.
    """
    return f"""
INSERT INTO _meta.dead_letters (batch_id, topic, "partition", "offset", key, raw, raw_sha256, reason, received_at)
SELECT $batch_id, s.topic, s."partition", s."offset", s.key, s.value,
       sha256(coalesce(s.value, ''::BLOB)), s.reason, now()
FROM {source} s
WHERE NOT EXISTS (SELECT 1 FROM _meta.dead_letters d
                  WHERE d.topic = s.topic AND d."partition" = s."partition" AND d."offset" = s."offset"
                    AND d.raw_sha256 = sha256(coalesce(s.value, ''::BLOB)))
"""


def note_replay_failures(failing: str) -> str:
    """Dead letters a replay tried that still fail: when, and why (today's reason)."""
    return f"""
UPDATE _meta.dead_letters d SET last_replay_at = now(), last_replay_reason = f.reason
FROM {failing} f
WHERE d.topic = f.topic AND d."partition" = f."partition" AND d."offset" = f."offset" AND d.replayed_at IS NULL
"""


def mark_replayed(tried: str, failing: str) -> str:
    """Dead letters a replay tried that pass today's rules: replayed now, in batch $batch_id."""
    return f"""
UPDATE _meta.dead_letters d SET replayed_at = now(), replay_batch_id = $batch_id, last_replay_at = now(),
       last_replay_reason = NULL
FROM {tried} t
WHERE d.topic = t.topic AND d."partition" = t."partition" AND d."offset" = t."offset" AND d.replayed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM {failing} f
                  WHERE f.topic = t.topic AND f."partition" = t."partition" AND f."offset" = t."offset")
RETURNING d.topic, d."partition", d."offset"
"""


# ──────────────────────────────────────────────────────── table DDL ──


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


# ──────────────────────────────────────────────────────────── the merge ──


def _merge_key(primary_key: Sequence[str], columns: Mapping[str, str]) -> str:
    return " AND ".join(f"t.{q(k)} = CAST(s.{q(k)} AS {columns[k]})" for k in primary_key)


_NEWER = (
    "(t._source_ts IS NULL OR s._source_ts > t._source_ts "
    "OR (s._source_ts = t._source_ts AND s._kafka_offset >= t._kafka_offset))"
)


def count_applicable(table: str, primary_key: Sequence[str], columns: Mapping[str, str]) -> str:
    """(upserts, deletes) that `merge_changes` will apply: new keys, and changes newer than the stored row.

    For warehouses whose MERGE cannot return the rows it touched (DuckLake);
    run in the merge's transaction, so nothing lands in between.
    """
    first_key = q(primary_key[0])
    return (
        f"SELECT count(*) FILTER (NOT s._is_delete), count(*) FILTER (s._is_delete) "
        f"FROM _stage AS s LEFT JOIN main.{q(table)} AS t ON {_merge_key(primary_key, columns)} "
        f"WHERE t.{first_key} IS NULL OR {_NEWER}"
    )


def merge_changes(table: str, primary_key: Sequence[str], columns: Mapping[str, str], staged: Collection[str],
                  returning: bool = True) -> str:
    """Apply `_stage` (`decode_sql.newest_changes`, values as text): newer wins, ties go to the later Kafka offset.

    - an upsert, or a delete that carries its row, replaces the row's columns
      (a column the batch's rows do not carry — not in `staged` — becomes
      NULL: the warehouse holds each row as the source last sent it);
    - a delete WITHOUT a row only marks the tombstone and keeps the columns;
    - a change older than what the warehouse holds changes nothing, so replays
      and duplicates are harmless.
    RETURNING `_deleted` lets the caller count upserts and deletes applied (`returning`;
    DuckLake cannot: `count_applicable` counts them first).
    """
    def value(c: str, ty: str) -> str:
        return f"CAST(s.{q(c)} AS {ty})" if c in staged else f"NULL::{ty}"

    on = _merge_key(primary_key, columns)
    newer = _NEWER
    set_cols = [
        f"{q(c)} = CASE WHEN s._row_present THEN {value(c, ty)} ELSE t.{q(c)} END"
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
    insert_vals = [value(c, ty) for c, ty in columns.items()] + [
        "s._source_ts", "now()", "s._is_delete", "s._kafka_partition", "s._kafka_offset",
    ]
    return (
        f"MERGE INTO main.{q(table)} AS t USING _stage AS s ON {on} "
        f"WHEN MATCHED AND {newer} THEN UPDATE SET {', '.join(set_cols)} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(insert_cols)}) VALUES ({', '.join(insert_vals)})"
        + (" RETURNING _deleted" if returning else "")
    )


# ─────────────────────────────────────────────────────────── bookkeeping ──


def delete_partition_rows(target: str, staging: str) -> str:
    """Drop the rows of a `_meta` table (offsets, partitions) for the partitions in `staging`."""
    return (
        f"DELETE FROM {target} o USING {staging} s "
        "WHERE o.topic = s.topic AND o.\"partition\" = s.\"partition\""
    )


def insert_partition_rows(target: str, staging: str) -> str:
    """Add `staging`'s rows to a `_meta` table keyed by partition, stamped with now()."""
    return f"INSERT INTO {target} BY NAME SELECT *, now() AS updated_at FROM {staging}"


def insert_batch() -> str:
    return (
        "INSERT INTO _meta.batches (batch_id, started_at, committed_at, messages, upserts, deletes, "
        "skipped_stale, dead_letters, seconds, tables, offsets, lag_messages, kind) "
        "VALUES ($batch_id, $started_at, now(), $messages, $upserts, $deletes, $skipped, $dead, $seconds, "
        "$tables, $offsets, $lag, $kind)"
    )


def next_batch_id() -> str:
    return "SELECT coalesce(max(batch_id), 0) + 1 FROM _meta.batches"


def insert_heartbeat() -> str:
    return (
        "INSERT INTO _meta.heartbeat (worker, beat_at, started_at, state, pid, host, last_batch_id, lag_messages, message) "
        "VALUES ($worker, now(), $started_at, $state, $pid, $host, $last_batch_id, $lag, $message)"
    )


def insert_schema_change() -> str:
    return "INSERT INTO _meta.schema_changes VALUES ($batch_id, now(), $table, $column, $change, $old, $new)"


# ──────────────────────────────────────────────────────── declared types ──


def declared_columns() -> str:
    return "SELECT table_name, column_name, declared_type FROM _meta.declared_columns ORDER BY table_name, rowid"


def forget_declared_columns() -> str:
    return "DELETE FROM _meta.declared_columns WHERE table_name = $table"


def insert_declared_columns() -> str:
    """$table's declared types: $names / $types, from one schema record."""
    return (
        "INSERT INTO _meta.declared_columns "
        "SELECT $table, unnest($names::VARCHAR[]), unnest($types::VARCHAR[]), $schema_id, $batch_id, now()"
    )


# ─────────────────────────────────────────── control records (ingest/control.py) ──
# Newest wins per exporter: a re-delivered older status changes nothing.


def forget_older_exporter_status() -> str:
    return "DELETE FROM _meta.exporter_status WHERE exporter = $exporter AND exported_at <= $exported_at"


def insert_exporter_status() -> str:
    return (
        "INSERT INTO _meta.exporter_status (exporter, state, exported_at, landed_at, pass_seconds, rows_sent, message, "
        "broker_outage, errors, stopped_tables, rows_behind) "
        "SELECT $exporter, $state, $exported_at, now(), $pass_seconds, $rows_sent, $message, $broker_outage, "
        "$errors, $stopped_tables, $rows_behind "
        "WHERE NOT EXISTS (SELECT 1 FROM _meta.exporter_status WHERE exporter = $exporter)"
    )


def forget_older_exporter_tables() -> str:
    return "DELETE FROM _meta.exporter_tables WHERE exporter = $exporter AND exported_at <= $exported_at"


def insert_exporter_table() -> str:
    return (
        "INSERT INTO _meta.exporter_tables "
        "SELECT $exporter, $table_name, $watermark, $rows_sent, $rows_total, $error, $stopped, $queries, "
        "$query_seconds_max, $query_seconds_total, $exported_at, $rows_behind "
        "WHERE NOT EXISTS (SELECT 1 FROM _meta.exporter_tables WHERE exporter = $exporter AND exported_at > $exported_at)"
    )


def warehouse_day_counts(table: str) -> str:
    """Rows of `table` per Asia/Seoul day of their change time (`_source_ts`, the watermark value) in [since, as_of]."""
    return (
        "SELECT strftime(timezone('Asia/Seoul', _source_ts), '%Y-%m-%d') AS day, count(*) "
        f"FROM main.{q(table)} WHERE _source_ts >= $since AND _source_ts <= $as_of GROUP BY day"
    )


def previous_mismatch_passes() -> str:
    return ("SELECT strftime(day, '%Y-%m-%d'), mismatch_passes FROM _meta.completeness "
            "WHERE exporter = $exporter AND table_name = $table")


def forget_completeness_days() -> str:
    return ("DELETE FROM _meta.completeness WHERE exporter = $exporter AND table_name = $table "
            "AND list_contains($days, strftime(day, '%Y-%m-%d'))")


def insert_completeness() -> str:
    return ("INSERT INTO _meta.completeness SELECT $exporter, $table, CAST($day AS DATE), $as_of, $source_rows, "
            "$warehouse_rows, $mismatch_passes, $resent, now()")
