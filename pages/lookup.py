"""Look up one card or merchant: its attributes, its months, and one timeline of everything related.

Layout and widgets only. The statements come from the query compiler
(`compile_lookup`, `compile_lookup_search`); what may be looked up and how a
timeline line reads, from dashboard/explore_lookup.py. The URL is the state
(`?what=card&id=17`, `?what=merchant&q=카페`), so a look-up is a link like
any other view; the timeline on screen and in the files is the same rows.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import streamlit as st

from dashboard import charts, downloads, explore_lookup as lookup, explore_result as result, explore_saved, i18n, links
from dashboard.access.enforce import link_names_hidden, stop_no_access
from dashboard.charts import VALUES_AS_GIVEN, ChartSpec
from dashboard.i18n import t
from dashboard.model import model_for
from dashboard.page_guard import page_guard
from dashboard.questions import QuestionError, compile_lookup, compile_lookup_search
from dashboard.warehouse import app_warehouse

PAGE = "lookup"
PREFIX = "lk_"

wh = app_warehouse()
st.title(t("page_lookup"))
links.copy_link_button()
guarded = page_guard(wh)
lang = i18n.lang()


def seed(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


with wh.reading():
    catalog = guarded(wh.catalog)
    if catalog.empty:
        st.info(t("no_data"))
        st.stop()
    model = guarded(model_for, wh)
    url = explore_saved.open_from_url(wh, PAGE, links.page_params(), (PREFIX,))
    first = lambda key: (url.get(key) or [""])[-1]  # noqa: E731

    kinds = [k for k, s in lookup.SUBJECTS.items() if lookup.available(model, s)]
    asked_kind = lookup.SUBJECTS.get(first("what"))
    if asked_kind is not None and first("what") not in kinds and link_names_hidden(
            wh, lambda m, _: [] if lookup.available(m, asked_kind) else ["not available"]):
        stop_no_access()  # a shared link to a card's history, opened by a role that cannot see cards
    if not kinds:
        st.info(t("lookup_no_table", table=", ".join(s.table for s in lookup.SUBJECTS.values())))
        st.stop()
    st.caption(t("lookup_intro"))
    seed(PREFIX + "what", first("what") if first("what") in kinds else kinds[0])
    c1, c2 = st.columns([1, 3])
    what = c1.radio(t("lookup_kind"), kinds, key=PREFIX + "what", format_func=lambda k: t("lookup_" + k),
                    horizontal=True)
    subject = lookup.SUBJECTS[what]
    tm = model.tables[subject.table]
    key_column = tm.primary_key[0]
    seed(PREFIX + "q", first("id") or first("q"))
    typed = c2.text_input(t(f"lookup_{what}_query"), key=PREFIX + "q", max_chars=200).strip()

    state: dict[str, str] = {"what": what}
    key_value: int | None = None
    if typed:
        try:
            key_value = lookup.parse_id(typed)
        except lookup.LookupInputError as exc:
            if not subject.searchable or not tm.search:
                st.warning(t(exc.key, **exc.values))
            else:  # a merchant by (a part of) its name
                matches = guarded(compile_lookup_search(model, subject.table, typed, limit=50).run, wh)
                state["q"] = typed
                if matches.empty:
                    st.warning(t("lookup_not_found", value=typed[:60], what=t("lookup_" + what)))
                elif len(matches) == 1:
                    key_value = int(matches.iat[0, 0])
                else:
                    st.caption(t("lookup_many", n=i18n.fmt_number(len(matches))))
                    ids = [int(v) for v in matches[key_column]]
                    names = dict(zip(ids, matches[tm.search[0]]))
                    wanted = first("id")
                    seed(PREFIX + "pick", int(wanted) if wanted.isdigit() and int(wanted) in ids else ids[0])
                    if st.session_state[PREFIX + "pick"] not in ids:
                        st.session_state[PREFIX + "pick"] = ids[0]
                    key_value = st.selectbox(t("lookup_pick"), ids, key=PREFIX + "pick",
                                             format_func=lambda v: f"{names[v]} ({v})")
        if key_value is not None:
            state["id"] = str(key_value)

    if key_value is not None:
        try:
            found = compile_lookup(model, subject.table, str(key_value))
        except QuestionError as exc:
            st.warning(str(exc))
            st.stop()
        row = guarded(found.attributes.run, wh)
        if row.empty:
            st.warning(t("lookup_not_found", value=str(key_value), what=t("lookup_" + what)))
        else:
            # ── attributes ─────────────────────────────────────────────────────
            st.subheader(t("lookup_attributes"))
            # What the model shows of the table (its hidden bookkeeping columns stay hidden here too).
            shown = [c for c in found.attributes.columns if c.id in tm.dimensions and not c.id.startswith("_")]
            record = row.iloc[0]
            cols = st.columns(min(4, len(shown)))
            for i, c in enumerate(shown):
                value = record[c.id]
                words = c.value_label(value, lang)
                if words is not None:
                    text = words
                elif tm.dimensions[c.id].kind == "number" and not i18n.is_identifier(tm.dimensions[c.id].column):
                    text = i18n.EMPTY if pd.isna(value) else i18n.fmt_number(value)  # an amount (balance) reads with separators; ids stay as written
                else:
                    text = i18n.value_label(c.id, value)
                title = tm.dimensions[c.id].label.text(lang) if c.id in tm.dimensions else result.title(c, lang)
                cols[i % len(cols)].markdown(f"**{title}**  \n{text}")

            # ── months ─────────────────────────────────────────────────────────
            months = guarded(found.over_time.run, wh)
            st.subheader(t("lookup_over_time"))
            if months.empty:
                st.info(t("lookup_empty"))
            else:
                kinds_of = {name: model.tables[name].label.text(lang) for name in model.tables}
                points = months.rename(columns={"month": "x", "events": "value"})
                points["color"] = points["source"].map(kinds_of)
                labels = {"x": i18n.column_label("month"), "color": i18n.column_label("measure")}
                spec = ChartSpec(kind="bar", x="x", y="value", color="color", agg=VALUES_AS_GIVEN, bucket="month")
                fig = charts.figure(points, spec, labels)
                fig.update_yaxes(title_text=t("lookup_events"))
                fig.update_layout(height=280)
                st.plotly_chart(fig, key=PREFIX + "months", width="stretch")

            # ── timeline ───────────────────────────────────────────────────────
            st.subheader(t("lookup_timeline"))
            events = guarded(found.timeline.run, wh)
            total = len(events)
            st.markdown(t("lookup_timeline_n", n=i18n.fmt_number(total)))
            if total == 0:
                st.info(t("lookup_empty"))
            else:
                events = events.assign(details=[
                    lookup.detail_text(model, s, d, key_column, lang) for s, d in zip(events["source"], events["details"])])
                columns = [c for c in found.timeline.columns if c.id != "via"]
                screen = result.shown(events, columns, lang)
                cap = wh.app.max_display_rows
                with st.container(key="lk_timeline"):
                    st.dataframe(screen.head(cap), column_config=result.column_config(events, columns, lang),
                                 hide_index=True, width="stretch", key="lk_timeline_grid", placeholder=i18n.EMPTY)
                st.caption(t("shown_rows", shown=i18n.fmt_number(min(cap, total)), total=i18n.fmt_number(total)))
                st.subheader(t("download"))
                downloads.download_buttons(
                    lambda: pa.Table.from_pandas(screen, preserve_index=False),
                    result.column_views(events, columns, lang),
                    basename=f"{subject.kind}_{key_value}_timeline",
                    filters_text=[f"{t('lookup_' + what)}: {key_value}"],
                    total_rows=total,
                    max_rows=wh.app.max_download_rows,
                    title=subject.table,
                    key="lk_dl",
                )

    explore_saved.panel(wh, PAGE, state, key="lk_sv")

links.set_query(state)
