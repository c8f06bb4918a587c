"""Reading what a person sees in the browser: the app's tables, charts, widgets and downloads.

Streamlit draws tables on a canvas (glide-data-grid). Two ways in:

- the grid's accessible copy (a hidden <table> of the rows in view): headers
  and cell values, as the grid formats them;
- `record_drawn_text`, installed before the page loads, which records every
  string the page paints on a canvas — so a test can tell "—" from "None" and
  "7056" from "7,056", which the accessible copy does not show.

Charts are read from plotly's own objects on the page (`gd.layout`, `gd.data`)
and from the tick labels it drew (SVG text).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
import pandas as pd

DRAWN_TEXT_SCRIPT = """
(() => {
  window.__drawn = [];
  const keep = (text) => { if (window.__drawn.length < 200000) window.__drawn.push(String(text)); };
  const original = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) { keep(text); return original.call(this, text, ...rest); };
})();
"""


def record_drawn_text(context) -> None:
    """Record every string painted on a canvas in pages of this browser context (read with `drawn_text`)."""
    context.add_init_script(DRAWN_TEXT_SCRIPT)


def drawn_text(page) -> list[str]:
    return page.evaluate("() => window.__drawn || []")


def clear_drawn_text(page) -> None:
    page.evaluate("() => { window.__drawn = []; }")


def wait_idle(page, timeout: int = 60_000, started: bool = False) -> None:
    """Until Streamlit has finished the run: the app says no script runs (its `data-test-script-state`,
    set as soon as the server reports a run, unlike the running-status widget, which shows only after
    a delay), and no running-status widget or placeholder skeleton is left.

    After a click the run may not have started yet, hence a first pause; `started`: the caller has
    already seen the run's output (open_view), so there is nothing to wait for before looking."""
    if not started:
        page.wait_for_timeout(400)
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " const state = app ? app.getAttribute('data-test-script-state') : 'initial';"
        " return state !== 'running' && state !== 'rerunRequested' && state !== 'initial'"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]'); }", timeout=timeout)
    page.wait_for_timeout(400)


def open_view(page, url: str, ready: str) -> None:
    """Open `url` and wait until `ready` is on screen and the run is over."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_text(ready).first).to_be_visible(timeout=90_000)
    wait_idle(page, started=True)


def grid_rows(page, key: str, columns: tuple[str, ...] = (), exact: bool = False) -> tuple[list[str], list[list[str]]]:
    """(headers, rows in view) of the st.dataframe with this key, from the grid's accessible copy.

    `columns`: wait until the grid's headers include these (`exact`: are these) — the grid of
    the run a click started, not the one still on screen from the run before (a loaded
    machine may start the new run later than `wait_idle` looks).
    """
    grid = page.locator(f".st-key-{key} [data-testid='stDataFrame']")
    grid.wait_for(timeout=60_000)
    page.wait_for_function(
        "([key, want, exact]) => { const t = document.querySelector(`.st-key-${key} [data-testid=stDataFrame] table`);"
        " if (!t || t.querySelectorAll('tr').length === 0) return false;"
        " const heads = [...t.querySelector('tr').children].map(c => c.textContent.replace(/^[↑↓]\\s*/, '').trim());"
        " return exact ? heads.join('\\n') === want.join('\\n') : want.every(w => heads.includes(w)); }",
        arg=[key, list(columns), exact], timeout=60_000)
    rows = page.evaluate(
        "(key) => [...document.querySelector(`.st-key-${key} [data-testid=stDataFrame] table`).querySelectorAll('tr')]"
        ".map(r => [...r.children].map(c => c.textContent))", key)
    headers = [re.sub(r"^[↑↓]\s*", "", h).strip() for h in rows[0]]
    return headers, [r for r in rows[1:] if r]


def sort_by_first_column(page, key: str) -> None:
    """Click the grid's first column header until the grid sorts by it ascending (in the browser: "↑" on the header)."""
    grid = page.locator(f".st-key-{key} [data-testid='stDataFrame']")
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = grid.bounding_box()  # in the viewport, after scrolling the grid into it
    first_header = ("(key) => { const t = document.querySelector(`.st-key-${key} [data-testid=stDataFrame] table`);"
                    " return t ? t.querySelector('tr').children[0].textContent : ''; }")
    for _ in range(3):
        page.mouse.click(box["x"] + 30, box["y"] + 18)
        page.wait_for_timeout(1000)
        if page.evaluate(first_header, key).startswith("↑"):
            return
    raise AssertionError("the grid did not sort by its first column: " + page.evaluate(first_header, key))


def charts(page) -> list[dict]:
    """Every plotly chart on the page: axis titles, tick labels, traces (name, colour)."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
        const title = (axis) => (gd.layout[axis] && gd.layout[axis].title && gd.layout[axis].title.text) || '';
        const colour = (t) => (t.marker && typeof t.marker.color === 'string' && t.marker.color)
                              || (t.line && t.line.color) || '';
        return {
          x_title: title('xaxis'), y_title: title('yaxis'),
          x_ticks: [...gd.querySelectorAll('.xtick text')].map(t => t.textContent),
          y_ticks: [...gd.querySelectorAll('.ytick text')].map(t => t.textContent),
          traces: gd.data.map(t => ({name: t.name || '', type: t.type, colour: colour(t)})),
        };
    })""")


def metrics(page) -> dict[str, str]:
    """st.metric tiles: label → value, as shown."""
    out = {}
    tiles = page.get_by_test_id("stMetric")
    for i in range(tiles.count()):
        label = tiles.nth(i).get_by_test_id("stMetricLabel").inner_text().strip()
        out[label] = tiles.nth(i).get_by_test_id("stMetricValue").inner_text().strip()
    return out


def selectbox_options(page, label: str) -> list[str]:
    """The options of a selectbox, as its list shows them (opened and closed again)."""
    page.get_by_label(label, exact=True).click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=30_000)
    texts = [options.nth(i).inner_text().strip() for i in range(options.count())]
    page.keyboard.press("Escape")
    return texts


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).first.click()
    wait_idle(page)


def download(page, button: str) -> tuple[str, bytes]:
    """Click a download button; (suggested file name, bytes)."""
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=button, exact=True).click()
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def read_csv(data: bytes) -> pd.DataFrame:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV without a BOM: Excel on Windows would garble Korean"
    return pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", keep_default_na=False, dtype=str)


def read_xlsx(data: bytes) -> tuple[list[str], list[tuple], openpyxl.worksheet.worksheet.Worksheet]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    return [str(h) for h in rows[0]], rows[1:], sheet
