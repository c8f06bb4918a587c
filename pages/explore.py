"""Explore: ask a question of the data without SQL, or look at one table's rows.

Layout and widgets only; the URL is the state. Two modes:

- question (dashboard/explore_question.py): measures split by dimensions of
  the data model, filters, comparison with an earlier period, drill-down,
  pivot and the rows behind the numbers;
- table (dashboard/explore_table.py): one table, its filters, a chart and its
  rows — the view shared links with `?table=…` open.

`?saved=<id>` opens a saved view (dashboard/explore_saved.py).
"""

from __future__ import annotations

import streamlit as st

from dashboard import explore_question, explore_saved, explore_table, links
from dashboard.i18n import t
from dashboard.warehouse import app_warehouse

PAGE = "explore"
LAST_URL_KEY = "explore_last_params"  # restores the view when someone comes back through the sidebar
WIDGET_PREFIXES = ("x_", "x.", "q_", "q.")

wh = app_warehouse()
st.title(t("page_explore"))
links.copy_link_button()

url = links.page_params()
if not url and LAST_URL_KEY in st.session_state:
    url = st.session_state[LAST_URL_KEY]
url = explore_saved.open_from_url(wh, PAGE, url, WIDGET_PREFIXES)

# A link with `table=` is the table view people shared before the question builder: it opens as it was.
seed_mode = "table" if "table" in url else "question"
if "x_mode" not in st.session_state:
    st.session_state["x_mode"] = seed_mode
mode = st.segmented_control(t("q_mode"), ["question", "table"], key="x_mode",
                            format_func=lambda m: t("mode_" + m), label_visibility="collapsed") or "question"
if mode == "table":
    new_params = explore_table.show(wh, url if "table" in url else {})
else:
    new_params = explore_question.show(wh, url if "base" in url or "table" not in url else {})

explore_saved.panel(wh, PAGE, new_params, key="x_sv")
st.session_state[LAST_URL_KEY] = {key: (v if isinstance(v, list) else [v]) for key, v in new_params.items()}
links.set_query(new_params)
