"""The "메일로 받기 / Send by e-mail" form on the Reports page, and the schedule fields the Subscriptions page reuses.

Parameters are saved as URL tokens (store.py): a period may stay relative
("last week", recalculated at each send) or be fixed to the dates on screen;
every other parameter is saved as it is on screen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import streamlit as st

from dashboard import app_state, audit, dates, i18n
from dashboard.access import current_person
from dashboard.app_state import AppStateError, transaction
from dashboard.i18n import t
from dashboard.report_runner import as_period, values_to_url
from dashboard.reports import Report
from dashboard.subscriptions import store
from dashboard.subscriptions.render import param_label
from dashboard.subscriptions.schedule import FREQUENCIES, SEOUL, Schedule, next_slot

TIMES = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
RELATIVE = ("yesterday", "last_week", "last_month", "this_month", "last_7_days", "last_30_days")


def schedule_text(s: Schedule) -> str:
    """"매주 월요일 09:00" / "Monthly, day 31 09:00"."""
    label = t(f"freq_{s.frequency}")
    if s.frequency == "weekly":
        label += " " + t("sub_weekdays").split(",")[s.weekday]
    elif s.frequency == "monthly":
        label += f" {s.month_day}" + ("일" if i18n.lang() == "ko" else "")
    return f"{label} {s.at}"


def schedule_fields(key: str, current: Schedule | None = None) -> Schedule:
    """Frequency, weekday or day of month, and time — the widgets, returning the Schedule they describe."""
    c1, c2, c3 = st.columns(3)
    freq = c1.selectbox(t("sub_frequency"), FREQUENCIES, key=f"{key}.freq",
                        index=FREQUENCIES.index(current.frequency) if current else 0,
                        format_func=lambda f: t(f"freq_{f}"))
    weekday = month_day = None
    if freq == "weekly":
        names = t("sub_weekdays").split(",")
        weekday = c2.selectbox(t("sub_weekday"), range(7), key=f"{key}.weekday", format_func=lambda d: names[d],
                               index=current.weekday if current and current.weekday is not None else 0)
    elif freq == "monthly":
        month_day = int(c2.number_input(t("sub_month_day"), min_value=1, max_value=31, step=1, key=f"{key}.mday",
                                        value=current.month_day if current and current.month_day else 1))
    at = c3.selectbox(t("sub_time"), TIMES, key=f"{key}.time",
                      index=TIMES.index(current.at) if current and current.at in TIMES else TIMES.index("09:00"))
    return Schedule(freq, at, weekday, month_day)


def params_fields(report: Report, values: Mapping[str, Any], key: str) -> dict[str, str]:
    """The tokens to save: each period relative or fixed (a choice), the rest as on screen."""
    tokens = values_to_url(report, values)
    tokens.pop("report", None)
    fixed_notes = []
    for p in report.params:
        if p.kind != "daterange":
            fixed_notes.append(f"{param_label(p, i18n.lang())}: {tokens[p.name] or i18n.pick('전체 / All')}")
            continue
        period = as_period(values[p.name])
        fixed = f"{period.start.isoformat()}..{period.end.isoformat()}"
        options = list(dict.fromkeys([*(o for o in [period.preset] if o), *RELATIVE, fixed]))
        tokens[p.name] = st.selectbox(
            param_label(p, i18n.lang()), options, key=f"{key}.{p.name}",
            format_func=lambda o, f=fixed: t("sub_fixed", range=o.replace("..", " – ")) if o == f
            else t("sub_relative", preset=dates.preset_label(o)))
    if fixed_notes:
        st.caption(t("sub_fixed_params", params="; ".join(fixed_notes)))
    return tokens


def audit_detail(ref: str, params: Mapping[str, str], schedule: Schedule | None = None,
                 recipients: list[str] | None = None, **more: Any) -> dict[str, Any]:
    """What the audit trail keeps of a subscription or alert change: what was asked for, never report data."""
    detail: dict[str, Any] = {"report": ref, "params": dict(params), **more}
    if schedule is not None:
        detail["schedule"] = {"frequency": schedule.frequency, "at": schedule.at, "weekday": schedule.weekday,
                              "month_day": schedule.month_day}
    if recipients is not None:
        detail["recipients"] = list(recipients)
    return detail


def send_by_email(report: Report, values: Mapping[str, Any], config) -> None:
    """The button and its form (a popover): saves a subscription to this report with these parameters."""
    key = f"subform.{report.slug}"
    with st.popover(t("sub_button"), icon=":material/mail:"):
        st.caption(t("sub_form_intro"))
        schedule = schedule_fields(key)
        tokens = params_fields(report, values, key)
        recipients = st.text_input(t("sub_recipients"), key=f"{key}.to", placeholder="team@example.com")
        c1, c2 = st.columns(2)
        fmt = c1.radio(t("sub_format"), store.FORMATS, key=f"{key}.fmt", horizontal=True,
                       format_func=lambda f: {"xlsx": "Excel", "csv": "CSV"}[f])
        skip = c2.checkbox(t("sub_skip_empty"), value=True, key=f"{key}.skip")
        if st.button(t("sub_save"), key=f"{key}.save", type="primary"):
            now = datetime.now(SEOUL)
            me = current_person()
            try:
                to = store.split_recipients(recipients)
                with app_state.connect(app_state.store_path(config)) as conn, transaction(conn):
                    sub_id = store.add_subscription(conn, ref=report.slug, params=tokens, schedule=schedule,
                                                    recipients=to, now=now, format=fmt, skip_empty=skip,
                                                    lang=i18n.lang(), owner=me.email, owner_groups=me.groups)
                    audit.record(conn, me, "subscription_create", f"subscription #{sub_id}",
                                 audit_detail(report.slug, tokens, schedule, to, format=fmt, page=audit.current_page()))
            except ValueError as exc:
                st.error(t("sub_problem", msg=str(exc)))
            except AppStateError as exc:  # the audit trail (or the store) could not be written: nothing was saved
                st.error(str(exc))
            else:
                st.success(t("sub_saved", id=sub_id, next=next_slot(schedule, now).strftime("%Y-%m-%d %H:%M")))
