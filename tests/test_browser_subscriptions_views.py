"""A person subscribes to the question on Explore with clicks (typing only a name and an address) — real server, real chromium."""

from __future__ import annotations

import pytest

from dashboard import app_state, audit, saved_views
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import Schedule
from ingest.config import load_config
from tests.browser_page import open_view, wait_idle
from tests.fixtures_app import app_env, browser  # noqa: F401  (fixtures)
from tests.streamlit_server import start_app, stop_app

pytestmark = pytest.mark.browser

QUESTION = "base=topups&m=topups.amount&d=topups.channel&time=topups.created_at&period=last_7_days"


def test_subscribe_to_an_explore_question_saves_it_as_a_view_and_lists_it(app_env, browser):
    from playwright.sync_api import expect

    proc, base = start_app(app_env.config, app_env.tmp / "streamlit.log")
    path = app_state.store_path(load_config(app_env.config, needs=("warehouse",)))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        open_view(page, f"{base}/explore?{QUESTION}", "메일로 받기")

        page.get_by_role("button", name="메일로 받기").click()
        name = page.get_by_label("보기 이름 — 구독하려면 이 질문을 먼저 보기로 저장합니다")
        name.fill("주간 충전 경로별")
        name.press("Enter")
        wait_idle(page)
        page.get_by_label("주기").click()
        page.get_by_role("option", name="매주").click()
        wait_idle(page)
        to = page.locator("input[aria-label='받는 사람 (쉼표로 구분)']:visible")
        to.fill("lead@example.com")
        to.press("Enter")
        wait_idle(page)
        page.get_by_text("CSV", exact=True).click()
        wait_idle(page)
        page.get_by_role("button", name="구독 저장").click()
        expect(page.get_by_text("보기 ‘주간 충전 경로별’ 구독을 저장했습니다").first).to_be_visible(timeout=30_000)

        with app_state.connect(path) as conn:
            (view,) = saved_views.list_views(conn, page="explore")
            (sub,) = store.subscriptions(conn)
            changes = [e.action for e in audit.entries(conn)[::-1]]
        assert view.name == "주간 충전 경로별"
        assert view.query() == saved_views.parse_query(QUESTION)
        assert (sub.kind, sub.ref, sub.params) == ("view", str(view.id), {"name": "주간 충전 경로별"})
        assert sub.schedule == Schedule("weekly", "09:00", weekday=0) and sub.format == "csv"
        assert sub.recipients == ("lead@example.com",) and sub.lang == "ko"
        assert changes == ["saved_view_save", "subscription_create"]

        page.keyboard.press("Escape")
        page.get_by_test_id("stSidebar").get_by_text("메일 구독").click()
        expect(page.get_by_role("heading", name="정기 메일")).to_be_visible(timeout=30_000)
        wait_idle(page)
        expect(page.get_by_role("combobox", name="구독 선택")).to_have_value(f"#{sub.id} 보기: 주간 충전 경로별 — 매주 월요일 09:00")
        page.close()
    finally:
        stop_app(proc)
