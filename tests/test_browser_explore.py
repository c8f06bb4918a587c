"""Explore in a real browser while the real worker lands data into the same file.

`streamlit run` on a free port (a subprocess stopped by its PID), Debian
chromium through Playwright, the embedded Kafka broker, `python -m ingest
worker` and a small producer that keeps sending today's top-ups. The person's
journey: open a shared Explore link as the first visit of a fresh server, set
a date range and a channel, build a bar chart, download Excel (checked with
openpyxl against the rows the fixture generated), then open the page's URL in
a new browser on a NEW server and see the same view. Screenshots of every
page land in the test's tmp dir (printed at the end).
"""

from __future__ import annotations

import io
import re
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import openpyxl
import pytest
from kafka import KafkaProducer

from ingest.envelope import encode_envelope, encode_key
from tests.browser_page import wait_idle
from tests.conftest import CHROMIUM_ARGS
from tests.fixtures_app import SEOUL, build_warehouse, live, make_rows, write_app_config
from tests.ingest_helpers import create_topics, start_worker, stop_process
from tests.streamlit_server import start_app, stop_app
pytestmark = [pytest.mark.browser]
TABLES = ("members", "cards", "merchants", "topups", "payments", "refunds")


class TodayProducer(threading.Thread):
    """Keeps sending new top-ups dated now (outside the range the test looks at), a few per 0.3 s."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        self.topic = topic
        self.stop_event = threading.Event()
        self.sent = 0

    def run(self) -> None:
        next_id = 1_000_000
        while not self.stop_event.is_set():
            for _ in range(5):
                now = datetime.now(SEOUL).isoformat()
                row = {"topup_id": next_id, "card_id": 1, "channel": "mobile", "amount_krw": 1000,
                       "created_at": now, "updated_at": now}
                self.producer.send(self.topic, key=encode_key({"topup_id": next_id}),
                                   value=encode_envelope("topups", "upsert", {"topup_id": next_id}, row, now, now))
                next_id += 1
                self.sent += 1
            self.producer.flush(timeout=30)
            self.stop_event.wait(0.3)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)
        self.producer.close()


def matching_and_total(page) -> tuple[int, int]:
    text = page.get_by_text(re.compile(r"(조건에 맞는 행|Matching rows)")).first.inner_text()
    numbers = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", text)]
    return numbers[0], numbers[1]


def pick(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).first.click()
    wait_idle(page)


def landed_rows(warehouse: Path) -> tuple[int, int]:
    deadline = time.monotonic() + 30
    while True:
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        n = con.execute("SELECT count(*) FROM main.topups WHERE topup_id >= 1000000").fetchone()[0]
        batches = con.execute("SELECT max(batch_id) FROM _meta.batches").fetchone()[0]
        return n, batches
    finally:
        con.close()


def test_explore_in_a_browser_while_the_worker_lands(tmp_path, broker, topic_prefix, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    rows = make_rows(seed=11)
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(warehouse, rows)
    config = write_app_config(tmp_path, warehouse, extra=f"""
[kafka]
bootstrap_servers = "{broker.bootstrap}"
topic_prefix = "{topic_prefix}"
partitions = 3
""")
    create_topics(broker.bootstrap, [f"{topic_prefix}.{t}" for t in TABLES])
    worker = start_worker(config, log=tmp_path / "worker.log")
    producer = TodayProducer(broker.bootstrap, f"{topic_prefix}.topups")
    producer.start()
    app, base = start_app(config, tmp_path / "app1.log")
    shots = tmp_path
    today = datetime.now(SEOUL).date()
    end = today.replace(day=1) - timedelta(days=1)
    start = end.replace(day=1)  # all of last month, typed as an explicit range
    frame = live(rows["topups"])
    local_day = frame["created_at"].dt.tz_convert(SEOUL).dt.date
    wanted = frame[(local_day >= start) & (local_day <= end) & (frame["channel"] == "mobile")]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
                # First visit of a fresh server through a direct link (the legacy page-list trap: streamlit_app.py).
                page.goto(f"{base}/explore?table=topups")
                expect(page.get_by_text("조건에 맞는 행").first).to_be_visible(timeout=60_000)
                wait_idle(page)
                assert page.get_by_test_id("stSidebarNav").count() == 0  # no legacy page list
                # (the first run of a fresh server reruns through the entry script: the sidebar comes with it)
                expect(page.get_by_test_id("stSidebar").get_by_text("데이터 탐색")).to_be_visible(timeout=30_000)
                wait_idle(page)
                _, total_first = matching_and_total(page)

                # A date range: custom, typed into the period control's two date fields.
                pick(page, "기간", "직접 지정")
                # Streamlit 1.67's date field is react-aria segments (year/month/day): type the digits
                # into the first segment, they advance on their own; leaving the field commits it.
                for label, day in (("시작일", start), ("종료일", end)):
                    page.get_by_role("spinbutton", name=f"year, {label}").click()
                    page.keyboard.type(f"{day:%Y%m%d}", delay=30)
                    page.keyboard.press("Escape")
                    page.get_by_text("조건에 맞는 행").first.click()
                    wait_idle(page)
                page.wait_for_url(re.compile(rf"period\.created_at={start}\.\.{end}"), timeout=30_000)
                wait_idle(page)
                # A category: channel = 모바일.
                page.get_by_label("충전 경로", exact=True).click()
                page.get_by_role("option", name=re.compile(r"^모바일 \(")).click()
                page.keyboard.press("Escape")
                page.wait_for_url(re.compile(r"in\.channel=mobile"), timeout=30_000)
                wait_idle(page)
                # A bar chart of the amount per day.
                pick(page, "집계", "합계")
                pick(page, "값 (Y)", "충전 금액(원)")
                page.wait_for_url(re.compile(r"agg=sum"), timeout=30_000)
                wait_idle(page)
                expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
                matching, _ = matching_and_total(page)
                assert matching == len(wanted) > 0
                page.screenshot(path=str(shots / "explore_filtered.png"), full_page=True)
                page.get_by_role("heading", name="다운로드").scroll_into_view_if_needed()
                page.wait_for_timeout(500)
                page.screenshot(path=str(shots / "explore_rows_downloads.png"))

                with page.expect_download(timeout=60_000) as dl:
                    page.get_by_role("button", name="Excel 받기").click()
                assert dl.value.suggested_filename == f"topups_{start}_{end}.xlsx"
                book = openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()))
                sheet, notes = book.worksheets
                header = [c.value for c in sheet[1]]
                assert header[:3] == ["충전 번호", "카드", "충전 경로"]
                got = sorted(r[0] for r in sheet.iter_rows(min_row=2, values_only=True))
                assert got == sorted(wanted["topup_id"])
                assert any("모바일" in str(c.value) for c in notes["A"])
                shared_url = page.url

                # The worker kept landing today's top-ups all along; the app saw them without a lock error.
                deadline = time.monotonic() + 60
                while landed_rows(warehouse)[0] == 0 and time.monotonic() < deadline:
                    time.sleep(0.5)
                page.reload()
                expect(page.get_by_text("조건에 맞는 행").first).to_be_visible(timeout=60_000)
                wait_idle(page)
                matching_again, total_later = matching_and_total(page)
                assert matching_again == matching  # the view's rows are untouched by today's arrivals
                assert total_later > total_first  # …while the table grew underneath
                assert page.get_by_text(re.compile("lock|Traceback|Conflicting", re.I)).count() == 0

                # Other pages (sidebar links), screenshots for a person to look at.
                for label, name in (("데이터 사전", "dictionary"), ("개요", "overview"), ("보고서", "reports"),
                                    ("파이프라인", "pipeline")):
                    page.get_by_test_id("stSidebar").get_by_text(label, exact=True).click()
                    page.wait_for_url(re.compile(rf"/{name}|/$"), timeout=30_000)
                    wait_idle(page)
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                # The language switch.
                page.get_by_test_id("stSidebar").get_by_text("English").click()
                wait_idle(page)
                expect(page.get_by_test_id("stSidebar").get_by_text("Dictionary", exact=True)).to_be_visible()
                page.get_by_test_id("stSidebar").get_by_text("Explore", exact=True).click()
                expect(page.get_by_text("Matching rows").first).to_be_visible(timeout=30_000)
                wait_idle(page)
                page.screenshot(path=str(shots / "explore_english.png"), full_page=True)
            finally:
                browser.close()

        # The shared link, opened as the first visit of a NEW server, in a new browser.
        stop_app(app)
        app, base2 = start_app(config, tmp_path / "app2.log")
        url2 = shared_url.replace(base, base2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.goto(url2)
                expect(page.get_by_text("조건에 맞는 행").first).to_be_visible(timeout=60_000)
                wait_idle(page)
                assert page.get_by_test_id("stSidebarNav").count() == 0
                assert matching_and_total(page)[0] == len(wanted)
                for label, day in (("시작일", start), ("종료일", end)):
                    for part, value in (("year", day.year), ("month", day.month), ("day", day.day)):
                        spin = page.get_by_role("spinbutton", name=f"{part}, {label}")
                        assert spin.get_attribute("aria-valuenow") == str(value), (label, part)
                expect(page.get_by_text(re.compile(r"^모바일 \(")).first).to_be_visible()
                expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
                assert page.url.split("?", 1)[1] == shared_url.split("?", 1)[1]
                page.screenshot(path=str(shots / "explore_shared_link.png"), full_page=True)
            finally:
                browser.close()
        landed, batches = landed_rows(warehouse)
        assert landed > 0 and batches > 1, "the worker should have landed batches during the test"
    finally:
        stop_app(app)
        producer.stop()
        stop_process(worker)
    print("screenshots in", shots, "— rows landed by the worker during the test:", landed_rows(warehouse)[0])
