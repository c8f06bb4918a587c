"""What a data model is made of: tables, many-to-one relationships, measures, dimensions.

Pure data, built by dashboard/model/files.py (model files) and
dashboard/model/derive.py (tables nobody modelled). Every identifier in
here was checked against the warehouse catalog before it got in, so the
query compiler may quote it into SQL; values never live here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

LANGS = ("ko", "en")


@dataclass(frozen=True)
class Label:
    """A name in both languages; `Label.parse("결제 건수 / Payments")` splits the pipeline.toml way."""

    ko: str
    en: str

    @classmethod
    def parse(cls, value: object, fallback: str) -> "Label":
        if isinstance(value, Mapping):
            ko = str(value.get("ko") or value.get("en") or fallback)
            return cls(ko, str(value.get("en") or ko))
        if isinstance(value, str) and value.strip():
            if " / " in value:
                ko, en = value.split(" / ", 1)
                return cls(ko.strip(), en.strip())
            return cls(value.strip(), value.strip())
        return cls(fallback, fallback)

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.ko

    def __call__(self, lang: str) -> str:
        """`column.label("ko")`: the same as `text`."""
        return self.text(lang)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a model file: where (file, key) and what to do about it."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.key}] {self.message}"


@dataclass(frozen=True)
class Relationship:
    """`table.column` → `to_table.to_column`, where `to_column` is `to_table`'s key: many rows to one."""

    name: str
    table: str
    column: str
    to_table: str
    to_column: str

    @property
    def id(self) -> str:
        return f"{self.table}.{self.name}"

    def describe(self) -> str:
        return f"{self.table}.{self.column} → {self.to_table}.{self.to_column}"


DERIVATIONS = ("weekday", "hour", "day", "week", "month", "month_of_year", "year", "bins")


@dataclass(frozen=True)
class Dimension:
    """A way to split a measure: a column as it is, or derived from one (weekday, hour, bins…)."""

    table: str
    name: str
    column: str
    column_type: str
    label: Label
    kind: str  # time | number | text | bool — of the values this dimension produces
    derive: str | None = None
    bins: tuple[float, ...] = ()
    values: Mapping[str, Label] = field(default_factory=dict)  # code → words; keys are str(value)

    @property
    def id(self) -> str:
        return f"{self.table}.{self.name}"

    def value_label(self, value: object, lang: str) -> str | None:
        """The words for a stored value, or None when the model has none for it."""
        key = _value_key(value)
        label = self.values.get(key)
        return label.text(lang) if label else None


def _value_key(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


FORMATS = ("number", "krw", "pct", "decimal")
AGGREGATIONS = ("count", "sum", "avg", "min", "max", "count_distinct")


@dataclass(frozen=True)
class Measure:
    """A number to compute per group.

    Either an aggregation of one table (`agg` over `column`, optionally only
    rows matching `where`), a free aggregate expression (`sql`), or a formula
    over other measures (`formula` with `{table.measure}` references, which
    may live in other tables: the compiler aggregates each table on its own
    and joins the results, so nothing is multiplied).
    """

    table: str
    name: str
    label: Label
    format: str = "number"
    agg: str | None = None
    column: str | None = None
    where: str | None = None
    sql: str | None = None
    formula: str | None = None
    refs: tuple[str, ...] = ()
    description: Label | None = None

    @property
    def id(self) -> str:
        return f"{self.table}.{self.name}"

    @property
    def is_formula(self) -> bool:
        return self.formula is not None


@dataclass(frozen=True)
class TableModel:
    name: str
    label: Label
    primary_key: tuple[str, ...]
    time: str | None  # the default time column (period filters, "over time")
    amount: str | None  # the column a lookup timeline shows as the amount
    search: tuple[str, ...]  # text columns a lookup may search by
    relationships: Mapping[str, Relationship]
    measures: Mapping[str, Measure]
    dimensions: Mapping[str, Dimension]
    source: str  # the model file, or "catalog" for a derived model
    columns: tuple[tuple[str, str], ...] = ()  # (name, DuckDB type) of every column, hidden ones too

    def column_type(self, name: str) -> str | None:
        return next((t for c, t in self.columns if c == name), None)
