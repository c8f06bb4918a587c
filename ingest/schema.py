"""Column types: declared by the source, or inferred from JSON values; how they widen. Pure functions.

Two ways a column gets its type:

- **declared**: the exporter reads each allow-listed column's type at the
  source and publishes it in a schema record (docs/contracts.md). The worker
  creates and alters columns from those types, and (per table,
  `on_type_mismatch = "dead_letter"`, the default) a value that does not fit
  its declared type is a dead letter (`value_fits`, `misfit_reason`);
- **inferred**, for producers that send no types: a new field adds a column
  and a value that no longer fits widens the column, never failing a batch:

    BOOLEAN
    SMALLINT → INTEGER → BIGINT → HUGEINT ─┐
    DECIMAL(p,s) (room for both) ──────────┴→ DOUBLE → VARCHAR
    DATE → TIMESTAMP → VARCHAR          (ISO strings without an offset)
    TIMESTAMPTZ → VARCHAR               (ISO strings with an offset)
    TIME → VARCHAR

Any two types from different families meet at VARCHAR, which holds anything
(numbers as their JSON text, objects as JSON).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


BOOLEAN, INTEGER, BIGINT, DOUBLE, VARCHAR = "BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR"
SMALLINT, HUGEINT, TIME = "SMALLINT", "HUGEINT", "TIME"
DATE, TIMESTAMP, TIMESTAMPTZ = "DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"

# DuckDB spells some types differently in its catalog; normalise to ours.
_ALIASES = {"TIMESTAMPTZ": TIMESTAMPTZ, "INT": INTEGER, "INT4": INTEGER, "INT8": BIGINT, "FLOAT8": DOUBLE,
            "BOOL": BOOLEAN, "INT2": SMALLINT, "INT16": SMALLINT, "INT128": HUGEINT}
_INTEGERS = (SMALLINT, INTEGER, BIGINT, HUGEINT)
_INTEGER_DIGITS = {SMALLINT: 5, INTEGER: 10, BIGINT: 19, HUGEINT: 39}  # decimal digits each holds
MAX_DECIMAL_PRECISION = 38
_DECIMAL = re.compile(r"DECIMAL\((\d{1,2})(?:,\s*(\d{1,2}))?\)")
# Every type the worker creates or accepts in a schema record; DECIMAL(p,s) besides.
KNOWN_TYPES = frozenset({BOOLEAN, *_INTEGERS, DOUBLE, DATE, TIMESTAMP, TIMESTAMPTZ, TIME, VARCHAR})

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
    t = " ".join(duckdb_type.upper().split())
    t = _ALIASES.get(t, t)
    m = _DECIMAL.fullmatch(t.replace(" ", ""))
    if m:
        return decimal(int(m.group(1)), int(m.group(2) or 0))
    return t


def decimal(precision: int, scale: int) -> str:
    return f"DECIMAL({precision},{scale})"


def decimal_parts(type_: str) -> tuple[int, int] | None:
    """(precision, scale) of a normalised DECIMAL type, else None."""
    m = _DECIMAL.fullmatch(type_)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def is_known(type_: str) -> bool:
    """A type the worker itself creates and widens (an operator's other types are kept as they are)."""
    return type_ in KNOWN_TYPES or decimal_parts(type_) is not None


def parse_declared_type(text: object) -> str | None:
    """A column type as a schema record declares it → our spelling, or None if it is not one we know.

    Only these reach DDL, rebuilt from their parts, so a schema record's text never does:
    BOOLEAN, SMALLINT, INTEGER, BIGINT, HUGEINT, DOUBLE, DECIMAL(p,s) (1 ≤ p ≤ 38, 0 ≤ s ≤ p),
    DATE, TIME, TIMESTAMP, TIMESTAMP WITH TIME ZONE (or TIMESTAMPTZ), VARCHAR.
    """
    if not isinstance(text, str) or len(text) > 40:
        return None
    t = normalise(text)
    parts = decimal_parts(t)
    if parts is not None:
        p, s = parts
        return t if 1 <= p <= MAX_DECIMAL_PRECISION and s <= p else None
    return t if t in KNOWN_TYPES else None


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
    """The narrowest type both `a` and `b` fit in (None = unknown yet).

    Integers widen to wider integers, integers and decimals to a decimal with
    room for both (DOUBLE past 38 digits), any number with a DOUBLE to DOUBLE,
    DATE to TIMESTAMP; types of different families meet at VARCHAR.
    """
    if a is None or a == b:
        return b
    if b is None:
        return a
    na, nb = _numeric(a), _numeric(b)
    if na is not None and nb is not None:
        return _numeric_type(na, nb)
    for chain in _CHAINS:
        if a in chain and b in chain:
            return chain[max(chain.index(a), chain.index(b))]
    return VARCHAR


_CHAINS = (
    (DATE, TIMESTAMP, VARCHAR),
    (TIMESTAMPTZ, VARCHAR),
    (TIME, VARCHAR),
    (BOOLEAN, VARCHAR),
)


def _numeric(t: str) -> tuple | None:
    """('int', rank) | ('dec', integer digits, scale) | ('float',) for number types, else None."""
    if t in _INTEGERS:
        return ("int", _INTEGERS.index(t))
    if t == DOUBLE:
        return ("float",)
    parts = decimal_parts(t)
    if parts is not None:
        return ("dec", parts[0] - parts[1], parts[1])
    return None


def _numeric_type(a: tuple, b: tuple) -> str:
    if a[0] == "float" or b[0] == "float":
        return DOUBLE
    if a[0] == "int" and b[0] == "int":
        return _INTEGERS[max(a[1], b[1])]
    digits = [x[1] if x[0] == "dec" else _INTEGER_DIGITS[_INTEGERS[x[1]]] for x in (a, b)]
    scale = max(x[2] if x[0] == "dec" else 0 for x in (a, b))
    if max(digits) + scale > MAX_DECIMAL_PRECISION:
        return DOUBLE
    return decimal(max(digits) + scale, scale)


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
            if is_known(old_n):
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


# ─────────────────────────────────────────────── values against declared types ──

INTEGER_TEXT = r"-?[0-9]+"
DECIMAL_TEXT = r"-?[0-9]+(\.[0-9]+)?"
DOUBLE_TEXT = r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"
TIME_PATTERN = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
BOOLEAN_TEXTS = ("true", "false", "0", "1")
_INTEGER_RANGE = {SMALLINT: 2**15, INTEGER: 2**31, BIGINT: 2**63, HUGEINT: 2**127}


def value_text(value: Any) -> str | None:
    """A JSON value as the warehouse reads it into a typed column: strings as themselves, the rest as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def value_fits(value: Any, declared: str) -> bool:
    """Whether a JSON value can be stored in a column of the declared type without losing anything.

    Strict on purpose (DuckDB's casts are lenient: '1.5' → BIGINT gives 2,
    '0x10' gives 16, 'inf' → DATE gives 9999-12-31): integers must be written
    as integers, decimals may not carry more fractional digits than the scale,
    timestamps WITH TIME ZONE need their offset. Null fits anything. The
    worker's SQL (`decode_sql.type_checks`) applies the same rules.
    """
    from datetime import date, datetime, time as dtime
    import math

    if value is None or declared == VARCHAR:
        return True
    if isinstance(value, (dict, list)):
        return False
    text = value_text(value)
    if declared == BOOLEAN:
        return text in BOOLEAN_TEXTS
    if declared in _INTEGER_RANGE:
        if not re.fullmatch(INTEGER_TEXT, text, re.ASCII):
            return False
        limit = _INTEGER_RANGE[declared]
        return -limit <= int(text) < limit
    parts = decimal_parts(declared)
    if parts is not None:
        if not re.fullmatch(DECIMAL_TEXT, text, re.ASCII):
            return False
        whole, _, fraction = text.lstrip("-").partition(".")
        fraction = fraction.rstrip("0")
        return len(fraction) <= parts[1] and len(whole.lstrip("0")) <= parts[0] - parts[1]
    if declared == DOUBLE:
        return bool(re.fullmatch(DOUBLE_TEXT, text, re.ASCII)) and math.isfinite(float(text))
    try:
        if declared == DATE:
            return bool(_DATE.match(text)) and date.fromisoformat(text) is not None
        if declared == TIME:
            return bool(re.fullmatch(TIME_PATTERN, text, re.ASCII)) and dtime.fromisoformat(text) is not None
        if declared == TIMESTAMP:
            return bool(_TS.match(text)) and datetime.fromisoformat(text) is not None
        if declared == TIMESTAMPTZ:
            return bool(_TSTZ.match(text)) and datetime.fromisoformat(text.replace("Z", "+00:00")) is not None
    except ValueError:
        return False
    return True  # a type the worker does not check (an operator's own): DuckDB's cast decides


def misfit_reason(column: str, value: Any, declared: str) -> str:
    """Why a value is a dead letter: `amount_krw: '1,000원' is not BIGINT`."""
    text = value_text(value) or "null"
    shown = repr(text[:40] + ("…" if len(text) > 40 else "")) if isinstance(value, str) else text[:40]
    hint = " (expected ISO-8601 with a time zone offset)" if declared == TIMESTAMPTZ else ""
    return f"{column}: {shown} is not {declared}{hint}"
