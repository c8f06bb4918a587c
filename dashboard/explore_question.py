"""Explore's question mode: widgets ↔ a `Question` (dashboard/questions/spec.py), and its answer on screen.

Widgets only, like a page. The URL is the state: `Question.from_params`
seeds the widgets once, the widgets build the question, and `show` returns
`question.to_params()` for the address bar — so a link (or a saved view)
reproduces every number. All SQL comes from the one compiler
(dashboard/questions/compile.py); all drawing from dashboard/explore_result.py.

Filters are not widgets but a list kept in the session (seeded from the URL):
a click on a bar or a table row adds one (drill-down), each shows as a
removable breadcrumb, and "add a filter" appends one. A value that does not
fit its dimension is a message, never a traceback.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date as dt_date
from typing import Mapping

import pandas as pd
import pyarrow as pa
import streamlit as st

from dashboard import dates, downloads, explore_result as result, i18n
from dashboard.access.enforce import link_names_hidden, stop_no_access
from dashboard.i18n import t
from dashboard.model import Model, ModelError, model_for
from dashboard.page_guard import page_guard
from dashboard.questions import (Filter, MeasureFilter, Question, QuestionError, compile_pivot, compile_rows,
                                 compile_summary)
from dashboard.questions.filters import FilterValueError, OPS, coerce, ops_for
from dashboard.questions.spec import GRAINS, MAX_TOP
from dashboard.subscriptions.view_form import send_view_by_email
from dashboard.warehouse import Warehouse

FILTERS_KEY = "q_filters"  # the question's filters (list of spec.Filter), owned by breadcrumbs and drill-down
DRILL_KEY = "q_drill"  # bumps after each drill-down, so the chart and table start without a selection
ZOOM_KEY = "q_zoom"  # (bucket start, grain) a click on a time series asked for, applied before the widgets are drawn
MESSAGE_KEY = "q_message"
PREFERRED_BASE = ("payments", "topups", "refunds", "cards")
LINES_TOP = 8  # series drawn on a time series split by a dimension (the rest is "others")
VALUES_MAX = 200  # values offered in a filter's list
MEASURE_FILTER_OPS = ("ge", "gt", "le", "lt")

def seed(key: str, value) -> None:
    """A widget's starting value from the URL, once (afterwards the widget owns it)."""
    if key not in st.session_state:
        st.session_state[key] = value


def _lang() -> str:
    return i18n.lang()


def words(fn):
    """A widget's format_func in the language of this run.

    Streamlit may call a format_func outside the page run (AppTest does, to
    match a value to its option), where the session's language is not known;
    fixing it here keeps option labels and values in one language.
    """
    lang = i18n.lang()

    def fmt(value):
        with i18n.language(lang):
            return fn(value)
    return fmt


def measure_label(model: Model, mid: str) -> str:
    return result.label_text(model.measure(mid).label, _lang())


def dimension_label(model: Model, base: str, did: str) -> str:
    d = model.dimension(did)
    text = result.label_text(d.label, _lang())
    return text if d.table == base else f"{text} · {model.tables[d.table].label.text(_lang())}"


def value_words(model: Model, did: str, value: str) -> str:
    d = model.dimension(did)
    words = d.value_label(value, _lang())
    return words if words is not None else (i18n.EMPTY if value == "" else value)


def describe_filter(model: Model, base: str, f: Filter) -> str:
    """"업종: 카페, 편의점" — a breadcrumb and a line in the Excel file's filter sheet."""
    name = dimension_label(model, base, f.dimension)
    if f.op == "during":
        try:
            return f"{name}: {dates.parse_period(f.values[0], dates.today_seoul()).describe()}"
        except ValueError:
            return f"{name}: {f.values[0]}"
    values = ", ".join(value_words(model, f.dimension, v) for v in f.values)
    if f.op == "in":
        return f"{name}: {values}"
    return f"{name} {t('op_' + f.op)} {values}".strip()


def default_question(model: Model) -> Question:
    """What a fresh Explore shows: the busiest table's first count, per day over the last 30 days."""
    bases = [name for name, tm in model.tables.items() if tm.measures]
    base = next((b for b in PREFERRED_BASE if b in bases), bases[0] if bases else "")
    if not base:
        return Question(base="")
    tm = model.tables[base]
    measure = next((m.id for m in tm.measures.values() if m.name != "count"), next(iter(tm.measures.values())).id)
    time = f"{base}.{tm.time}" if tm.time and model.has_dimension(f"{base}.{tm.time}") else None
    return Question(base=base, measures=(measure,), time=time, period="last_30_days" if time else None,
                    grain="day" if time else None)


def _splittable(model: Model, base: str) -> list[str]:
    """Dimensions offered for splitting and filtering: no landing bookkeeping, no raw time stamps (use day, month…)."""
    out = []
    for d in model.dimensions_from(base):
        if d.column.startswith("_") or d.name.startswith("_"):
            continue
        if d.kind == "time" and d.derive is None:
            continue
        out.append(d.id)
    return out


def _time_columns(model: Model, base: str) -> list[str]:
    return [d.id for d in model.dimensions_from(base)
            if d.kind == "time" and d.derive is None and not d.column.startswith("_")]


def _set_message(text: str) -> None:
    st.session_state[MESSAGE_KEY] = text


# ───────────────────────────────────────────────────────────── filters ──


def _apply_zoom(k: str) -> None:
    """A time-series click of the last run: the period becomes that bucket, the grain the next finer one.

    Set here, before the period and grain widgets exist in this run (Streamlit
    refuses changes to a widget already drawn); the address follows the widgets.
    """
    zoom = st.session_state.pop(ZOOM_KEY, None)
    if zoom is None:
        return
    start, grain = zoom
    try:
        days = dates.bucket(grain, dt_date.fromisoformat(str(start)[:10]))
    except ValueError:
        return
    st.session_state[k + "period.preset"] = dates.CUSTOM
    st.session_state[k + "period.start"], st.session_state[k + "period.end"] = days.start, days.end
    st.session_state[k + "grain"] = dates.FINER.get(grain, grain)


def _add_filter(model: Model, f: Filter) -> None:
    """Append (or replace the same dimension's same kind of) filter, if its values fit the dimension."""
    error = OPS[f.op].check_count(f.values)
    if error:
        _set_message(t("q_filter_bad", what=describe_filter(model, "", f), why=error))
        return
    d = model.dimension(f.dimension)
    try:
        if f.op == "during":
            OPS["during"].convert(list(f.values), d.kind, d.column_type)
        elif d.kind in ("number", "time", "bool"):
            for v in f.values:
                coerce(v, d.kind, d.column_type)
    except FilterValueError as exc:
        _set_message(t("q_filter_bad", what=d.label.text(_lang()), why=str(exc)))
        return
    current = [x for x in st.session_state[FILTERS_KEY] if (x.dimension, x.op) != (f.dimension, f.op)]
    st.session_state[FILTERS_KEY] = current + [f]
    st.session_state[DRILL_KEY] = st.session_state.get(DRILL_KEY, 0) + 1


def _remove_filter(index: int) -> None:
    filters = list(st.session_state[FILTERS_KEY])
    if 0 <= index < len(filters):
        del filters[index]
    st.session_state[FILTERS_KEY] = filters
    st.session_state[DRILL_KEY] = st.session_state.get(DRILL_KEY, 0) + 1


def breadcrumbs(model: Model, base: str) -> None:
    """The path taken: every filter as a removable chip, "all" first."""
    filters = st.session_state[FILTERS_KEY]
    with st.container(key="q_crumbs", horizontal=True):
        st.markdown(f"**{t('q_path')}**")
        if not filters:
            st.caption(t("q_path_all"))
        for i, f in enumerate(filters):
            st.button(f"{describe_filter(model, base, f)}  ✕", key=f"q_crumb_{i}", on_click=_remove_filter, args=(i,),
                      help=t("q_crumb_remove"))


def filter_adder(wh: Warehouse, model: Model, base: str, count_measure: str | None, guarded) -> None:
    """"Add a filter": a dimension, an operation, its values (a list of the values present for text)."""
    with st.expander(t("q_add_filter"), icon=":material/filter_alt:"):
        options = _splittable(model, base) + _time_columns(model, base)
        c1, c2 = st.columns(2)
        did = c1.selectbox(t("q_filter_dim"), options, key=f"q.{base}.fdim",
                           format_func=words(lambda v: dimension_label(model, base, v)))
        d = model.dimension(did)
        ops = [op.id for op in ops_for(d.kind)]
        op = c2.selectbox(t("q_filter_op"), ops, key=f"q.{base}.fop.{did}", format_func=words(lambda v: t("op_" + v)))
        arity = OPS[op].arity
        values: list[str] = []
        if op == "during":
            period = dates.period_picker(f"q.{base}.fperiod.{did}", t("period"), None)
            values = [period.token] if period is not None else []
        elif arity == "many" and d.kind in ("text", "bool", "number") and count_measure:
            listing = Question(base=base, measures=(count_measure,), dimensions=(did,), top=VALUES_MAX)
            try:
                compiled = compile_summary(model, listing)
                frame = guarded(compiled.run, wh)
                present = [v for v, o in zip(frame[did], frame["others"]) if not o and not i18n.is_missing(v)]
            except (QuestionError, ModelError):
                present = []
            codes = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in present]
            values = st.multiselect(t("q_filter_values"), codes, key=f"q.{base}.fvals.{did}.{op}",
                                    format_func=words(lambda v: value_words(model, did, v)), accept_new_options=True)
        elif arity == "two":
            a, b = st.columns(2)
            values = [a.text_input(t("min"), key=f"q.{base}.flo.{did}", max_chars=100).strip(),
                      b.text_input(t("max"), key=f"q.{base}.fhi.{did}", max_chars=100).strip()]
        elif arity in ("one", "many"):
            typed = st.text_input(t("q_filter_value"), key=f"q.{base}.fval.{did}.{op}", max_chars=500)
            values = [typed.strip()] if typed.strip() else []
        st.button(t("q_filter_add"), key=f"q.{base}.fadd", icon=":material/add:", on_click=_add_filter,
                  args=(model, Filter(did, op, tuple(values))))


# ──────────────────────────────────────────────────────────────── show ──


def show(wh: Warehouse, url: Mapping[str, list[str]]) -> dict:
    """Draw the question mode for the page's query `url`; returns the query that reproduces what is shown."""
    guarded = page_guard(wh)
    with wh.reading():
        catalog = guarded(wh.catalog)
        if catalog.empty:
            st.info(t("no_data"))
            st.stop()
        model = guarded(model_for, wh)
        if model.problems:
            with st.expander(t("q_model_problems", n=len(model.problems)), icon=":material/warning:"):
                for p in model.problems:
                    st.caption(str(p))
        bases = [name for name, tm in model.tables.items() if tm.measures]
        if not bases:
            st.info(t("no_data"))
            st.stop()
        if url.get("base"):
            asked, problems = Question.from_params(url, model)
            if problems and link_names_hidden(wh, lambda m, _: Question.from_params(url, m)[1]):
                stop_no_access()
        else:
            asked, problems = default_question(model), []
        for p in problems:
            st.warning(p)
        params = _question(wh, model, bases, asked, guarded)
        send_view_by_email(wh, model, params)  # "메일로 받기": a subscription or alert on this question as a saved view
        return params


def _question(wh: Warehouse, model: Model, bases: list[str], asked: Question, guarded) -> dict:
    lang = _lang()
    seed("q_base", asked.base if asked.base in bases else bases[0])
    if FILTERS_KEY not in st.session_state:
        st.session_state[FILTERS_KEY] = list(asked.filters)
    st.session_state.setdefault(DRILL_KEY, 0)

    # ── what to count, how to split ───────────────────────────────────────────
    c1, c2, c3 = st.columns([1, 2, 2])
    base = c1.selectbox(t("q_base"), bases, key="q_base", format_func=words(lambda b: model.tables[b].label.text(lang)))
    if st.session_state.get("q_base_last", base) != base:  # another table: its filters no longer apply
        st.session_state[FILTERS_KEY] = []
        asked = default_question(model) if default_question(model).base == base else Question(base=base)
    st.session_state["q_base_last"] = base
    if asked.base != base:
        asked = Question(base=base)
    tm = model.tables[base]
    k = f"q.{base}."
    measure_ids = [m.id for m in model.measures_from(base)]
    count_measure = next((m.id for m in tm.measures.values() if m.agg == "count" and not m.where), None)
    seed(k + "m", [m for m in asked.measures if m in measure_ids] or measure_ids[:1])
    measures = c2.multiselect(t("q_measures"), measure_ids, key=k + "m", format_func=words(lambda v: measure_label(model, v)),
                              placeholder=t("q_measures_pick"))
    dim_ids = _splittable(model, base)
    seed(k + "d", [d for d in asked.dimensions if d in dim_ids])
    dims = c3.multiselect(t("q_dimensions"), dim_ids, key=k + "d", max_selections=3,
                          format_func=words(lambda v: dimension_label(model, base, v)), placeholder=t("q_dimensions_pick"))

    # ── when ─────────────────────────────────────────────────────────────────
    times = _time_columns(model, base)
    default_time = f"{base}.{tm.time}" if tm.time and f"{base}.{tm.time}" in times else (times[0] if times else None)
    time = period_token = grain = None
    compare = "none"
    period = None
    if times:
        c1, c2, c3, c4 = st.columns([1, 2, 1, 1])
        seed(k + "time", asked.time if asked.time in times else default_time)
        time = c1.selectbox(t("date_column"), times, key=k + "time", format_func=words(lambda v: dimension_label(model, base, v)))
        url_period = None
        if asked.period:
            try:
                url_period = dates.parse_period(asked.period, dates.today_seoul())
            except ValueError:
                url_period = None
        _apply_zoom(k)
        period = dates.period_picker(k + "period", t("period"), url_period, allow_all=True, container=c2)
        period_token = period.token if period is not None else None
        seed(k + "grain", asked.grain or "")
        grain = c3.selectbox(t("q_grain"), ["", *GRAINS], key=k + "grain",
                             format_func=words(lambda g: t("grain_" + (g or "none")))) or None
        seed(k + "cmp", asked.compare)
        compare = c4.selectbox(t("q_compare"), ["none", "previous", "year"], key=k + "cmp",
                               format_func=words(lambda c: t("cmp_" + c)))

    # ── filters ──────────────────────────────────────────────────────────────
    breadcrumbs(model, base)
    filter_adder(wh, model, base, count_measure, guarded)
    if st.session_state.get(MESSAGE_KEY):
        st.warning(st.session_state.pop(MESSAGE_KEY))

    # ── measure filter, sort, top N, view ────────────────────────────────────
    c1, c2, c3, c4, c5, c6 = st.columns([2, 1, 1, 2, 1, 1])
    mf0 = asked.measure_filters[0] if asked.measure_filters else None
    seed(k + "mf", mf0.measure if mf0 and mf0.measure in measure_ids else "")
    seed(k + "mfop", mf0.op if mf0 and mf0.op in MEASURE_FILTER_OPS else "ge")
    seed(k + "mfv", float(mf0.value) if mf0 else None)
    mf_measure = c1.selectbox(t("q_measure_filter"), ["", *measure_ids], key=k + "mf",
                              format_func=words(lambda v: measure_label(model, v) if v else t("mf_none")))
    mf_op = c2.selectbox(t("q_measure_filter_op"), MEASURE_FILTER_OPS, key=k + "mfop",
                         format_func=words(lambda v: t("mf_" + v)), disabled=not mf_measure)
    mf_value = c3.number_input(t("q_measure_filter_value"), key=k + "mfv", value=None, step=1.0,
                               disabled=not mf_measure)
    sort_options = ["", *measures, *dims]
    seed(k + "sort", asked.sort if asked.sort in sort_options else "")
    if st.session_state[k + "sort"] not in sort_options:
        st.session_state[k + "sort"] = ""
    sort = c4.selectbox(t("sort_by"), sort_options, key=k + "sort",
                        format_func=words(lambda v: (t("q_sort_default") if not v else measure_label(model, v)
                                                     if v in measure_ids else dimension_label(model, base, v))))
    seed(k + "desc", asked.descending)
    descending = c5.toggle(t("descending"), key=k + "desc")
    seed(k + "top", asked.top or 0)
    top = c6.number_input(t("q_top"), key=k + "top", min_value=0, max_value=MAX_TOP, step=1, help=t("q_top_help"))
    seed("q_view", asked.view)
    view = st.segmented_control(t("q_view"), ["summary", "pivot", "rows"], key="q_view",
                                format_func=words(lambda v: t("view_" + v))) or "summary"

    measure_filters = ()
    if mf_measure and mf_value is not None and math.isfinite(mf_value):
        measure_filters = (MeasureFilter(mf_measure, mf_op, float(mf_value)),)
    pivot_rows, pivot_columns = asked.pivot_rows, asked.pivot_columns
    question = Question(
        base=base, measures=tuple(measures), dimensions=tuple(dims), filters=tuple(st.session_state[FILTERS_KEY]),
        measure_filters=measure_filters, time=time if (period_token or grain) else None, period=period_token,
        grain=grain, compare=compare, sort=sort or None, descending=descending, top=int(top) or None, view=view,
        pivot_rows=pivot_rows, pivot_columns=pivot_columns)

    if period is not None and period.reversed:
        return question.to_params()  # the period control says what is wrong; nothing is queried
    if view == "pivot":
        question = _pivot(wh, model, question, guarded)
    elif view == "rows":
        _rows(wh, model, question, guarded)
    else:
        _summary(wh, model, question, guarded)
    return question.to_params()


def _answer(compiled_fn, guarded):
    """Compile and run, or show why the question cannot be answered (a message that says what to change)."""
    try:
        return compiled_fn()
    except (QuestionError, ModelError, FilterValueError) as exc:
        st.warning(t("q_cannot", msg=str(exc)))
        return None


def _filters_text(model: Model, q: Question) -> list[str]:
    lines = [describe_filter(model, q.base, f) for f in q.filters]
    if q.period:
        try:
            lines.append(f"{t('period')}: {dates.parse_period(q.period, dates.today_seoul()).describe()}")
        except ValueError:
            pass
    for mf in q.measure_filters:
        value = int(mf.value) if float(mf.value).is_integer() else mf.value
        lines.append(f"{measure_label(model, mf.measure)} {t('mf_' + mf.op)} {i18n.fmt_number(value)}")
    if q.compare != "none":
        lines.append(t("cmp_" + q.compare))
    return lines


ORDERED = ("weekday", "hour", "day", "week", "month", "month_of_year", "year", "bins")


def natural_order(model: Model, q: Question) -> Question:
    """Weekdays, hours, months and amount bands read in their own order unless someone sorts or ranks.

    A link stays reproducible: the rule depends only on the question.
    """
    if q.sort or q.top or q.measure_filters or not q.dimensions:
        return q
    if model.dimension(q.dimensions[0]).derive not in ORDERED:
        return q
    return replace(q, sort=q.dimensions[0], descending=False)


def _summary(wh: Warehouse, model: Model, q: Question, guarded) -> None:
    if not q.measures:
        st.info(t("q_measures_pick"))
        return
    q = natural_order(model, q)
    compiled = _answer(lambda: compile_summary(model, q), guarded)
    if compiled is None:
        return
    frame = guarded(compiled.run, wh)
    lang = _lang()
    main = q.sort if q.sort in q.measures else q.measures[0]
    drill = st.session_state[DRILL_KEY]

    if not q.dimensions and not q.grain:  # one number per measure
        if frame.empty:
            st.info(t("chart_empty"))
            return
        row = frame.iloc[0]
        cols = st.columns(min(4, len(q.measures)))
        for i, mid in enumerate(q.measures):
            m = model.measure(mid)
            value = row[mid]
            delta = None
            if q.compare != "none" and not i18n.is_missing(row.get(f"{mid}__delta_pct")):
                delta = f"{row[f'{mid}__delta_pct']:+.1f}% ({t('cmp_' + q.compare)})"
            cols[i % len(cols)].metric(m.label.text(lang), _fmt(value, m.format), delta=delta)
    else:
        chart_q = q
        if q.dimensions:  # never a thousand bars: the top groups and "others"
            cap = LINES_TOP if q.grain else result.CHART_TOP
            chart_q = replace(q, top=min(q.top or cap, cap))
        chart_frame = frame if chart_q == q else guarded(_answer(lambda: compile_summary(model, chart_q), guarded).run, wh)
        fig = result.figure(chart_frame, compiled.columns, main, lang, q.grain)
        if fig is not None and not chart_frame.empty:
            event = st.plotly_chart(fig, key=f"q_chart_{drill}", width="stretch", on_select="rerun",
                                    selection_mode=("points",))
            points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, Mapping) else \
                getattr(getattr(event, "selection", None), "points", [])
            code = next((p.get("customdata") for p in points if p.get("customdata") not in (None, "")), None)
            if q.grain and isinstance(code, (list, tuple)) and code:  # a point of a time series: zoom into it
                bucket, line = code[0], (code[1] if len(code) > 1 else None)
                st.session_state[ZOOM_KEY] = (bucket, q.grain)
                if line not in (None, "") and q.dimensions:
                    _add_filter(model, Filter(q.dimensions[0], "in", (str(line),)))
                else:
                    st.session_state[DRILL_KEY] = drill + 1
                st.rerun()
            elif code is not None and q.dimensions and not q.grain:
                _add_filter(model, Filter(q.dimensions[0], "in", (str(code),)))
                st.rerun()
            if q.grain:
                st.caption(t("q_zoom_hint", finer=t("grain_" + dates.FINER[q.grain]).lower()))
            elif q.dimensions:
                st.caption(t("q_drill_hint"))
    if frame.empty:
        st.info(t("chart_empty"))
        return
    screen = result.shown(frame, compiled.columns, lang)
    with st.container(key="q_result"):
        event = st.dataframe(screen, column_config=result.column_config(frame, compiled.columns, lang),
                             hide_index=True, width="stretch", key=f"q_table_{drill}", placeholder=i18n.EMPTY,
                             on_select="rerun" if q.dimensions else "ignore", selection_mode="single-row")
    rows = getattr(getattr(event, "selection", None), "rows", None) if q.dimensions else None
    if rows:
        picked = frame.iloc[rows[0]]
        if not bool(picked.get("others", False)):
            for did in q.dimensions:
                value = picked[did]
                if not i18n.is_missing(value):
                    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
                    _add_filter(model, Filter(did, "in", (text,)))
            st.rerun()
    st.caption(t("q_result_rows", n=i18n.fmt_number(len(frame))))
    views = result.column_views(frame, compiled.columns, lang)
    downloads.download_buttons(lambda: pa.Table.from_pandas(screen, preserve_index=False), views,
                               basename=f"{q.base}_question", filters_text=_filters_text(model, q),
                               total_rows=len(screen), key="q_dl", title=model.tables[q.base].label.text(lang),
                               raw_table=lambda: result.raw_file(frame, compiled.columns))


def _fmt(value, fmt: str | None) -> str:
    if i18n.is_missing(value):
        return i18n.EMPTY
    if fmt == "krw":
        return i18n.fmt_krw(value)
    if fmt in ("pct", "decimal"):
        return i18n.fmt_number(value, 1) + ("%" if fmt == "pct" else "")
    return i18n.fmt_number(value, 0 if float(value).is_integer() else 1)


def _pivot(wh: Warehouse, model: Model, q: Question, guarded) -> Question:
    base = q.base
    options = _splittable(model, base)
    k = f"q.{base}."
    seed(k + "pr", [d for d in q.pivot_rows if d in options] or list(q.dimensions[:1]))
    seed(k + "pc", [d for d in q.pivot_columns if d in options] or list(q.dimensions[1:2]))
    c1, c2 = st.columns(2)
    rows = c1.multiselect(t("pivot_rows"), options, key=k + "pr", max_selections=2,
                          format_func=words(lambda v: dimension_label(model, base, v)))
    cols = c2.multiselect(t("pivot_columns"), options, key=k + "pc", max_selections=2,
                          format_func=words(lambda v: dimension_label(model, base, v)))
    q = replace(q, pivot_rows=tuple(rows), pivot_columns=tuple(cols))
    if not q.measures:
        st.info(t("q_measures_pick"))
        return q
    compiled = _answer(lambda: compile_pivot(model, q, rows, cols), guarded)
    if compiled is None:
        return q
    frame = guarded(compiled.run, wh)
    lang = _lang()
    grids = []
    for mid in q.measures:
        m = model.measure(mid)
        grid = result.pivot_table(frame, compiled.columns, mid, rows, cols, lang)
        if m.format in ("pct", "decimal"):
            grid.iloc[:, 1:] = grid.iloc[:, 1:].astype(float).round(1)
        else:
            grid.iloc[:, 1:] = grid.iloc[:, 1:].astype(float).round(0)
        grids.append((m.label.text(lang), grid))
        st.markdown(f"**{m.label.text(lang)}**")
        with st.container(key=f"q_pivot_{len(grids) - 1}"):
            st.dataframe(grid, hide_index=True, width="stretch", placeholder=i18n.EMPTY,
                         column_config={c: st.column_config.NumberColumn(c, format="%.1f" if m.format in ("pct", "decimal") else "localized")
                                        for c in grid.columns[1:]})
    sheet, filters_text, title = _pivot_sheet(grids), _filters_text(model, q), model.tables[base].label.text(lang)

    def build() -> tuple[bytes, int]:
        with i18n.language(lang):  # the click runs outside the page run
            return downloads.xlsx_bytes(sheet, filters_text, title), sheet.num_rows

    downloads.audited_button(t("download_xlsx"), build, file_name=f"{base}_pivot.xlsx", mime=downloads.MIME_XLSX,
                             key="q_pivot_xlsx", target=title, filters_text=filters_text, icon=":material/table:")
    return q


def _pivot_sheet(grids: list[tuple[str, pd.DataFrame]]) -> pa.Table:
    """One sheet as shown: each measure's grid under its name (one grid: the grid itself)."""
    if len(grids) == 1:
        _, grid = grids[0]
        return pa.Table.from_pandas(grid.astype({c: "float64" for c in grid.columns[1:]}), preserve_index=False)
    stacked = []
    for name, grid in grids:
        part = grid.copy()
        part.insert(0, t("q_measure"), name)
        stacked.append(part)
    return pa.Table.from_pandas(pd.concat(stacked, ignore_index=True), preserve_index=False)


def _rows(wh: Warehouse, model: Model, q: Question, guarded) -> None:
    compiled = _answer(lambda: compile_rows(model, q, wh.app.max_display_rows), guarded)
    if compiled is None:
        return
    frame = guarded(compiled.run, wh)
    lang = _lang()
    screen = result.shown(frame, compiled.columns, lang)
    with st.container(key="q_rows"):
        st.dataframe(screen, column_config=result.column_config(frame, compiled.columns, lang), hide_index=True,
                     width="stretch", placeholder=i18n.EMPTY)
    st.caption(t("q_rows_shown", n=i18n.fmt_number(len(frame))))
    views = result.column_views(frame, compiled.columns, lang)

    def all_rows() -> tuple[pd.DataFrame, tuple]:
        full = compile_rows(model, q, wh.app.max_download_rows)
        return wh.query_uncached(full.sql, full.params), full.columns

    def fetch() -> pa.Table:
        data, columns = all_rows()
        return pa.Table.from_pandas(result.shown(data, columns, lang), preserve_index=False)

    downloads.download_buttons(fetch, views, basename=f"{q.base}_rows", filters_text=_filters_text(model, q),
                               key="q_rows_dl", title=model.tables[q.base].label.text(lang),
                               raw_table=lambda: result.raw_file(*all_rows()))
