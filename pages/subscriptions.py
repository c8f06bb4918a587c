"""Subscriptions: every report subscription and data alert, with its next run and last delivery; pause, edit, send now, delete.

Layout only: the store is dashboard/subscriptions/store.py, schedules and
the form fields dashboard/subscriptions/form.py. Each mail links here with
`?sub=<id>` (or `?alert=<id>`), which preselects that entry.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard import app_state, audit, dates, i18n, links, saved_views
from dashboard.access import current_person
from dashboard.access.enforce import AccessDenied
from dashboard.model import ModelError, model_for
from dashboard.app_state import AppStateError, transaction
from dashboard.i18n import t
from dashboard.report_runner import reports_dir
from dashboard.access.reports import offered_reports
from dashboard.reports import load_reports
from dashboard.subscriptions import alerts as rules
from dashboard.subscriptions import store
from dashboard.subscriptions import views as view_targets
from dashboard.subscriptions.form import RELATIVE, audit_detail, schedule_fields, schedule_text
from dashboard.subscriptions.schedule import SEOUL, next_slot
from dashboard.warehouse import app_warehouse

wh = app_warehouse()
st.title(t("page_subscriptions"))
st.caption(t("subs_intro"))
lang = i18n.lang()
path = app_state.store_path(wh.config)
reports = {r.slug: r for r in offered_reports(wh, load_reports(reports_dir(wh.config)))}
url = {k: v[-1] for k, v in links.page_params().items()}


def change(action: str, target: str, detail: dict, write) -> bool:
    """`write(conn)` and its audit row in one transaction (both or neither); says why on screen when it fails."""
    try:
        with app_state.connect(path) as conn, transaction(conn):
            write(conn)
            audit.record(conn, me, action, target, {"page": "subscriptions", **detail})
    except ValueError as exc:
        st.error(t("sub_problem", msg=str(exc)))
        return False
    except AppStateError as exc:  # the store or the audit trail could not be written: nothing changed
        st.error(str(exc))
        return False
    return True


def title_of(ref: str, kind: str = "report", params: dict | None = None) -> str:
    """A report's title, or "보기: <name>" for a saved view (its name now; the remembered one if it was deleted)."""
    if kind == "view":
        view = view_names.get(ref)
        if view is None:
            return t("subs_view_gone", name=view_targets.remembered_name(params or {}, ref))
        return t("subs_view_label", name=view.name)
    return reports[ref].title(lang) if ref in reports else f"{ref}.sql"


def open_link(ref: str, kind: str) -> str | None:
    """Where the entry opens in the app: the saved view in Explore, or the report (relative, like the saved-view links)."""
    if kind == "view":
        return view_names[ref].link if ref in view_names else None
    return f"reports?report={ref}" if ref in reports else None


def when(text: str | None) -> str:
    return store.parse_iso(text).strftime("%Y-%m-%d %H:%M") if text else i18n.EMPTY


def status_of(row) -> str:
    if row is None:
        return i18n.EMPTY
    if row["state"] == "sent" and row["late"]:
        return t("status_late")
    return t(f"status_{row['state']}") + (f" — {row['error']}" if row["state"] == "failed" and row["error"] else "")


now = datetime.now(SEOUL)
me = current_person()


def mine(item) -> bool:
    """With sign-in on, people see and change their own subscriptions and alerts; admins see everyone's."""
    return me.is_admin or item.owner == me.email


with app_state.connect(path) as conn:
    subs = [s for s in store.subscriptions(conn) if mine(s)]
    last = {s.id: store.last_delivery(conn, s.id) for s in subs}
    alert_list = [a for a in store.alerts(conn) if mine(a)]
    last_event = {a.id: store.last_alert_event(conn, a.id) for a in alert_list}
    view_names = {item.ref: v for item in [*subs, *alert_list] if item.kind == "view"
                  for v in [saved_views.get(conn, item.ref)] if v is not None}

# ── report subscriptions ───────────────────────────────────────────────────
st.subheader(t("subs_reports"))
if not subs:
    st.info(t("subs_none"))
else:
    table = pd.DataFrame([{
        t("subs_col_id"): s.id,
        t("subs_col_report"): title_of(s.ref, s.kind, s.params),
        t("subs_col_schedule"): schedule_text(s.schedule) + f" · {'Excel' if s.format == 'xlsx' else 'CSV'}",
        t("subs_col_recipients"): ", ".join(s.recipients),
        t("subs_col_next"): t("subs_paused") if s.paused else next_slot(s.schedule, now).strftime("%Y-%m-%d %H:%M"),
        t("subs_col_last"): when(last[s.id]["finished_at"] or last[s.id]["claimed_at"]) if last[s.id] else i18n.EMPTY,
        t("subs_col_rows"): i18n.fmt_number(last[s.id]["rows"]) if last[s.id] and last[s.id]["rows"] is not None else i18n.EMPTY,
        t("subs_col_status"): status_of(last[s.id]),
        t("subs_col_open"): open_link(s.ref, s.kind),
    } for s in subs])
    with st.container(key="subs_table"):
        st.dataframe(table, hide_index=True, width="stretch", column_config={
            t("subs_col_open"): st.column_config.LinkColumn(t("subs_col_open"), display_text=t("subs_col_open"))})

    ids = [s.id for s in subs]
    wanted = int(url["sub"]) if url.get("sub", "").isdigit() and int(url["sub"]) in ids else ids[-1]
    if "subs_pick" not in st.session_state or st.session_state["subs_pick"] not in ids:
        st.session_state["subs_pick"] = wanted
    by_id = {s.id: s for s in subs}
    pick = st.selectbox(t("subs_pick"), ids, key="subs_pick",
                        format_func=lambda i: f"#{i} {title_of(by_id[i].ref, by_id[i].kind, by_id[i].params)} — "
                                              f"{schedule_text(by_id[i].schedule)}")
    sub = by_id[pick]
    c1, c2, c3 = st.columns(3)
    sub_target = f"subscription #{sub.id}"
    sub_detail = audit_detail(sub.ref, sub.params, sub.schedule, sub.recipients, owner=sub.owner)
    if c1.button(t("subs_resume") if sub.paused else t("subs_pause"), key="subs_pause_btn"):
        if change("subscription_resume" if sub.paused else "subscription_pause", sub_target, sub_detail,
                  lambda conn: store.set_subscription_paused(conn, sub.id, not sub.paused, datetime.now(SEOUL))):
            st.rerun()
    if c2.button(t("subs_send_now"), key="subs_send_now_btn"):
        if change("subscription_send_now", sub_target, sub_detail,
                  lambda conn: store.request_send_now(conn, sub.id, datetime.now(SEOUL),
                                                      wh.config.alerts.sender.rpartition("@")[2])):
            st.success(t("subs_send_now_done"))
    if c3.button(t("subs_delete"), key="subs_delete_btn"):
        if change("subscription_delete", sub_target, sub_detail, lambda conn: store.delete_subscription(conn, sub.id)):
            st.session_state.pop("subs_pick", None)
            st.rerun()
    with st.expander(t("subs_edit")):
        key = f"subedit.{sub.id}"
        schedule = schedule_fields(key, sub.schedule)
        recipients = st.text_input(t("sub_recipients"), value=", ".join(sub.recipients), key=f"{key}.to")
        e1, e2 = st.columns(2)
        fmt = e1.radio(t("sub_format"), store.FORMATS, index=store.FORMATS.index(sub.format), key=f"{key}.fmt",
                       horizontal=True, format_func=lambda f: {"xlsx": "Excel", "csv": "CSV"}[f])
        skip = e2.checkbox(t("sub_skip_empty"), value=sub.skip_empty, key=f"{key}.skip")
        if st.button(t("sub_save"), key=f"{key}.save", type="primary"):
            to = store.split_recipients(recipients)
            if change("subscription_update", sub_target, audit_detail(sub.ref, sub.params, schedule, to, format=fmt),
                      lambda conn: store.update_subscription(conn, sub.id, params=sub.params, schedule=schedule,
                                                             recipients=to, format=fmt, skip_empty=skip,
                                                             lang=sub.lang, now=datetime.now(SEOUL))):
                st.success(t("subs_updated"))

# ── data alerts ────────────────────────────────────────────────────────────
st.subheader(t("subs_alerts"))
if not alert_list:
    st.info(t("subs_no_alerts"))
else:
    rows = []
    for a in alert_list:
        label = i18n.column_label(a.measure) if a.measure else ""
        if a.kind == "view" and a.measure:
            try:
                model = (view_targets.question_of(view_names[a.ref], wh)[0] if a.ref in view_names
                         else model_for(wh))  # a deleted view's measure still has its name in the model
                label = view_targets.measure_label(model, a.measure)
            except (AccessDenied, ModelError):  # a view beyond the reader's role keeps the measure's id
                label = a.measure
        rows.append({
            t("subs_col_id"): a.id,
            t("subs_col_report"): title_of(a.ref, a.kind, a.params),
            t("subs_col_condition"): rules.condition_text(a, label, lang),
            t("subs_col_state"): t("subs_paused") if a.paused else t("alert_broken_state") if a.state.get("broken")
            else t("alert_on" if a.state.get("active") else "alert_off"),
            t("subs_col_checked"): when(a.state.get("checked_at")),
            t("subs_col_last"): (f"{when(last_event[a.id]['finished_at'] or last_event[a.id]['at'])} · "
                                 f"{t('change_' + last_event[a.id]['change'])} · {t('status_' + last_event[a.id]['state'])}"
                                 if last_event[a.id] else i18n.EMPTY),
            t("subs_col_recipients"): ", ".join(a.recipients),
            t("subs_col_open"): open_link(a.ref, a.kind),
        })
    with st.container(key="alerts_table"):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
            t("subs_col_open"): st.column_config.LinkColumn(t("subs_col_open"), display_text=t("subs_col_open"))})
    alert_ids = [a.id for a in alert_list]
    wanted = int(url["alert"]) if url.get("alert", "").isdigit() and int(url["alert"]) in alert_ids else alert_ids[-1]
    if st.session_state.get("alerts_pick") not in alert_ids:
        st.session_state["alerts_pick"] = wanted
    a_by_id = {a.id: a for a in alert_list}
    a_pick = st.selectbox(t("subs_pick"), alert_ids, key="alerts_pick", format_func=lambda i: f"#{i} {title_of(a_by_id[i].ref, a_by_id[i].kind, a_by_id[i].params)}")
    chosen = a_by_id[a_pick]
    d1, d2 = st.columns(2)
    alert_target = f"alert #{chosen.id}"
    alert_detail = audit_detail(chosen.ref, chosen.params, recipients=chosen.recipients, owner=chosen.owner,
                                condition=chosen.condition,
                                measure=chosen.measure, threshold=chosen.threshold, hours=chosen.hours)
    if d1.button(t("subs_resume") if chosen.paused else t("subs_pause"), key="alerts_pause_btn"):
        if change("alert_resume" if chosen.paused else "alert_pause", alert_target, alert_detail,
                  lambda conn: store.set_alert_paused(conn, chosen.id, not chosen.paused, datetime.now(SEOUL))):
            st.rerun()
    if d2.button(t("subs_delete"), key="alerts_delete_btn"):
        if change("alert_delete", alert_target, alert_detail, lambda conn: store.delete_alert(conn, chosen.id)):
            st.session_state.pop("alerts_pick", None)
            st.rerun()
    with st.expander(t("subs_edit")):
        key = f"alertedit.{chosen.id}"
        threshold = hours = None
        if chosen.condition == "no_rows":
            hours = st.number_input(t("alert_hours"), min_value=1.0, value=float(chosen.hours or 2), step=1.0, key=f"{key}.hours")
        else:
            threshold = st.number_input(t("alert_threshold"), value=float(chosen.threshold or 0), step=1000.0, key=f"{key}.threshold")
        recipients = st.text_input(t("sub_recipients"), value=", ".join(chosen.recipients), key=f"{key}.to")
        if st.button(t("sub_save"), key=f"{key}.save", type="primary"):
            to = store.split_recipients(recipients)
            if change("alert_update", alert_target,
                      audit_detail(chosen.ref, chosen.params, recipients=to, condition=chosen.condition,
                                   measure=chosen.measure, threshold=threshold, hours=hours),
                      lambda conn: store.update_alert(conn, chosen.id, threshold=threshold, hours=hours,
                                                      recipients=to, now=datetime.now(SEOUL))):
                st.success(t("subs_updated"))

with st.expander(t("alert_new")):
    slugs = sorted(reports, key=lambda s: reports[s].title(lang))
    slug = st.selectbox(t("alert_report"), slugs, key="alert_new.report", format_func=lambda s: reports[s].title(lang))
    report = reports[slug] if slug else None
    conditions = ["above", "below"] + (["no_rows"] if report and report.chart and report.chart.x else [])
    measures = list(report.totals) if report else []
    condition = st.selectbox(t("alert_condition"), conditions, key="alert_new.cond", format_func=lambda c: t(f"cond_{c}"))
    measure = threshold = hours = None
    if condition in ("above", "below"):
        if not measures:
            st.warning(t("alert_no_measure"))
        else:
            measure = st.selectbox(t("alert_measure"), measures, key="alert_new.measure", format_func=i18n.column_label)
            threshold = st.number_input(t("alert_threshold"), value=0.0, step=1000.0, key="alert_new.threshold")
    else:
        hours = st.number_input(t("alert_hours"), min_value=1.0, value=2.0, step=1.0, key="alert_new.hours")
    params = {}
    if report:
        for p in report.params:
            if p.kind == "daterange":
                params[p.name] = st.selectbox(t("alert_period"), RELATIVE, key=f"alert_new.{p.name}",
                                              format_func=lambda o: t("sub_relative", preset=dates.preset_label(o)))
    recipients = st.text_input(t("sub_recipients"), key="alert_new.to")
    if st.button(t("alert_save"), key="alert_new.save", type="primary", disabled=report is None):
        to = store.split_recipients(recipients)
        try:  # not through change(): the audit target names the new id, known only inside the transaction
            with app_state.connect(path) as conn, transaction(conn):
                alert_id = store.add_alert(conn, ref=slug, params=params, condition=condition, measure=measure,
                                           threshold=threshold, hours=hours,
                                           time_column=report.chart.x if condition == "no_rows" else None,
                                           recipients=to, now=datetime.now(SEOUL), lang=lang,
                                           owner=me.email, owner_groups=me.groups)
                audit.record(conn, me, "alert_create", f"alert #{alert_id}",
                             {"page": "subscriptions", **audit_detail(slug, params, recipients=to, condition=condition,
                                                                      measure=measure, threshold=threshold, hours=hours)})
        except ValueError as exc:
            st.error(t("sub_problem", msg=str(exc)))
        except AppStateError as exc:  # the store or the audit trail could not be written: nothing was saved
            st.error(str(exc))
        else:
            st.success(t("alert_saved", id=alert_id))
