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
from pathlib import Path

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
    want = pd.concat(events)
    want = want.assign(id_text=want["id"].astype(str)).sort_values(["at", "kind", "id_text"], kind="stable")
    want = want.reset_index(drop=True)

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
    assert [kinds[r[headers.index("Kind")]] for r in rows] == want["kind"].to_list()[:len(rows)]
    assert re.search(rf"[?&]id={card}(&|$)", page.url)
    page.screenshot(path=str(shots / "lookup.en.png"), full_page=True)


SHOTS = Path("/tmp/ui_shots")
CATEGORY_WORDS = {"convenience": "Convenience store", "cafe": "Cafe", "restaurant": "Restaurant",
                  "transport": "Transport", "online": "Online", "culture": "Culture", "retail": "Retail"}


def pick_option(page, label: str, option: str) -> None:
    """Open a selectbox or multiselect by its label and click one option, as a person would."""
    page.get_by_label(label, exact=True).click()
    page.keyboard.type(option)  # long lists are drawn only in part: type to narrow them, as people do
    page.get_by_role("option", name=option, exact=True).first.click()
    page.keyboard.press("Escape")
    wait_idle(page)


def payments_by_category(ds, start, end) -> pd.Series:
    pay = frame(ds, "payments")
    day = pd.to_datetime(pay["created_at"], utc=True).dt.tz_convert("Asia/Seoul").dt.date
    pay = pay[(day >= start) & (day <= end)]
    merchants = frame(ds, "merchants")[["merchant_id", "category"]]
    return pay.merge(merchants, on="merchant_id", how="left").groupby("category").size()


def result_grid(page, *columns: str, exact: bool = False) -> pd.DataFrame:
    """The question's result grid; with `columns`, once its headers include (`exact`: are) these."""
    headers, rows = grid_rows(page, "q_result", columns, exact)
    return pd.DataFrame(rows, columns=headers)


def number(text: str) -> float:
    return float(text.replace(",", "").replace("%", ""))


def test_three_questions_built_with_clicks_then_saved_and_reopened(server, browser, context):
    from playwright.sync_api import expect

    ds, base, shots = server
    SHOTS.mkdir(exist_ok=True)
    today = dt.datetime.now(SEOUL).date()
    current = payments_by_category(ds, today - dt.timedelta(days=29), today)
    previous = payments_by_category(ds, today - dt.timedelta(days=59), today - dt.timedelta(days=30))

    page = context.new_page()
    page.goto(f"{base}/explore?lang=en")
    page.get_by_label("Split by", exact=True).wait_for(timeout=90_000)
    wait_idle(page)

    # 1. Payments per merchant category (a dimension of a related table), last 30 days, no time series.
    pick_option(page, "Split by", "Category · Merchants")
    pick_option(page, "Time grain", "No time series")
    grid = result_grid(page, "Category", "Payments", exact=True)
    got = {row["Category"]: number(row["Payments"]) for _, row in grid.iterrows()}
    for code, n in current.items():
        assert got[CATEGORY_WORDS[code]] == n, code
    assert re.search(r"[?&]d=merchants.category(&|$)", page.url)
    page.screenshot(path=str(SHOTS / "question1.en.png"), full_page=True)

    # 2. The same, compared with the 30 days before: value, previous, Δ, Δ%.
    pick_option(page, "Compare with", "Previous period")
    grid = result_grid(page, "Payments (previous)", "Payments Δ", "Payments Δ%")
    assert {"Payments (previous)", "Payments Δ", "Payments Δ%"} <= set(grid.columns)
    for _, row in grid.iterrows():
        code = next((c for c, w in CATEGORY_WORDS.items() if w == row["Category"]), None)
        if code is None:
            continue
        assert number(row["Payments"]) == current[code]
        assert number(row["Payments (previous)"]) == previous[code]
        assert number(row["Payments Δ"]) == current[code] - previous[code]
        assert abs(number(row["Payments Δ%"]) - 100 * (current[code] - previous[code]) / previous[code]) <= 0.05
    traces = [t["name"] for t in page_charts(page)[0]["traces"]]
    assert traces == ["This period", "Previous period"]
    page.screenshot(path=str(SHOTS / "question2.en.png"), full_page=True)

    # 3. Drill down: click the Cafe bar; the filter shows as a breadcrumb and the numbers narrow to it.
    bars = page.locator(".js-plotly-plot .barlayer .trace").first.locator(".point")
    labels = [t for t in page_charts(page)[0]["x_ticks"]]
    bar = bars.nth(labels.index("Cafe"))
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()  # plotly's drag layer lies on top: click where the bar is, like a mouse does
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_role("button", name=re.compile(r"Category.*Cafe"))).to_be_visible(timeout=60_000)
    wait_idle(page)
    grid = result_grid(page)
    assert grid["Category"].to_list() == ["Cafe"]
    assert number(grid["Payments"].iloc[0]) == current["cafe"]
    assert re.search(r"[?&]f=merchants.category(~|%7E)in(~|%7E)cafe", page.url)
    # … and the records behind that number
    page.get_by_test_id("stButtonGroup").get_by_text("Rows", exact=True).click()
    expect(page.get_by_text(f"{int(current['cafe'])} records behind the numbers")).to_be_visible(timeout=60_000)
    page.get_by_test_id("stButtonGroup").get_by_text("Summary", exact=True).click()
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "question3.en.png"), full_page=True)
    before = result_grid(page)

    # Save the view; its link opens in a fresh browser context (no session) with the same numbers.
    page.get_by_text("Saved views", exact=True).click()
    name = page.get_by_label("View name", exact=True)
    name.fill("Cafe payments vs previous 30 days")
    name.press("Enter")  # the name reaches the app before the click (a loaded machine delivered the click first)
    wait_idle(page)
    page.get_by_role("button", name="Save this view").click()
    link = page.locator("a.dd-saved-view", has_text="Cafe payments vs previous 30 days")
    expect(link).to_be_visible(timeout=60_000)
    href = link.get_attribute("href")
    fresh = browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        other = fresh.new_page()
        other.goto(f"{base}/{href}&lang=en")
        other.get_by_label("Split by", exact=True).wait_for(timeout=90_000)
        wait_idle(other)
        pd.testing.assert_frame_equal(result_grid(other), before)
        assert re.search(r"[?&]cmp=previous(&|$)", other.url) and "saved=" not in other.url
    finally:
        fresh.close()


def page_charts(page) -> list[dict]:
    from tests.browser_page import charts

    return charts(page)


def test_pivot_download_keeps_the_layout_on_screen(server, context):
    from tests.browser_page import download, read_xlsx

    ds, base, shots = server
    page = context.new_page()
    page.goto(f"{base}/explore?base=payments&m=payments.payments&view=pivot&pr=merchants.category"
              f"&pc=payments.status&lang=en")
    page.get_by_text("Download Excel").wait_for(timeout=90_000)
    wait_idle(page)
    headers, rows = grid_rows(page, "q_pivot_0")
    name, data = download(page, "Download Excel")
    assert name.endswith(".xlsx")
    file_headers, file_rows, _ = read_xlsx(data)
    assert file_headers == headers == ["Category", "Approved", "Cancelled", "Total"]
    pay = frame(ds, "payments").merge(frame(ds, "merchants")[["merchant_id", "category"]], on="merchant_id", how="left")
    want = pd.crosstab(pay["category"], pay["status"])
    by_label = {r[0]: r[1:] for r in file_rows}
    for code, word in CATEGORY_WORDS.items():
        assert list(by_label[word]) == [want.loc[code, "approved"], want.loc[code, "cancelled"], want.loc[code].sum()]
    assert list(by_label["Total"]) == [(pay["status"] == "approved").sum(), (pay["status"] == "cancelled").sum(), len(pay)]
    assert [r[0] for r in rows] == [r[0] for r in file_rows][:len(rows)]  # same rows, same order as the screen


def test_clicking_a_table_row_adds_its_values_as_filters(server, context):
    from playwright.sync_api import expect

    ds, base, shots = server
    page = context.new_page()
    page.goto(f"{base}/explore?base=payments&m=payments.amount&d=merchants.category&d=payments.status&lang=en")
    grid = page.locator(".st-key-q_result [data-testid='stDataFrame']")
    grid.wait_for(timeout=90_000)
    wait_idle(page)
    headers, rows = grid_rows(page, "q_result")
    first = dict(zip(headers, rows[0]))
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection box
    expect(page.get_by_role("button", name=re.compile(rf"Category.*{first['Category']}"))).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name=re.compile(rf"Payment status.*{first['Payment status']}"))).to_be_visible()
    wait_idle(page)
    code = next(c for c, w in CATEGORY_WORDS.items() if w == first["Category"])
    status = {"Approved": "approved", "Cancelled": "cancelled"}[first["Payment status"]]
    pay = frame(ds, "payments").merge(frame(ds, "merchants")[["merchant_id", "category"]], on="merchant_id")
    want = pay[(pay["category"] == code) & (pay["status"] == status)]["amount_krw"].sum()
    _, narrowed = grid_rows(page, "q_result")
    assert len(narrowed) == 1 and number(narrowed[0][headers.index("Amount (KRW)")]) == want


def test_clicking_a_point_of_a_time_series_zooms_into_that_month_by_day(server, context):
    from playwright.sync_api import expect

    ds, base, shots = server
    page = context.new_page()
    page.goto(f"{base}/explore?base=payments&m=payments.payments&period=last_365_days&grain=month&lang=en")
    page.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for(timeout=90_000)
    wait_idle(page)
    expect(page.get_by_text("Click a point to zoom into that period by day")).to_be_visible()
    # A month well inside the period (not the first, cut by the period, nor the current one).
    buckets = page.evaluate("() => document.querySelector('.js-plotly-plot').data[0].customdata.map(c => c[0])")
    pick = len(buckets) - 3
    month = dt.date.fromisoformat(buckets[pick])
    point = page.locator(".js-plotly-plot .scatterlayer .trace").first.locator(".point").nth(pick)
    point.scroll_into_view_if_needed()
    box = point.bounding_box()  # plotly's drag layer lies on top: click where the point is, like a mouse does
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    last = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    page.wait_for_url(re.compile(rf"period={month.isoformat()}(\.\.|%2E%2E){last.isoformat()}"), timeout=60_000)
    assert re.search(r"[?&]grain=day(&|$)", page.url)
    wait_idle(page)  # the address changes as the run starts; the grid follows at its end
    grid = result_grid(page, "Period", "Payments", exact=True)
    pay = frame(ds, "payments")
    day = pd.to_datetime(pay["created_at"], utc=True).dt.tz_convert("Asia/Seoul").dt.date
    want = pay[(day >= month) & (day <= last)].groupby(day).size()
    got = {dt.date.fromisoformat(d[:10]): number(n) for d, n in zip(grid["Period"], grid["Payments"])}
    assert len(got) >= 10 and got == {d: float(want[d]) for d in got}  # the rows the grid draws …
    expect(page.get_by_text(f"{len(want)} result rows")).to_be_visible()  # … of one per day of that month
    page.screenshot(path=str(shots / "question_zoom.en.png"), full_page=True)
