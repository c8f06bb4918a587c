"""A saved Explore view as what a subscription or a data alert is about (kind "view", ref = the view's id).

The view stays the source of truth: the mail runs whatever the view holds
at send time (a renamed or edited view mails its new name and question),
like a subscription to a saved question in Metabase. What a send does:

1. load     the view from the app-state store by id; a deleted view raises
            `ViewMissing`, and the sender mails that it is gone — never a
            silent skip;
2. pin      its relative periods ("last_7_days", a filter "during
            last_month") to dates for the day of the send (`pin_periods`):
            the compiler reads the real clock, the scheduler has its own, so
            the question is made absolute before it is compiled;
3. run      parse, compile and run it as its owner: the caller wraps this in
            `acting_as(owner)`, so `model_for` gives the owner's restricted
            model and every statement goes through the owner's guard. A view
            naming something hidden from the owner raises AccessDenied;
4. render   the same file as Explore's download of that question: the
            screen's headers and words (`explore_result.shown` and
            `column_views`), the filter sheet, in the subscriber's language.

A pivot view is mailed as its summary table split by the pivot's row and
column dimensions (one row per cell): the same numbers, in a shape a CSV and
a mail body can carry.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import date
from typing import Callable
from urllib.parse import urlencode

import pandas as pd
import pyarrow as pa

from dashboard import dates, downloads, explore_result, i18n, saved_views
from dashboard.access.enforce import AccessDenied
from dashboard.model import Model, full_model, model_for
from dashboard.questions import Compiled, Question, QuestionError, compile_rows, compile_summary
from dashboard.saved_views import SavedView
from dashboard.subscriptions.render import MIME, Rendered, _UNSAFE_IN_NAME, body_tables

PAGE = "explore"  # the page whose views can be subscribed to (Explore's question builder)


class ViewMissing(FileNotFoundError):
    """The saved view behind a subscription or alert was deleted (or its id never existed)."""


@dataclass(frozen=True)
class ViewResult:
    view: SavedView
    model: Model
    question: Question  # as run: periods pinned to the send day
    asked: Question  # as saved: periods still relative (for the words "지난 7일")
    compiled: Compiled
    frame: pd.DataFrame
    problems: list[str]


def view_url(public_url: str, view_id: int | str, lang: str) -> str:
    """The address that opens the view in Explore, in the subscriber's language."""
    return f"{public_url}/{PAGE}?{urlencode({saved_views.VIEW_PARAM: view_id, 'lang': lang})}"


def load(conn: sqlite3.Connection, ref: str) -> SavedView:
    view = saved_views.get(conn, ref)
    if view is None or view.page != PAGE:
        raise ViewMissing(ref)
    return view


def remembered_name(params: dict, ref: str) -> str:
    """The name the view had when the subscription was made (kept for the mail that says it is gone)."""
    return str(params.get("name") or f"#{ref}")


def _pin(token: str, today: date) -> str:
    try:
        period = dates.parse_period(token, today)
    except ValueError:
        raise QuestionError(i18n.t("q_bad_period", value=token[:60])) from None
    return f"{period.start.isoformat()}{dates.SEP}{period.end.isoformat()}"


def pin_periods(q: Question, today: date) -> Question:
    """The question with every relative period resolved for `today` (typed ranges stay as they are)."""
    filters = tuple(replace(f, values=(_pin(f.values[0], today),)) if f.op == "during" and f.values else f
                    for f in q.filters)
    return replace(q, period=_pin(q.period, today) if q.period else None, filters=filters)


def question_of(view: SavedView, warehouse) -> tuple[Model, Question, list[str]]:
    """The view's question against the acting person's model; AccessDenied when it names something hidden from them.

    Same test as the Explore page's (`link_names_hidden`): the view parses with
    more problems against the person's model than against the whole one.
    """
    model = model_for(warehouse)
    asked, problems = Question.from_params(view.query(), model)
    if model is not full_model(warehouse):
        _, whole = Question.from_params(view.query(), full_model(warehouse))
        if len(whole) < len(problems):
            raise AccessDenied(f"the saved view {view.name!r} uses data its owner's role may not see")
    return model, asked, problems


def run(view: SavedView, warehouse, query: Callable[[str, list], pd.DataFrame], today: date,
        max_rows: int) -> ViewResult:
    """Compile and run the view as the acting person, with its periods resolved for `today`."""
    from dashboard.explore_question import natural_order

    model, asked, problems = question_of(view, warehouse)
    q = pin_periods(asked, today)
    if q.view == "rows":
        compiled = compile_rows(model, q, max_rows)
    else:
        if q.view == "pivot":
            q = replace(q, dimensions=tuple(dict.fromkeys(q.pivot_rows + q.pivot_columns)) or q.dimensions,
                        view="summary")
        q = natural_order(model, q)
        compiled = compile_summary(model, q)
    return ViewResult(view, model, q, asked, compiled, query(compiled.sql, list(compiled.params)), problems)


def measure_total(view: SavedView, warehouse, query, today: date, measure: str) -> pd.DataFrame:
    """One row: `measure` over the view's whole question (its filters and period, every group together).

    What a data alert on a view judges. Computed by the compiler rather than
    summed from the groups, so an average or a rate is the real one, and a
    top N or a measure filter (which only choose the groups shown) do not
    change it.
    """
    model, asked, _ = question_of(view, warehouse)
    if measure not in asked.measures:
        raise ValueError(f"the saved view {view.name!r} no longer has the measure {measure!r} — edit this alert")
    q = replace(pin_periods(asked, today), measures=(measure,), dimensions=(), grain=None, compare="none",
                measure_filters=(), sort=None, top=None, view="summary", pivot_rows=(), pivot_columns=())
    compiled = compile_summary(model, q)
    return query(compiled.sql, list(compiled.params))


def measure_label(model: Model, measure: str) -> str:
    return explore_result.label_text(model.measure(measure).label, i18n.lang()) if model.has_measure(measure) else measure


def filters_text(result: ViewResult, today: date) -> list[str]:
    """The lines Explore writes beside its downloads (and into the Excel file's filter sheet).

    The period reads as on screen — dates and the preset's name, "2026-11-23 –
    2026-11-29 (지난 7일)" — from the saved (relative) token resolved for `today`.
    """
    from dashboard.explore_question import describe_filter, dimension_label
    from dashboard.explore_question import measure_label as label

    q, asked, model = result.question, result.asked, result.model
    lines = [describe_filter(model, q.base, f) if f.op != "during" else
             f"{dimension_label(model, q.base, f.dimension)}: {dates.parse_period(a.values[0], today).describe()}"
             for f, a in zip(q.filters, asked.filters)]
    if asked.period:
        lines.append(f"{i18n.t('period')}: {dates.parse_period(asked.period, today).describe()}")
    for mf in q.measure_filters:
        value = int(mf.value) if float(mf.value).is_integer() else mf.value
        lines.append(f"{label(result.model, mf.measure)} {i18n.t('mf_' + mf.op)} {i18n.fmt_number(value)}")
    if q.compare != "none":
        lines.append(i18n.t("cmp_" + q.compare))
    return lines


def file_name(name: str, q: Question, fmt: str) -> str:
    """`주간 충전 경로별_2026-11-23_2026-11-29.xlsx`: the view's name and the dates it covered."""
    dated = q.period.split(dates.SEP) if q.period else []
    stem = _UNSAFE_IN_NAME.sub("_", "_".join([name, *dated])).strip(" ._") or f"view_{q.base}"
    return f"{stem}.{fmt}"


def render_view(result: ViewResult, *, lang: str, fmt: str, today: date, body_rows: int,
                public_url: str) -> Rendered:
    """The mail's attachment and short table: Explore's download of the question, in `lang`."""
    with i18n.language(lang):
        screen = explore_result.shown(result.frame, result.compiled.columns, lang)
        views = explore_result.column_views(result.frame, result.compiled.columns, lang)
        lines = filters_text(result, today)
        title = result.view.name
        data = downloads.file_bytes(fmt, pa.Table.from_pandas(screen, preserve_index=False), views, False, lines,
                                    title)
        text, html_table = body_tables(screen, views, body_rows)
    return Rendered(
        title=title, rows=len(screen), filters_text=lines, file_name=file_name(title, result.question, fmt),
        file_bytes=data, mime=MIME[fmt], text_table=text, html_table=html_table,
        report_url=view_url(public_url, result.view.id, lang), shown=min(len(screen), body_rows),
        problems=list(result.problems),
    )


def measures_of(view: SavedView, warehouse) -> list[tuple[str, str]]:
    """(measure id, label) of the view's question, for the alert form; the acting person's model."""
    model, asked, _ = question_of(view, warehouse)
    return [(m, measure_label(model, m)) for m in asked.measures]

