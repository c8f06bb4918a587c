"""The landing's SQL, one function per statement.

Validation, dedupe and type profiling run inside DuckDB (C++, off the GIL),
so the worker's Python thread only fetches from Kafka — that is what keeps
the worker close to the raw consume rate. `envelope.decode` states the same
contract in Python; tests/test_envelope_checks_agree.py proves both accept
and reject the same messages.

Identifiers in these statements come from the config (validated names) or
from row fields that `check_envelopes` has already restricted to
`ROW_COLUMN_PATTERN`; they are always quoted. Message values never enter SQL
text: they arrive in the registered Arrow table `_raw` or as parameters.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from ingest.schema import DATE_PATTERN, TIMESTAMPTZ, TS_PATTERN, TSTZ_PATTERN

# Row fields: letters, digits, '_', starting with a letter ('_…' names are the warehouse's own).
ROW_COLUMN_PATTERN = r"[A-Za-z][A-Za-z0-9_]{0,62}"

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


def lit(text: str) -> str:
    """A string literal — only for config names and fixed text, never message data."""
    return "'" + text.replace("'", "''") + "'"


# ─────────────────────────────────────────────── checks, dedupe, profile ──


ENVELOPE_FIELDS = ("table", "op", "pk", "row", "source_ts", "v", "exported_at")


def _kind(snippet: str) -> str:
    """SQL: the JSON kind of a snippet from json_transform(…, 'JSON'), by its first character.

    One parse of each message is all the landing affords (measured: 15 µs a
    message when every check re-parsed it); snippets are then classified as text.
    """
    return (
        f"CASE WHEN {snippet} IS NULL THEN 'null' "
        f"WHEN left({snippet}, 1) = '\"' THEN 'string' "
        f"WHEN left({snippet}, 1) = '{{' THEN 'object' "
        f"WHEN left({snippet}, 1) = '[' THEN 'array' "
        f"WHEN {snippet} IN ('true', 'false') THEN 'boolean' "
        f"WHEN NOT (contains({snippet}::VARCHAR, '.') OR contains(lower({snippet}::VARCHAR), 'e')) THEN 'integer' "
        f"ELSE 'number' END"
    )


def _text(snippet: str) -> str:
    """SQL: a snippet's value as text — strings unquoted, everything else as its JSON."""
    return f"CASE WHEN left({snippet}, 1) = '\"' THEN {snippet}->>'$' ELSE {snippet}::VARCHAR END"


def check_envelopes(table: str, primary_key: Sequence[str]) -> str:
    """`_checked`: each message of one topic ($topic), its envelope fields, and why it is invalid (NULL = valid).

    The checks, and their order, are those of `envelope.decode`.
    """
    structure = lit(json.dumps({f: "JSON" for f in ENVELOPE_FIELDS}))
    pk_structure = lit(json.dumps({c: "JSON" for c in primary_key}))
    pk_sorted = "[" + ", ".join(lit(c) for c in sorted(primary_key)) + "]"
    table_field = q("table")
    checks = [
        ("value IS NULL OR octet_length(value) = 0",
         lit("empty message value (a Kafka tombstone or an empty produce); expected a JSON envelope")),
        ("txt IS NULL", lit("not valid JSON: the value is not UTF-8 text")),
        ("e IS NULL", lit("not valid JSON: ") + " || left(txt, 60)"),
        ("NOT regexp_matches(txt, " + lit(r"^\s*\{") + ")", lit("not an envelope: expected a JSON object")),
    ]
    for f in ("table", "op", "pk", "source_ts", "v"):
        checks.append((f"e.{q(f)} IS NULL", lit(f"not an envelope: field `{f}` is missing")))
    for f, kinds, what in (
        ("table", "('string')", "a string"), ("op", "('string')", "a string"), ("pk", "('object')", "an object"),
        ("source_ts", "('string')", "a string"), ("v", "('integer')", "an integer"),
        ("row", "('object', 'null')", "an object or null"), ("exported_at", "('string', 'null')", "a string"),
    ):
        checks.append((f"{_kind(f'e.{q(f)}')} NOT IN {kinds}", lit(f"not an envelope: `{f}` must be {what}")))
    checks += [
        ("e.v <> '1'",
         lit("envelope version v=") + " || e.v || " + lit(" is not supported (this worker reads v=1); upgrade the worker")),
        (f"e.{table_field}->>'$' <> {lit(table)}",
         lit("envelope names table '") + f" || (e.{table_field}->>'$') || " + lit(f"' but arrived on the topic of table '{table}'")),
        ("e.op->>'$' NOT IN ('upsert', 'delete')",
         lit("op '") + " || (e.op->>'$') || " + lit("' is not one of: upsert, delete")),
        (f"list_sort(json_keys(e.pk)) <> {pk_sorted}",
         lit("pk has columns ") + " || list_sort(json_keys(e.pk))::VARCHAR || "
         + lit(f" but [tables.{table}] primary_key is {list(primary_key)}")),
    ]
    for c in primary_key:
        checks.append((
            f"{_kind(f'pkv.{q(c)}')} NOT IN ('integer', 'string')",
            lit(f"pk value {c}=") + f" || coalesce(pkv.{q(c)}, 'null') || "
            + lit(" is not coercible to a key (expected a string or an integer)"),
        ))
    checks.append(("e.op->>'$' = 'upsert' AND e.row IS NULL", lit('op \'upsert\' without a row; expected "row": {...}')))
    checks.append((
        f"NOT regexp_full_match(e.source_ts->>'$', {lit(TSTZ_PATTERN)}) OR TRY_CAST(e.source_ts->>'$' AS TIMESTAMPTZ) IS NULL",
        lit("source_ts '") + " || (e.source_ts->>'$') || " + lit("' is not an ISO-8601 timestamp with a time zone"),
    ))
    when = "".join(f"\n            WHEN {cond}\n                THEN {reason}" for cond, reason in checks)
    # The common case first: cheap checks on the raw snippets that together
    # imply every check above passes. Only a message failing one of them goes
    # through the full chain, which then says exactly what is wrong.
    fast = [
        "e IS NOT NULL",
        f"left(ltrim(txt, {lit(' ' + chr(9) + chr(10) + chr(13))}), 1) = '{{'",
        f"e.{table_field} = {lit(json.dumps(table))}",
        "e.op IN ('\"upsert\"', '\"delete\"')",
        "left(e.pk, 1) = '{'",
        "left(e.source_ts, 1) = '\"'",
        "e.v = '1'",
        "(e.row IS NULL OR left(e.row, 1) = '{')",
        "(e.exported_at IS NULL OR left(e.exported_at, 1) = '\"')",
        f"list_sort(json_keys(e.pk)) = {pk_sorted}",
        *(f"(left(pkv.{q(c)}, 1) = '\"' OR regexp_full_match(pkv.{q(c)}, '-?[0-9]+'))" for c in primary_key),
        "NOT (e.op = '\"upsert\"' AND e.row IS NULL)",
        f"regexp_full_match(e.source_ts->>'$', {lit(TSTZ_PATTERN)})",
        "TRY_CAST(e.source_ts->>'$' AS TIMESTAMPTZ) IS NOT NULL",
    ]
    fast_ok = "\n        AND ".join(fast)
    return f"""
CREATE OR REPLACE TEMP TABLE _parsed AS
WITH parsed AS (
    SELECT *, try(json_transform(txt, {structure})) AS e
    FROM (SELECT topic, "partition", "offset", key, value, try(decode(value)) AS txt FROM _raw WHERE topic = $topic)
), fields AS (
    SELECT *,
           CASE WHEN left(e.pk, 1) = '{{' THEN json_transform(e.pk, {pk_structure}) END AS pkv,
           CASE WHEN left(e.row, 1) = '{{' THEN json_keys(e.row) END AS row_keys
    FROM parsed
)
SELECT topic, "partition", "offset", e, pkv, row_keys,
    CASE WHEN {fast_ok}
    THEN NULL
    ELSE CASE{when}
        END
    END AS reason
FROM fields
"""


def row_fields(source: str = "_parsed") -> str:
    """The field names the rows of still-valid messages carry, in the order first seen (keys are listed: no parsing)."""
    return f"""
SELECT k FROM (
    SELECT unnest(row_keys) AS k, unnest(range(len(row_keys))) AS n, row_number() OVER () AS r
    FROM {source} WHERE reason IS NULL AND row_keys IS NOT NULL
) GROUP BY k ORDER BY min(r), min(n), k
"""


def check_rows(primary_key: Sequence[str], fields: Sequence[str], bad_fields: Sequence[str] = ()) -> str:
    """`_checked`: `_parsed` with the row checks — no unusable field names (`bad_fields`,
    found by the caller among the batch's distinct names), the row agrees with its
    pk — and each valid row split into JSON snippets (`_c`: the row's one full parse)."""
    bad = "[" + ", ".join(lit(f) for f in bad_fields) + "]::VARCHAR[]"
    whens = ""
    if bad_fields:
        whens += (
            f"\n            WHEN list_has_any(row_keys, {bad}) THEN "
            + lit("row column name '") + f" || list_filter(row_keys, k -> list_contains({bad}, k))[1] || "
            + lit("' is not usable (expected letters, digits and '_', starting with a letter)")
        )
    if fields:
        structure = lit(json.dumps({f: "JSON" for f in fields}))
        usable = f" AND NOT list_has_any(row_keys, {bad})" if bad_fields else ""
        cells = f"CASE WHEN reason IS NULL AND e.row IS NOT NULL{usable} THEN json_transform(e.row, {structure}) END"
        present = set(fields)
        whens += "".join(
            f"\n            WHEN list_contains(row_keys, {lit(c)}) AND (_c.{q(c)} IS NULL OR _c.{q(c)} <> pkv.{q(c)}) THEN "
            + lit(f"row says {c}=") + f" || coalesce(_c.{q(c)}, 'null') || " + lit(f" but pk says {c}=") + f" || pkv.{q(c)}"
            for c in primary_key if c in present
        )
    else:
        cells = "NULL"
    reason = f"CASE WHEN reason IS NOT NULL THEN reason{whens} END" if whens else "reason"
    return f"""
CREATE OR REPLACE TEMP TABLE _checked AS
SELECT * EXCLUDE (reason), {reason} AS reason
FROM (SELECT *, {cells} AS _c FROM _parsed)
"""


def newest_changes(primary_key: Sequence[str]) -> str:
    """`_newest`: the valid changes, one per row — newest `source_ts`, the later offset on ties."""
    keys = ", ".join(f"{_text(f'pkv.{q(c)}')} AS {q(c)}" for c in primary_key)
    kinds = ", ".join(f"{_kind(f'pkv.{q(c)}')} AS {q('_kind_' + c)}" for c in primary_key)
    part = ", ".join(q(c) for c in primary_key)
    return f"""
CREATE OR REPLACE TEMP TABLE _newest AS
SELECT {keys}, {kinds},
       CAST(e.source_ts->>'$' AS TIMESTAMPTZ) AS _source_ts,
       (e.op->>'$') = 'delete' AS _is_delete,
       e.row IS NOT NULL AS _row_present,
       _c,
       "partition"::INTEGER AS _kafka_partition,
       "offset"::BIGINT AS _kafka_offset
FROM _checked
WHERE reason IS NULL
QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY _source_ts DESC, "offset" DESC) = 1
"""


def profile_fields(fields: Sequence[str]) -> str:
    """One scan of `_newest`: per field, counts of each JSON kind and the integer range.

    Ten columns per field, in the order of `fields`; `schema.type_from_profile`
    turns each group of ten into a column type. Each cell is classified once;
    the date patterns run on the quoted snippet itself (they contain nothing
    JSON escapes, and DuckDB re-serialises snippets minimally), and only on
    strings shaped like dates.
    """
    inner, parts = [], []
    for i, field in enumerate(fields):
        cell = f"_c.{q(field)}"
        k, v = f"_k{i}", f"_v{i}"
        inner.append(f"{_kind(cell)} AS {k}")
        inner.append(f"{cell}::VARCHAR AS {v}")
        dated = f"{k} = 'string' AND length({v}) BETWEEN 12 AND 42 AND substr({v}, 6, 1) = '-'"
        parts.append(
            f"count(*) FILTER ({k} = 'integer'), "
            f"min(TRY_CAST({v} AS HUGEINT)) FILTER ({k} = 'integer'), "
            f"max(TRY_CAST({v} AS HUGEINT)) FILTER ({k} = 'integer'), "
            f"count(*) FILTER ({k} = 'number'), count(*) FILTER ({k} = 'boolean'), "
            f"count(*) FILTER ({k} IN ('object', 'array')), count(*) FILTER ({k} = 'string'), "
            f"count(*) FILTER ({dated} AND regexp_full_match({v}, {lit(chr(34) + TSTZ_PATTERN + chr(34))})), "
            f"count(*) FILTER ({dated} AND regexp_full_match({v}, {lit(chr(34) + DATE_PATTERN + chr(34))})), "
            f"count(*) FILTER ({dated} AND regexp_full_match({v}, {lit(chr(34) + TS_PATTERN + chr(34))}))"
        )
    return f"SELECT {', '.join(parts)} FROM (SELECT {', '.join(inner)} FROM _newest)"


def profile_key(column: str) -> str:
    """Integer count and range, and string count, of one key column's values in `_newest`."""
    kind, value = q("_kind_" + column), q(column)
    return (
        f"SELECT count(*) FILTER ({kind} = 'integer'), "
        f"min(TRY_CAST({value} AS HUGEINT)) FILTER ({kind} = 'integer'), "
        f"max(TRY_CAST({value} AS HUGEINT)) FILTER ({kind} = 'integer'), "
        f"count(*) FILTER ({kind} = 'string') FROM _newest"
    )


def stage_changes(primary_key: Sequence[str], columns: Sequence[str], row_fields: Sequence[str]) -> str:
    """`_stage`: one row per change with every table column as text, ready for the MERGE's casts.

    A field a row does not carry comes out NULL: the warehouse holds each row
    as the source last sent it.
    """
    keys = "".join(f"{q(c)}, " for c in primary_key)
    present = set(row_fields)
    fields = "".join(
        f"{_text(f'_c.{q(c)}') if c in present else 'NULL::VARCHAR'} AS {q(c)}, "
        for c in columns if c not in primary_key
    )
    return f"""
CREATE OR REPLACE TEMP TABLE _stage AS
SELECT {keys}{fields}_source_ts, _is_delete, _row_present, _kafka_partition, _kafka_offset
FROM _newest
"""


def insert_dead_letters() -> str:
    """New dead letters only: a re-delivered bad message is not recorded twice.

    The raw bytes come from `_raw` (the checks do not carry them along: copying
    every message's bytes twice cost more than this join on the rare bad ones).
    """
    return """
INSERT INTO _meta.dead_letters
SELECT $batch_id, c.topic, c."partition", c."offset", r.key, r.value,
       sha256(coalesce(r.value, ''::BLOB)), c.reason, now()
FROM _checked c
JOIN _raw r ON r.topic = c.topic AND r."partition" = c."partition" AND r."offset" = c."offset"
WHERE c.reason IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM _meta.dead_letters d
                  WHERE d.topic = c.topic AND d."partition" = c."partition" AND d."offset" = c."offset"
                    AND d.raw_sha256 = sha256(coalesce(r.value, ''::BLOB)))
"""


def count_checked() -> str:
    return "SELECT count(*) FILTER (reason IS NOT NULL), count(*) FILTER (reason IS NULL) FROM _checked"


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


def merge_changes(table: str, primary_key: Sequence[str], columns: Mapping[str, str]) -> str:
    """Apply `_stage`: newer wins, ties go to the later Kafka offset.

    - an upsert, or a delete that carries its row, replaces the row's columns;
    - a delete WITHOUT a row only marks the tombstone and keeps the columns;
    - a change older than what the warehouse holds changes nothing, so replays
      and duplicates are harmless.
    RETURNING `_deleted` lets the caller count upserts and deletes applied.
    """
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
        f"MERGE INTO main.{q(table)} AS t USING _stage AS s ON {on} "
        f"WHEN MATCHED AND {newer} THEN UPDATE SET {', '.join(set_cols)} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(insert_cols)}) VALUES ({', '.join(insert_vals)}) "
        "RETURNING _deleted"
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
        "skipped_stale, dead_letters, seconds, tables, offsets, lag_messages) "
        "VALUES ($batch_id, $started_at, now(), $messages, $upserts, $deletes, $skipped, $dead, $seconds, "
        "$tables, $offsets, $lag)"
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
