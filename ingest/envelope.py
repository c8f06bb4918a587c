"""The envelope: the one contract between exporter and worker (DESIGN.md).

A Kafka message value is UTF-8 JSON::

    {"table": "payments", "op": "upsert", "pk": {"payment_id": 42},
     "row": {...}, "source_ts": "2026-11-24T10:00:00+09:00",
     "exported_at": "2026-11-24T10:00:05+09:00", "v": 1}

and its key is the JSON of `pk` (sorted keys, no spaces), so every change of
one row lands in one partition, in order.

`encode_*` is used by the exporter. `decode` is the contract's reference
reading, pure Python: it returns a `Change` or raises `Rejected` with a reason
a person can act on. The worker applies the same checks inside DuckDB for
speed (`decode_sql`: a cheap test, then the full chain for what it does not
clear); a property test keeps the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import msgspec
import orjson

from ingest.schema import TSTZ_PATTERN

VERSION = 1
OPS = ("upsert", "delete")


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
_ROW_COLUMN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$", re.ASCII)  # '_…' names are the warehouse's own


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


# ───────────────────────────────────────────────────────────── decoding ──


def case_variant_reason(name: str, column: str) -> str:
    """Why a row field spelled like a column but for case is refused: the warehouse (like MySQL) ignores
    case in column names, so both spellings would be one column, and the row could not say which it meant."""
    return f"row column name {name!r} differs from {column!r} only in case (column names ignore case); send it as {column!r}"


def decode(raw: bytes | None, table: str, primary_key: Sequence[str], partition: int, offset: int) -> Change:
    """Validate one Kafka value read from the topic of `table`.

    Raises `Rejected` for anything the warehouse cannot take as a row change:
    not JSON, not an envelope, wrong table, unknown op, a pk that does not
    match the table's declared primary key, a row that contradicts its pk or
    spells one column two ways (or a pk column differently), or a
    `source_ts` without a time zone (versions could not be ordered).

    The landing adds one rule that needs the batch: a field spelled
    differently from the column the table already has, or from the first
    spelling in the batch, is refused the same way (`decode.check_topic`).
    """
    if raw is None or len(raw) == 0:
        raise Rejected("empty message value (a Kafka tombstone or an empty produce); expected a JSON envelope")
    try:
        env = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise Rejected(f"not an envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise Rejected(f"not valid JSON: {exc}") from None
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
            if not _ROW_COLUMN.match(col):
                raise Rejected(f"row column name {col!r} is not usable (expected letters, digits and '_', starting with a letter)")
            first = spelled.setdefault(col.lower(), col)
            if first != col:
                raise Rejected(case_variant_reason(col, first))
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
