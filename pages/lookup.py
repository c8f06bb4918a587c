"""Look up one card or merchant: its attributes, its months, and one timeline of everything related.

Layout and widgets only; what may be typed and the SQL live in
dashboard/explore_lookup.py. The URL is the state (`?what=card&id=17`,
`?what=merchant&q=카페`), so a look-up is a link like any other view; the
timeline on screen and in the files is the same statement.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, downloads, explore_lookup as lookup, explore_saved, i18n, links, tables
from dashboard.charts import VALUES_AS_GIVEN, ChartSpec
from dashboard.i18n import t
from dashboard.page_guard import page_guard
from dashboard.warehouse import app_warehouse

PAGE = "lookup"
PREFIX = "lk_"

wh = app_warehouse()
st.title(t("page_lookup"))
links.copy_link_button()
guarded = page_guard(wh)


def seed(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


with wh.reading():
    catalog = guarded(wh.catalog)
    if catalog.empty:
        st.info(t("no_data"))
        st.stop()
    url = explore_saved.open_from_url(wh, PAGE, links.page_params(), (PREFIX,))
    first = lambda key: (url.get(key) or [""])[-1]  # noqa: E731

    kinds = [k for k, s in lookup.SUBJECTS.items() if lookup.available(catalog, s)]
    if not kinds:
        st.info(t("lookup_no_table", table=", ".join(s.table for s in lookup.SUBJECTS.values())))
        st.stop()
    st.caption(t("lookup_intro"))
    seed(PREFIX + "what", first("what") if first("what") in kinds else kinds[0])
    c1, c2 = st.columns([1, 3])
    what = c1.radio(t("lookup_kind"), kinds, key=PREFIX + "what", format_func=lambda k: t("lookup_" + k),
                    horizontal=True)
    subject = lookup.SUBJECTS[what]
    info = catalog.tables[subject.table]
    seed(PREFIX + "q", first("id") or first("q"))
    typed = c2.text_input(t(f"lookup_{what}_query"), key=PREFIX + "q", max_chars=200).strip()

    state: dict[str, str] = {"what": what}
    key_value: int | None = None
    if typed:
        try:
            key_value = lookup.parse_id(typed)
        except lookup.LookupInputError as exc:
            if subject.name_column is None or info.column(subject.name_column) is None:
                st.warning(t(exc.key, **exc.values))
            else:  # a merchant by (a part of) its name
                matches = guarded(wh.query, lookup.name_search_sql(info, subject), [lookup.like_pattern(typed)])
                state["q"] = typed
                if matches.empty:
                    st.warning(t("lookup_not_found", value=typed[:60], what=t("lookup_" + what)))
                elif len(matches) == 1:
                    key_value = int(matches.iat[0, 0])
                else:
                    st.caption(t("lookup_many", n=i18n.fmt_number(len(matches))))
                    ids = [int(v) for v in matches[subject.key]]
                    names = dict(zip(ids, matches[subject.name_column]))
                    wanted = first("id")
                    seed(PREFIX + "pick", int(wanted) if wanted.isdigit() and int(wanted) in ids else ids[0])
                    if st.session_state[PREFIX + "pick"] not in ids:
                        st.session_state[PREFIX + "pick"] = ids[0]
                    key_value = st.selectbox(t("lookup_pick"), ids, key=PREFIX + "pick",
                                             format_func=lambda v: f"{names[v]} ({v})")
        if key_value is not None:
            state["id"] = str(key_value)

    if key_value is not None:
        row = guarded(wh.query, lookup.attributes_sql(info, subject.key), [key_value])
        if row.empty:
            st.warning(t("lookup_not_found", value=str(key_value), what=t("lookup_" + what)))
        else:
            # ── attributes ─────────────────────────────────────────────────────
            st.subheader(t("lookup_attributes"))
            descriptions = {c.name: wh.description(subject.table, c.name) for c in info.columns}
            views = tables.views_for_table(info, descriptions)
            record = row.iloc[0]
            cols = st.columns(min(4, len(views)))
            for i, v in enumerate(views):
                cols[i % len(cols)].markdown(f"**{v.label}**  \n{i18n.value_label(v.name, record[v.name])}")

            # ── months ─────────────────────────────────────────────────────────
            monthly = lookup.monthly_sql(catalog, subject)
            timeline = lookup.timeline_sql(catalog, subject, wh.app.max_display_rows)
            if monthly is None or timeline is None:
                st.info(t("lookup_empty"))
            else:
                sql, binds = monthly
                months = guarded(wh.query, sql, [key_value] * binds)
                st.subheader(t("lookup_over_time"))
                if months.empty:
                    st.info(t("lookup_empty"))
                else:
                    labels = {"x": i18n.column_label("month"), "n": t("agg_count"), "color": i18n.column_label("measure")}
                    spec = ChartSpec(kind="bar", x="x", y="n", color="color", agg=VALUES_AS_GIVEN, bucket="month")
                    fig = charts.figure(months.rename(columns={"n": "value"}), spec, labels)
                    fig.update_layout(height=280)
                    st.plotly_chart(fig, key=PREFIX + "months", width="stretch")

                # ── timeline ───────────────────────────────────────────────────
                st.subheader(t("lookup_timeline"))
                count_sql, binds = lookup.timeline_count_sql(catalog, subject)
                total = int(guarded(wh.scalar, count_sql, [key_value] * binds) or 0)
                sql, binds = timeline
                events = guarded(wh.query, sql, [key_value] * binds)
                st.markdown(t("lookup_timeline_n", n=i18n.fmt_number(total)))
                descriptions = {"event_at": t("event_at"), "event_id": t("event_id"), "measure": t("event_kind"),
                                "amount_krw": t("event_amount_krw"), "card_id": t("event_card_id"),
                                "merchant_id": t("event_merchant_id")}
                # The subject's own key is the same on every line: leave it out of the screen and the files.
                shown = [c for c in lookup.TIMELINE_COLUMNS if c != subject.key]
                views = [v for v in tables.views_for_frame(events[list(lookup.TIMELINE_COLUMNS)], descriptions)
                         if v.name in shown]
                if total == 0:
                    st.info(t("lookup_empty"))
                else:
                    tables.show(events, views, key="lk_timeline")
                    st.caption(t("shown_rows", shown=i18n.fmt_number(len(events)), total=i18n.fmt_number(total)))
                    st.subheader(t("download"))
                    file_sql, binds = lookup.timeline_sql(catalog, subject, wh.app.max_download_rows, local_time=True)
                    downloads.download_buttons(
                        lambda: wh.query_arrow(file_sql, [key_value] * binds),
                        views,
                        basename=f"{subject.kind}_{key_value}_timeline",
                        filters_text=[f"{t('lookup_' + what)}: {key_value}"],
                        total_rows=total,
                        max_rows=wh.app.max_download_rows,
                        title=subject.table,
                        key="lk_dl",
                    )

    explore_saved.panel(wh, PAGE, state, key="lk_sv")

links.set_query(state)
