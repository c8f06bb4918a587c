"""A person subscribes to a report with clicks only (and types the address), then manages it — real server, real chromium."""

from __future__ import annotations

import pytest

from dashboard import app_state, audit
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import Schedule
from ingest.config import load_config
from tests.browser_page import wait_idle
from tests.fixtures_app import app_env, browser  # noqa: F401  (fixtures)
from tests.streamlit_server import start_app, stop_app

pytestmark = pytest.mark.browser


def test_subscribe_from_a_report_page_and_manage_it(app_env, browser):
    from playwright.sync_api import expect

    proc, base = start_app(app_env.config, app_env.tmp / "streamlit.log")
    path = app_state.store_path(load_config(app_env.config, needs=("warehouse",)))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{base}/reports?report=daily_topups&period=last_week")
        expect(page.get_by_test_id("stDataFrame")).to_be_visible(timeout=60_000)
        wait_idle(page)

        page.get_by_role("button", name="메일로 받기").click()
        page.get_by_label("주기").click()
        page.get_by_role("option", name="매주").click()
        wait_idle(page)
        page.get_by_label("요일").click()
        page.get_by_role("option", name="수요일").click()
        wait_idle(page)
        page.get_by_label("보낼 시각").click()
        page.keyboard.type("08:3")  # the list is long: narrow it as a person would, then click
        page.get_by_role("option", name="08:30").click()
        wait_idle(page)
        page.get_by_label("받는 사람 (쉼표로 구분)").fill("lead@example.com, desk@example.com")
        page.get_by_label("받는 사람 (쉼표로 구분)").press("Enter")
        wait_idle(page)
        page.get_by_text("CSV", exact=True).click()
        wait_idle(page)
        page.get_by_role("button", name="구독 저장").click()
        expect(page.get_by_text("구독을 저장했습니다").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(app_env.tmp / "subscribe.png"), full_page=True)

        with app_state.connect(path) as conn:
            (sub,) = store.subscriptions(conn)
        assert sub.ref == "daily_topups" and sub.params["period"] == "last_week"
        assert sub.schedule == Schedule("weekly", "08:30", weekday=2)
        assert sub.recipients == ("lead@example.com", "desk@example.com") and sub.format == "csv"
        assert sub.skip_empty and sub.lang == "ko"

        # Manage it: the sidebar link, the list, "send now" and "pause".
        page.keyboard.press("Escape")
        page.get_by_test_id("stSidebar").get_by_text("메일 구독").click()
        expect(page.get_by_role("heading", name="정기 메일")).to_be_visible(timeout=30_000)
        wait_idle(page)
        page.get_by_role("button", name="지금 보내기").click()
        expect(page.get_by_text("다음 확인 때").first).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="일시 중지").click()
        expect(page.get_by_role("button", name="다시 시작")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(app_env.tmp / "subscriptions.png"), full_page=True)
        with app_state.connect(path) as conn:
            assert store.subscription(conn, sub.id).paused
            assert [r["slot"][:4] for r in store.deliveries(conn, sub.id)] == ["now:"]
            # Each change is in the audit trail, by who made it (open mode: anonymous), oldest first.
            changes = audit.entries(conn)[::-1]
        assert [(e.who, e.action, e.target) for e in changes] == [
            ("anonymous", "subscription_create", f"subscription #{sub.id}"),
            ("anonymous", "subscription_send_now", f"subscription #{sub.id}"),
            ("anonymous", "subscription_pause", f"subscription #{sub.id}")]
        assert changes[0].detail["schedule"] == {"frequency": "weekly", "at": "08:30", "weekday": 2, "month_day": None}
        assert changes[0].detail["recipients"] == ["lead@example.com", "desk@example.com"]
        assert changes[0].detail["params"]["period"] == "last_week" and changes[0].detail["format"] == "csv"
        page.close()
    finally:
        stop_app(proc)
