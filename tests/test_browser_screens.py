"""What people see, in a real browser, in Korean and in English (issue 12, "Downloads and screens").

One `streamlit run` for the module (a subprocess stopped by its PID) over the
demo dataset of tests/reports_demo.py, Debian chromium through Playwright.
Expectations come from the generated rows and from word lists written here —
never from the app's own vocabulary. Tables are read from the grid's
accessible copy and from what it paints on its canvas (tests/browser_page.py),
charts from plotly's objects on the page. Screenshots land in the module's tmp
dir (printed) for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.browser_page import (
    charts,
    choose,
    drawn_text,
    grid_rows,
    metrics,
    open_view,
    record_drawn_text,
    selectbox_options,
    sort_by_first_column,
    wait_idle,
)
from tests.reports_demo import SEOUL, build_warehouse, make_dataset, write_alert_history, write_app_config
from tests.streamlit_server import start_app, stop_app

pytestmark = pytest.mark.browser
LANGS = ("ko", "en")

# Written here, independently of dashboard/i18n.py: what each language calls things.
CHANNELS = {"ko": {"계좌이체": "bank_transfer", "신용·체크카드": "card", "편의점": "convenience_store", "모바일": "mobile",
                   "자동충전": "auto_charge"},
            "en": {"Bank transfer": "bank_transfer", "Card": "card", "Convenience store": "convenience_store",
                   "Mobile": "mobile", "Auto charge": "auto_charge"}}
MEASURES = {"ko": {"충전": "topups", "결제": "payments", "환불": "refunds"},
            "en": {"Top-ups": "topups", "Payments": "payments", "Refunds": "refunds"}}
PERIOD_OPTIONS = {"ko": ["오늘", "어제", "이번 주", "지난주", "이번 달", "지난달", "올해", "작년", "최근 7일", "최근 30일",
                         "최근 90일", "최근 365일", "직접 지정"],
                  "en": ["Today", "Yesterday", "This week", "Last week", "This month", "Last month", "This year",
                         "Last year", "Last 7 days", "Last 30 days", "Last 90 days", "Last 365 days", "Custom range"]}
WORDS = {
    "ko": {"period": "기간", "all_time": "전체 기간", "last_month": "지난달", "payment_id": "결제 번호", "min": "최소",
           "max": "최대", "copy": "링크 복사", "copied": "링크를 복사했습니다", "matching": "조건에 맞는 행",
           "reversed": "시작일({a})이 종료일({b})보다 늦습니다", "no_data": "조건에 맞는 데이터가 없습니다",
           "rows": "행 수", "balance_total": "잔액(원) 합계", "dormant_count": "휴면 카드 수", "sort": "정렬 기준",
           "avg_ticket": "객단가(원)", "cancel_rate": "취소율(%)", "amount": "금액(원)", "weekdays": ["월", "화", "수", "목", "금", "토", "일"],
           "explore": "데이터 탐색", "card_id": "카드 번호", "trend": "최근 30일 일별 금액"},
    "en": {"period": "Period", "all_time": "All time", "last_month": "Last month", "payment_id": "Payment id", "min": "Min",
           "max": "Max", "copy": "Copy link", "copied": "Link copied", "matching": "Matching rows",
           "reversed": "The start date ({a}) is after the end date ({b})", "no_data": "No data matches the filters",
           "rows": "Rows", "balance_total": "Total Balance (KRW)", "dormant_count": "Dormant cards", "sort": "Sort by",
           "avg_ticket": "Average ticket (KRW)", "cancel_rate": "Cancellation rate (%)", "amount": "Amount (KRW)",
           "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "explore": "Explore", "card_id": "Card id",
           "trend": "Daily amounts, last 30 days"},
}
ENGLISH_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("screens")
    ds = make_dataset(dt.datetime.now(SEOUL).date())
    warehouse = build_warehouse(tmp / "warehouse.duckdb", ds)
    write_alert_history(tmp / "alerts.jsonl", ds.now)
    config = write_app_config(tmp, warehouse, alerts_history=tmp / "alerts.jsonl")
    proc, base = start_app(config, tmp / "streamlit.log")
    try:
        yield ds, base, tmp
    finally:
        stop_app(proc)
        print("screenshots in", tmp)


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    record_drawn_text(ctx)
    yield ctx
    ctx.close()


def open_page(context, url: str, ready: str):
    """A new tab on `url`, once the text `ready` shows and the run has finished."""
    page = context.new_page()
    open_view(page, url, ready)
    return page


def q(lang: str) -> str:
    return "&lang=en" if lang == "en" else ""


# ──────────────────────────────────────────────────── language and links ──


def test_language_is_kept_in_links_reloads_and_the_copied_link(server, browser, context):
    from playwright.sync_api import expect

    ds, base, shots = server
    page = open_page(context, f"{base}/reports?report=daily_topups&lang=en", "Daily top-ups")
    assert "lang=en" in page.url and "report=daily_topups" in page.url
    page.reload()
    expect(page.get_by_text("Search reports").first).to_be_visible(timeout=60_000)
    wait_idle(page)
    assert "lang=en" in page.url  # a reload keeps the language
    page.get_by_test_id("stSidebar").get_by_text("Explore", exact=True).click()
    # Explore opens on the question builder; its question is in the address, with the language.
    page.wait_for_url(re.compile(r"/explore\?(.*&)?base=.*lang=en|/explore\?lang=en.*base="), timeout=60_000)
    expect(page.get_by_text("Split by").first).to_be_visible(timeout=60_000)
    wait_idle(page)

    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_text("Link copied").first).to_be_visible(timeout=10_000)
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == page.url and "lang=en" in copied and "base=" in copied
    page.screenshot(path=str(shots / "copy_link_en.png"))

    # Someone else opens the copied link: same view, same language.
    other = browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        theirs = other.new_page()
        theirs.goto(copied)
        expect(theirs.get_by_text("Split by").first).to_be_visible(timeout=60_000)
        wait_idle(theirs)
        assert theirs.url == copied
    finally:
        other.close()

    # Back to Korean: the URL drops the language (Korean is the default) and a reload stays Korean.
    page.get_by_test_id("stSidebar").get_by_text("한국어").click()
    expect(page.get_by_text("나누는 기준").first).to_be_visible(timeout=60_000)
    wait_idle(page)
    assert "lang=" not in page.url
    page.reload()
    expect(page.get_by_text("나누는 기준").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="링크 복사").click()
    expect(page.get_by_text("링크를 복사했습니다").first).to_be_visible(timeout=10_000)
    assert page.evaluate("() => navigator.clipboard.readText()") == page.url


# ──────────────────────────────────────── tables, ids, empties, labels, totals ──


@pytest.mark.parametrize("lang", LANGS)
def test_tables_show_ids_as_written_dashes_for_nothing_and_totals_above(server, context, lang):
    ds, base, shots = server
    w = WORDS[lang]
    ids = sorted(p["payment_id"] for p in ds.live("payments"))
    assert ids[-1] >= 1000  # four-digit ids: where "3,012" and text order would show

    # Explore: payments by id, newest first; a number filter on the id; a monthly average chart.
    page = open_page(context, f"{base}/explore?table=payments&range.payment_id=1000..&sort=payment_id&desc=1"
                              f"&chart=line&x=created_at&bucket=month&agg=avg&y=amount_krw{q(lang)}", w["matching"])
    headers, rows = grid_rows(page, "x_rows")
    col = headers.index(w["payment_id"])
    shown = [r[col] for r in rows]
    assert shown == [str(i) for i in sorted(ids, reverse=True)[:len(shown)]]  # "3124", never "3,124"
    painted = drawn_text(page)
    assert shown[0] in painted and f"{int(shown[0]):,}" not in painted  # what the canvas drew, too
    assert "—" in painted and "None" not in painted  # most payments were never cancelled
    if lang == "en":
        assert headers[:8] == ["Payment id", "Card", "Merchant", "Amount (KRW)", "Payment status", "Paid at", "Cancelled at",
                               "Last change"]  # words with a capital, not "payment id" / "paid at"
        assert {r[4] for r in rows} <= {"Approved", "Cancelled"}
    else:
        assert {r[4] for r in rows} <= {"승인", "취소"}
    assert page.get_by_label(f"{w['payment_id']} — {w['min']}").input_value() == "1000"  # not "1000.00"
    chart = charts(page)[0]
    assert chart["y_title"] == ("결제 금액(원) (평균)" if lang == "ko" else "Amount (KRW) (Average)")  # it did average
    months = [t for t in chart["x_ticks"] if t]
    assert months and (all(re.fullmatch(r"\d{4}년 \d{1,2}월", t) for t in months) if lang == "ko"
                       else all(t.split()[0] in ENGLISH_MONTHS for t in months)), months
    page.screenshot(path=str(shots / f"explore_payments_{lang}.png"), full_page=True)
    # The grid's own sort (click the header): numbers, so 1000, 1001 … not 1000, 1001, 1002 … 10, 100.
    sort_by_first_column(page, "x_rows")
    _, rows = grid_rows(page, "x_rows")
    assert [int(r[0]) for r in rows] == [i for i in ids if i >= 1000][:len(rows)]

    # A report's total is a summary above the table, not a column repeated on every row.
    last = {}
    for p in ds.live("payments"):
        if p["status"] == "approved":
            last[p["card_id"]] = max(last.get(p["card_id"], p["created_at"]), p["created_at"])
    dormant = {c["card_id"]: c["balance_krw"] for c in ds.live("cards")  # the report's defaults: 90 days, ≥ 10,000
               if c["status"] != "closed" and c["balance_krw"] >= 10000
               and (ds.today - last.get(c["card_id"], c["issued_at"]).astimezone(SEOUL).date()).days >= 90}
    assert len(dormant) >= 3
    page = open_page(context, f"{base}/reports?report=dormant_cards_with_balance{q(lang)}", w["rows"])
    headers, rows = grid_rows(page, "r_rows_dormant_cards_with_balance")
    assert w["dormant_count"] not in headers and not any("합계" in h or "Total" in h for h in headers)
    tiles = metrics(page)
    total = sum(dormant.values())
    assert tiles[w["rows"]] == str(len(dormant))
    assert tiles[w["balance_total"]] == (f"{total:,}원" if lang == "ko" else f"₩{total:,}")
    shown = [int(r[0]) for r in rows]
    assert set(shown) <= set(dormant) and len(shown) == len(set(shown))  # each card once
    painted = drawn_text(page)
    assert "—" in painted and "None" not in painted  # cards never used have no last payment
    page.screenshot(path=str(shots / f"dormant_{lang}.png"), full_page=True)

    # The other pages' tables never say "None" either; English item counts and axis titles read as words.
    page = open_page(context, f"{base}/pipeline{'?lang=en' if lang == 'en' else ''}", "prepaid.refunds")
    assert "None" not in drawn_text(page)
    titles = {c["x_title"] for c in charts(page)} | {c["y_title"] for c in charts(page)}
    assert titles == ({"커밋 시각", "행 수", "처리 시간(초)"} if lang == "ko" else {"Committed at", "Rows", "Duration (s)"})
    page = open_page(context, f"{base}/{'?lang=en' if lang == 'en' else ''}", w["trend"])
    captions = " ".join(page.get_by_test_id("stCaptionContainer").all_inner_texts())
    assert re.search(r"\d건" if lang == "ko" else r"\d items", captions) and not re.search(r"\ditems", captions), captions
    page.screenshot(path=str(shots / f"overview_{lang}.png"), full_page=True)


def test_series_keep_their_colours_in_both_languages(server, context):
    """The overview's trend (and, in test_browser_downloads, every report chart): one colour per series in both languages."""
    ds, base, shots = server
    colours = {}
    for lang in LANGS:
        page = open_page(context, f"{base}/{'?lang=en' if lang == 'en' else ''}", WORDS[lang]["trend"])
        trend = charts(page)[0]
        assert trend["y_title"] == WORDS[lang]["amount"]  # amounts per day as they are: no "(합계)" / "(Sum)"
        assert all(re.fullmatch(r"\d{1,2}월 \d{1,2}일", t) for t in trend["x_ticks"] if t) if lang == "ko" else \
            all(t.split()[0] in ENGLISH_MONTHS for t in trend["x_ticks"] if t), trend["x_ticks"]
        colours[lang] = {MEASURES[lang][tr["name"]]: tr["colour"] for tr in trend["traces"]}
    assert colours["ko"] == colours["en"] and len(set(colours["ko"].values())) == 3


# ─────────────────────────────────────────────────────── the date control ──


@pytest.mark.parametrize("lang", LANGS)
def test_one_period_control_with_the_same_presets_everywhere(server, context, lang):
    ds, base, shots = server
    w = WORDS[lang]
    page = open_page(context, f"{base}/reports?report=daily_topups{q(lang)}", w["rows"])
    in_reports = selectbox_options(page, w["period"])
    page_x = open_page(context, f"{base}/explore?table=topups{q(lang)}", w["matching"])
    in_explore = selectbox_options(page_x, w["period"])
    assert in_reports == PERIOD_OPTIONS[lang]
    assert in_explore == [w["all_time"], *PERIOD_OPTIONS[lang]]  # Explore can also filter nothing

    # Last month without typing: the URL keeps the preset; the dates shown are last month's.
    choose(page, w["period"], w["last_month"])
    page.wait_for_url(re.compile(r"period=last_month"), timeout=30_000)
    end = ds.today.replace(day=1) - dt.timedelta(days=1)
    assert page.get_by_text(f"{end.replace(day=1)} – {end}").count() >= 1
    page.screenshot(path=str(shots / f"period_last_month_{lang}.png"), full_page=True)

    # A start after the end says so — on both pages — instead of an empty table.
    a, b = ds.today - dt.timedelta(days=3), ds.today - dt.timedelta(days=10)
    message = w["reversed"].format(a=a, b=b)
    for url, grid_key in ((f"{base}/reports?report=daily_topups&period={a}..{b}{q(lang)}", "r_rows_daily_topups"),
                          (f"{base}/explore?table=topups&period.created_at={a}..{b}{q(lang)}", "x_rows")):
        page = open_page(context, url, message)
        assert page.locator(f".st-key-{grid_key}").count() == 0
        assert page.get_by_text(w["no_data"]).count() == 0
        page.screenshot(path=str(shots / f"reversed_{grid_key}_{lang}.png"), full_page=True)
