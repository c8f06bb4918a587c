"""Explore's "메일로 받기 / Send by e-mail": a subscription or a data alert on the question on screen.

What is subscribed to is always a saved view (kind "view", ref = its id),
never a copy of the query string. An unsaved question is saved as a view
first, under a name asked for in the same form, in the same transaction as
the subscription. Why: as in Metabase, where only a saved question can be
subscribed to, people expect the mail to *be* that view — fixing the view
fixes the next mail, the Subscriptions page can name it and link to it, and
deleting it is something the mail can say. A question already saved (the
same question string as one of the person's views) is subscribed as it is.

Periods stay as the question has them: a preset ("last 7 days", "previous
period" comparison) is recalculated at every send (views.pin_periods); a
typed range stays those dates. The form says which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Sequence

import streamlit as st

from dashboard import app_state, audit, dates, explore_result, i18n, saved_views
from dashboard.access import current_person
from dashboard.app_state import AppStateError, transaction
from dashboard.i18n import t
from dashboard.model import Model
from dashboard.subscriptions import store
from dashboard.subscriptions.form import audit_detail, schedule_fields
from dashboard.subscriptions.schedule import SEOUL, next_slot
from dashboard.subscriptions.views import PAGE

KEY = "subview"


def saved_as(conn, params: Mapping[str, str | Sequence[str]], owner: str | None) -> saved_views.SavedView | None:
    """The person's saved Explore view holding exactly this question, if there is one (compared key by key)."""
    text = saved_views.query_string(params)
    return next((v for v in saved_views.list_views(conn, page=PAGE, owner=owner, limit=1000)
                 if saved_views.query_string(v.query()) == text), None)


def period_note(params: Mapping[str, str | Sequence[str]]) -> str | None:
    token = params.get("period")
    if not isinstance(token, str):
        return None
    if dates.is_preset(token):
        return t("subv_period_relative", preset=dates.preset_label(token))
    return t("subv_period_fixed", range=token.replace(dates.SEP, " – "))


def _target(conn, params, view: saved_views.SavedView | None, name: str, me) -> saved_views.SavedView:
    """The view to subscribe to: the one on screen, or the question saved now under `name` (with its audit row)."""
    if view is not None:
        return view
    view = saved_views.save(conn, name, PAGE, params, owner=me.email)
    audit.record(conn, me, "saved_view_save", view.name, {"page": PAGE, "id": view.id, "params": view.params})
    return view


def send_view_by_email(wh, model: Model, params: Mapping[str, str | Sequence[str]]) -> None:
    """The popover: a scheduled mail or a data alert on this question (saved as a view first when it is not)."""
    if not params.get("base"):
        return
    me = current_person()
    path = app_state.store_path(wh.config)
    try:
        with app_state.connect(path) as conn:
            view = saved_as(conn, params, me.email)
    except AppStateError as exc:
        st.error(t("store_failed", msg=str(exc)))
        return
    lang = i18n.lang()
    measures = params.get("m") or []
    measures = [measures] if isinstance(measures, str) else list(measures)
    with st.popover(t("sub_button"), icon=":material/mail:"):
        if view is not None:
            st.caption(t("subv_view", name=view.name))
            name = view.name
        else:
            name = st.text_input(t("subv_name"), key=f"{KEY}.name", max_chars=saved_views.NAME_MAX)
        mail_tab, alert_tab = st.tabs([t("subv_tab_mail"), t("subv_tab_alert")])
        with mail_tab:
            st.caption(t("subv_intro"))
            schedule = schedule_fields(KEY)
            note = period_note(params)
            if note:
                st.caption(note)
            recipients = st.text_input(t("sub_recipients"), key=f"{KEY}.to", placeholder="team@example.com")
            c1, c2 = st.columns(2)
            fmt = c1.radio(t("sub_format"), store.FORMATS, key=f"{KEY}.fmt", horizontal=True,
                           format_func=lambda f: {"xlsx": "Excel", "csv": "CSV"}[f])
            skip = c2.checkbox(t("sub_skip_empty"), value=True, key=f"{KEY}.skip")
            if st.button(t("sub_save"), key=f"{KEY}.save", type="primary"):
                now = datetime.now(SEOUL)
                to = store.split_recipients(recipients)

                def write(conn):
                    target = _target(conn, params, view, name, me)
                    sub_id = store.add_subscription(
                        conn, kind="view", ref=str(target.id), params={"name": target.name}, schedule=schedule,
                        recipients=to, now=now, format=fmt, skip_empty=skip, lang=lang, owner=me.email,
                        owner_groups=me.groups)
                    audit.record(conn, me, "subscription_create", f"subscription #{sub_id}",
                                 audit_detail(f"view:{target.id}", {"name": target.name}, schedule, to, format=fmt,
                                              kind="view", page=audit.current_page()))
                    return t("subv_saved", name=target.name, id=sub_id,
                             next=next_slot(schedule, now).strftime("%Y-%m-%d %H:%M"))
                _save(path, write)
        with alert_tab:
            st.caption(t("subv_alert_intro"))
            if not measures:
                st.info(t("subv_need_measure"))
                return
            measure = st.selectbox(t("alert_measure"), measures, key=f"{KEY}.measure",
                                   format_func=lambda m: explore_result.label_text(model.measure(m).label, lang)
                                   if model.has_measure(m) else m)
            c1, c2 = st.columns(2)
            condition = c1.selectbox(t("alert_condition"), ["above", "below"], key=f"{KEY}.cond",
                                     format_func=lambda c: t(f"cond_{c}"))
            threshold = c2.number_input(t("alert_threshold"), value=0.0, step=1000.0, key=f"{KEY}.threshold")
            alert_to = st.text_input(t("sub_recipients"), key=f"{KEY}.alert_to", placeholder="team@example.com")
            if st.button(t("subv_alert_save"), key=f"{KEY}.alert_save", type="primary"):
                to = store.split_recipients(alert_to)

                def write_alert(conn):
                    target = _target(conn, params, view, name, me)
                    alert_id = store.add_alert(
                        conn, kind="view", ref=str(target.id), params={"name": target.name}, condition=condition,
                        measure=measure, threshold=threshold, recipients=to, now=datetime.now(SEOUL), lang=lang,
                        owner=me.email, owner_groups=me.groups)
                    audit.record(conn, me, "alert_create", f"alert #{alert_id}",
                                 {"page": audit.current_page(),
                                  **audit_detail(f"view:{target.id}", {"name": target.name}, recipients=to, kind="view",
                                                 condition=condition, measure=measure, threshold=threshold)})
                    return t("subv_alert_saved", name=target.name, id=alert_id)
                _save(path, write_alert)


def _save(path, write) -> None:
    """`write(conn)` (the view if new, the subscription or alert, their audit rows) in one transaction; says the outcome."""
    try:
        with app_state.connect(path) as conn, transaction(conn):
            done = write(conn)
    except ValueError as exc:  # an empty or taken view name, a wrong address: nothing was saved
        st.error(t("sub_problem", msg=str(exc)))
    except AppStateError as exc:  # the store or the audit trail could not be written: nothing was saved
        st.error(str(exc))
    else:
        st.success(done)
