"""Admin: the audit trail (who signed in, downloaded what, changed which saved view, subscription or alert).

Only for administrators (`current_person().is_admin`; everyone when the app
runs open): anyone else gets "no access", and streamlit_app.py does not even
draw the link. The listing is filtered here and read from dashboard/audit.py;
its export goes through downloads.download_buttons, so exporting the trail is
itself in the trail. Above it, the `[access]` row rules that name nothing in
the data model (dashboard/access/policy.py `rule_problems`): the role sees
nothing until the line is fixed, and this is where an admin learns which.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import streamlit as st

from dashboard import app_state, audit, downloads, i18n, tables
from dashboard.access import current_person
from dashboard.app_state import AppStateError
from dashboard.i18n import t
from dashboard.warehouse import app_warehouse

wh = app_warehouse()
st.title(t("page_admin"))
if not current_person().is_admin:
    st.error(t("admin_no_access"))
    st.stop()
st.caption(t("admin_intro"))
path = app_state.store_path(wh.config)

if wh.config.access is not None:  # [access] row rules that name nothing: that role sees nothing until fixed
    from dashboard.access.policy import rule_problems
    from dashboard.model import full_model

    try:
        problems = rule_problems(full_model(wh), wh.config.access)
    except Exception as exc:  # noqa: BLE001 - no warehouse yet: the trail below needs none
        problems = []
        st.caption(t("admin_rules_unchecked", msg=str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    for problem in problems:
        st.warning(t("admin_rule_problem", problem=problem))
COLUMNS = ("at", "who", "role", "action", "target", "rows", "detail")


def action_label(action: str | None) -> str:
    if action is None:
        return t("admin_all")
    return t(f"action_{action}") if action in audit.ACTIONS else action


def detail_text(detail: dict | None) -> str:
    """The detail as one readable line: filters as the screen wrote them, then the other keys."""
    if not detail:
        return ""
    parts = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, bool):
            value = t("true" if value else "false")
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))
        parts.append(f"{key}: {value}")
    return " · ".join(parts)


try:
    with app_state.connect(path) as conn:
        people_in_trail = audit.who_values(conn)
except AppStateError as exc:
    st.error(t("store_failed", msg=str(exc)))
    st.stop()

today = datetime.now(i18n.SEOUL).date()
c1, c2, c3, c4 = st.columns([2, 2, 2, 3])
who = c1.selectbox(t("admin_who"), [None, *people_in_trail], key="adm_who",
                   format_func=lambda w: t("admin_all") if w is None else w)
action = c2.selectbox(t("admin_action"), [None, *audit.ACTIONS], key="adm_action", format_func=action_label)
picked = c3.date_input(t("admin_dates"), value=(today - timedelta(days=29), today), key="adm_dates",
                       max_value=today, format="YYYY-MM-DD")
search = c4.text_input(t("admin_search"), key="adm_search", max_chars=200)
since, until = (tuple(picked) + (None, None))[:2] if isinstance(picked, (tuple, list)) else (picked, picked)
until = until or since  # while the second day of the range is being picked
filters = {"who": who, "action": action, "since": since, "until": until, "search": search}

with app_state.connect(path) as conn:
    total = audit.count(conn, **filters)
    by_action = audit.counts_by_action(conn, **filters)
    rows_out = audit.downloaded_rows(conn, **filters)
    shown = audit.entries(conn, **filters, limit=audit.DEFAULT_LIMIT)
    summary = audit.people(conn)

# ── counts ──────────────────────────────────────────────────────────────────
st.subheader(t("admin_trail"))
with st.container(key="adm_counts"):
    m = st.columns(4)
    m[0].metric(t("admin_total"), i18n.fmt_number(total))
    m[1].metric(t("action_download"), i18n.fmt_number(by_action.get(audit.DOWNLOAD, 0)))
    m[2].metric(t("action_sign_in"), i18n.fmt_number(by_action.get(audit.SIGN_IN, 0)))
    m[3].metric(t("admin_col_downloaded_rows"), i18n.fmt_number(rows_out))
st.caption(" · ".join(f"{action_label(a)} {i18n.fmt_number(n)}" for a, n in by_action.items())
           or t("admin_empty"))

# ── the listing ─────────────────────────────────────────────────────────────
frame = pd.DataFrame({
    "at": [e.at.replace("T", " ")[:19] for e in shown],
    "who": [e.who for e in shown],
    "role": [e.role or "" for e in shown],
    "action": [action_label(e.action) for e in shown],
    "target": [e.target for e in shown],
    "rows": pd.array([e.rows for e in shown], dtype="Int64"),
    "detail": [detail_text(e.detail) for e in shown],
}, columns=list(COLUMNS))
labels = {c: t(f"admin_col_{c}") for c in COLUMNS}
if frame.empty:
    st.info(t("admin_empty"))
else:
    if total > len(shown):
        st.caption(t("admin_shown", shown=i18n.fmt_number(len(shown)), n=i18n.fmt_number(total)))
    else:
        st.caption(t("admin_count", n=i18n.fmt_number(total)))
    with st.container(key="adm_trail"):
        st.dataframe(frame.rename(columns=labels), hide_index=True, width="stretch", placeholder=i18n.EMPTY)
    described = [f"{t('admin_who')}: {who or t('admin_all')}", f"{t('admin_action')}: {action_label(action)}",
                 f"{t('admin_dates')}: {since} – {until}"] + ([f"{t('admin_search')}: {search}"] if search else [])
    st.markdown(f"**{t('admin_export')}**")
    downloads.download_buttons(
        lambda: pa.Table.from_pandas(frame, preserve_index=False),
        tables.views_for_frame(frame, labels),
        basename=f"audit_{since}_{until}",
        filters_text=described,
        total_rows=len(frame),
        key="adm_dl",
        title="audit",
    )

# ── per person ──────────────────────────────────────────────────────────────
st.subheader(t("admin_people"))
if not summary:
    st.info(t("admin_empty"))
else:
    with st.container(key="adm_people"):
        st.dataframe(pd.DataFrame({
            t("admin_col_who"): [p.who for p in summary],
            t("admin_col_last_sign_in"): [p.last_sign_in.replace("T", " ")[:19] if p.last_sign_in else i18n.EMPTY
                                          for p in summary],
            t("admin_col_downloads"): [p.downloads for p in summary],
            t("admin_col_downloaded_rows"): [p.downloaded_rows for p in summary],
            t("admin_col_last_seen"): [p.last_seen.replace("T", " ")[:19] for p in summary],
        }), hide_index=True, width="stretch", placeholder=i18n.EMPTY)
