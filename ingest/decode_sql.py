"""The SQL that reads a batch's messages: one function per statement.

It runs on the decoder's own in-memory DuckDB (`decode.py`), never on the
warehouse file, so none of it holds the warehouse's write lock.

Two ways through, because nearly every message is a good one:

- `parse_messages` reads each message once (`json_transform`, plus
  `json_keys` for the row's field names) and applies a cheap test that
  *implies* every check of `envelope.decode` passes;
- only the messages that fail it go through `check_envelopes` + `check_rows`,
  the full chain in `envelope.decode`'s order, which says exactly what is
  wrong (or finds nothing wrong: the cheap test is allowed to be too strict,
  never too lenient). tests/test_envelope_checks_agree.py proves both ways
  accept and reject what `envelope.decode` does.

Identifiers come from the config (validated names) or from row fields that
match `ROW_COLUMN_PATTERN`; they are always quoted, and path expressions use
only such names. Message values never enter SQL text: they arrive in the
registered Arrow table `_raw` or as parameters.
"""

from __future__ import annotations

import json
from typing import Collection, Mapping, Sequence

from ingest.envelope import case_variant_reason
from ingest.identifiers import lit, q
from ingest.schema import TSTZ_PATTERN

# Row fields: letters, digits, '_', starting with a letter ('_…' names are the warehouse's own).
ROW_COLUMN_PATTERN = r"[A-Za-z][A-Za-z0-9_]{0,62}"

UNCHECKED = "?"  # `reason` of a message the cheap test did not clear (yet)


# ──────────────────────────────────────────────────────── the common way ──


def parse_messages(
    table: str, primary_key: Sequence[str], names: Sequence[str], kinded: Sequence[str], bad_names: Sequence[str] = (),
) -> str:
    """`_parsed`: every message of $topic, read once (one `json_transform`, one `json_keys`).

    - `e`: the envelope — table/op/source_ts as text, `v` and `exported_at`
      as JSON snippets, `pk` as a map of JSON snippets (its keys are checked,
      and 1 and "1" stay apart), and the row's fields in `names`: as text,
      except the `kinded` ones (whose column type is still to be decided)
      and the pk columns, kept as JSON snippets: their kind is their first
      character (`kind_counts`), `field_value` gives their text;
    - `row_keys`: the field names each row carries, in order ([] when `row`
      is not an object);
    - `reason`: NULL when the cheap test clears the message, else `UNCHECKED`.

    Two readings, not five: `json_type`, `->>` and `json_keys` each read the
    whole text again (measured on 50k bench messages: 265 ms with five
    readings, 176 ms so; the kinds come from the snippets' first characters).
    """
    row_struct = {f: ("JSON" if f in kinded else "VARCHAR") for f in names}
    row_struct.update({c: "JSON" for c in primary_key})  # compared with the pk as JSON
    structure = {"table": "VARCHAR", "op": "VARCHAR", "source_ts": "VARCHAR", "v": "JSON", "exported_at": "JSON",
                 "pk": "MAP(VARCHAR, JSON)", "row": row_struct}
    clears = [
        f"e.{q('table')} = {lit(table)}",
        "e.op IN ('upsert', 'delete')",
        "list_sort(map_keys(e.pk)) = [" + ", ".join(lit(c) for c in sorted(primary_key)) + "]",
        f"regexp_full_match(e.source_ts, {lit(TSTZ_PATTERN)})",
        "TRY_CAST(e.source_ts AS TIMESTAMPTZ) IS NOT NULL",
        "e.v = '1'",
        # a row that is an object with fields (json_keys gives [] for anything else), or no row to a delete
        "(len(row_keys) > 0 OR (e.op = 'delete' AND e.row IS NULL))",
        "(e.exported_at IS NULL OR left(e.exported_at, 1) = '\"')",
    ]
    for c in primary_key:
        pk_value = _pk_value(c)
        clears.append(f"(left({pk_value}, 1) = '\"' OR regexp_full_match({pk_value}, '-?[0-9]+'))")
        clears.append(f"(NOT list_contains(row_keys, {lit(c)}) OR {_row_field(c)} = {pk_value})")
    if bad_names:
        clears.append("NOT list_has_any(row_keys, [" + ", ".join(lit(n) for n in bad_names) + "]::VARCHAR[])")
    cleared = "\n        AND ".join(clears)
    return f"""
CREATE OR REPLACE TEMP TABLE _parsed AS
SELECT "partition", "offset", e, row_keys,
    CASE WHEN ({cleared}) IS TRUE THEN NULL ELSE {lit(UNCHECKED)} END AS reason
FROM (
    SELECT "partition", "offset",
           try(json_transform(txt, {lit(json.dumps(structure))})) AS e,
           try(json_keys(txt, '$.row')) AS row_keys
    FROM (SELECT "partition", "offset", try(decode(value)) AS txt FROM _raw WHERE topic = $topic)
)
"""


def _row_field(field: str) -> str:
    return f"e.{q('row')}.{q(field)}"


def _pk_value(column: str) -> str:
    """SQL: the pk's value for `column`, as a JSON snippet."""
    return f"e.pk[{lit(column)}]"


def field_value(field: str, kinded: bool) -> str:
    """SQL: a row field's value as text — a string's own text, anything else as JSON."""
    x = _row_field(field)
    return f"CASE WHEN left({x}, 1) = '\"' THEN {x}->>'$' ELSE {x}::VARCHAR END" if kinded else x


def row_key_lists(valid_only: bool) -> str:
    """The distinct lists of row field names, first-seen first (rows usually all carry the same list)."""
    where = "reason IS NULL AND row_keys IS NOT NULL" if valid_only else "row_keys IS NOT NULL"
    return f"SELECT row_keys FROM _parsed WHERE {where} GROUP BY row_keys ORDER BY min(rowid)"


def set_reasons(source: str) -> str:
    """Replace the `UNCHECKED` marks with what the full chain found (NULL: valid after all)."""
    return (
        f'UPDATE _parsed p SET reason = c.reason FROM {source} c '
        'WHERE p."partition" = c."partition" AND p."offset" = c."offset"'
    )


def count_verdicts() -> str:
    return "SELECT count(*) FILTER (reason IS NOT NULL), count(*) FILTER (reason IS NULL) FROM _parsed"


def dead_letters() -> str:
    """The rejected messages with their bytes and reasons (the checks do not carry the bytes along)."""
    return """
SELECT r.topic, r."partition", r."offset", r.key, r.value, p.reason
FROM _parsed p JOIN _raw r ON r.topic = $topic AND r."partition" = p."partition" AND r."offset" = p."offset"
WHERE p.reason IS NOT NULL
ORDER BY r."partition", r."offset"
"""


# ─────────────────────────────────────────────────────────── profiling ──


def kind_counts(kinded: Sequence[str]) -> str:
    """How many valid messages had each combination of value kinds in the kinded fields (usually one).

    A kind here is the snippet's first character: '"' string, '{' object,
    '[' array, 't'/'f' boolean, NULL null or missing, anything else a number
    (`KINDS` names them; `number_profile` tells integers from the rest).
    """
    firsts = ", ".join(f"left({_row_field(f)}, 1)" for f in kinded)
    return f"SELECT [{firsts}]::VARCHAR[], count(*) FROM _parsed WHERE reason IS NULL GROUP BY ALL"


KINDS = {None: "NULL", '"': "VARCHAR", "{": "OBJECT", "[": "ARRAY", "t": "BOOLEAN", "f": "BOOLEAN"}  # else NUMBER


def is_integer(field: str) -> str:
    """SQL: the kinded field's value is a JSON integer."""
    return f"regexp_full_match({_row_field(field)}::VARCHAR, '-?[0-9]+')"


def number_profile(field: str) -> list[str]:
    """Count, min and max of the integers among a field's values, and how many do not fit even HUGEINT."""
    ints, value = is_integer(field), f"TRY_CAST({_row_field(field)}::VARCHAR AS HUGEINT)"
    return [f"count(*) FILTER ({ints})", f"min({value}) FILTER ({ints})", f"max({value}) FILTER ({ints})",
            f"count(*) FILTER ({ints} AND {value} IS NULL)"]


def dated_strings(field: str, patterns: Sequence[str]) -> list[str]:
    """How many of a field's strings (it holds nothing else) match each pattern.

    Only strings shaped like dates meet the patterns (as in `schema.value_type`).
    """
    text = f"({field_value(field, kinded=True)})"
    dated = f"length({text}) BETWEEN 10 AND 40 AND substr({text}, 5, 1) = '-'"
    return [f"count(*) FILTER ({dated} AND regexp_full_match({text}, {lit(p)}))" for p in patterns]


def profile(columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(columns) or 'NULL'} FROM _parsed WHERE reason IS NULL"


def profile_key(column: str) -> str:
    """Integer count and range (and how many exceed HUGEINT), and string count, of one key column's values."""
    snippet = _pk_value(column)
    ints, value = f"left({snippet}, 1) <> '\"'", f"TRY_CAST({snippet}::VARCHAR AS HUGEINT)"
    return (
        f"SELECT count(*) FILTER ({ints}), min({value}) FILTER ({ints}), max({value}) FILTER ({ints}), "
        f"count(*) FILTER ({ints} AND {value} IS NULL), count(*) FILTER (NOT {ints}) "
        "FROM _parsed WHERE reason IS NULL"
    )


# ──────────────────────────────────────────────────────────────── dedupe ──


def key_text(column: str) -> str:
    """SQL: a pk value as text — strings unquoted, integers as written (1 and "1" are one key, as in `decode`)."""
    snippet = _pk_value(column)
    return f"CASE WHEN left({snippet}, 1) = '\"' THEN {snippet}->>'$' ELSE {snippet}::VARCHAR END"


def newest_changes(primary_key: Sequence[str], fields: Sequence[str], kinded: Collection[str]) -> str:
    """The valid changes, one per row — newest `source_ts`, the later offset on ties — every value as text."""
    keys = ", ".join(f"{key_text(c)} AS {q(c)}" for c in primary_key)
    values = "".join(f"{field_value(f, f in kinded)} AS {q(f)}, " for f in fields if f not in primary_key)
    part = ", ".join(q(c) for c in primary_key)
    return f"""
SELECT {keys}, {values}
       TRY_CAST(e.source_ts AS TIMESTAMPTZ) AS _source_ts,  -- valid rows always cast; TRY: DuckDB may cast before it filters
       e.op = 'delete' AS _is_delete,
       e.{q('row')} IS NOT NULL AS _row_present,  -- valid rows are objects or null
       "partition"::INTEGER AS _kafka_partition,
       "offset"::BIGINT AS _kafka_offset
FROM _parsed
WHERE reason IS NULL
QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY _source_ts DESC, "offset" DESC) = 1
"""


# ─────────────────────────────────────── the full chain, for the rest ──


ENVELOPE_FIELDS = ("table", "op", "pk", "row", "source_ts", "v", "exported_at")


def _kind(snippet: str) -> str:
    """SQL: the JSON kind of a snippet from json_transform(…, 'JSON'), by its first character."""
    return (
        f"CASE WHEN {snippet} IS NULL THEN 'null' "
        f"WHEN left({snippet}, 1) = '\"' THEN 'string' "
        f"WHEN left({snippet}, 1) = '{{' THEN 'object' "
        f"WHEN left({snippet}, 1) = '[' THEN 'array' "
        f"WHEN {snippet} IN ('true', 'false') THEN 'boolean' "
        f"WHEN NOT (contains({snippet}::VARCHAR, '.') OR contains(lower({snippet}::VARCHAR), 'e')) THEN 'integer' "
        f"ELSE 'number' END"
    )


def check_envelopes(table: str, primary_key: Sequence[str]) -> str:
    """`_suspects`: the messages of $topic the cheap test did not clear, and why each is invalid (NULL = valid).

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
    return f"""
CREATE OR REPLACE TEMP TABLE _suspects AS
WITH parsed AS (
    SELECT *, try(json_transform(txt, {structure})) AS e
    FROM (
        SELECT "partition", "offset", value, try(decode(value)) AS txt FROM _raw
        WHERE topic = $topic
          AND ("partition", "offset") IN (SELECT ("partition", "offset") FROM _parsed WHERE reason IS NOT NULL)
    )
), fields AS (
    SELECT *,
           CASE WHEN left(e.pk, 1) = '{{' THEN json_transform(e.pk, {pk_structure}) END AS pkv,
           CASE WHEN left(e.row, 1) = '{{' THEN json_keys(e.row) END AS row_keys
    FROM parsed
)
SELECT "partition", "offset", e, pkv, row_keys,
    CASE{when}
    END AS reason
FROM fields
"""


def check_rows(primary_key: Sequence[str], bad_names: Sequence[str], variants: Mapping[str, str]) -> str:
    """`_suspects_checked`: `_suspects` with the row checks — no unusable field names
    (`bad_names`, found by the caller among the batch's names), no other spelling of
    a column (`variants`: spelling → the column's, see `decode.case_variants`),
    the row agrees with its pk."""
    bad = "[" + ", ".join(lit(f) for f in bad_names) + "]::VARCHAR[]"
    whens = ""
    if bad_names:
        whens += (
            f"\n            WHEN list_has_any(row_keys, {bad}) THEN "
            + lit("row column name '") + f" || list_filter(row_keys, k -> list_contains({bad}, k))[1] || "
            + lit("' is not usable (expected letters, digits and '_', starting with a letter)")
        )
    whens += "".join(
        f"\n            WHEN list_contains(row_keys, {lit(name)}) THEN {lit(case_variant_reason(name, column))}"
        for name, column in variants.items()
    )
    structure = lit(json.dumps({c: "JSON" for c in primary_key}))
    whens += "".join(
        f"\n            WHEN list_contains(row_keys, {lit(c)}) AND (_c.{q(c)} IS NULL OR _c.{q(c)} <> pkv.{q(c)}) THEN "
        + lit(f"row says {c}=") + f" || coalesce(_c.{q(c)}, 'null') || " + lit(f" but pk says {c}=") + f" || pkv.{q(c)}"
        for c in primary_key
    )
    return f"""
CREATE OR REPLACE TEMP TABLE _suspects_checked AS
SELECT "partition", "offset", CASE WHEN reason IS NOT NULL THEN reason{whens} END AS reason
FROM (SELECT *, CASE WHEN reason IS NULL AND left(e.row, 1) = '{{' THEN json_transform(e.row, {structure}) END AS _c
      FROM _suspects)
"""
