"""Column types from JSON values, and how they widen. Pure functions.

A new field in the envelope adds a column; a value that no longer fits a
column's type widens the column — it never fails a batch (DESIGN.md):

    BOOLEAN
    INTEGER → BIGINT → DOUBLE → VARCHAR
    DATE → TIMESTAMP → VARCHAR          (ISO strings without an offset)
    TIMESTAMPTZ → VARCHAR               (ISO strings with an offset)

Any two types from different families meet at VARCHAR, which holds anything
(numbers as their JSON text, objects as JSON).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


BOOLEAN, INTEGER, BIGINT, DOUBLE, VARCHAR = "BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR"
DATE, TIMESTAMP, TIMESTAMPTZ = "DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"

_CHAINS = (
    (INTEGER, BIGINT, DOUBLE, VARCHAR),
    (DATE, TIMESTAMP, VARCHAR),
    (TIMESTAMPTZ, VARCHAR),
    (BOOLEAN, VARCHAR),
)
# DuckDB spells some types differently in its catalog; normalise to ours.
_ALIASES = {"TIMESTAMPTZ": TIMESTAMPTZ, "INT": INTEGER, "INT4": INTEGER, "INT8": BIGINT, "FLOAT8": DOUBLE, "BOOL": BOOLEAN}
KNOWN_TYPES = frozenset(t for chain in _CHAINS for t in chain)

_INT32 = 2**31
_INT64 = 2**63
# The same patterns serve Python (`re`, anchored) and DuckDB (regexp_full_match).
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
TS_PATTERN = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?"  # seconds required: DuckDB casts need them
TSTZ_PATTERN = TS_PATTERN + r"(Z|[+-]\d{2}(:?\d{2})?)"
_DATE = re.compile(f"^{DATE_PATTERN}$", re.ASCII)
_TS = re.compile(f"^{TS_PATTERN}$", re.ASCII)
_TSTZ = re.compile(f"^{TSTZ_PATTERN}$", re.ASCII)


def normalise(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    return _ALIASES.get(t, t)


def value_type(value: Any) -> str | None:
    """The narrowest type that holds `value`; None for JSON null (no information)."""
    if value is None:
        return None
    if value is True or value is False:
        return BOOLEAN
    if isinstance(value, int):
        if -_INT32 <= value < _INT32:
            return INTEGER
        return BIGINT if -_INT64 <= value < _INT64 else VARCHAR
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        if len(value) >= 10 and value[4:5] == "-":
            if _TSTZ.match(value):
                return TIMESTAMPTZ
            if _DATE.match(value):
                return DATE
            if _TS.match(value):
                return TIMESTAMP
        return VARCHAR
    return VARCHAR  # objects and arrays are kept as JSON text


def widen(a: str | None, b: str | None) -> str | None:
    """The narrowest type both `a` and `b` fit in (None = unknown yet)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    for chain in _CHAINS:
        if a in chain and b in chain:
            return chain[max(chain.index(a), chain.index(b))]
    return VARCHAR


def column_type(values: Iterable[Any]) -> str | None:
    """Type of a whole column of values, cheap for the common one-type case."""
    result: str | None = None
    seen: set[type] = set()
    for v in values:
        t = type(v)
        # Repeated ints/floats/bools of the same Python type rarely change the
        # answer; strings must each be checked (a timestamp column may hold one odd value).
        if t in seen and t is not str and t is not int:
            continue
        seen.add(t)
        result = widen(result, value_type(v))
        if result == VARCHAR:
            return VARCHAR
    return result


@dataclass(frozen=True)
class ColumnChange:
    column: str
    change: str  # "add_column" | "widen"
    old_type: str | None
    new_type: str


def plan_columns(existing: Mapping[str, str], incoming: Mapping[str, str | None]) -> tuple[dict[str, str], list[ColumnChange]]:
    """Merge the warehouse's column types with a batch's inferred types.

    Returns the resulting type of every incoming column and the changes to
    apply first. A new column seen only as null is added as VARCHAR: no value
    has said anything narrower. A column of a type the worker never creates
    (made by an operator) keeps it for values of that same type and otherwise
    becomes VARCHAR.
    """
    result: dict[str, str] = {}
    changes: list[ColumnChange] = []
    for col, new in incoming.items():
        old = existing.get(col)
        if old is None:
            target = new or VARCHAR
            changes.append(ColumnChange(col, "add_column", None, target))
        else:
            old_n = normalise(old)
            if old_n in KNOWN_TYPES:
                target = widen(old_n, new)
            else:
                target = old_n if new in (None, old_n) else VARCHAR
            if target != old_n:
                changes.append(ColumnChange(col, "widen", old_n, target))
        result[col] = target
    return result, changes


def type_from_profile(
    n_int: int, min_int: int | None, max_int: int | None, n_double: int, n_bool: int, n_json: int,
    n_str: int, n_tstz: int, n_date: int, n_ts: int,
) -> str | None:
    """The column type for one batch's values of a field, from the counts DuckDB
    took of them (`decode.profile_fields`); None when every value was null.

    Same answer as `column_type` over the same values.
    """
    result: str | None = None
    if n_int:
        lo, hi = int(min_int), int(max_int)
        if -_INT32 <= lo and hi < _INT32:
            result = INTEGER
        elif -_INT64 <= lo and hi < _INT64:
            result = BIGINT
        else:
            result = VARCHAR
    if n_double:
        result = widen(result, DOUBLE)
    if n_bool:
        result = widen(result, BOOLEAN)
    if n_json:
        result = VARCHAR
    if n_str:
        if n_tstz == n_str:
            result = widen(result, TIMESTAMPTZ)
        elif n_date + n_ts == n_str:
            result = widen(result, TIMESTAMP if n_ts else DATE)
        else:
            result = VARCHAR
    return result
