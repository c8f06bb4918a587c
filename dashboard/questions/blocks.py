"""The building blocks every compiled statement shares (dashboard/questions/compile.py, lookup.py).

Output columns (`Column`, `Compiled`), `$n` parameters (`Params`), the FROM
clause with its many-to-one LEFT JOINs (`FromClause`), dimension and filter
expressions, and measures kept as re-aggregable parts (`MeasureParts`).
Identifiers come only from the model and are quoted; values only ever go
through `Params`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from dashboard.i18n import t
from dashboard.model import Label, Measure, Model, ModelError
from dashboard.model.formulas import substitute
from dashboard.model.types import Dimension
from dashboard.questions.filters import OPS, FilterValueError
from dashboard.warehouse import TIME_ZONE, quote

OTHERS = Label("기타", "Others")
TIME_COLUMN = "time"
OTHERS_COLUMN = "others"


class QuestionError(ValueError):
    """The question cannot be answered as asked; the message says what to change."""


def answers(compile_fn):
    """Pages catch one error: an id the model lacks (ModelError) becomes a QuestionError with the same message."""

    @functools.wraps(compile_fn)
    def wrapper(*args, **kwargs):
        try:
            return compile_fn(*args, **kwargs)
        except ModelError as exc:
            raise QuestionError(str(exc)) from None
    return wrapper


@dataclass(frozen=True)
class Column:
    """One output column: what it is, what to call it, how to show its numbers and codes."""

    id: str
    kind: str  # dimension | time | others | measure | previous | delta | delta_pct | column | flag
    label: Label
    format: str | None = None
    values: Mapping[str, Label] = field(default_factory=dict)
    source: str | None = None  # the measure or dimension id it comes from

    def title(self, lang: str) -> str:
        return self.label.text(lang)

    def value_label(self, value: Any, lang: str) -> str | None:
        if not self.values or value is None:
            return None
        key = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        label = self.values.get(key)
        return label.text(lang) if label else None


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple
    columns: tuple[Column, ...]

    def run(self, warehouse):
        """The result as a DataFrame, through the warehouse's cache and time limit."""
        return warehouse.query(self.sql, self.params)


@dataclass(frozen=True)
class Lookup:
    attributes: Compiled
    timeline: Compiled
    over_time: Compiled


class Params:
    """Collects values; returns the `$n` placeholder each one is bound to."""

    def __init__(self):
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def label_text(label: Label) -> str:
    """A label in the language of the page run (for messages)."""
    from dashboard.i18n import lang

    return label.text(lang())


def source(table: str) -> str:
    """A table named plainly: `live` through the search path, or the role's own version of it
    (dashboard/access/enforce.py) when the person has access rules."""
    return quote(table)


# ─────────────────────────────────────────────────────── expressions ──


def _has_zone(column_type: str) -> bool:
    upper = column_type.upper()
    return "TIME ZONE" in upper or upper == "TIMESTAMPTZ"


def local_time(expr: str, column_type: str) -> str:
    """Seoul wall-clock time of a column (weekday, hour and day are Seoul's, whatever the session zone)."""
    return f"timezone('{TIME_ZONE}', {expr})" if _has_zone(column_type) else expr


def _number(x: float) -> str:
    return repr(float(x))


def dimension_sql(dim: Dimension, alias: str) -> str:
    col = f"{alias}.{quote(dim.column)}"
    if dim.derive is None:
        return col
    loc = local_time(col, dim.column_type)
    simple = {"weekday": f"isodow({loc})", "hour": f"hour({loc})", "day": f"CAST({loc} AS DATE)",
              "week": f"CAST(date_trunc('week', {loc}) AS DATE)", "month": f"CAST(date_trunc('month', {loc}) AS DATE)",
              "month_of_year": f"month({loc})", "year": f"year({loc})"}
    if dim.derive in simple:
        return simple[dim.derive]
    # bins: the code of a value is its bin's lower bound; below the first bound is -inf
    cases = [f"WHEN {col} < {_number(dim.bins[0])} THEN CAST('-inf' AS DOUBLE)"]
    cases += [f"WHEN {col} < {_number(hi)} THEN {_number(lo)}" for lo, hi in zip(dim.bins, dim.bins[1:])]
    return f"CASE WHEN {col} IS NULL THEN NULL {' '.join(cases)} ELSE {_number(dim.bins[-1])} END"


def value_type(dim: Dimension) -> str:
    """The type of the values a dimension produces (what a filter value is converted to)."""
    if dim.derive in ("day", "week", "month"):
        return "DATE"
    if dim.derive is not None:
        return "DOUBLE"
    return dim.column_type


class FromClause:
    """`live.<table> AS t0` and the LEFT JOINs its dimensions need, each path joined once."""

    def __init__(self, model: Model, table: str):
        self.model, self.table = model, table
        self.aliases: dict[tuple[str, ...], str] = {(): "t0"}
        self.joins: list[str] = []

    def alias(self, table: str, why: str) -> str:
        try:
            path = self.model.path(self.table, table)
        except ModelError as exc:
            raise QuestionError(t("q_cannot_reach", what=why, reason=str(exc))) from None
        key: tuple[str, ...] = ()
        alias = "t0"
        for rel in path:
            parent, key = alias, key + (rel.id,)
            if key not in self.aliases:
                self.aliases[key] = f"t{len(self.aliases)}"
                self.joins.append(f"LEFT JOIN {source(rel.to_table)} AS {self.aliases[key]} "
                                  f"ON {self.aliases[key]}.{quote(rel.to_column)} = {parent}.{quote(rel.column)}")
            alias = self.aliases[key]
        return alias

    def dimension(self, dim: Dimension, why: str) -> str:
        return dimension_sql(dim, self.alias(dim.table, why))

    def sql(self) -> str:
        return " ".join([f"{source(self.table)} AS t0", *self.joins])


def filter_sql(model: Model, frm: FromClause, f, bind: Params, why: str) -> str:
    dim = model.dimension(f.dimension)
    op = OPS.get(f.op)
    if op is None or dim.kind not in op.kinds:
        raise QuestionError(t("q_op_not_for", op=f.op, dimension=label_text(dim.label)))
    problem = op.check_count(f.values)
    if problem:
        raise QuestionError(t("q_bad_value", dimension=label_text(dim.label), problem=f"{f.op} {problem}"))
    try:
        values = op.convert(list(f.values), dim.kind, value_type(dim))
    except FilterValueError as exc:
        raise QuestionError(t("q_bad_value", dimension=label_text(dim.label), problem=str(exc))) from None
    if f.op in ("in", "not_in") and any(isinstance(v, float) for v in values):
        values = [float(v) for v in values]
    return op.sql(frm.dimension(dim, why), values, bind)


# ─────────────────────────────────────────────────────────── measures ──

_REAGG = {"count": "sum", "sum": "sum", "avg": "sum", "min": "min", "max": "max", "count_distinct": "once", None: "once"}


def measure_parts(measure: Measure, index: int, when: str | None = None) -> list[tuple[str, str, str]]:
    """(part column, aggregate SQL over the table's own columns, how parts of groups combine).

    `when` limits the aggregate to some rows (the current or the previous
    window), on top of the measure's own `where`.
    """
    col = quote(measure.column) if measure.column else None
    conditions = [c for c in (when, f"({measure.where})" if measure.where else None) if c]
    filt = f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
    name = f"p{index}"
    if measure.sql is not None:
        return [(name, measure.sql, "once")]
    if measure.agg == "count":
        return [(name, f"count({col or '*'}){filt}", "sum")]
    if measure.agg == "avg":
        return [(name + "s", f"sum({col}){filt}", "sum"), (name + "n", f"count({col}){filt}", "sum")]
    if measure.agg == "count_distinct":
        return [(name, f"count(DISTINCT {col}){filt}", "once")]
    return [(name, f"{measure.agg}({col}){filt}", _REAGG[measure.agg])]


def combine(how: str, expr: str, filt: str = "") -> str:
    if how == "once":  # not re-aggregable: only meaningful where a group has exactly one row
        return f"CASE WHEN count({expr}){filt} <= 1 THEN max({expr}){filt} END"
    return f"{how}({expr}){filt}"


class MeasureParts:
    """The atomic measures a question needs, their part columns, and measure values as SQL over parts."""

    def __init__(self, model: Model, measure_ids: list[str]):
        self.model = model
        self.atoms: list[Measure] = []
        for mid in measure_ids:
            try:
                atoms = model.atomic_measures(mid)
            except ModelError as exc:
                raise QuestionError(str(exc)) from None
            for atom in atoms:
                if atom not in self.atoms:
                    self.atoms.append(atom)
        self.parts = {a.id: measure_parts(a, i) for i, a in enumerate(self.atoms)}

    def tables(self) -> list[str]:
        return list(dict.fromkeys(a.table for a in self.atoms))

    def parts_of(self, table: str, when: str | None = None) -> list[tuple[str, str, str]]:
        return [p for i, a in enumerate(self.atoms) if a.table == table for p in measure_parts(a, i, when)]

    def filterable(self) -> bool:
        """Every part can take a FILTER clause (free `sql` measures cannot)."""
        return all(a.sql is None for a in self.atoms)

    def allmeasure_parts(self) -> list[tuple[str, str, str]]:
        return [p for a in self.atoms for p in self.parts[a.id]]

    def once(self, measure_id: str) -> bool:
        return any(how == "once" for a in self.model.atomic_measures(measure_id) for _, _, how in self.parts[a.id])

    def value(self, measure_id: str, col: Callable[[str], str], _depth: int = 0) -> str:
        measure = self.model.measure(measure_id)
        if measure.is_formula:
            return substitute(measure.formula, lambda ref: f"({self.value(ref, col, _depth + 1)})")
        parts = [name for name, _, _ in self.parts[measure.id]]
        if measure.agg == "avg":
            return f"{col(parts[0])} / nullif({col(parts[1])}, 0)"
        if measure.agg in ("count", "sum"):
            return f"coalesce({col(parts[0])}, 0)"
        return col(parts[0])



def time_column(model: Model, q, frm: FromClause, table: str) -> tuple[str, str]:
    """The time column a table's rows are placed in time by: the question's, when reachable, else its own."""
    if q.time:
        dim = model.dimension(q.time)
        home, column, column_type = dim.table, dim.column, dim.column_type
    else:  # the base table's own time column
        home, column = q.base, model.tables[q.base].time
        column_type = model.tables[q.base].column_type(column) if column else None
    if column and column_type and model.reaches(table, home):
        alias = frm.alias(home, "time column")
        return f"{alias}.{quote(column)}", column_type
    own = model.tables[table].time
    if own is None:
        raise QuestionError(t("q_no_time", table=table))
    return f"t0.{quote(own)}", model.tables[table].column_type(own) or "TIMESTAMP WITH TIME ZONE"


def column_label(model: Model, table: str, column: str) -> tuple[Label, Mapping[str, Label]]:
    dim = model.tables[table].dimensions.get(column)
    if dim is not None and dim.derive is None:
        return dim.label, dim.values
    return Label(column, column), {}
