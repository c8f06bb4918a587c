"""Explore's table mode: pick a table, filter it, chart it, look at the rows, download them.

The view people relied on before the question builder, kept whole: any
table, filters on its own columns, a chart, the rows in a chosen order and
the same rows as files. Shared links of that view (`?table=…`) open here.

Widgets only, like a page; `show` draws the mode and returns the query
parameters that reproduce it (pages/explore.py writes them to the URL). All
filtering and aggregation run in DuckDB through dashboard/warehouse.py; the
rows are shown and saved through the same column views (dashboard/tables.py),
so the files carry what the screen shows.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd
import streamlit as st

from dashboard import charts, dates, downloads, filters, i18n, tables
from dashboard.charts import ChartSpec
from dashboard.filters import Filter, ViewState
from dashboard.access.enforce import link_names_hidden, stop_no_access
from dashboard.i18n import t
from dashboard.page_guard import page_guard
from dashboard.warehouse import TableInfo, Warehouse

LOW_CARDINALITY = 30  # text columns with at most this many values get a multiselect with counts


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


def show(wh: Warehouse, url: Mapping[str, list[str]]) -> dict:
    """Draw the table mode for the page's query `url`; returns the query that reproduces what is shown."""
    guarded = page_guard(wh)
    # One connection for the whole page run (opened on the first uncached query, closed at the end).
    with wh.reading():
        catalog = guarded(wh.catalog)
        if catalog.empty:
            st.info(t("no_data"))
            st.stop()

        state, problems = filters.parse_state(url, catalog.tables)
        if problems and link_names_hidden(wh, lambda _, c: filters.parse_state(url, c.tables)[1]):
            stop_no_access()

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

        descriptions = {c.name: wh.description(table, c.name) for c in info.columns}
        views = tables.views_for_table(info, descriptions)
        labels: dict[str, str] = {v.name: v.label for v in views}
        spec_of_table = wh.table_spec(table)
        primary_key = [c for c in (spec_of_table.primary_key if spec_of_table else ()) if info.column(c) is not None]

        def col_label(name: str) -> str:
            return labels.get(name, name) if name else t("none")

        def existing(op: str, column: str) -> Filter | None:
            return next((f for f in state.filters if f.op == op and f.column == column), None)

        k = f"x.{table}."  # widget keys are per table: switching tables never mixes their filters
        chosen: list[Filter] = []

        # ── filters ────────────────────────────────────────────────────────────────
        st.subheader(t("filters"))
        time_cols = [c.name for c in info.columns_of("time")]
        period: dates.Period | None = None
        if time_cols:
            url_period = next((f for f in state.filters if f.op == "period" and f.column in time_cols), None)
            preferred = next((c for c in ("created_at", "joined_at", "issued_at") if c in time_cols), time_cols[0])
            seed(k + "period_col", url_period.column if url_period else preferred)
            c1, c2 = st.columns([1, 2])
            period_col = c1.selectbox(t("date_column"), time_cols, key=k + "period_col", format_func=col_label)
            period = dates.period_picker(k + "period", t("period"), filters.period_of(url_period, filters.today_seoul())
                                         if url_period else None, allow_all=True, container=c2)
            if period is not None:
                chosen.append(Filter(period_col, "period", (period.token,)))

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
                        whole = "INT" in info.column(name).type.upper()  # ids and counts: "10004", not "10004.00"
                        fmt = {"format": "%d", "step": 1} if whole else {}
                        lo = a.number_input(f"{col_label(name)} — {t('min')}", key=k + "lo." + name, value=None, **fmt)
                        hi = b.number_input(f"{col_label(name)} — {t('max')}", key=k + "hi." + name, value=None, **fmt)
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

        # A start after the end: the period control says so; nothing is queried (an empty table would mislead).
        blocked = period is not None and period.reversed
        where, params = filters.where_clause(chosen, info)
        matching = 0
        if not blocked:
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
            points = None if blocked else guarded(wh.query, chart_sql, chart_params)
            if points is not None and points.empty:
                st.info(t("chart_empty"))
            elif points is not None:
                if len(points) > charts.MAX_POINTS:
                    st.caption(t("chart_truncated", n=i18n.fmt_number(charts.MAX_POINTS)))
                st.plotly_chart(charts.figure(points, spec, labels), key="x_chart", width="stretch")

        # ── rows ───────────────────────────────────────────────────────────────────
        st.subheader(t("data"))
        seed(k + "sort", state.sort or "")
        seed(k + "desc", state.desc)
        default_order = t("sort_default", column=", ".join(labels[c] for c in primary_key)) if primary_key else t("table_order")
        c1, c2 = st.columns([3, 1])
        sort = c1.selectbox(t("sort_by"), ["", *all_cols], key=k + "sort",
                            format_func=lambda v: col_label(v) if v else default_order) or None
        desc = c2.toggle(t("descending"), key=k + "desc")
        if not blocked:
            cap = wh.app.max_display_rows
            rows = guarded(wh.query, *filters.rows_query(info, where, params, sort, desc, cap, default_order=primary_key))
            tables.show(rows, views, key="x_rows")
            st.caption(t("shown_rows", shown=i18n.fmt_number(len(rows)), total=i18n.fmt_number(matching)))

            numbers = filters.summary_columns(info)
            summary_sql = filters.summary_sql(info, where)
            if summary_sql and matching:
                with st.expander(t("summary")):
                    stats = guarded(wh.query, summary_sql, params).iloc[0]
                    lines = []
                    for i, c in enumerate(numbers):
                        money = i18n.fmt_krw if c.name.endswith("_krw") else i18n.fmt_number
                        lines.append({
                            t("stat_column"): labels[c.name],
                            t("stat_count"): i18n.fmt_number(stats[f"c{i}"]),
                            t("stat_sum"): money(stats[f"s{i}"]),
                            t("stat_avg"): i18n.fmt_number(stats[f"a{i}"], 2),
                            t("stat_min"): money(stats[f"lo{i}"]),
                            t("stat_max"): money(stats[f"hi{i}"]),
                        })
                    st.dataframe(pd.DataFrame(lines), hide_index=True, width="stretch", placeholder=i18n.EMPTY)

            # ── downloads ──────────────────────────────────────────────────────────
            st.subheader(t("download"))
            download_sql, download_params = filters.rows_query(info, where, params, sort, desc, wh.app.max_download_rows,
                                                               local_time=True, default_order=primary_key)
            downloads.download_buttons(
                lambda: wh.query_arrow(download_sql, download_params),
                views,
                basename=filters.file_basename(table, chosen),
                filters_text=filters.describe(chosen, info, labels),
                total_rows=matching,
                max_rows=wh.app.max_download_rows,
                title=table,
                order_note=tables.sort_caption(sort, desc, views, default_order),
            )

    view = ViewState(table=table, filters=tuple(chosen), chart=spec.as_params(), sort=sort, desc=desc)
    return filters.state_params(view)  # `table=` in the address is what opens this mode
