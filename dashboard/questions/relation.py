"""Questions over a derived relation: a curated report's result, questioned like a table.

A report's SQL is hand-written; its chart is not. The chart is a question
(measure = the chart's value column, summed, or averaged when the column is
a rate or an average; dimensions = its x and colour columns) asked of the
report's result, so it is compiled by the same `compile_summary` as every
Explore chart: aggregated in DuckDB, "others" after the first N groups, the
same output columns. The report runs inside that statement as a common table
expression, so the whole chart is one bound statement through the same
reader, cache, time limit and access guard (dashboard/access/enforce.py
reads the report's tables inside the CTE like any other statement).

The relation keeps its rows' order as `__pos` (DuckDB keeps a sub-query's
ORDER BY through a window without ORDER BY): a chart sorted by the "first
position" measure lists its groups as the report lists them — weekdays
Monday first, age bands youngest first, merchants ranked as the report ranks
them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping

from dashboard.model import Label, Measure, Model, relink
from dashboard.model.derive import catalog_model
from dashboard.questions.blocks import Compiled
from dashboard.questions.compile import compile_summary
from dashboard.questions.spec import Question
from dashboard.warehouse import ColumnInfo, TableInfo, quote

POSITION = "__pos"
FIRST_POSITION = "first_position"


@dataclass(frozen=True)
class Relation:
    """A named SELECT standing where a table would, with its own bound values.

    `sql(offset)` gives the SELECT with its placeholders numbered from
    `offset + 1`, so the relation's values can follow the question's own
    `$n` parameters in one statement.
    """

    name: str
    sql: Callable[[int], str]
    params: tuple
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type), in the relation's order


def relation_model(rel: Relation, measures: Mapping[str, Measure] | None = None) -> Model:
    """A one-table model of the relation: every column a dimension, the catalog's default measures,
    the "first position" measure (report order), plus `measures` (name → Measure on `rel.name`)."""
    info = TableInfo(rel.name, "", tuple(ColumnInfo(n, t) for n, t in rel.columns), 0)
    table = catalog_model(info, "", {}, ())  # labels: the page names the chart's columns as the report's table
    extra = {FIRST_POSITION: Measure(rel.name, FIRST_POSITION, Label("보고서 순서", "Report order"),
                                     agg="min", column=POSITION)}
    extra.update(measures or {})
    table = replace(table, measures={**table.measures, **extra}, columns=table.columns + ((POSITION, "BIGINT"),))
    model = Model(tables={rel.name: table})
    relink(model)
    return model


def compile_over(rel: Relation, model: Model, q: Question) -> Compiled:
    """`compile_summary` of `q`, with the relation as the statement's first CTE (named as the table)."""
    inner = compile_summary(model, q)
    assert inner.sql.startswith("WITH "), inner.sql[:20]
    select = rel.sql(len(inner.params)).rstrip().rstrip(";")
    # A line comment at the end of the report would swallow the closing parenthesis: end on a new line.
    head = (f"WITH {quote(rel.name)} AS (SELECT *, row_number() OVER () AS {POSITION} "
            f"FROM (\n{select}\n) AS __relation)")
    return Compiled(head + ",\n" + inner.sql[len("WITH "):], inner.params + tuple(rel.params), inner.columns)
