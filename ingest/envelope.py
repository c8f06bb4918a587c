"""The envelope: the one contract between exporter and worker (docs/contracts.md).

A Kafka message value is UTF-8 JSON::

    {"table": "payments", "op": "upsert", "pk": {"payment_id": 42},
     "row": {...}, "source_ts": "2026-11-24T10:00:00+09:00",
     "exported_at": "2026-11-24T10:00:05+09:00", "v": 1}

and its key is the JSON of `pk` (sorted keys, no spaces), so every change of
one row lands in one partition, in order.

A *schema record* travels in the same topic, in every partition, ahead of
the first change that needs it (`encode_schema_record`, `decode_schema`):

    {"table": "payments", "op": "schema", "v": 1, "schema_id": "3f2a…",
     "primary_key": ["payment_id"], "columns": {"payment_id": "INTEGER",
     "amount_krw": "BIGINT", "created_at": "TIMESTAMP WITH TIME ZONE", …},
     "exported_at": "2026-11-24T10:00:05+09:00"}

It declares the source's type of every allow-listed column; the worker
creates and alters columns from it and checks values against it. Producers
that send none get inferred, widening types (`schema.py`).

`encode_*` is used by the exporter. `decode` is the contract's reference
reading, pure Python: it returns a `Change` or raises `Rejected` with a reason
a person can act on. The worker applies the same checks inside DuckDB for
speed (`decode_sql`: a cheap test, then the full chain for what it does not
clear); a property test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
import re
from typing import Any, Mapping, Sequence

import msgspec
import orjson

from ingest.identifiers import COLUMN_NAME_RULE, is_column_name
from ingest.schema import TSTZ_PATTERN, parse_declared_type

VERSION = 1
OPS = ("upsert", "delete")
SCHEMA_OP = "schema"
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576  # [worker] max_message_bytes
MAX_VALUE_DEPTH = 32  # a row value may nest this many objects/arrays ([1] is one level)


class Rejected(Exception):
    """The message is not a valid envelope for its topic; `str(exc)` is the reason."""


class _Wire(msgspec.Struct, forbid_unknown_fields=False):
    table: str
    op: str
    pk: dict[str, Any]
    source_ts: str
    v: int
    row: dict[str, Any] | None = None
    exported_at: str | None = None


_decoder = msgspec.json.Decoder(_Wire)

# ISO-8601 date-time WITH an offset (or Z): what DuckDB's TIMESTAMPTZ cast accepts.
_TS_WITH_TZ = re.compile(f"^{TSTZ_PATTERN}$", re.ASCII)


@dataclass(frozen=True, slots=True)
class Change:
    """One validated change of one row, with where it came from in Kafka."""

    table: str
    op: str  # "upsert" | "delete"
    key: tuple  # normalised pk values, in primary_key order: the dedupe key
    pk: dict[str, Any]
    row: dict[str, Any] | None
    source_ts: datetime
    partition: int
    offset: int


# ───────────────────────────────────────────────────────────── encoding ──


def encode_key(pk: Mapping[str, Any]) -> bytes:
    """Kafka key: the JSON of the primary key, canonical so equal keys hash equal."""
    return orjson.dumps(dict(pk), option=orjson.OPT_SORT_KEYS)


def encode_envelope(
    table: str,
    op: str,
    pk: Mapping[str, Any],
    row: Mapping[str, Any] | None,
    source_ts: str,
    exported_at: str,
) -> bytes:
    """Kafka value for one change. Timestamps are ISO-8601 strings with an offset."""
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, not {op!r}")
    return orjson.dumps(
        {
            "table": table,
            "op": op,
            "pk": dict(pk),
            "row": None if row is None else dict(row),
            "source_ts": source_ts,
            "exported_at": exported_at,
            "v": VERSION,
        }
    )


def schema_id(primary_key: Sequence[str], columns: Mapping[str, str]) -> str:
    """A short fingerprint of a declared schema: equal schemas, equal ids."""
    canonical = json.dumps({"primary_key": list(primary_key), "columns": dict(columns)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_schema_record(table: str, primary_key: Sequence[str], columns: Mapping[str, str], exported_at: str) -> bytes:
    """Kafka value of a schema record: the declared type of every exported column (see the module doc)."""
    return orjson.dumps({
        "table": table, "op": SCHEMA_OP, "v": VERSION, "schema_id": schema_id(primary_key, columns),
        "primary_key": list(primary_key), "columns": dict(columns), "exported_at": exported_at,
    })


SCHEMA_KEY = b'{"__schema__":true}'  # Kafka key of schema records (they go to every partition explicitly)


# ───────────────────────────────────────────────────────────── decoding ──


def name_reason(name: str) -> str:
    """Why a row field cannot become a column (it breaks the rule in `identifiers.py`)."""
    return f"row column name {name!r} is not usable: {COLUMN_NAME_RULE}"


def depth_reason(name: str, depth: int) -> str:
    return f"row column {name!r} nests {depth} levels deep; the limit is {MAX_VALUE_DEPTH}"


def size_reason(size: int, limit: int) -> str:
    return f"message is {size:,} bytes; the limit is {limit:,} ([worker] max_message_bytes) — send smaller rows or raise the limit"


def nesting(text: str) -> dict[str, int]:
    """Depth of each member of the JSON object `text` (0 for scalars, [1] is 1), without recursion.

    For texts too deep for a recursive parser; `text` must be valid JSON.
    """
    depths: dict[str, int] = {}
    depth, key, i, n = 0, None, 0, len(text)
    expect_key = False
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if depth == 1 and expect_key:
                key = json.loads(text[i:j + 1])
                depths.setdefault(key, 0)
                expect_key = False
            i = j + 1
            continue
        if c in "[{":
            depth += 1
            if depth == 1:
                expect_key = c == "{"
            elif key is not None:
                depths[key] = max(depths[key], depth - 1)
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 1:
            expect_key = True
        i += 1
    return depths


def _value_depth(value: Any) -> int:
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _duplicate_row_field(raw: bytes) -> str | None:
    """A field the row carries twice (the warehouse could not say which value is meant), else None."""
    try:
        top = json.loads(raw, object_pairs_hook=list)
    except (ValueError, RecursionError):
        return None
    if not isinstance(top, list) or not all(isinstance(p, tuple) for p in top):
        return None
    rows = [v for k, v in top if k == "row"]
    row = rows[0] if rows else None  # the first "row", as DuckDB reads it
    if not isinstance(row, list) or not all(isinstance(p, tuple) for p in row):
        return None
    seen: set[str] = set()
    for k, _ in row:
        if k in seen:
            return k
        seen.add(k)
    return None


def case_variant_reason(name: str, column: str) -> str:
    """Why a row field spelled like a column but for case is refused: the warehouse (like MySQL) ignores
    case in column names, so both spellings would be one column, and the row could not say which it meant."""
    return f"row column name {name!r} differs from {column!r} only in case (column names ignore case); send it as {column!r}"


def decode(
    raw: bytes | None, table: str, primary_key: Sequence[str], partition: int, offset: int,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> Change:
    """Validate one Kafka value read from the topic of `table`.

    Raises `Rejected` for anything the warehouse cannot take as a row change:
    larger than `max_bytes`, not JSON, not an envelope, wrong table, unknown
    op (a schema record is not a change: `decode_schema`), a pk that does not
    match the table's declared primary key, a row with a field name that
    breaks the column-name rule, a field given twice, a value nested deeper
    than `MAX_VALUE_DEPTH`, a row that contradicts its pk or spells one
    column two ways (or a pk column differently), or a `source_ts` without a
    time zone (versions could not be ordered).

    The landing adds one rule that needs the batch: a field spelled
    differently from the column the table already has, or from the first
    spelling in the batch, is refused the same way (`decode.check_topic`).
    """
    if raw is None or len(raw) == 0:
        raise Rejected("empty message value (a Kafka tombstone or an empty produce); expected a JSON envelope")
    if len(raw) > max_bytes:
        raise Rejected(size_reason(len(raw), max_bytes))
    try:
        env = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise Rejected(f"not an envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise Rejected(f"not valid JSON: {exc}") from None
    except RecursionError:  # over ~1,000 levels somewhere: too deep for any reading
        raise Rejected(f"JSON nested too deep to read; a row value may nest {MAX_VALUE_DEPTH} levels") from None
    if env.v != VERSION:
        raise Rejected(f"envelope version v={env.v} is not supported (this worker reads v={VERSION}); upgrade the worker")
    if env.table != table:
        raise Rejected(f"envelope names table {env.table!r} but arrived on the topic of table {table!r}")
    if env.op not in OPS:
        raise Rejected(f"op {env.op!r} is not one of: upsert, delete")
    if set(env.pk) != set(primary_key):
        raise Rejected(
            f"pk has columns {sorted(env.pk)} but [tables.{table}] primary_key is {list(primary_key)}"
        )
    key = []
    for col in primary_key:
        value = env.pk[col]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise Rejected(f"pk value {col}={value!r} is not coercible to a key (expected a string or an integer)")
        key.append(str(value))
    row = env.row
    if env.op == "upsert" and row is None:
        raise Rejected("op 'upsert' without a row; expected \"row\": {...}")
    if row is not None:
        spelled = {c.lower(): c for c in primary_key}
        for col in row:
            if not is_column_name(col):
                raise Rejected(name_reason(col))
        twice = _duplicate_row_field(raw)
        if twice is not None:
            raise Rejected(f"row carries field {twice!r} twice; send each field once")
        for col in row:
            first = spelled.setdefault(col.lower(), col)
            if first != col:
                raise Rejected(case_variant_reason(col, first))
        for col, value in row.items():
            depth = _value_depth(value)
            if depth > MAX_VALUE_DEPTH:
                raise Rejected(depth_reason(col, depth))
        for col in primary_key:
            # Same JSON type and value: 1 and 1.0, or 1 and "1", differ, as they do in the warehouse.
            if col in row and (type(row[col]) is not type(env.pk[col]) or row[col] != env.pk[col]):
                raise Rejected(f"row says {col}={row[col]!r} but pk says {col}={env.pk[col]!r}")
    if not _TS_WITH_TZ.match(env.source_ts):
        raise Rejected(f"source_ts {env.source_ts!r} is not an ISO-8601 timestamp with a time zone")
    try:
        ts = datetime.fromisoformat(env.source_ts.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"source_ts {env.source_ts!r} is not a valid timestamp") from None
    return Change(
        table=table,
        op=env.op,
        key=tuple(key),
        pk=env.pk,
        row=row,
        source_ts=ts,
        partition=partition,
        offset=offset,
    )


@dataclass(frozen=True, slots=True)
class SchemaRecord:
    """A validated schema record: every exported column's declared type (our spelling)."""

    table: str
    schema_id: str
    primary_key: tuple[str, ...]
    columns: dict[str, str]
    exported_at: datetime | None = None  # orders records of one batch: the newest applies


class _WireSchema(msgspec.Struct, forbid_unknown_fields=False):
    table: str
    op: str
    v: int
    primary_key: list[str]
    columns: dict[str, str]
    schema_id: str | None = None
    exported_at: str | None = None


_schema_decoder = msgspec.json.Decoder(_WireSchema)


def decode_schema(raw: bytes, table: str, primary_key: Sequence[str]) -> SchemaRecord:
    """Validate a schema record read from the topic of `table`; raises `Rejected` with the reason.

    Names must follow the column-name rule, types must be ones the warehouse
    knows (`schema.parse_declared_type`), and the key must be the table's.
    """
    try:
        rec = _schema_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise Rejected(f"not a schema record: {exc}") from None
    if rec.v != VERSION:
        raise Rejected(f"schema record version v={rec.v} is not supported (this worker reads v={VERSION}); upgrade the worker")
    if rec.table != table:
        raise Rejected(f"schema record names table {rec.table!r} but arrived on the topic of table {table!r}")
    if list(rec.primary_key) != list(primary_key):
        raise Rejected(f"schema record's primary_key {rec.primary_key} differs from [tables.{table}] primary_key {list(primary_key)}")
    columns: dict[str, str] = {}
    for name, text in rec.columns.items():
        if not is_column_name(name):
            raise Rejected(f"schema record: column name {name!r} is not usable: {COLUMN_NAME_RULE}")
        declared = parse_declared_type(text)
        if declared is None:
            raise Rejected(f"schema record: column {name!r} has type {text[:40]!r}, which the warehouse does not know "
                           "(expected BOOLEAN, SMALLINT, INTEGER, BIGINT, HUGEINT, DOUBLE, DECIMAL(p,s), DATE, TIME, "
                           "TIMESTAMP, TIMESTAMP WITH TIME ZONE or VARCHAR)")
        columns[name] = declared
    missing = [c for c in primary_key if c not in columns]
    if missing:
        raise Rejected(f"schema record declares no type for key column(s) {missing}")
    exported_at = None
    if rec.exported_at is not None and _TS_WITH_TZ.match(rec.exported_at):
        try:
            exported_at = datetime.fromisoformat(rec.exported_at.replace("Z", "+00:00"))
        except ValueError:
            pass
    return SchemaRecord(table, schema_id(primary_key, columns), tuple(primary_key), columns, exported_at)
