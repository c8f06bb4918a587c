"""The audit trail holds exactly the downloads a person made, with their row counts — clicked in a real browser.

One `streamlit run` over tests/reports_demo.py's dataset, the app open (no
sign-in: who = anonymous). Chromium clicks CSV and Excel on a report and CSV
in Explore, the test counts the data rows in each file it received, and then
reads the app-state store directly: one `download` row per file, in order,
with that file's name, format and row count — nothing more. The Admin page
shows the same rows.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard import app_state
from ingest.config import load_config
from tests.browser_page import download, open_view, read_csv, read_xlsx
from tests.reports_demo import SEOUL, build_warehouse, make_dataset, write_app_config
from tests.streamlit_server import start_app, stop_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
VIEWPORT = {"width": 2000, "height": 1300}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    config = write_app_config(tmp, build_warehouse(tmp / "warehouse.duckdb", make_dataset(dt.datetime.now(SEOUL).date())))
    proc, base = start_app(config, tmp / "streamlit.log")
    try:
        yield base, app_state.store_path(load_config(config, needs=("warehouse",)))
    finally:
        stop_app(proc)


def trail(path) -> list[tuple]:
    """The store's audit rows, oldest first (the store is created here if no page has opened it yet)."""
    with app_state.connect(path) as conn:
        return conn.execute("SELECT who, action, target, json_extract(detail, '$.file'), json_extract(detail, '$.format'),"
                            " json_extract(detail, '$.page'), rows FROM audit ORDER BY id").fetchall()


def test_the_trail_holds_exactly_the_downloads_made_with_their_row_counts(server, browser):
    base, store = server
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = ctx.new_page()
    made = []
    try:
        open_view(page, f"{base}/", "개요")  # a fresh server's first run reruns itself once (streamlit_app.py)
        assert trail(store) == []  # looking is not downloading

        open_view(page, f"{base}/reports?report=daily_topups", "행 수")
        name, data = download(page, "CSV 받기")
        made.append((name, "csv", "reports", len(read_csv(data))))
        name, data = download(page, "Excel 받기")
        made.append((name, "xlsx", "reports", len(read_xlsx(data)[1])))

        open_view(page, f"{base}/explore?table=topups", "조건에 맞는 행")
        name, data = download(page, "CSV 받기")
        made.append((name, "csv", "explore", len(read_csv(data))))

        rows = trail(store)
        assert [(file, fmt, where, n) for _, _, _, file, fmt, where, n in rows] == made
        assert {(who, action) for who, action, *_ in rows} == {("anonymous", "download")}
        assert all(n > 0 for *_, n in made)  # real files, not empty ones: the counts mean something
        assert rows[0][2] == rows[1][2] != rows[2][2] == "topups"  # target: the report's title, the table

        # The Admin page lists them (open mode: everyone is an administrator).
        open_view(page, f"{base}/admin", "감사 기록")
        grid = page.locator(".st-key-adm_trail")
        assert grid.count() == 1
        page.screenshot(path=str(store.parent / "admin.png"), full_page=True)
    finally:
        ctx.close()
    assert len(trail(store)) == 3  # opening the Admin page downloaded nothing
