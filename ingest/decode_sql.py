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

Nothing a message carries enters SQL text. Identifiers come from the config
(validated names) or from row fields that follow the column-name rule
(`identifiers.is_column_name`: no quote, no NUL, nothing that could end an
identifier); they are always quoted. Everything else — values, field names
that break the rule, the reasons naming them — arrives in the registered
Arrow table `_raw` or as bound parameters ($topic, $structure, $bad_names…).
"""

from __future__ import annotations

import json
from typing import Collection, Mapping, Sequence

from ingest.envelope import MAX_VALUE_DEPTH, SCHEMA_OP, size_reason
from ingest.identifiers import lit, q
from ingest.schema import (
    BOOLEAN, BOOLEAN_TEXTS, DATE, DATE_PATTERN, DECIMAL_TEXT, DOUBLE, DOUBLE_TEXT, INTEGER_TEXT, TIME, TIME_PATTERN,
    TIMESTAMP, TIMESTAMPTZ, TS_PATTERN, TSTZ_PATTERN, VARCHAR, decimal_parts,
)

UNCHECKED = "?"  # `reason` of a message the cheap test did not clear (yet)
SCHEMA_RECORD = "§schema"  # `reason` of a schema record: read apart (`decode.py`), never a change
OFFSET_KEY = '"partition"::BIGINT * 4294967296 + "offset"'  # one number per message of a topic, for list parameters


def offset_key(partition: int, offset: int) -> int:
    """`OFFSET_KEY` in Python."""
    return partition * 4294967296 + offset


# ──────────────────────────────────────────────────────── the common way ──


def message_structure(primary_key: Sequence[str], names: Sequence[str], kinded: Collection[str]) -> str:
    """The `json_transform` structure `parse_messages` reads with ($structure)."""
    row_struct = {f: ("JSON" if f in kinded else "VARCHAR") for f in names}
    row_struct.update({c: "JSON" for c in primary_key})  # compared with the pk as JSON
    return json.dumps({"table": "VARCHAR", "op": "VARCHAR", "source_ts": "VARCHAR", "v": "JSON", "exported_at": "JSON",
                       "pk": "MAP(VARCHAR, JSON)", "row": row_struct})


def parse_messages(table: str, primary_key: Sequence[str], names: Sequence[str], duplicate_fields: bool = False,
                   bad_names: bool = False) -> str:
    """`_parsed`: every message of $topic, read once (one `json_transform`, one `json_keys`).

    Parameters: $topic, $structure (`message_structure`), $max_bytes, and
    with `bad_names` $bad_names (field names in the batch that break the
    column-name rule, or spell a column another way).

    - `e`: the envelope — table/op/source_ts as text, `v` and `exported_at`
      as JSON snippets, `pk` as a map of JSON snippets (its keys are checked,
      and 1 and "1" stay apart), and the row's fields in `names`: as text,
      except the kinded ones (whose type is still to be decided, or declared
      and checked) and the pk columns, kept as JSON snippets: their kind is
      their first character (`kind_counts`), `field_value` gives their text;
    - `row_keys`: the field names each row carries, in order ([] when `row`
      is not an object);
    - `reason`: NULL when the cheap test clears the message, `SCHEMA_RECORD`
      for a schema record (`decode.py` reads those), else `UNCHECKED`.

    The cheap test also bounds the size and the nesting of row values: a
    value that starts an object or array may hold at most `MAX_VALUE_DEPTH`
    brackets (more brackets than levels is possible: the full chain then
    measures). With `duplicate_fields` (some row of the batch carries a field
    twice) rows are checked for that too.

    Two readings, not five: `json_type`, `->>` and `json_keys` each read the
    whole text again (measured on 50k bench messages: 265 ms with five
    readings, 176 ms so; the kinds come from the snippets' first characters).
    """
    clears = [
        "octet_length(value) <= $max_bytes",
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
    if bad_names:
        clears.append("NOT list_has_any(row_keys, $bad_names::VARCHAR[])")
    for c in primary_key:
        pk_value = _pk_value(c)
        clears.append(f"(left({pk_value}, 1) = '\"' OR regexp_full_match({pk_value}, '-?[0-9]+'))")
        clears.append(f"(NOT list_contains(row_keys, {lit(c)}) OR {_row_field(c)} = {pk_value})")
    clears += [_shallow(_row_field(f)) for f in names if f not in primary_key]
    if duplicate_fields:
        clears.append("len(list_distinct(row_keys)) = len(row_keys)")
    cleared = "\n        AND ".join(clears)
    return f"""
CREATE OR REPLACE TEMP TABLE _parsed AS
SELECT "partition", "offset", e, row_keys,
    CASE WHEN e.op = {lit(SCHEMA_OP)} THEN {lit(SCHEMA_RECORD)}
         WHEN ({cleared}) IS TRUE THEN NULL
         ELSE {lit(UNCHECKED)} END AS reason
FROM (
    SELECT "partition", "offset", value,
           try(json_transform(txt, $structure)) AS e,
           try(json_keys(txt, '$.row')) AS row_keys
    FROM (SELECT "partition", "offset", value, try(decode(value)) AS txt FROM _raw WHERE topic = $topic)
)
"""


def _shallow(snippet: str) -> str:
    """SQL: a row value that is no object or array, or one with few enough brackets to be shallow.

    `starts_with` compares bytes; `left` counts characters and cost twice as
    much here (measured: 0.22 against 0.10 CPU-s per 50k messages of 8 fields).
    """
    return (f"(NOT (starts_with({snippet}, '{{') OR starts_with({snippet}, '[')) OR {snippet} IS NULL OR "
            f"strlen({snippet}) - strlen(replace(replace({snippet}, '{{', ''), '[', '')) <= {MAX_VALUE_DEPTH})")


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
        ("octet_length(value) > $max_bytes", _size_reason_sql()),
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
          AND ("partition", "offset") IN (SELECT ("partition", "offset") FROM _parsed WHERE reason = {lit(UNCHECKED)})
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


def _size_reason_sql() -> str:
    """SQL: `envelope.size_reason` for the message at hand (the same sentence, its numbers filled in)."""
    before, after = size_reason(111111111, 999999999).split("111,111,111")
    middle, end = after.split("999,999,999")
    return (f"{lit(before)} || format('{{:,}}', octet_length(value)) || {lit(middle)} || "
            f"format('{{:,}}', $max_bytes::BIGINT) || {lit(end)}")


def check_rows(primary_key: Sequence[str]) -> str:
    """`_suspects_checked`: `_suspects` with the row checks, in `envelope.decode`'s order.

    Parameters, found by the caller among the batch's names and rows:
    $bad_names / $bad_reasons (names that break the column-name rule, and
    why); $variant_names / $variant_reasons (other spellings of a column, see
    `decode.case_variants`); $deep_keys / $deep_reasons (`OFFSET_KEY`s of rows
    with a value nested deeper than `MAX_VALUE_DEPTH`, measured in Python).
    Then a field given twice, and the row agrees with its pk.
    """
    def first_of(names: str) -> str:
        return f"list_filter(row_keys, k -> list_contains({names}::VARCHAR[], k))[1]"

    whens = (
        "\n            WHEN list_has_any(row_keys, $bad_names::VARCHAR[]) THEN "
        f"$bad_reasons[list_position($bad_names, {first_of('$bad_names')})]"
        "\n            WHEN len(list_distinct(row_keys)) < len(row_keys) THEN "
        + lit("row carries field '") + " || list_filter(row_keys, (k, i) -> list_position(row_keys, k) < i)[1] || "
        + lit("' twice; send each field once")
        + "\n            WHEN list_has_any(row_keys, $variant_names::VARCHAR[]) THEN "
        f"$variant_reasons[list_position($variant_names, {first_of('$variant_names')})]"
        f"\n            WHEN list_contains($deep_keys::BIGINT[], {OFFSET_KEY}) THEN "
        f"$deep_reasons[list_position($deep_keys::BIGINT[], {OFFSET_KEY})]"
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


def deep_candidates() -> str:
    """Suspects whose row holds more brackets than its values may nest: their row text, to be measured."""
    return (
        f'SELECT "partition", "offset", e.row::VARCHAR FROM _suspects WHERE reason IS NULL AND left(e.row, 1) = \'{{\' '
        f"AND strlen(e.row) - strlen(replace(replace(e.row, '{{', ''), '[', '')) > {MAX_VALUE_DEPTH + 1}"
    )


# ──────────────────────────────────────────── values against declared types ──


def fits(text: str, declared: str) -> str | None:
    """SQL: the value text `text` can be stored as `declared` without loss — `schema.value_fits`.

    None when every value fits (VARCHAR, or a type the worker does not
    check). Two steps, a pattern and DuckDB's cast, because the cast alone is
    lenient ('1.5' → BIGINT gives 2, 'inf' → DATE gives 9999-12-31).
    """
    def shaped(pattern: str, cast: str) -> str:
        return f"(regexp_full_match({text}, {lit(pattern)}) AND TRY_CAST({text} AS {cast}) IS NOT NULL)"

    if declared == VARCHAR:
        return None
    if declared == BOOLEAN:
        return f"{text} IN ({', '.join(lit(b) for b in BOOLEAN_TEXTS)})"
    if declared in ("SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
        return shaped(INTEGER_TEXT, declared)
    parts = decimal_parts(declared)
    if parts is not None:
        fraction = f"rtrim(regexp_extract({text}, '\\.([0-9]*)$', 1), '0')"
        return f"({shaped(DECIMAL_TEXT, declared)} AND length({fraction}) <= {parts[1]})"
    if declared == DOUBLE:
        return f"({shaped(DOUBLE_TEXT, DOUBLE)} AND isfinite(TRY_CAST({text} AS DOUBLE)))"
    patterns = {DATE: DATE_PATTERN, TIME: TIME_PATTERN, TIMESTAMP: TS_PATTERN, TIMESTAMPTZ: TSTZ_PATTERN}
    if declared in patterns:
        return shaped(patterns[declared], declared)
    return None


def type_checks(declared: Mapping[str, str], primary_key: Sequence[str]) -> str | None:
    """Mark valid messages whose values do not fit their declared types (`declared`: field → type).

    The reason reads like `schema.misfit_reason`: `amount_krw: '1,000원' is not BIGINT`.
    None when nothing needs checking. Fields must be kinded (read as JSON).
    """
    whens = []
    for name, type_ in declared.items():
        key = name in primary_key
        text = f"({key_text(name) if key else field_value(name, kinded=True)})"
        cond = fits(text, type_)
        if cond is None:
            continue
        snippet = _pk_value(name) if key else _row_field(name)
        shown = (f"CASE WHEN left({snippet}, 1) = '\"' THEN '''' || left({text}, 40) || "
                 f"CASE WHEN length({text}) > 40 THEN '…' ELSE '' END || '''' ELSE left({text}, 40) END")
        hint = " (expected ISO-8601 with a time zone offset)" if type_ == TIMESTAMPTZ else ""
        whens.append((f"{text} IS NOT NULL AND NOT coalesce({cond}, false)",
                      f"{lit(name + ': ')} || {shown} || {lit(' is not ' + type_ + hint)}"))
    if not whens:
        return None
    cases = "".join(f"\n        WHEN {c} THEN {r}" for c, r in whens)
    return f"""
UPDATE _parsed SET reason = CASE{cases}
    END
WHERE reason IS NULL AND ({" OR ".join(f"({c})" for c, _ in whens)})
"""


# ─────────────────────────────────────────────────────── schema records ──


def count_schema_records() -> str:
    return f"SELECT count(*) FROM _parsed WHERE reason = {lit(SCHEMA_RECORD)}"


def schema_records() -> str:
    """The schema records of $topic, oldest first, with their bytes."""
    return (
        'SELECT p."partition", p."offset", r.value FROM _parsed p JOIN _raw r '
        'ON r.topic = $topic AND r."partition" = p."partition" AND r."offset" = p."offset" '
        f'WHERE p.reason = {lit(SCHEMA_RECORD)} ORDER BY p."offset", p."partition"'
    )


def drop_schema_records() -> str:
    """Valid schema records leave `_parsed` (they are no change); $keys: their `OFFSET_KEY`s."""
    return f"DELETE FROM _parsed WHERE list_contains($keys::BIGINT[], {OFFSET_KEY})"


def reject_schema_records() -> str:
    """Bad schema records keep a reason ($keys / $reasons), so they become dead letters."""
    return (f"UPDATE _parsed SET reason = $reasons[list_position($keys::BIGINT[], {OFFSET_KEY})] "
            f"WHERE list_contains($keys::BIGINT[], {OFFSET_KEY})")
