"""Looking up one thing: its attributes, one timeline of everything related to it, its events per month.

"Card 17" becomes three statements: its row; the union of the rows of every
table with a relationship straight to cards (payments, top-ups, refunds) in
time order, each with its table, id, time, amount and the whole row as JSON;
and those events counted per month. `compile_lookup_search` finds the thing
by its key or a search column (a merchant's name).
"""

from __future__ import annotations

from typing import Any

from dashboard.i18n import t
from dashboard.model import Label, Model
from dashboard.questions.blocks import (Column, Compiled, Lookup, Params, QuestionError, answers, column_label,
                                        label_text, source)
from dashboard.questions.filters import FilterValueError, coerce
from dashboard.warehouse import TIME_ZONE, column_kind, quote


def _key_value(model: Model, table: str, key: str) -> tuple[str, Any]:
    tm = model.tables[table]
    if len(tm.primary_key) != 1 or not tm.column_type(tm.primary_key[0]):
        raise QuestionError(f"{table} has no single-column key to look up by — pick another table")
    column = tm.primary_key[0]
    ctype = tm.column_type(column)
    try:
        return column, coerce(str(key).strip(), column_kind(ctype), ctype)
    except FilterValueError as exc:
        raise QuestionError(t("q_bad_key", value=str(key)[:40], table=label_text(tm.label))) from None


@answers
def compile_lookup(model: Model, table: str, key: str) -> Lookup:
    """One thing (a card, a merchant…): its row, one timeline of every event pointing at it, its events per month.

    The timeline is the union of the rows of every table with a relationship
    straight to `table` (a card's payments, top-ups and refunds), each with
    its table name, id, time, amount and the whole row as JSON, in time order.
    """
    model.table(table)
    column, value = _key_value(model, table, key)
    bind = Params()
    k = bind(value)
    tm = model.tables[table]
    attributes = Compiled(
        f"SELECT {', '.join('t0.' + quote(c) + ' AS ' + quote(c) for c, _ in tm.columns)} "
        f"FROM {source(table)} AS t0 WHERE t0.{quote(column)} = {k}",
        tuple(bind.values),
        tuple(Column(c, "column", *column_label(model, table, c), source=f"{table}.{c}") for c, _ in tm.columns),
    )
    branches = []
    tbind = Params()
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
        raise QuestionError(t("q_no_timeline", table=label_text(tm.label)))
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


@answers
def compile_lookup_search(model: Model, table: str, text: str, limit: int = 20) -> Compiled:
    """Candidates for a lookup: the key equal to `text`, or a search column (e.g. merchant_name) containing it."""
    tm = model.table(table)
    if len(tm.primary_key) != 1:
        raise QuestionError(f"{table} has no single-column key to look up by — pick another table")
    bind = Params()
    key = tm.primary_key[0]
    t = bind(str(text).strip())
    conditions = [f"CAST(t0.{quote(key)} AS VARCHAR) = {t}"]
    conditions += [f"contains(lower(CAST(t0.{quote(c)} AS VARCHAR)), lower({t}))" for c in tm.search]
    cols = [key] + [c for c in tm.search if c != key]
    sql = (f"SELECT {', '.join('t0.' + quote(c) + ' AS ' + quote(c) for c in cols)} FROM {source(table)} AS t0 "
           f"WHERE {' OR '.join(conditions)} ORDER BY t0.{quote(key)} LIMIT {bind(int(limit))}")
    return Compiled(sql, tuple(bind.values),
                    tuple(Column(c, "column", *column_label(model, table, c)) for c in cols))
