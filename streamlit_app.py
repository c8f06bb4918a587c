"""The data desk app: `streamlit run streamlit_app.py` (config via PIPELINE_CONFIG or ./pipeline.toml).

This file only sets up the shell every page shares: the page list, the
sign-in gate (dashboard/access/login.py: with [access] nobody unsigned gets
further), the sidebar (translated page links, language switch, who is signed
in, data freshness) and then runs the chosen page. Pages live in pages/, shared logic in dashboard/.

Navigation is hidden and drawn by hand (st.page_link) on purpose: with
st.navigation and a pages/ folder, Streamlit 1.67 shows its legacy page list
to the first visitor of a fresh server who arrives through a direct link —
and shared links are how people use this app (docs/design.md, "Traps").
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard import freshness, i18n, links  # noqa: E402
from dashboard.access import login  # noqa: E402
from dashboard.warehouse import ConfigError, get_warehouse  # noqa: E402

st.set_page_config(page_title="Data desk", page_icon=":material/database:", layout="wide")

# Language: Korean unless the person (or a shared link with ?lang=en) picks English; the URL keeps it.
links.keep_language()

PAGES = [  # (file, url path, label key, icon)
    ("pages/overview.py", "overview", "page_overview", ":material/dashboard:"),
    ("pages/explore.py", "explore", "page_explore", ":material/search:"),
    ("pages/lookup.py", "lookup", "page_lookup", ":material/person_search:"),
    ("pages/reports.py", "reports", "page_reports", ":material/description:"),
    ("pages/pipeline.py", "pipeline", "page_pipeline", ":material/sync_alt:"),
    ("pages/dictionary.py", "dictionary", "page_dictionary", ":material/menu_book:"),
    ("pages/subscriptions.py", "subscriptions", "page_subscriptions", ":material/forward_to_inbox:"),
    ("pages/admin.py", "admin", "page_admin", ":material/admin_panel_settings:"),
]
# url paths whose link only administrators see (the page itself also says "no access"): the Pipeline page
# shows every table by name and the dead letters' contents, beyond what a role with rules may see.
ADMIN_ONLY = {"admin", "pipeline"}
pages = [
    st.Page(str(ROOT / file), title=i18n.t(label), url_path=url, icon=icon, default=(i == 0))
    for i, (file, url, label, icon) in enumerate(PAGES)
]
current = st.navigation(pages, position="hidden")

try:
    warehouse = get_warehouse()
except ConfigError:
    warehouse = None  # the page itself shows the configuration error
config = warehouse.config if warehouse is not None else None
# Sign-in first: with [access], nothing below (sidebar, freshness, the page) runs for someone not let in.
person = login.gate(config, pages, current)

with st.sidebar:
    st.markdown(f"### {i18n.t('app_title')}")
    is_admin = person.is_admin
    for page in pages:
        if page.url_path in ADMIN_ONLY and not is_admin:
            continue
        st.page_link(page, label=page.title, icon=page.icon)
    st.divider()
    st.radio(i18n.t("language"), i18n.LANGS, key=i18n.LANG_KEY, horizontal=True,
             format_func=lambda code: {"ko": "한국어", "en": "English"}[code])
    login.show_sidebar(config, person)
if warehouse is None:
    current.run()
else:
    # The page run's queries share the process's read-only instance (opened
    # once, not per query); other people's pages run meanwhile, and a worker
    # waiting to land a batch gets the file as soon as the running queries end.
    with warehouse.reading():
        freshness.show_sidebar(warehouse)
        current.run()
