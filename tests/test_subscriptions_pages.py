"""The Subscriptions page and the Reports page's "메일로 받기" form through AppTest, on a real warehouse and store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path


from dashboard import app_state
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL, Schedule
from ingest.config import load_config
from tests.fixtures_app import app_env, run_page  # noqa: F401  (fixture)



def state_path(env) -> Path:
    return app_state.store_path(load_config(env.config, needs=("warehouse",)))


def test_the_reports_form_offers_relative_or_fixed_periods_and_the_schedule_fields(app_env):
    """The form's fields (the browser test presses Save: AppTest loses a button's click in this app's shell rerun)."""
    at = run_page("pages/reports.py", {"report": "daily_topups", "period": "last_week"})
    key = "subform.daily_topups"
    period = at.selectbox(key=f"{key}.period")
    assert period.value == "last_week"  # relative by default, as on screen
    assert "last_month" in period.options[1] or any("지난달" in o for o in period.options)
    assert any(o.startswith("고정: ") for o in period.options)
    assert at.button(key=f"{key}.save").label == "구독 저장"
    at.selectbox(key=f"{key}.freq").set_value("weekly").run()
    assert at.selectbox(key=f"{key}.weekday").options[0] == "월요일"
    at.selectbox(key=f"{key}.freq").set_value("monthly").run()
    assert at.number_input(key=f"{key}.mday").value == 1
    assert [x.key for x in at.selectbox if x.key == f"{key}.weekday"] == []


def test_the_subscriptions_page_lists_pauses_sends_now_and_deletes(app_env):
    path = state_path(app_env)
    now = datetime.now(SEOUL)
    with app_state.connect(path) as conn:
        first = store.add_subscription(conn, ref="daily_topups", params={"period": "yesterday"}, now=now - timedelta(days=3),
                                       schedule=Schedule("monthly", "07:00", month_day=31), recipients=["a@example.com"])
        second = store.add_subscription(conn, ref="payments_by_category_region", params={}, now=now,
                                        schedule=Schedule("weekly", "09:00", weekday=0), recipients=["b@example.com"])
        store.claim_slot(conn, first, "2026-10-31T07:00+09:00", now=now, late=False, msg_id="<x@y>")
        store.finish_delivery(conn, first, "2026-10-31T07:00+09:00", state="sent", now=now, rows=42, late=True)
        store.add_alert(conn, ref="daily_topups", params={"period": "yesterday"}, condition="below", measure="amount_krw",
                        threshold=10_000_000, recipients=["ops@example.com"], now=now)
    at = run_page("pages/subscriptions.py", {"sub": str(first)})
    subs_table, alerts_table = (d.value for d in at.dataframe)
    assert list(subs_table["보고서·보기"]) == ["일별 충전 금액", "업종·지역별 결제"]
    assert list(subs_table["주기"]) == ["매월 31일 07:00 · Excel", "매주 월요일 09:00 · Excel"]
    assert subs_table["행 수"].iloc[0] == "42" and subs_table["상태"].iloc[0] == "늦게 보냄"
    assert subs_table["마지막 발송"].iloc[1] == "—"
    assert alerts_table["조건"].iloc[0] == "금액(원) 합계가 10,000,000 미만"
    assert alerts_table["현재"].iloc[0] == "정상" and alerts_table["마지막 발송"].iloc[0] == "—"
    assert at.selectbox(key="subs_pick").value == first  # the mail's settings link preselects it

    assert [b.label for b in at.button if b.key and b.key.startswith("subs_")] == ["일시 중지", "지금 보내기", "삭제"]


def test_an_alert_that_cannot_be_checked_says_so_in_the_list(app_env):
    now = datetime.now(SEOUL)
    with app_state.connect(state_path(app_env)) as conn:
        alert = store.add_alert(conn, kind="view", ref="999", params={"name": "지운 보기"}, condition="above",
                                measure="topups.amount", threshold=1, recipients=["ops@example.com"], now=now)
        store.record_broken(conn, alert, reason="view_missing", now=now, data_version="v1", domain="example.com")
    at = run_page("pages/subscriptions.py")
    alerts_table = at.dataframe[-1].value
    assert alerts_table["현재"].iloc[0] == "확인 불가"
    assert alerts_table["조건"].iloc[0] == "충전 금액(원) 합계가 1 초과", "the deleted view's measure keeps its name"
    assert "· 확인 불가 안내 ·" in alerts_table["마지막 발송"].iloc[0]


def test_the_page_in_english(app_env):
    with app_state.connect(state_path(app_env)) as conn:
        store.add_subscription(conn, ref="daily_topups", params={}, now=datetime.now(SEOUL),
                               schedule=Schedule("business_days", "18:00"), recipients=["a@example.com"], lang="en")
    at = run_page("pages/subscriptions.py", lang="en")
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["No.", "Report or view", "Schedule"]
    assert table["Schedule"].iloc[0] == "Business days (Mon–Fri, not holidays) 18:00 · Excel"
    assert at.title[0].value == "Subscriptions"
