"""Two people with different roles, signed in through a real OIDC provider, see different data on every page.

One app with `[access]` over the demo warehouse (tests/fixtures_app.py):
- busan@example.com, role "busan": payments and merchants only, payments without card ids, rows of merchants
  in 부산 only (a rule on the merchant's region that follows payments → merchants);
- anyone in the group "analysts", role "analyst": every table, but no card balances;
- boss@example.com: admin.
Expectations come from the generated rows (pandas), and downloaded files are parsed.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from dashboard import app_state
from ingest.config import load_config
from tests.browser_page import download, open_view, read_csv, wait_idle
from tests.fixtures_app import live, make_rows
from tests.fixtures_login import sign_in, start_signin_app
from tests.streamlit_server import stop_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
VIEWPORT = {"width": 1800, "height": 1200}

ACCESS = """
[access]
people = [
  { match = "boss@example.com", role = "admin" },
  { match = "busan@example.com", role = "busan" },
  { match = "group:analysts", role = "analyst" },
]

[access.roles.busan]
tables = ["payments", "merchants"]
hide_columns = ["payments.card_id"]
rows = [{ dimension = "merchants.region", op = "in", values = ["부산"] }]

[access.roles.analyst]
hide_columns = ["cards.balance_krw"]
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory, oidc_provider):
    tmp = tmp_path_factory.mktemp("access")
    proc, base = start_signin_app(tmp, oidc_provider, ACCESS)
    try:
        yield base, tmp
    finally:
        stop_app(proc)


def busan_payments():
    rows = make_rows()
    merchants = rows["merchants"]
    busan = set(merchants.loc[merchants.region == "부산", "merchant_id"])
    pay = live(rows["payments"])
    return pay[pay.merchant_id.isin(busan)], busan


def sidebar_links(page) -> list[str]:
    return [t.strip() for t in page.locator("[data-testid='stSidebar'] [data-testid='stPageLink']").all_inner_texts()]


def test_a_regional_role_sees_its_tables_columns_and_rows_on_every_page(app, browser):
    base, tmp = app
    want, busan_ids = busan_payments()
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = ctx.new_page()
    try:
        sign_in(page, base, "busan@example.com")
        expect(page.get_by_text("busan@example.com").first).to_be_visible(timeout=30_000)
        links = " ".join(sidebar_links(page))
        assert "관리" not in links and "파이프라인" not in links  # admin-only pages are not offered

        # Explore, table mode: only its tables; the payments file holds its rows, without card ids
        open_view(page, f"{base}/explore?table=payments", "조건에 맞는 행")
        page.screenshot(path=str(tmp / "busan_explore.png"), full_page=True)
        name, data = download(page, "CSV 받기")
        frame = read_csv(data)
        assert len(frame) == len(want) > 0
        ids = {int(v) for v in frame[[c for c in frame.columns if "가맹점" in c][0]]}
        assert ids <= busan_ids
        assert not any("카드" in c for c in frame.columns)

        # Overview: no top-up figures (the role has no top-ups), payments are its region's
        open_view(page, f"{base}/", "결제")
        page.screenshot(path=str(tmp / "busan_overview.png"), full_page=True)
        body = page.locator("[data-testid='stMain']").inner_text()
        assert "충전" not in body and "권한" not in body

        # Reports: only reports whose every column it may read; what each reads is listed
        open_view(page, f"{base}/reports?report=payments_by_category_region", "읽는 데이터")
        page.screenshot(path=str(tmp / "busan_report.png"), full_page=True)
        page.get_by_role("combobox", name="보고서").click()
        page.get_by_role("option").first.wait_for(timeout=30_000)
        offered = [o.strip() for o in page.get_by_role("option").all_inner_texts()]
        page.keyboard.press("Escape")
        assert any("업종·지역별 결제" in o for o in offered) and not any("충전" in o or "카드" in o for o in offered)
        assert "서울" not in page.locator("[data-testid='stMain']").inner_text()

        # Look-up: a merchant of its region opens; a merchant elsewhere is not found
        one_busan, elsewhere = min(busan_ids), min(set(make_rows()["merchants"].merchant_id) - busan_ids)
        open_view(page, f"{base}/lookup?what=merchant&id={one_busan}", "가맹점")
        expect(page.get_by_text("찾지 못했습니다")).to_have_count(0)
        open_view(page, f"{base}/lookup?what=merchant&id={elsewhere}", "찾지 못했습니다")

        # Dictionary: no top-ups, no cards, no card id column
        open_view(page, f"{base}/dictionary", "payments")
        text = page.locator("[data-testid='stMain']").inner_text()
        assert "topups" not in text and "card_id" not in text

        # Shared links to what the role cannot see: "no access", never the data
        for url in ("/explore?table=topups", "/explore?base=topups&m=topups.topups", "/lookup?what=card&id=1",
                    "/reports?report=daily_topups", "/admin", "/pipeline"):
            page.goto(base + url)
            expect(page.get_by_text("권한").first).to_be_visible(timeout=60_000)
            wait_idle(page)
            body = page.locator("[data-testid='stMain']").inner_text()
            assert "조건에 맞는 행" not in body, url

        # Tampering with a filter value: another region's rows never come back
        open_view(page, f"{base}/explore?base=payments&m=payments.payments&d=merchants.region", "결제")
        page.screenshot(path=str(tmp / "busan_question.png"), full_page=True)
        body = page.locator("[data-testid='stMain']").inner_text()
        assert "부산" in body and "서울" not in body
        # … and a filter asking for another region finds nothing, rather than that region's rows
        open_view(page, f"{base}/explore?base=payments&m=payments.payments&d=merchants.region"
                    "&f=merchants.region~in~서울&view=rows", "결제")
        page.screenshot(path=str(tmp / "busan_tampered.png"), full_page=True)
        name, data = download(page, "CSV 받기")
        assert len(read_csv(data)) == 0
    finally:
        ctx.close()

    with app_state.connect(app_state.store_path(load_config(tmp / "pipeline.toml", needs=("warehouse",)))) as conn:
        rows = conn.execute("SELECT who, action, target, rows FROM audit WHERE action = 'download'").fetchall()
    assert [tuple(r) for r in rows] == [("busan@example.com", "download", "payments", len(want)),
                                        ("busan@example.com", "download", "결제", 0)]  # a question: its base table's label


def test_an_analyst_sees_every_table_but_no_card_balances(app, browser):
    base, tmp = app
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = ctx.new_page()
    try:
        sign_in(page, base, "ana@example.com", groups=("analysts",))
        open_view(page, f"{base}/explore?table=cards", "조건에 맞는 행")
        name, data = download(page, "CSV 받기")
        frame = read_csv(data)
        assert len(frame) == len(make_rows()["cards"])
        assert not any("잔액" in c for c in frame.columns)
        open_view(page, f"{base}/explore?table=topups", "조건에 맞는 행")  # every table
    finally:
        ctx.close()
