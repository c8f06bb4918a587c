"""Every report's CSV and Excel, and Explore's, in Korean and in English: the file says what the screen says.

One `streamlit run` for the module over tests/reports_demo.py's dataset;
Debian chromium through Playwright clicks the real download buttons. For each
report and language the test reads the table on screen (headers and the rows
in view), downloads CSV and Excel, and checks that

- the files' headers are the screen's headers, in the screen's language;
- their first rows are the rows on screen, in the same order;
- every coded value (채널, 상태, 업종, …) is the word this test's own word
  list gives for the stored code — compared row by row with the analysts'
  raw file (the switch "raw codes and column names"), which carries the codes
  and the column names;
- the chart's value axis is the column's name, without an aggregation the
  report did not do, and a series has the same colour in both languages.

Expectations are written here (word lists, a few headers) or come from the
raw file; the app's vocabulary is never read back.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import pytest

from tests.browser_page import charts, choose, download, grid_rows, metrics, open_view, read_csv, read_xlsx, wait_idle
from tests.reports_demo import SEOUL, build_warehouse, make_dataset, write_app_config
from tests.streamlit_server import start_app, stop_app

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
REPORTS = sorted(p.stem for p in (ROOT / "sql").glob("*.sql"))
LANGS = ("ko", "en")

# The words for stored codes, per result column — written here, not read from dashboard/i18n.py.
WORDS = {
    "channel": {"bank_transfer": ("계좌이체", "Bank transfer"), "card": ("신용·체크카드", "Card"),
                "convenience_store": ("편의점", "Convenience store"), "mobile": ("모바일", "Mobile"),
                "auto_charge": ("자동충전", "Auto charge")},
    "category": {"convenience": ("편의점", "Convenience store"), "cafe": ("카페", "Cafe"), "restaurant": ("음식점", "Restaurant"),
                 "transport": ("교통", "Transport"), "online": ("온라인", "Online"), "culture": ("문화", "Culture"),
                 "retail": ("소매", "Retail")},
    "product": {"standard": ("일반", "Standard"), "transit": ("교통", "Transit"), "gift": ("기프트", "Gift"),
                "youth": ("청소년", "Youth")},
    "status": {"active": ("사용 중", "Active"), "suspended": ("정지", "Suspended"), "closed": ("해지", "Closed")},
    "segment": {"new": ("신규", "New"), "returning": ("재방문", "Returning")},
    "age_band": {"~19": ("19세 이하", "19 and under"), "20-29": ("20대", "20–29"), "30-39": ("30대", "30–39"),
                 "40-49": ("40대", "40–49"), "50-59": ("50대", "50–59"), "60+": ("60세 이상", "60 and over"),
                 "unknown": ("알 수 없음", "Unknown")},
    "weekday": {"Mon": ("월", "Mon"), "Tue": ("화", "Tue"), "Wed": ("수", "Wed"), "Thu": ("목", "Thu"), "Fri": ("금", "Fri"),
                "Sat": ("토", "Sat"), "Sun": ("일", "Sun")},
    "region": {"서울": ("서울", "Seoul"), "경기": ("경기", "Gyeonggi"), "인천": ("인천", "Incheon"), "부산": ("부산", "Busan"),
               "대구": ("대구", "Daegu"), "대전": ("대전", "Daejeon")},
}
UI = {"ko": {"rows": "행 수", "csv": "CSV 받기", "xlsx": "Excel 받기", "raw": "분석용: 원래 코드와 열 이름으로 받기",
             "raw_on": "— 저장된 코드와 열 이름",
             "sort": "정렬 기준", "desc": "내림차순", "matching": "조건에 맞는 행"},
      "en": {"rows": "Rows", "csv": "Download CSV", "xlsx": "Download Excel", "raw": "For analysts: raw codes and column names",
             "raw_on": "— stored codes and column names",
             "sort": "Sort by", "desc": "Descending", "matching": "Matching rows"}}
# A few headers spelled out, so "the same as the screen" cannot mean "the same wrong thing".
HEADERS = {
    ("daily_topups", "ko"): ["일자", "충전 경로", "충전 건수", "금액(원)"],
    ("daily_topups", "en"): ["Day", "Channel", "Top-ups", "Amount (KRW)"],
    ("dormant_cards_with_balance", "ko"): ["카드 번호", "상품", "상태", "잔액(원)", "발급일", "최근 결제일", "미사용 일수"],
    ("dormant_cards_with_balance", "en"): ["Card id", "Product", "Status", "Balance (KRW)", "Issued on", "Last payment", "Days idle"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("downloads")
    ds = make_dataset(dt.datetime.now(SEOUL).date())
    config = write_app_config(tmp, build_warehouse(tmp / "warehouse.duckdb", ds))
    proc, base = start_app(config, tmp / "streamlit.log")
    try:
        yield ds, base, tmp
    finally:
        stop_app(proc)
        print("screenshots in", tmp)


VIEWPORT = {"width": 2600, "height": 1400}  # wide enough that the grid draws every column (it skips those out of view)


@pytest.fixture(scope="module")
def context(browser):
    """One browser context for the module: every visit is a new page (a new session, so a switch turned on in one
    test is off in the next), the language is in each URL, and the app's scripts come from the context's cache
    — a fresh context per visit parsed them anew and took twice as long."""
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module", autouse=True)
def warm(server, context):
    """One visit first: a fresh server's first page run reruns itself once (the legacy multipage trap,
    dashboard/warehouse.py), which would swap the download buttons under a click. Shared links on a fresh
    server are tested in test_browser_reports.py and test_browser_explore.py."""
    page = context.new_page()
    try:
        open_view(page, server[1] + "/", "개요")
    finally:
        page.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    yield page
    page.close()


def same_value(file_value, screen_text: str) -> bool:
    """A file cell against the grid's text for it (numbers as numbers, dates by their day and time)."""
    if file_value is None or file_value == "":
        return screen_text == ""
    if isinstance(file_value, (dt.datetime, dt.date)):
        return screen_text.startswith(file_value.isoformat(sep=" ")[:10])
    text = str(file_value)
    try:
        return math.isclose(float(text), float(screen_text), rel_tol=1e-9, abs_tol=0.051)
    except ValueError:
        return text == screen_text or (re.match(r"\d{4}-\d\d-\d\d", text) is not None and text[:16] == screen_text[:16])


def check_file_matches_screen(headers, rows, file_headers, file_rows, n, what):
    assert file_headers == headers, what
    assert len(file_rows) == n, what
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            assert same_value(file_rows[i][j], text), (what, i, headers[j], file_rows[i][j], text)


def check_words(labelled, raw, lang: str, what: str) -> None:
    """Every column: coded ones hold this test's word for the raw file's code, the others the raw value itself."""
    assert len(labelled) == len(raw) and len(labelled.columns) == len(raw.columns), what
    k = 0 if lang == "ko" else 1
    for j, name in enumerate(raw.columns):
        got, codes = list(labelled.iloc[:, j]), list(raw.iloc[:, j])
        if name in WORDS:
            assert got == [WORDS[name][c][k] if c else "" for c in codes], (what, name)
        else:
            assert got == codes, (what, name)


def switch_to_raw_codes(page, ui) -> None:
    """Turn on the raw-codes switch and wait for the run that gives the buttons their `_raw` files."""
    from playwright.sync_api import expect

    page.get_by_text(ui["raw"]).click()
    expect(page.get_by_text(ui["raw_on"]).first).to_be_visible(timeout=60_000)
    wait_idle(page)


# ────────────────────────────────────────────────────────────── reports ──


@pytest.mark.parametrize("slug", REPORTS)
def test_report_files_carry_the_screen_in_both_languages(server, context, slug):
    ds, base, shots = server
    files: dict[str, object] = {}
    colours = {}
    for lang in LANGS:
        page = context.new_page()
        try:
            ui = UI[lang]
            open_view(page, f"{base}/reports?report={slug}{'&lang=en' if lang == 'en' else ''}", ui["rows"])
            headers, rows = grid_rows(page, f"r_rows_{slug}")
            n = int(metrics(page)[ui["rows"]].replace(",", ""))
            if (slug, lang) in HEADERS:
                assert headers == HEADERS[(slug, lang)]
            assert all(not h[:1].islower() for h in headers), headers  # "Day", never "day"

            name, data = download(page, ui["csv"])
            assert name.startswith(slug) and name.endswith(".csv") and "_raw" not in name
            csv = read_csv(data)
            check_file_matches_screen(headers, rows, list(csv.columns), csv.values.tolist(), n, f"{slug} {lang} csv")
            name, data = download(page, ui["xlsx"])
            assert name.endswith(".xlsx")
            xlsx_headers, xlsx_rows, _ = read_xlsx(data)
            check_file_matches_screen(headers, rows, xlsx_headers, xlsx_rows, n, f"{slug} {lang} xlsx")
            files[lang] = csv

            plotted = charts(page)
            if plotted and not slug.startswith("payments_heatmap"):
                y = plotted[0]["y_title"]
                assert y in headers and "(합계)" not in y and "(Sum)" not in y, y  # the column's name, as in the table
                colours[lang] = [(tr["name"], tr["colour"]) for tr in plotted[0]["traces"]]

            if lang == "ko":  # the analysts' file: stored codes and column names (the same in both languages)
                switch_to_raw_codes(page, ui)
                name, data = download(page, ui["csv"])
                assert name.endswith("_raw.csv")
                files["raw"] = read_csv(data)
                assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", c) for c in files["raw"].columns), list(files["raw"].columns)
                page.screenshot(path=str(shots / f"{slug}_{lang}.png"), full_page=True)
        finally:
            page.close()
    for lang in LANGS:
        check_words(files[lang], files["raw"], lang, f"{slug} {lang}")
    if colours:  # a series keeps its colour across languages (matched through the raw codes' order)
        assert [c for _, c in colours["ko"]] == [c for _, c in colours["en"]]
        assert len({n for n, _ in colours["ko"]}) == len(colours["ko"])


def test_report_files_keep_the_order_chosen_on_screen(server, page):
    ds, base, shots = server
    ui = UI["ko"]
    open_view(page, f"{base}/reports?report=daily_topups", ui["rows"])
    choose(page, ui["sort"], "충전 경로")
    page.get_by_text(ui["desc"], exact=True).click()
    page.wait_for_url(re.compile(r"sort=channel.*desc=1|desc=1.*sort=channel"), timeout=30_000)
    wait_idle(page)
    headers, rows = grid_rows(page, "r_rows_daily_topups")
    col = headers.index("충전 경로")
    _, data = download(page, ui["csv"])
    csv = read_csv(data)
    shown = [r[col] for r in rows]
    assert list(csv["충전 경로"])[:len(shown)] == shown
    # Sorted by the words people read (가나다, descending), not by the stored codes.
    assert list(csv["충전 경로"]) == sorted(csv["충전 경로"], reverse=True)
    assert list(csv["충전 경로"])[0] == "편의점" and list(csv["충전 경로"])[-1] == "계좌이체"


# ────────────────────────────────────────────────────────────── explore ──


@pytest.mark.parametrize("lang", LANGS)
def test_explore_files_carry_the_screen(server, page, lang):
    ds, base, shots = server
    ui = UI[lang]
    open_view(page, f"{base}/explore?table=cards&sort=balance_krw&desc=1{'&lang=en' if lang == 'en' else ''}",
              ui["matching"])
    headers, rows = grid_rows(page, "x_rows")
    cards = ds.live("cards")
    if lang == "en":
        assert headers[:8] == ["Card id", "Member (pseudonymised)", "Product", "Card status", "Balance (KRW)",
                               "Issued at", "Last used at", "Last change"]
    else:
        assert headers[:8] == ["카드 번호(내부)", "회원 (가명)", "상품", "카드 상태", "잔액(원)", "발급 시각", "최근 사용 시각",
                               "변경 시각"]
    _, data = download(page, ui["csv"])
    csv = read_csv(data)
    check_file_matches_screen(headers, rows, list(csv.columns), csv.values.tolist(), len(cards), f"explore {lang} csv")
    _, data = download(page, ui["xlsx"])
    xlsx_headers, xlsx_rows, sheet = read_xlsx(data)
    check_file_matches_screen(headers, rows, xlsx_headers, xlsx_rows, len(cards), f"explore {lang} xlsx")
    assert sheet["A2"].number_format == "0"  # an id: 58, 7056 — never 7,056
    balances = [int(v) for v in csv.iloc[:, 4]]
    assert balances == sorted((c["balance_krw"] for c in cards), reverse=True)  # the order on screen
    switch_to_raw_codes(page, ui)
    name, data = download(page, ui["csv"])
    raw = read_csv(data)
    assert name.endswith("_raw.csv") and list(raw.columns)[:5] == ["card_id", "member_id", "product", "status", "balance_krw"]
    check_words(csv, raw, lang, f"explore {lang}")
