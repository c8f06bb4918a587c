"""The one query compiler: a Question (dashboard/questions/spec.py) → one bound SQL statement per screen element.

- `compile_summary`: measures split by dimensions (and a time grain), with
  measure filters, sort, top N + "others", and value / previous / Δ / Δ% for
  every measure when the question compares periods — all in one statement;
- `compile_rows`: the records behind a number, related dimensions as columns;
- `compile_pivot`: dimensions on rows and columns with row, column and grand
  totals (GROUPING SETS);
- `compile_lookup` / `compile_lookup_search` (dashboard/questions/lookup.py):
  one thing's attributes, one timeline of every related event in time order,
  and its events over time.

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

from dashboard.i18n import t
from dashboard.model import Label, Model
from dashboard.questions import periods
# Column, Compiled, Lookup, QuestionError… are imported from here by pages: one import for the compiler.
from dashboard.questions.blocks import (OTHERS, OTHERS_COLUMN, TIME_COLUMN, Column, Compiled, FromClause,  # noqa: F401
                                        Lookup, MeasureParts, Params, QuestionError, answers, column_label, combine,
                                        filter_sql, label_text, local_time, time_column)
from dashboard.questions.filters import MEASURE_OPS, time_value
from dashboard.questions.lookup import compile_lookup, compile_lookup_search  # noqa: F401  (one import for pages)
from dashboard.questions.spec import GRAINS, Question
from dashboard.warehouse import quote


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


@answers
def compile_summary(model: Model, q: Question) -> Compiled:
    """Measures per group: one statement for the table and the chart of a question.

    CTEs, in order: `s<i>` aggregates each table's measures to the groups
    (both comparison windows in the same scan); `grain` stacks them and
    groups once more; `totals`/`ranked` apply measure filters and rank the
    groups (over the whole period when there is a time series); `topped`
    folds everything past N into one "others" row, from the parts.
    """
    if not q.measures:
        raise QuestionError(t("q_need_measure"))
    if q.compare != "none" and not q.period:
        raise QuestionError(t("q_need_period"))
    if q.grain is not None and q.grain not in GRAINS:
        raise QuestionError(t("q_bad_choice", value=str(q.grain)[:20], what="grain"))
    if q.compare not in periods.COMPARISONS:
        raise QuestionError(t("q_bad_choice", value=str(q.compare)[:20], what="cmp"))
    if any(f.op not in MEASURE_OPS for f in q.measure_filters):
        raise QuestionError(t("q_bad_measure_filter", token=", ".join(f.token() for f in q.measure_filters)[:60]))
    plan = _Summary(model, q)
    ctes = [plan.table_cte(i, table) for i, table in enumerate(plan.ms.tables())]
    ctes.append(plan.grain_cte(len(ctes)))
    final, others = "grain", "FALSE"
    if plan.dims and (q.top or q.measure_filters):
        ctes += plan.rank_ctes()
        final, others = ("topped", "__others") if q.top else ("kept", "FALSE")
    out, columns = plan.output(others)
    sql = ("WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(out)} FROM {final} "
           f"ORDER BY {', '.join(plan.order(others != 'FALSE'))}")
    return Compiled(sql, tuple(plan.bind.values), tuple(columns))


class _Summary:
    """What every part of a summary statement shares: the measures' parts, the groups, the windows, the params."""

    def __init__(self, model: Model, q: Question):
        self.model, self.q = model, q
        self.bind = Params()
        self.dims = [model.dimension(d) for d in q.dimensions]
        self.sort_measure = q.sort if q.sort in q.measures else q.measures[0]
        self.ms = MeasureParts(model, list(q.measures) + [f.measure for f in q.measure_filters] + [self.sort_measure])
        self.win = periods.windows(q.period, q.compare) if q.period else None
        self.compare = self.win is not None and self.win.previous is not None
        self.dcols = [f"__d{i}" for i in range(len(self.dims))]
        self.tcol = ["__t"] if q.grain else []
        self.windows = ["c", "p"] if self.compare else ["c"]
        # Both windows in one scan: each part twice, FILTERed to its window; free `sql` measures
        # cannot take a FILTER, so then the window becomes a grouping key instead.
        self.by_filter = self.ms.filterable()

    def _time(self, frm: FromClause, table: str, select: list[str], where: list[str]) -> None:
        """The period's WHERE, the `__cur` flag (row in the current window) and the time bucket `__t`."""
        q, win, bind = self.q, self.win, self.bind
        ts, ts_type = time_column(self.model, q, frm, table)
        in_current = "TRUE"
        if win:
            cur = win.current
            in_current = (f"({ts} >= {bind(time_value(cur.start, ts_type))} "
                          f"AND {ts} < {bind(time_value(cur.end, ts_type))})")
            if not self.compare:
                where.append(in_current)
            elif win.previous.end == cur.start:  # adjoining: one range, so row groups are skipped by min/max
                where.append(f"({ts} >= {bind(time_value(win.previous.start, ts_type))} "
                             f"AND {ts} < {bind(time_value(cur.end, ts_type))})")
            else:
                prev = win.previous
                where.append(f"({in_current} OR ({ts} >= {bind(time_value(prev.start, ts_type))} "
                             f"AND {ts} < {bind(time_value(prev.end, ts_type))}))")
        select.append(f"{in_current} AS __cur")
        if q.grain:
            loc = local_time(ts, ts_type)
            if self.compare:  # previous rows move forward so their buckets line up with the current ones
                shift = (f"to_days(CAST({bind(win.shift_days)} AS INTEGER))" if win.shift_days
                         else f"to_years(CAST({bind(win.shift_years)} AS INTEGER))")
                loc = f"(CASE WHEN {in_current} THEN {loc} ELSE {loc} + {shift} END)"
            bucket = f"date_trunc('{q.grain}', {loc})"
            select.append(f"{bucket} AS __t" if q.grain == "hour" else f"CAST({bucket} AS DATE) AS __t")

    def table_cte(self, index: int, table: str) -> str:
        """`s<index>`: one table's measure parts per group, joined only along its many-to-one paths."""
        frm = FromClause(self.model, table)
        why = f"measures of {table}"
        select = ["t0.*"] + [f"{frm.dimension(d, why)} AS {c}" for d, c in zip(self.dims, self.dcols)]
        where = [filter_sql(self.model, frm, f, self.bind, why) for f in self.q.filters]
        if self.win or self.q.grain:
            self._time(frm, table, select, where)
        keys = self.dcols + self.tcol
        if not self.compare:
            parts = [f"{expr} AS {name}__c" for name, expr, _ in self.ms.parts_of(table)]
        elif self.by_filter:
            parts = [f"{expr} AS {name}__{w}" for w, cond in (("c", "__cur"), ("p", "NOT __cur"))
                     for name, expr, _ in self.ms.parts_of(table, cond)]
        else:
            keys = keys + ["__cur"]
            parts = [f"{expr} AS {name}" for name, expr, _ in self.ms.parts_of(table)]
        inner = f"SELECT {', '.join(select)} FROM {frm.sql()}" + (f" WHERE {' AND '.join(where)}" if where else "")
        return f"s{index} AS (SELECT {', '.join(keys + parts)} FROM ({inner}) AS b GROUP BY ALL)"

    def grain_cte(self, tables: int) -> str:
        """`grain`: the tables' parts side by side, one row per group (and time bucket)."""
        stacked = " UNION ALL BY NAME ".join(f"SELECT * FROM s{i}" for i in range(tables))
        if self.compare and not self.by_filter:
            parts = [combine(how, name, f" FILTER (WHERE {'' if w == 'c' else 'NOT '}__cur)") + f" AS {name}__{w}"
                     for name, _, how in self.ms.allmeasure_parts() for w in self.windows]
        else:
            parts = [combine(how, f"{name}__{w}") + f" AS {name}__{w}"
                     for name, _, how in self.ms.allmeasure_parts() for w in self.windows]
        group = ", ".join(self.dcols + self.tcol)
        return (f"grain AS (SELECT {group + ', ' if group else ''}{', '.join(parts)} FROM ({stacked}) AS u"
                + (f" GROUP BY {group})" if group else ")"))

    def rank_ctes(self) -> list[str]:
        """Measure filters, then the rank of each group by the sort measure; then top N + others, or the kept groups."""
        q, ms, dcols, bind = self.q, self.ms, self.dcols, self.bind
        for mid in [f.measure for f in q.measure_filters] + [self.sort_measure]:
            if q.grain and ms.once(mid):
                raise QuestionError(t("q_not_additive", measure=label_text(self.model.measure(mid).label)))
        ctes, source = [], "grain"
        if q.grain:  # rank over the whole period, not per bucket
            totals = ", ".join(combine(how, f"{name}__c") + f" AS {name}__c" for name, _, how in ms.allmeasure_parts())
            ctes.append(f"totals AS (SELECT {', '.join(dcols)}, {totals} FROM grain GROUP BY {', '.join(dcols)})")
            source = "totals"

        def current(part: str) -> str:
            return f"{part}__c"

        having = [f"({ms.value(f.measure, current)}) {MEASURE_OPS[f.op]} {bind(f.value)}" for f in q.measure_filters]
        direction = "DESC" if (q.descending or q.sort not in q.measures) else "ASC"
        ctes.append(f"ranked AS (SELECT {', '.join(dcols)}, row_number() OVER (ORDER BY "
                    f"{ms.value(self.sort_measure, current)} {direction} NULLS LAST, {', '.join(dcols)}) AS __rn "
                    f"FROM {source}" + (f" WHERE {' AND '.join(having)})" if having else ")"))
        match = " AND ".join(f"g.{c} IS NOT DISTINCT FROM r.{c}" for c in dcols)
        if not q.top:
            return ctes + [f"kept AS (SELECT g.* FROM grain AS g SEMI JOIN ranked AS r ON {match})"]
        n = bind(q.top)
        keep = ", ".join(f"CASE WHEN r.__rn <= {n} THEN g.{c} END AS {c}" for c in dcols)
        combined = ", ".join(combine(how, f"g.{name}__{w}") + f" AS {name}__{w}"
                             for name, _, how in ms.allmeasure_parts() for w in self.windows)
        time_key = ", g.__t" if q.grain else ""
        return ctes + [f"topped AS (SELECT {keep}{time_key}, r.__rn > {n} AS __others, {combined} "
                       f"FROM grain AS g JOIN ranked AS r ON {match} GROUP BY ALL)"]

    def output(self, others: str) -> tuple[list[str], list[Column]]:
        """The SELECT list (dimensions, time, others flag, then value / previous / Δ / Δ% per measure) and its columns."""
        out, columns = [], []
        for dim, c in zip(self.dims, self.dcols):
            out.append(f"{c} AS {quote(dim.id)}")
            columns.append(Column(dim.id, "dimension", dim.label, None, dim.values, source=dim.id))
        if self.q.grain:
            out.append(f"__t AS {quote(TIME_COLUMN)}")
            columns.append(Column(TIME_COLUMN, "time", Label("기간", "Period"), self.q.grain))
        out.append(f"{others} AS {quote(OTHERS_COLUMN)}")
        columns.append(Column(OTHERS_COLUMN, "others", OTHERS))
        for mid in self.q.measures:
            cur = self.ms.value(mid, lambda part: f"{part}__c")
            out.append(f"CAST({cur} AS DOUBLE) AS {quote(mid)}")
            if self.compare:
                prev = self.ms.value(mid, lambda part: f"{part}__p")
                out.append(f"CAST({prev} AS DOUBLE) AS {quote(mid + '__previous')}")
                out.append(f"CAST(({cur}) - ({prev}) AS DOUBLE) AS {quote(mid + '__delta')}")
                out.append(f"CAST(100.0 * (({cur}) - ({prev})) / nullif(abs({prev}), 0) AS DOUBLE) "
                           f"AS {quote(mid + '__delta_pct')}")
        columns += [c for c in _measure_columns(self.model, self.q) if self.compare or c.kind == "measure"]
        return out, columns

    def order(self, has_others: bool) -> list[str]:
        """Others last; a time series in time order; then the chosen sort; dimensions break ties."""
        q = self.q
        order = [quote(OTHERS_COLUMN)] if has_others else []
        if q.grain:
            order.append("__t")
        direction = "DESC" if q.descending else "ASC"
        if q.sort in q.dimensions:
            order.append(f"{self.dcols[q.dimensions.index(q.sort)]} {direction} NULLS LAST")
        else:
            order.append(f"{quote(self.sort_measure)} {direction} NULLS LAST")
        return order + self.dcols


def _current_window(model: Model, q: Question, frm: FromClause, bind: Params) -> list[str]:
    if not q.period:
        return []
    win = periods.windows(q.period, "none")
    ts, ts_type = time_column(model, q, frm, q.base)
    return [f"{ts} >= {bind(time_value(win.current.start, ts_type))}",
            f"{ts} < {bind(time_value(win.current.end, ts_type))}"]


# ─────────────────────────────────────────────────────────────── rows ──


@answers
def compile_rows(model: Model, q: Question, limit: int) -> Compiled:
    """The base table's records behind a question's numbers (its filters and period), newest first,
    with the question's dimensions from related tables as extra columns."""
    bind = Params()
    frm = FromClause(model, q.base)
    table = model.tables[q.base]
    why = f"rows of {q.base}"
    shown = [name for name, _ in table.columns if not name.startswith("_")]  # not the landing's bookkeeping
    select = [f"t0.{quote(name)} AS {quote(name)}" for name in shown]
    columns = [Column(name, "column", *column_label(model, q.base, name), source=f"{q.base}.{name}")
               for name in shown]
    related = list(q.dimensions) + [f.dimension for f in q.filters]
    for dim_id in dict.fromkeys(related):
        dim = model.dimension(dim_id)
        if dim.table == q.base and dim.derive is None:
            continue
        select.append(f"{frm.dimension(dim, why)} AS {quote(dim.id)}")
        columns.append(Column(dim.id, "dimension", dim.label, None, dim.values, source=dim.id))
    where = [filter_sql(model, frm, f, bind, why) for f in q.filters] + _current_window(model, q, frm, bind)
    order = [f"t0.{quote(table.time)} DESC NULLS LAST"] if table.time else []
    order += [f"t0.{quote(k)}" for k in table.primary_key if table.column_type(k)]
    sql = (f"SELECT {', '.join(select)} FROM {frm.sql()}" + (f" WHERE {' AND '.join(where)}" if where else "")
           + (f" ORDER BY {', '.join(order)}" if order else "") + f" LIMIT {bind(int(limit))}")
    return Compiled(sql, tuple(bind.values), tuple(columns))


# ────────────────────────────────────────────────────────────── pivot ──


@answers
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
    bind = Params()
    row = [model.dimension(d) for d in row_dims]
    col = [model.dimension(d) for d in col_dims]
    dims = row + col
    rcols = [f"__d{i}" for i in range(len(row))]
    ccols = [f"__d{i}" for i in range(len(row), len(dims))]
    ms = MeasureParts(model, list(q.measures))
    sets = [rcols + ccols, rcols, ccols, []]
    grouping = "GROUPING SETS (" + ", ".join("(" + ", ".join(s) + ")" for s in sets) + ")"
    flags = [f"{'grouping(' + ', '.join(ccols) + ') > 0' if ccols else 'FALSE'} AS __all_columns",
             f"{'grouping(' + ', '.join(rcols) + ') > 0' if rcols else 'FALSE'} AS __all_rows"]
    ctes = []
    for i, table in enumerate(ms.tables()):
        frm = FromClause(model, table)
        why = f"measures of {table}"
        select = ["t0.*"] + [f"{frm.dimension(d, why)} AS {c}" for d, c in zip(dims, rcols + ccols)]
        where = [filter_sql(model, frm, f, bind, why) for f in q.filters]
        if q.period:
            win = periods.windows(q.period, "none")
            ts, ts_type = time_column(model, q, frm, table)
            where += [f"{ts} >= {bind(time_value(win.current.start, ts_type))}",
                      f"{ts} < {bind(time_value(win.current.end, ts_type))}"]
        parts = ", ".join(f"{expr} AS {name}" for name, expr, _ in ms.parts_of(table))
        inner = f"SELECT {', '.join(select)} FROM {frm.sql()}" + (f" WHERE {' AND '.join(where)}" if where else "")
        ctes.append(f"s{i} AS (SELECT {', '.join(rcols + ccols)}, {', '.join(flags)}, {parts} "
                    f"FROM ({inner}) AS b GROUP BY {grouping})")
    stacked = " UNION ALL BY NAME ".join(f"SELECT * FROM s{i}" for i in range(len(ctes)))
    keys = rcols + ccols + ["__all_columns", "__all_rows"]
    combined = ", ".join(combine(how, name) + f" AS {name}" for name, _, how in ms.allmeasure_parts())
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
