"""Filter operations: one small class per kind, found through `OPS` (Datasette's filters are the model).

A filter is (dimension, op, values as text). Each op says which dimension
kinds it fits, how many values it takes, and how it becomes SQL: the
dimension's expression (built from model identifiers) and `$n` parameters
for the values, which are converted to the dimension's type first and
always bound, never written into the text. A new kind is one class here.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any, Callable, Sequence

from dashboard.dates import parse_period, today_seoul
from dashboard.i18n import SEOUL

Bind = Callable[[Any], str]  # value → "$n", the value appended to the statement's parameters


class FilterValueError(ValueError):
    """A value that does not fit the dimension (a word for a number, a bad date); the message says which."""


def coerce(value: str, kind: str, column_type: str) -> Any:
    """Text from a widget or URL → a value of the dimension's type, for binding."""
    if kind == "number":
        try:
            number = float(value.replace(",", ""))
        except ValueError:
            raise FilterValueError(f"'{value[:40]}' is not a number") from None
        return int(number) if number.is_integer() and "inf" not in value else number
    if kind == "bool":
        if value.lower() in ("true", "1", "yes", "예"):
            return True
        if value.lower() in ("false", "0", "no", "아니오"):
            return False
        raise FilterValueError(f"'{value[:40]}' is not true or false")
    if kind == "time":
        try:
            parsed = datetime.fromisoformat(value) if "T" in value or " " in value.strip() else None
            day = parsed or datetime.combine(date.fromisoformat(value.strip()), time())
        except ValueError:
            raise FilterValueError(f"'{value[:40]}' is not a date like 2026-11-01") from None
        return time_value(day, column_type)
    return value


def time_value(moment: datetime, column_type: str) -> Any:
    """A Seoul wall-clock moment as the column compares: aware for TIMESTAMPTZ, a date for DATE."""
    upper = column_type.upper()
    if upper == "DATE":
        return moment.date()
    if "TIME ZONE" in upper or upper == "TIMESTAMPTZ":
        return moment.replace(tzinfo=SEOUL) if moment.tzinfo is None else moment
    return moment.replace(tzinfo=None)


class FilterOp:
    id: str = ""
    arity: str = "one"  # none | one | two | many
    kinds: tuple[str, ...] = ("text", "number", "time", "bool")

    def sql(self, expr: str, values: Sequence[Any], bind: Bind) -> str:
        raise NotImplementedError

    def convert(self, values: Sequence[str], kind: str, column_type: str) -> list[Any]:
        return [coerce(v, kind, column_type) for v in values]

    def check_count(self, values: Sequence[str]) -> str | None:
        n = len(values)
        if self.arity == "none" and n:
            return "takes no value"
        if self.arity == "one" and n != 1:
            return "takes exactly one value"
        if self.arity == "two" and n != 2:
            return "takes two values (from, to)"
        if self.arity == "many" and n == 0:
            return "needs at least one value"
        return None


class In(FilterOp):
    id, arity = "in", "many"

    def sql(self, expr, values, bind):
        return f"list_contains({bind(list(values))}, {expr})"


class NotIn(FilterOp):
    id, arity = "not_in", "many"

    def sql(self, expr, values, bind):  # rows without a value are kept: they are not any of these
        return f"({expr} IS NULL OR NOT list_contains({bind(list(values))}, {expr}))"


class _Compare(FilterOp):
    symbol = "="

    def sql(self, expr, values, bind):
        return f"{expr} {self.symbol} {bind(values[0])}"


class Equal(_Compare):
    id, symbol = "eq", "="


class NotEqual(FilterOp):
    id = "ne"

    def sql(self, expr, values, bind):
        return f"{expr} IS DISTINCT FROM {bind(values[0])}"


class Less(_Compare):
    id, symbol, kinds = "lt", "<", ("number", "time", "text")


class LessOrEqual(_Compare):
    id, symbol, kinds = "le", "<=", ("number", "time", "text")


class Greater(_Compare):
    id, symbol, kinds = "gt", ">", ("number", "time", "text")


class GreaterOrEqual(_Compare):
    id, symbol, kinds = "ge", ">=", ("number", "time", "text")


class Between(FilterOp):
    """Both ends included."""

    id, arity, kinds = "between", "two", ("number", "time")

    def sql(self, expr, values, bind):
        return f"{expr} BETWEEN {bind(values[0])} AND {bind(values[1])}"


class Contains(FilterOp):
    """Case-insensitive; the typed text is a value, so % and _ are plain characters."""

    id, kinds = "contains", ("text",)

    def sql(self, expr, values, bind):
        return f"contains(lower(CAST({expr} AS VARCHAR)), lower({bind(values[0])}))"


class IsEmpty(FilterOp):
    id, arity = "empty", "none"

    def sql(self, expr, values, bind):
        return f"({expr} IS NULL OR CAST({expr} AS VARCHAR) = '')"


class IsNotEmpty(FilterOp):
    id, arity = "not_empty", "none"

    def sql(self, expr, values, bind):
        return f"({expr} IS NOT NULL AND CAST({expr} AS VARCHAR) <> '')"


class During(FilterOp):
    """A period token from dashboard/dates.py (`last_month`, `2026-10-01..2026-10-31`), in Seoul days."""

    id, kinds = "during", ("time",)

    def convert(self, values, kind, column_type):
        try:
            period = parse_period(values[0], today_seoul())
        except ValueError:
            raise FilterValueError(f"'{values[0][:40]}' is not a period like last_30_days or "
                                   "2026-11-01..2026-11-30") from None
        start = datetime.combine(period.start, time())
        end = datetime.combine(period.end, time())
        from datetime import timedelta
        return [time_value(start, column_type), time_value(end + timedelta(days=1), column_type)]

    def sql(self, expr, values, bind):
        return f"({expr} >= {bind(values[0])} AND {expr} < {bind(values[1])})"


OPS: dict[str, FilterOp] = {op.id: op for op in (
    In(), NotIn(), Equal(), NotEqual(), Less(), LessOrEqual(), Greater(), GreaterOrEqual(), Between(),
    Contains(), IsEmpty(), IsNotEmpty(), During(),
)}

# Measure filters (HAVING): compare a measure's value per group with a number.
MEASURE_OPS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "eq": "=", "ne": "<>"}


def op_label(op_id: str) -> str:
    """The operation's name on screen, in the page's language."""
    from dashboard.i18n import t

    return t("op_" + op_id)


def ops_for(kind: str) -> list[FilterOp]:
    """The operations a dimension of this kind offers, in menu order."""
    return [op for op in OPS.values() if kind in op.kinds]
