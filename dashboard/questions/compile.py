"""The one query compiler: a Question (dashboard/questions/spec.py) → one bound SQL statement per screen element.

- `compile_summary`: measures split by dimensions (and a time grain), with
  measure filters, sort, top N + "others", and value / previous / Δ / Δ% for
  every measure when the question compares periods — all in one statement;
- `compile_rows`: the records behind a number, related dimensions as columns;
- `compile_pivot`: dimensions on rows and columns with row, column and grand
  totals (GROUPING SETS);
- `compile_lookup` / `compile_lookup_search`: one thing's attributes, one
  timeline of every related event in time order, and its events over time.

How a measure is never multiplied: each table's measures are aggregated on
their own table, joined only along many-to-one paths to the dimensions
(LEFT JOIN from that table, so no row is lost or repeated), down to the
question's grain; the per-table results are then stacked (UNION ALL BY NAME)
and grouped once more, so a ratio of two tables (refunds / payments per
merchant) divides two correct totals. Aggregates are kept as re-aggregable
parts (an average is a sum and a count) so "others" and totals over a time
series are computed from parts, never by averaging averages.

Identifiers come only from the model (quoted with `quote`); every value —
filter values, period bounds, N — is a `$n` parameter. Statements read the
`live` schema and run through `Warehouse.query` (cached per data version,
under the per-query time limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from dashboard.i18n import t
from dashboard.model import Label, Measure, Model, ModelError
from dashboard.model.formulas import substitute
from dashboard.model.types import Dimension
from dashboard.questions import periods
from dashboard.questions.filters import MEASURE_OPS, OPS, FilterValueError, coerce, time_value
from dashboard.questions.spec import GRAINS, Question
from dashboard.warehouse import DATA_SCHEMA, TIME_ZONE, quote

OTHERS = Label("기타", "Others")
TIME_COLUMN = "time"
OTHERS_COLUMN = "others"


class QuestionError(ValueError):
    """The question cannot be answered as asked; the message says what to change."""


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


class _Params:
    """Collects values; returns the `$n` placeholder each one is bound to."""

    def __init__(self):
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _name(label: Label) -> str:
    """A label in the language of the page run (for messages)."""
    from dashboard.i18n import lang

    return label.text(lang())


def source(table: str) -> str:
    return f"{quote(DATA_SCHEMA)}.{quote(table)}"


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


class _From:
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


def _filter_sql(model: Model, frm: _From, f, bind: _Params, why: str) -> str:
    dim = model.dimension(f.dimension)
    op = OPS.get(f.op)
    if op is None or dim.kind not in op.kinds:
        raise QuestionError(t("q_op_not_for", op=f.op, dimension=_name(dim.label)))
    problem = op.check_count(f.values)
    if problem:
        raise QuestionError(t("q_bad_value", dimension=_name(dim.label), problem=f"{f.op} {problem}"))
    try:
        values = op.convert(list(f.values), dim.kind, value_type(dim))
    except FilterValueError as exc:
        raise QuestionError(t("q_bad_value", dimension=_name(dim.label), problem=str(exc))) from None
    if f.op in ("in", "not_in") and any(isinstance(v, float) for v in values):
        values = [float(v) for v in values]
    return op.sql(frm.dimension(dim, why), values, bind)


# ─────────────────────────────────────────────────────────── measures ──

_REAGG = {"count": "sum", "sum": "sum", "avg": "sum", "min": "min", "max": "max", "count_distinct": "once", None: "once"}


def _parts(measure: Measure, index: int, when: str | None = None) -> list[tuple[str, str, str]]:
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


def _combine(how: str, expr: str, filt: str = "") -> str:
    if how == "once":  # not re-aggregable: only meaningful where a group has exactly one row
        return f"CASE WHEN count({expr}){filt} <= 1 THEN max({expr}){filt} END"
    return f"{how}({expr}){filt}"


class _Measures:
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
        self.parts = {a.id: _parts(a, i) for i, a in enumerate(self.atoms)}

    def tables(self) -> list[str]:
        return list(dict.fromkeys(a.table for a in self.atoms))

    def parts_of(self, table: str, when: str | None = None) -> list[tuple[str, str, str]]:
        return [p for i, a in enumerate(self.atoms) if a.table == table for p in _parts(a, i, when)]

    def filterable(self) -> bool:
        """Every part can take a FILTER clause (free `sql` measures cannot)."""
        return all(a.sql is None for a in self.atoms)

    def all_parts(self) -> list[tuple[str, str, str]]:
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


# ──────────────────────────────────────────────────────────── summary ──


def _time_of(model: Model, q: Question, frm: _From, table: str) -> tuple[str, str]:
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


def _measure_columns(model: Model, q: Question) -> list[Column]:
    cols = []
    for mid in q.measures:
        m = model.measure(mid)
        cols.append(Column(mid, "measure", m.label, m.format, source=mid))
        if q.compare != "none":
            cols.append(Column(f"{mid}__previous", "previous",
                               Label(f"{m.label.ko} (이전 기간)", f"{m.label.en} (previous)"), m.format, source=mid))
            cols.append(Column(f"{mid}__delta", "delta", Label(f"{m.label.ko} 증감", f"{m.label.en} Δ"),
                               m.format, source=mid))
            cols.append(Column(f"{mid}__delta_pct", "delta_pct",
                               Label(f"{m.label.ko} 증감률(%)", f"{m.label.en} Δ%"), "pct", source=mid))
    return cols


def compile_summary(model: Model, q: Question) -> Compiled:
    """Measures per group: one statement for the table and the chart of a question."""
    if not q.measures:
        raise QuestionError(t("q_need_measure"))
    if q.compare != "none" and not q.period:
        raise QuestionError(t("q_need_period"))
    if q.grain is not None and q.grain not in GRAINS:
        raise QuestionError(f"time grain '{q.grain}' is unknown — use one of: {', '.join(GRAINS)}")
    bind = _Params()
    dims = [model.dimension(d) for d in q.dimensions]
    sort_measure = q.sort if q.sort in q.measures else q.measures[0]
    ms = _Measures(model, list(q.measures) + [f.measure for f in q.measure_filters] + [sort_measure])
    win = periods.windows(q.period, q.compare) if q.period else None
    compare = win is not None and win.previous is not None
    dcols = [f"__d{i}" for i in range(len(dims))]
    tcol = ["__t"] if q.grain else []
    by_filter = ms.filterable()

    ctes = []
    for i, table in enumerate(ms.tables()):
        frm = _From(model, table)
        why = f"measures of {table}"
        select = ["t0.*"] + [f"{frm.dimension(d, why)} AS {c}" for d, c in zip(dims, dcols)]
        where = [_filter_sql(model, frm, f, bind, why) for f in q.filters]
        if win or q.grain:
            ts, ts_type = _time_of(model, q, frm, table)
            in_current = "TRUE"
            if win:
                cur = win.current
                in_current = (f"({ts} >= {bind(time_value(cur.start, ts_type))} "
                              f"AND {ts} < {bind(time_value(cur.end, ts_type))})")
                ranges = [in_current]
                if compare and win.previous.end == cur.start:
                    # adjoining windows: one range, so DuckDB can skip row groups by their min/max
                    ranges = [f"({ts} >= {bind(time_value(win.previous.start, ts_type))} "
                              f"AND {ts} < {bind(time_value(cur.end, ts_type))})"]
                elif compare:
                    prev = win.previous
                    ranges.append(f"({ts} >= {bind(time_value(prev.start, ts_type))} "
                                  f"AND {ts} < {bind(time_value(prev.end, ts_type))})")
                where.append("(" + " OR ".join(ranges) + ")")
            select.append(f"{in_current} AS __cur")
            if q.grain:
                loc = local_time(ts, ts_type)
                if compare:
                    shift = (f"to_days(CAST({bind(win.shift_days)} AS INTEGER))" if win.shift_days
                             else f"to_years(CAST({bind(win.shift_years)} AS INTEGER))")
                    loc = f"(CASE WHEN {in_current} THEN {loc} ELSE {loc} + {shift} END)"
                bucket = f"date_trunc('{q.grain}', {loc})"
                select.append(f"{bucket} AS __t" if q.grain == "hour" else f"CAST({bucket} AS DATE) AS __t")
        # Both windows in one scan: each part twice, FILTERed to its window (current / previous);
        # free `sql` measures cannot take a FILTER, so then the window becomes a grouping key instead.
        keys = dcols + tcol
        if not compare:
            parts = [f"{expr} AS {name}__c" for name, expr, _ in ms.parts_of(table)]
        elif by_filter:
            parts = [f"{expr} AS {name}__{w}" for w, cond in (("c", "__cur"), ("p", "NOT __cur"))
                     for name, expr, _ in ms.parts_of(table, cond)]
        else:
            keys = keys + ["__cur"]
            parts = [f"{expr} AS {name}" for name, expr, _ in ms.parts_of(table)]
        inner = f"SELECT {', '.join(select)} FROM {frm.sql()}" + (f" WHERE {' AND '.join(where)}" if where else "")
        ctes.append(f"s{i} AS (SELECT {', '.join(keys + parts)} FROM ({inner}) AS b GROUP BY ALL)")

    stacked = " UNION ALL BY NAME ".join(f"SELECT * FROM s{i}" for i in range(len(ctes)))
    windows = ["c", "p"] if compare else ["c"]
    if compare and not by_filter:
        grain_parts = ", ".join(_combine(how, name, f" FILTER (WHERE {'' if w == 'c' else 'NOT '}__cur)")
                                + f" AS {name}__{w}" for name, _, how in ms.all_parts() for w in windows)
    else:
        grain_parts = ", ".join(_combine(how, f"{name}__{w}") + f" AS {name}__{w}"
                                for name, _, how in ms.all_parts() for w in windows)
    group = ", ".join(dcols + tcol)
    ctes.append(f"grain AS (SELECT {group + ', ' if group else ''}{grain_parts} FROM ({stacked}) AS u"
                + (f" GROUP BY {group})" if group else ")"))

    final = "grain"
    others_expr = "FALSE"
    if dims and (q.top or q.measure_filters):
        for mid in [f.measure for f in q.measure_filters] + [sort_measure]:
            if q.grain and ms.once(mid):
                raise QuestionError(t("q_not_additive", measure=_name(model.measure(mid).label)))
        rank_source = "grain"
        if q.grain:
            totals = ", ".join(_combine(how, f"{name}__c") + f" AS {name}__c" for name, _, how in ms.all_parts())
            ctes.append(f"totals AS (SELECT {', '.join(dcols)}, {totals} FROM grain GROUP BY {', '.join(dcols)})")
            rank_source = "totals"
        current = lambda part: f"{part}__c"  # noqa: E731
        having = [f"({ms.value(f.measure, current)}) {MEASURE_OPS[f.op]} {bind(f.value)}" for f in q.measure_filters]
        direction = "DESC" if (q.descending or q.sort not in q.measures) else "ASC"
        ctes.append(f"ranked AS (SELECT {', '.join(dcols)}, row_number() OVER (ORDER BY "
                    f"{ms.value(sort_measure, current)} {direction} NULLS LAST, {', '.join(dcols)}) AS __rn "
                    f"FROM {rank_source}" + (f" WHERE {' AND '.join(having)})" if having else ")"))
        match = " AND ".join(f"g.{c} IS NOT DISTINCT FROM r.{c}" for c in dcols)
        if q.top:
            n = bind(q.top)
            keep = ", ".join(f"CASE WHEN r.__rn <= {n} THEN g.{c} END AS {c}" for c in dcols)
            combined = ", ".join(_combine(how, f"g.{name}__{w}") + f" AS {name}__{w}"
                                 for name, _, how in ms.all_parts() for w in windows)
            time_key = ", g.__t" if q.grain else ""
            ctes.append(f"topped AS (SELECT {keep}{time_key}, r.__rn > {n} AS __others, {combined} "
                        f"FROM grain AS g JOIN ranked AS r ON {match} GROUP BY ALL)")
            final, others_expr = "topped", "__others"
        else:
            ctes.append(f"kept AS (SELECT g.* FROM grain AS g SEMI JOIN ranked AS r ON {match})")
            final = "kept"

    out, columns = [], []
    for dim, c in zip(dims, dcols):
        out.append(f"{c} AS {quote(dim.id)}")
        columns.append(Column(dim.id, "dimension", dim.label, None, dim.values, source=dim.id))
    if q.grain:
        out.append(f"__t AS {quote(TIME_COLUMN)}")
        columns.append(Column(TIME_COLUMN, "time", Label("기간", "Period"), q.grain))
    out.append(f"{others_expr} AS {quote(OTHERS_COLUMN)}")
    columns.append(Column(OTHERS_COLUMN, "others", OTHERS))
    for mid in q.measures:
        cur = ms.value(mid, lambda part: f"{part}__c")
        out.append(f"CAST({cur} AS DOUBLE) AS {quote(mid)}")
        if compare:
            prev = ms.value(mid, lambda part: f"{part}__p")
            out.append(f"CAST({prev} AS DOUBLE) AS {quote(mid + '__previous')}")
            out.append(f"CAST(({cur}) - ({prev}) AS DOUBLE) AS {quote(mid + '__delta')}")
            out.append(f"CAST(100.0 * (({cur}) - ({prev})) / nullif(abs({prev}), 0) AS DOUBLE) "
                       f"AS {quote(mid + '__delta_pct')}")
    columns += [c for c in _measure_columns(model, q) if compare or c.kind == "measure"]

    order = [quote(OTHERS_COLUMN)] if others_expr != "FALSE" else []
    if q.grain:
        order.append("__t")
    if q.sort in q.dimensions:
        c = dcols[q.dimensions.index(q.sort)]
        order.append(f"{c} {'DESC' if q.descending else 'ASC'} NULLS LAST")
    else:
        order.append(f"{quote(sort_measure) if sort_measure in q.measures else ms.value(sort_measure, lambda p: p + '__c')}"
                     f" {'DESC' if q.descending else 'ASC'} NULLS LAST")
    order += dcols
    sql = "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(out)} FROM {final} ORDER BY {', '.join(order)}"
    return Compiled(sql, tuple(bind.values), tuple(columns))


def _column_label(model: Model, table: str, column: str) -> tuple[Label, Mapping[str, Label]]:
    dim = model.tables[table].dimensions.get(column)
    if dim is not None and dim.derive is None:
        return dim.label, dim.values
    return Label(column, column), {}


def _current_window(model: Model, q: Question, frm: _From, bind: _Params) -> list[str]:
    if not q.period:
        return []
    win = periods.windows(q.period, "none")
    ts, ts_type = _time_of(model, q, frm, q.base)
    return [f"{ts} >= {bind(time_value(win.current.start, ts_type))}",
            f"{ts} < {bind(time_value(win.current.end, ts_type))}"]


# ─────────────────────────────────────────────────────────────── rows ──


def compile_rows(model: Model, q: Question, limit: int) -> Compiled:
    """The base table's records behind a question's numbers (its filters and period), newest first,
    with the question's dimensions from related tables as extra columns."""
    bind = _Params()
    frm = _From(model, q.base)
    table = model.tables[q.base]
    why = f"rows of {q.base}"
    shown = [name for name, _ in table.columns if not name.startswith("_")]  # not the landing's bookkeeping
    select = [f"t0.{quote(name)} AS {quote(name)}" for name in shown]
    columns = [Column(name, "column", *_column_label(model, q.base, name), source=f"{q.base}.{name}")
               for name in shown]
    related = list(q.dimensions) + [f.dimension for f in q.filters]
    for dim_id in dict.fromkeys(related):
        dim = model.dimension(dim_id)
        if dim.table == q.base and dim.derive is None:
            continue
        select.append(f"{frm.dimension(dim, why)} AS {quote(dim.id)}")
        columns.append(Column(dim.id, "dimension", dim.label, None, dim.values, source=dim.id))
    where = [_filter_sql(model, frm, f, bind, why) for f in q.filters] + _current_window(model, q, frm, bind)
    order = [f"t0.{quote(table.time)} DESC NULLS LAST"] if table.time else []
    order += [f"t0.{quote(k)}" for k in table.primary_key if table.column_type(k)]
    sql = (f"SELECT {', '.join(select)} FROM {frm.sql()}" + (f" WHERE {' AND '.join(where)}" if where else "")
           + (f" ORDER BY {', '.join(order)}" if order else "") + f" LIMIT {bind(int(limit))}")
    return Compiled(sql, tuple(bind.values), tuple(columns))


# ────────────────────────────────────────────────────────────── pivot ──


def compile_pivot(model: Model, q: Question, row_dims: list[str] | tuple[str, ...],
                  col_dims: list[str] | tuple[str, ...]) -> Compiled:
    """Measures per (row, column) cell, plus row totals, column totals and the grand total, in long form.

    `all_columns` marks a row's total (the column dimensions rolled up),
    `all_rows` a column's total, both the grand total. The page pivots the
    long form; totals are aggregated from the data, never summed from cells
    (a distinct count or a ratio does not add up).
    """
    if not q.measures:
        raise QuestionError(t("q_need_measure"))
    if not row_dims and not col_dims:
        raise QuestionError(t("q_pivot_needs_dimension"))
    bind = _Params()
    row = [model.dimension(d) for d in row_dims]
    col = [model.dimension(d) for d in col_dims]
    dims = row + col
    rcols = [f"__d{i}" for i in range(len(row))]
    ccols = [f"__d{i}" for i in range(len(row), len(dims))]
    ms = _Measures(model, list(q.measures))
    sets = [rcols + ccols, rcols, ccols, []]
    grouping = "GROUPING SETS (" + ", ".join("(" + ", ".join(s) + ")" for s in sets) + ")"
    flags = [f"{'grouping(' + ', '.join(ccols) + ') > 0' if ccols else 'FALSE'} AS __all_columns",
             f"{'grouping(' + ', '.join(rcols) + ') > 0' if rcols else 'FALSE'} AS __all_rows"]
    ctes = []
    for i, table in enumerate(ms.tables()):
        frm = _From(model, table)
        why = f"measures of {table}"
        select = ["t0.*"] + [f"{frm.dimension(d, why)} AS {c}" for d, c in zip(dims, rcols + ccols)]
        where = [_filter_sql(model, frm, f, bind, why) for f in q.filters]
        if q.period:
            win = periods.windows(q.period, "none")
            ts, ts_type = _time_of(model, q, frm, table)
            where += [f"{ts} >= {bind(time_value(win.current.start, ts_type))}",
                      f"{ts} < {bind(time_value(win.current.end, ts_type))}"]
        parts = ", ".join(f"{expr} AS {name}" for name, expr, _ in ms.parts_of(table))
        inner = f"SELECT {', '.join(select)} FROM {frm.sql()}" + (f" WHERE {' AND '.join(where)}" if where else "")
        ctes.append(f"s{i} AS (SELECT {', '.join(rcols + ccols)}, {', '.join(flags)}, {parts} "
                    f"FROM ({inner}) AS b GROUP BY {grouping})")
    stacked = " UNION ALL BY NAME ".join(f"SELECT * FROM s{i}" for i in range(len(ctes)))
    keys = rcols + ccols + ["__all_columns", "__all_rows"]
    combined = ", ".join(_combine(how, name) + f" AS {name}" for name, _, how in ms.all_parts())
    ctes.append(f"cells AS (SELECT {', '.join(keys)}, {combined} FROM ({stacked}) AS u GROUP BY {', '.join(keys)})")
    out = [f"{c} AS {quote(d.id)}" for d, c in zip(dims, rcols + ccols)]
    columns = [Column(d.id, "dimension", d.label, None, d.values, source=d.id) for d in dims]
    out += ["__all_columns AS all_columns", "__all_rows AS all_rows"]
    columns += [Column("all_columns", "flag", Label("행 합계", "Row total")),
                Column("all_rows", "flag", Label("열 합계", "Column total"))]
    for mid in q.measures:
        m = model.measure(mid)
        out.append(f"CAST({ms.value(mid, lambda p: p)} AS DOUBLE) AS {quote(mid)}")
        columns.append(Column(mid, "measure", m.label, m.format, source=mid))
    order = ["__all_rows", *(f"{c} NULLS LAST" for c in rcols), "__all_columns", *(f"{c} NULLS LAST" for c in ccols)]
    sql = "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(out)} FROM cells ORDER BY {', '.join(order)}"
    return Compiled(sql, tuple(bind.values), tuple(columns))


# ───────────────────────────────────────────────────────────── lookup ──


def _key_value(model: Model, table: str, key: str) -> tuple[str, Any]:
    tm = model.tables[table]
    if len(tm.primary_key) != 1 or not tm.column_type(tm.primary_key[0]):
        raise QuestionError(f"{table} has no single-column key to look up by — pick another table")
    column = tm.primary_key[0]
    ctype = tm.column_type(column)
    from dashboard.warehouse import column_kind
    try:
        return column, coerce(str(key).strip(), column_kind(ctype), ctype)
    except FilterValueError as exc:
        raise QuestionError(t("q_bad_key", value=str(key)[:40], table=_name(tm.label))) from None


def compile_lookup(model: Model, table: str, key: str) -> Lookup:
    """One thing (a card, a merchant…): its row, one timeline of every event pointing at it, its events per month.

    The timeline is the union of the rows of every table with a relationship
    straight to `table` (a card's payments, top-ups and refunds), each with
    its table name, id, time, amount and the whole row as JSON, in time order.
    """
    model.table(table)
    column, value = _key_value(model, table, key)
    bind = _Params()
    k = bind(value)
    tm = model.tables[table]
    attributes = Compiled(
        f"SELECT {', '.join('t0.' + quote(c) + ' AS ' + quote(c) for c, _ in tm.columns)} "
        f"FROM {source(table)} AS t0 WHERE t0.{quote(column)} = {k}",
        tuple(bind.values),
        tuple(Column(c, "column", *_column_label(model, table, c), source=f"{table}.{c}") for c, _ in tm.columns),
    )
    branches = []
    tbind = _Params()
    tk = tbind(value)
    for rel in model.related_event_tables(table):
        events = model.tables[rel.table]
        if events.time is None or len(events.primary_key) != 1:
            continue
        amount = f"CAST(e.{quote(events.amount)} AS DOUBLE)" if events.amount else "CAST(NULL AS DOUBLE)"
        branches.append(
            f"SELECT {tbind(rel.table)} AS source, {tbind(rel.name)} AS via, "
            f"CAST(e.{quote(events.primary_key[0])} AS VARCHAR) AS id, "
            f"CAST(e.{quote(events.time)} AS TIMESTAMPTZ) AS happened_at, {amount} AS amount, "
            f"CAST(to_json(e) AS VARCHAR) AS details FROM {source(rel.table)} AS e WHERE e.{quote(rel.column)} = {tk}")
    if not branches:
        raise QuestionError(t("q_no_timeline", table=_name(tm.label)))
    union = " UNION ALL ".join(branches)
    timeline_columns = (Column("source", "dimension", Label("구분", "Kind"),
                               values={t: model.tables[t].label for t in model.tables}),
                        Column("via", "dimension", Label("연결", "Via")),
                        Column("id", "dimension", Label("번호", "Id")),
                        Column("happened_at", "time", Label("시각", "Time")),
                        Column("amount", "measure", Label("금액(원)", "Amount (KRW)"), "krw"),
                        Column("details", "column", Label("상세", "Details")))
    timeline = Compiled(f"SELECT * FROM ({union}) AS tl ORDER BY happened_at, source, id", tuple(tbind.values),
                        timeline_columns)
    over_time = Compiled(
        f"SELECT source, CAST(date_trunc('month', timezone('{TIME_ZONE}', happened_at)) AS DATE) AS month, "
        f"count(*) AS events, sum(amount) AS amount FROM ({union}) AS tl GROUP BY ALL ORDER BY month, source",
        tuple(tbind.values),
        (timeline_columns[0], Column("month", "time", Label("월", "Month"), "month"),
         Column("events", "measure", Label("건수", "Events"), "number"),
         Column("amount", "measure", Label("금액(원)", "Amount (KRW)"), "krw")),
    )
    return Lookup(attributes, timeline, over_time)


def compile_lookup_search(model: Model, table: str, text: str, limit: int = 20) -> Compiled:
    """Candidates for a lookup: the key equal to `text`, or a search column (e.g. merchant_name) containing it."""
    tm = model.table(table)
    if len(tm.primary_key) != 1:
        raise QuestionError(f"{table} has no single-column key to look up by — pick another table")
    bind = _Params()
    key = tm.primary_key[0]
    t = bind(str(text).strip())
    conditions = [f"CAST(t0.{quote(key)} AS VARCHAR) = {t}"]
    conditions += [f"contains(lower(CAST(t0.{quote(c)} AS VARCHAR)), lower({t}))" for c in tm.search]
    cols = [key] + [c for c in tm.search if c != key]
    sql = (f"SELECT {', '.join('t0.' + quote(c) + ' AS ' + quote(c) for c in cols)} FROM {source(table)} AS t0 "
           f"WHERE {' OR '.join(conditions)} ORDER BY t0.{quote(key)} LIMIT {bind(int(limit))}")
    return Compiled(sql, tuple(bind.values),
                    tuple(Column(c, "column", *_column_label(model, table, c)) for c in cols))
