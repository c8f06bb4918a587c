"""The question builder, the look-up page and saved views in a real browser (issue 13).

One `streamlit run` for the module over the demo dataset of tests/reports_demo.py
(all six tables, tombstones included), Debian chromium through Playwright.
Questions are built with clicks only; every number on screen is checked against
pandas computed here from the dataset's live rows, never against the app's own
modules. Screenshots land in the module's tmp dir (printed).
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from tests.browser_page import grid_rows, record_drawn_text, wait_idle
from tests.reports_demo import SEOUL, build_warehouse, make_dataset, write_app_config
from tests.streamlit_server import start_app, stop_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("question")
    ds = make_dataset(dt.datetime.now(SEOUL).date())
    warehouse = build_warehouse(tmp / "warehouse.duckdb", ds)
    config = write_app_config(tmp, warehouse)
    text = config.read_text(encoding="utf-8").replace('state_path = "data/app_state.sqlite"',
                                                      f'state_path = "{tmp / "app_state.sqlite"}"')
    config.write_text(text, encoding="utf-8")
    proc, base = start_app(config, tmp / "streamlit.log")
    try:
        yield ds, base, tmp
    finally:
        stop_app(proc)
        print("screenshots in", tmp)


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    record_drawn_text(ctx)
    yield ctx
    ctx.close()


def frame(ds, table: str) -> pd.DataFrame:
    return pd.DataFrame(ds.rows[table])


def test_a_cards_timeline_in_the_browser(server, context):
    from playwright.sync_api import expect

    ds, base, shots = server
    refunds = frame(ds, "refunds")
    card = int(refunds["card_id"].value_counts().index[0])
    events = []
    for table, id_col in (("payments", "payment_id"), ("topups", "topup_id"), ("refunds", "refund_id")):
        f = frame(ds, table)
        f = f[f["card_id"] == card]
        events.append(pd.DataFrame({"at": pd.to_datetime(f["created_at"], utc=True), "kind": table, "id": f[id_col]}))
    want = pd.concat(events).sort_values(["at", "kind", "id"], kind="stable").reset_index(drop=True)

    page = context.new_page()
    page.goto(f"{base}/lookup?lang=en")
    field = page.get_by_label("Card id", exact=True)
    field.wait_for(timeout=90_000)
    field.fill(str(card))
    field.press("Enter")
    expect(page.get_by_text(f"{len(want)} events")).to_be_visible(timeout=60_000)
    wait_idle(page)
    headers, rows = grid_rows(page, "lk_timeline")
    shown = [int(r[headers.index("Id")]) for r in rows]
    assert shown == want["id"].to_list()[:len(shown)] and len(shown) >= min(len(want), 5)
    kinds = {"Payments": "payments", "Top-ups": "topups", "Refunds": "refunds"}
    assert [kinds[r[headers.index("Event")]] for r in rows] == want["kind"].to_list()[:len(rows)]
    assert re.search(rf"[?&]id={card}(&|$)", page.url)
    page.screenshot(path=str(shots / "lookup.en.png"), full_page=True)
