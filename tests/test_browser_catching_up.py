"""A first load in the browser: while the exporter still has rows to send the app says "loading: N%" and marks the
Overview's figures provisional — never "just now"; once caught up it says "just now".

The warehouse is the worker's layout (tests/fixtures_app.py) and the exporter's status records are landed by the
landing's own control-record code (`landing.write_control`), as the worker does. The percentage expected here is
computed from the rows this test wrote and the backlog it declared.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from ingest import control
from ingest.landing import write_control
from ingest.warehouse_file import open_writer
from tests.fixtures_app import build_warehouse, make_rows, write_app_config
from tests.streamlit_server import start_app, stop_app

pytestmark = pytest.mark.browser
SEOUL = timezone(timedelta(hours=9))


def land_status(warehouse, batch_id: int, behind: int) -> None:
    """One exporter status (as the worker lands it) and a new batch row + version, so the app's cache moves on."""
    now = datetime.now(SEOUL)
    status = control.ExporterStatus(
        exporter="exporter", state=control.CATCHING_UP if behind else control.OK,
        exported_at=now.isoformat(timespec="microseconds"),
        tables=(control.TableStatus("payments", watermark=now.isoformat(), rows_sent=100, rows_behind=behind),),
    )
    batch = control.ControlBatch()
    batch.add(status)
    with open_writer(warehouse) as con:
        con.execute("BEGIN")
        write_control(con, batch)
        con.execute(
            "INSERT INTO _meta.batches (batch_id, started_at, committed_at, messages, upserts, deletes, skipped_stale, "
            "dead_letters, seconds, tables, offsets, lag_messages) VALUES (?, ?, ?, 1, 0, 0, 0, 0, 0.1, [], '{}', 0)",
            [batch_id, now, now])
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    warehouse.with_name(warehouse.name + ".version").write_text(str(batch_id), encoding="utf-8")


def sidebar_text(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


def test_the_first_load_says_loading_with_progress_then_just_now(tmp_path, browser):
    warehouse = tmp_path / "warehouse.duckdb"
    rows = make_rows()
    build_warehouse(warehouse, rows)
    landed = sum(len(frame) for frame in rows.values())  # every row written, tombstones included
    behind = 3 * landed  # the exporter still has three times as much to send
    expected = 100 * landed // (landed + behind)  # 25
    land_status(warehouse, 2, behind)
    config = write_app_config(tmp_path, warehouse)
    proc, url = start_app(config, tmp_path / "app.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{url}/?lang=en")
        page.get_by_text("Loading (").first.wait_for(timeout=60_000)
        side = sidebar_text(page)
        shown = int(re.search(r"Loading \((\d+)%\)", side).group(1))
        assert shown == expected, side
        assert "just now" not in side.lower(), side
        # Wait for the text itself: the page may rerun (the language goes into the URL) between a wait and a read.
        main = page.locator("[data-testid='stMain']")
        main.get_by_text("provisional").first.wait_for(timeout=30_000)
        main.get_by_text(f"{expected}% of the source's rows").first.wait_for(timeout=30_000)

        land_status(warehouse, 3, 0)  # caught up
        page.goto(f"{url}/?lang=en")
        page.get_by_text("Data as of just now").first.wait_for(timeout=60_000)
        side = sidebar_text(page)
        assert "Loading" not in side, side
        assert "provisional" not in main_text(page)
        page.close()
    finally:
        stop_app(proc)
