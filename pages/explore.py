"""Explore: pick a table, filter it, chart it, look at the rows, download them.

Layout and widgets only. The URL is the state (dashboard/filters.py): widgets
start from the query parameters, and every change is written back, so the
address bar is always a link that reproduces this view. All filtering and
aggregation run in DuckDB through dashboard/warehouse.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, downloads, filters, i18n
from dashboard.charts import ChartSpec
from dashboard.filters import Filter, ViewState
from dashboard.i18n import t
from dashboard.page_guard import page_guard
from dashboard.warehouse import TableInfo, app_warehouse

LOW_CARDINALITY = 30  # text columns with at most this many values get a multiselect with counts
LAST_URL_KEY = "explore_last_params"  # restores the view when someone comes back through the sidebar

wh = app_warehouse()
st.title(t("page_explore"))


guarded = page_guard(wh)


def once(key: str, compute):
    """A value computed once per browser session.

    Option labels with counts must not change under a person's hands: when a
    selectbox's or multiselect's labels change (new data landed, so new
    counts), the browser resets the widget to its first option. So the counts
    beside the options are those of the moment the table was first opened.
    """
    frozen = st.session_state.setdefault("x_frozen", {})
    if key not in frozen:
        frozen[key] = compute()
    return frozen[key]


def seed(key: str, value) -> None:
    """Give a widget its starting value from the URL, once (afterwards the widget owns it)."""
    if key not in st.session_state:
        st.session_state[key] = value


# One connection for the whole page run (opened on the first uncached query, closed at the end).
with wh.reading():
    catalog = guarded(wh.catalog)
    if catalog.empty:
        st.info(t("no_data"))
        st.stop()

    url = {k: st.query_params.get_all(k) for k in st.query_params}
    if not url and LAST_URL_KEY in st.session_state:
        url = st.session_state[LAST_URL_KEY]
    state, problems = filters.parse_state(url, catalog.tables)

    # ── table ──────────────────────────────────────────────────────────────────
    names = list(catalog.tables)
    seed("x_table", state.table)
    if st.session_state["x_table"] not in names:
        st.session_state["x_table"] = names[0]


    def table_label(name: str) -> str:
        desc = i18n.pick(wh.description(name)) if wh.description(name) else ""
        rows = once(f"rows.{name}", lambda: catalog.tables[name].row_count)
        count = t("rows_n", n=i18n.fmt_number(rows))
        return f"{name} — {desc} ({count})" if desc else f"{name} ({count})"


    table = st.selectbox(t("table"), names, key="x_table", format_func=table_label)
    info: TableInfo = catalog.tables[table]
    if table != state.table:
        state, problems = ViewState(table=table), []
    for message in problems:
        st.warning(message)

    labels: dict[str, str] = {}
    for c in info.columns:
        label = i18n.column_label(c.name, wh.description(table, c.name))
        labels[c.name] = label if label not in labels.values() else f"{label} ({c.name})"


    def col_label(name: str) -> str:
        return labels.get(name, name) if name else t("none")


    def existing(op: str, column: str) -> Filter | None:
        return next((f for f in state.filters if f.op == op and f.column == column), None)


    k = f"x.{table}."  # widget keys are per table: switching tables never mixes their filters
    chosen: list[Filter] = []

    # ── filters ────────────────────────────────────────────────────────────────
    st.subheader(t("filters"))
    time_cols = [c.name for c in info.columns_of("time")]
    if time_cols:
        url_period = next((f for f in state.filters if f.op == "period" and f.column in time_cols), None)
        preferred = next((c for c in ("created_at", "joined_at", "issued_at") if c in time_cols), time_cols[0])
        seed(k + "period_col", url_period.column if url_period else preferred)
        preset_options = ["", *filters.PRESETS, "custom"]
        if url_period is None:
            seed(k + "preset", "")
        elif len(url_period.values) == 1:
            seed(k + "preset", url_period.values[0])
        else:
            seed(k + "preset", "custom")
            seed(k + "range", (url_period.values[0], url_period.values[1]))
        today = filters.today_seoul()
        seed(k + "range", (today - timedelta(days=29), today))
        c1, c2, c3 = st.columns([1, 1, 2])
        period_col = c1.selectbox(t("date_column"), time_cols, key=k + "period_col", format_func=col_label)
        preset = c2.selectbox(t("period"), preset_options, key=k + "preset",
                              format_func=lambda p: t("no_date_filter") if p == "" else t("preset_" + p))
        if preset == "custom":
            picked = c3.date_input(t("date_range"), key=k + "range", format="YYYY-MM-DD")
            if isinstance(picked, (tuple, list)) and len(picked) == 2 and all(isinstance(d, date) for d in picked):
                start, end = picked
                chosen.append(Filter(period_col, "period", (min(start, end), max(start, end))))
            else:
                st.warning(t("bad_date", value=", ".join(str(d) for d in (picked if isinstance(picked, (tuple, list)) else [picked]))))
        elif preset:
            start, end = filters.preset_range(preset, today)
            c3.caption(f"{start.isoformat()} – {end.isoformat()}")
            chosen.append(Filter(period_col, "period", (preset,)))

    # Low-cardinality text (and yes/no) columns: a multiselect each, with counts.
    choice_cols, other_cols = [], []
    for c in info.columns:
        if c.kind in ("text", "bool"):
            n = guarded(wh.scalar, filters.distinct_count_sql(info, c.name))
            (choice_cols if n is not None and n <= LOW_CARDINALITY else other_cols).append(c.name)
        elif c.kind == "number":
            other_cols.append(c.name)
    if choice_cols:
        cols = st.columns(min(4, len(choice_cols)))
        for i, name in enumerate(choice_cols):
            counts = once(f"counts.{table}.{name}",
                          lambda: guarded(wh.query, filters.value_counts_sql(info, name, LOW_CARDINALITY + 20)))
            kind = info.column(name).kind
            options = [("true" if v else "false") if kind == "bool" else str(v) for v in counts["value"]]
            count_of = dict(zip(options, counts["n"]))
            url_in = existing("in", name)
            wanted = list(url_in.values) if url_in else []
            options += [v for v in wanted if v not in options]
            seed(k + "in." + name, [v for v in wanted if v in options])

            def fmt(v, name=name, kind=kind, count_of=count_of):
                text = t(v) if kind == "bool" else i18n.value_label(name, v)
                return f"{text} ({i18n.fmt_number(count_of.get(v, 0))})"

            picked = cols[i % len(cols)].multiselect(col_label(name), options, key=k + "in." + name, format_func=fmt,
                                                     placeholder=t("choose"))
            if picked:
                chosen.append(Filter(name, "in", tuple(picked)))

    # Everything else (numbers, free text) on request, so the page stays short.
    if other_cols:
        seed(k + "more", [f.column for f in state.filters if f.op in ("range", "has") and f.column in other_cols])
        with st.expander(t("more_filters"), expanded=bool(st.session_state[k + "more"])):
            more = st.multiselect(t("more_filters"), other_cols, key=k + "more", format_func=col_label,
                                  label_visibility="collapsed", placeholder=t("choose_columns"))
            for name in more:
                if info.column(name).kind == "number":
                    url_range = existing("range", name)
                    lo0, hi0 = url_range.values if url_range else (None, None)
                    seed(k + "lo." + name, lo0)
                    seed(k + "hi." + name, hi0)
                    a, b = st.columns(2)
                    lo = a.number_input(f"{col_label(name)} — {t('min')}", key=k + "lo." + name, value=None)
                    hi = b.number_input(f"{col_label(name)} — {t('max')}", key=k + "hi." + name, value=None)
                    lo = None if lo is None else (int(lo) if float(lo).is_integer() else lo)
                    hi = None if hi is None else (int(hi) if float(hi).is_integer() else hi)
                    if lo is not None and hi is not None and lo > hi:
                        st.warning(t("bad_range", column=col_label(name)))
                    elif lo is not None or hi is not None:
                        chosen.append(Filter(name, "range", (lo, hi)))
                else:
                    url_has = existing("has", name)
                    seed(k + "has." + name, url_has.values[0] if url_has else "")
                    text = st.text_input(f"{col_label(name)} — {t('contains')}", key=k + "has." + name, max_chars=200)
                    if text.strip():
                        chosen.append(Filter(name, "has", (text.strip(),)))

    where, params = filters.where_clause(chosen, info)
    matching = int(guarded(wh.scalar, filters.count_sql(info, where), params) or 0)
    total = max(info.row_count, matching)  # the catalog's count (same data version; a batch may land in between)
    st.markdown(t("row_count", n=i18n.fmt_number(matching), total=i18n.fmt_number(total)))

    # ── chart ──────────────────────────────────────────────────────────────────
    st.subheader(t("chart"))
    spec, chart_problems = charts.spec_from_params(state.chart, info)
    for message in chart_problems:
        st.warning(message)
    all_cols = info.column_names
    group_cols = [c.name for c in info.columns if c.kind in ("text", "bool")]
    seed(k + "kind", spec.kind)
    seed(k + "x", spec.x if spec.x in all_cols else all_cols[0])
    seed(k + "bucket", spec.bucket)
    seed(k + "agg", spec.agg)
    seed(k + "y", spec.y or "")
    seed(k + "color", spec.color if spec.color in group_cols else "")
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    kind = c1.selectbox(t("chart_kind"), charts.KINDS, key=k + "kind", format_func=lambda v: t("kind_" + v))
    x = c2.selectbox(t("x_axis"), all_cols, key=k + "x", format_func=col_label)
    bucket = c3.selectbox(t("bucket"), charts.BUCKETS, key=k + "bucket", format_func=lambda v: t("bucket_" + v),
                          disabled=info.column(x).kind != "time")
    agg = c4.selectbox(t("aggregation"), charts.AGGS, key=k + "agg", format_func=lambda v: t("agg_" + v))
    y = c5.selectbox(t("y_axis"), ["", *all_cols], key=k + "y", format_func=col_label)
    color = c6.selectbox(t("color"), ["", *group_cols], key=k + "color", format_func=col_label)
    spec = ChartSpec(kind=kind, x=x, y=y or None, color=color or None, agg=agg, bucket=bucket)
    try:
        chart_sql, chart_params = charts.chart_query(spec, info, where, params)
    except ValueError as exc:
        st.info(str(exc))
    else:
        points = guarded(wh.query, chart_sql, chart_params)
        if points.empty:
            st.info(t("chart_empty"))
        else:
            if len(points) > charts.MAX_POINTS:
                st.caption(t("chart_truncated", n=i18n.fmt_number(charts.MAX_POINTS)))
            st.plotly_chart(charts.figure(points, spec, labels), key="x_chart", width="stretch")

    # ── rows ───────────────────────────────────────────────────────────────────
    st.subheader(t("data"))
    seed(k + "sort", state.sort or "")
    seed(k + "desc", state.desc)
    c1, c2 = st.columns([3, 1])
    sort = c1.selectbox(t("sort_by"), ["", *all_cols], key=k + "sort", format_func=col_label) or None
    desc = c2.toggle(t("descending"), key=k + "desc")
    cap = wh.app.max_display_rows
    rows = guarded(wh.query, filters.rows_sql(info, where, sort, desc, cap), params)
    shown = rows.copy()
    for name in shown.columns:
        if i18n.has_value_labels(name):
            shown[name] = shown[name].map(lambda v, name=name: i18n.value_label(name, v))
    config = {}
    for c in info.columns:
        if c.kind == "number":
            config[c.name] = st.column_config.NumberColumn(labels[c.name], format="localized")
        elif c.kind == "time" and not c.is_date:
            config[c.name] = st.column_config.DatetimeColumn(labels[c.name], format="YYYY-MM-DD HH:mm:ss")
        else:
            config[c.name] = st.column_config.Column(labels[c.name])
    st.dataframe(shown, column_config=config, hide_index=True, width="stretch", key="x_rows")
    st.caption(t("shown_rows", shown=i18n.fmt_number(len(rows)), total=i18n.fmt_number(matching)))

    summary_sql = filters.summary_sql(info, where)
    if summary_sql and matching:
        with st.expander(t("summary")):
            stats = guarded(wh.query, summary_sql, params).iloc[0]
            lines = []
            for i, c in enumerate(info.columns_of("number")):
                money = i18n.fmt_krw if c.name.endswith("_krw") else i18n.fmt_number
                lines.append({
                    t("stat_column"): labels[c.name],
                    t("stat_count"): i18n.fmt_number(stats[f"c{i}"]),
                    t("stat_sum"): money(stats[f"s{i}"]) if pd.notna(stats[f"s{i}"]) else "—",
                    t("stat_avg"): i18n.fmt_number(stats[f"a{i}"], 2) if pd.notna(stats[f"a{i}"]) else "—",
                    t("stat_min"): money(stats[f"lo{i}"]) if pd.notna(stats[f"lo{i}"]) else "—",
                    t("stat_max"): money(stats[f"hi{i}"]) if pd.notna(stats[f"hi{i}"]) else "—",
                })
            st.dataframe(pd.DataFrame(lines), hide_index=True, width="stretch")

    # ── downloads ──────────────────────────────────────────────────────────────
    st.subheader(t("download"))
    described = filters.describe(chosen, info, labels)
    download_sql = filters.rows_sql(info, where, sort, desc, wh.app.max_download_rows, local_time=True)
    downloads.download_buttons(
        lambda: wh.query_arrow(download_sql, params),
        basename=filters.file_basename(table, chosen),
        filters_text=described,
        total_rows=matching,
        max_rows=wh.app.max_download_rows,
        title=table,
        headers=[labels[c.name] for c in info.columns],
    )
    st.caption(t("share_link"))

# ── the URL follows the view ───────────────────────────────────────────────
view = ViewState(table=table, filters=tuple(chosen), chart=spec.as_params(), sort=sort, desc=desc)
new_params = filters.state_params(view)
st.session_state[LAST_URL_KEY] = {key: (v if isinstance(v, list) else [v]) for key, v in new_params.items()}
current = {key: st.query_params.get_all(key) for key in st.query_params}
normalised = {key: (v if isinstance(v, list) else [v]) for key, v in new_params.items()}
if current != normalised:
    st.query_params.from_dict(new_params)
