"""Overview, Reports and Pipeline in a real browser: `streamlit run` on a free port, Debian chromium via Playwright.

The server is a subprocess started here and stopped by its PID. Screenshots
land in the test's tmp dir (printed) so a person can look at them.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from tests.browser_page import wait_idle
from tests.conftest import CHROMIUM_ARGS
from tests.reports_demo import SEOUL, build_warehouse, make_dataset, write_alert_history, write_app_config
from tests.streamlit_server import start_app, stop_app
pytestmark = pytest.mark.browser


@pytest.fixture
def app_server(tmp_path):
    ds = make_dataset(dt.datetime.now(SEOUL).date())
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb", ds)
    write_alert_history(tmp_path / "alerts.jsonl", ds.now)
    config = write_app_config(tmp_path, warehouse, alerts_history=tmp_path / "alerts.jsonl")
    proc, base = start_app(config, tmp_path / "streamlit.log")
    try:
        yield ds, base, tmp_path
    finally:
        stop_app(proc)


def test_overview_reports_pipeline_in_a_browser(app_server, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    ds, base, shots = app_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)

            # A shared report link as the very first visit of the fresh server (the legacy page-list trap: streamlit_app.py).
            start, end = ds.today - dt.timedelta(days=14), ds.today
            page.goto(f"{base}/reports?report=daily_topups&period={start}..{end}")
            expect(page.get_by_text("일별 충전 금액").first).to_be_visible(timeout=30_000)
            expect(page.get_by_test_id("stDataFrame")).to_be_visible(timeout=30_000)
            wait_idle(page)
            assert page.get_by_test_id("stSidebarNav").count() == 0  # no legacy page list
            expect(page.get_by_test_id("stSidebar").get_by_text("파이프라인")).to_be_visible()  # the app's own links
            page.screenshot(path=str(shots / "reports_link.png"), full_page=True)

            # Change a parameter: channel → 모바일 (mobile). The URL follows.
            page.get_by_label("충전 경로").click()
            page.get_by_role("option", name="모바일").click()
            page.wait_for_url("**channel=mobile**", timeout=30_000)
            wait_idle(page)
            page.screenshot(path=str(shots / "reports_mobile.png"), full_page=True)

            with page.expect_download(timeout=30_000) as info:
                page.get_by_role("button", name="CSV 받기").click()
            csv = pd.read_csv(io.BytesIO(Path(info.value.path()).read_bytes()), encoding="utf-8-sig")
            expected = Counter()
            for t in ds.live("topups"):
                if t["channel"] == "mobile" and start <= t["created_at"].astimezone(SEOUL).date() <= end:
                    expected[t["created_at"].astimezone(SEOUL).date().isoformat()] += t["amount_krw"]
            assert set(csv["충전 경로"]) == {"모바일"}  # the screen's header and word, not channel / mobile
            assert {str(d)[:10]: v for d, v in zip(csv["일자"], csv["금액(원)"])} == dict(expected)
            assert info.value.suggested_filename == f"daily_topups_{start}_{end}.csv"

            page.goto(f"{base}/")
            expect(page.get_by_text("충전 금액").first).to_be_visible(timeout=30_000)
            wait_idle(page)
            expect(page.locator("[data-testid='stMetric']")).to_have_count(8)
            page.screenshot(path=str(shots / "overview.png"), full_page=True)

            page.set_viewport_size({"width": 1400, "height": 2600})  # the whole page in one screenshot
            page.goto(f"{base}/pipeline")
            expect(page.get_by_text("알림 기록").first).to_be_visible(timeout=30_000)
            wait_idle(page)
            expect(page.get_by_text("prepaid.refunds #2").first).to_be_visible()
            page.screenshot(path=str(shots / "pipeline.png"), full_page=True)
        finally:
            browser.close()
    print("screenshots in", shots)
