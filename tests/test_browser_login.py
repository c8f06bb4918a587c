"""Sign-in, in a real browser against a real OIDC provider (issue 16, "Login").

One app for the module, started with an [access] section and its secrets
given as environment variables (ingest/app_launch.py writes them to a 0600
file); oidc-provider-mock as the provider; Debian chromium through Playwright.
Every test opens a fresh browser context, so it starts signed out. The words
looked for are written here, independently of dashboard/i18n.py.
Screenshots land in the module's tmp dir (printed) for a person to look at.
"""

from __future__ import annotations

import re
import stat
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser_page import wait_idle
from tests.fixtures_login import SIGN_IN_BUTTON, sign_in, start_signin_app
from tests.streamlit_server import stop_app

pytestmark = pytest.mark.browser  # each test < 20 s; the module ~1 min with its app and provider

SIDEBAR = "[data-testid='stSidebar']"
PAGE_LINKS = "[data-testid='stSidebar'] [data-testid='stPageLink']"


@pytest.fixture(scope="module")
def app(tmp_path_factory, oidc_provider):
    tmp = tmp_path_factory.mktemp("login")
    print(f"\nscreenshots and logs: {tmp}")
    proc, url = start_signin_app(tmp, oidc_provider)
    yield url, tmp
    stop_app(proc)


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="ko-KR", viewport={"width": 1400, "height": 900})
    p = context.new_page()
    yield p
    context.close()


def sidebar_text(page) -> str:
    return page.locator(SIDEBAR).inner_text()


def test_the_secrets_file_the_launcher_wrote_is_private(app):
    url, tmp = app
    (secrets,) = (tmp / "state").glob("*secrets*.toml")
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    text = secrets.read_text()
    assert f'redirect_uri = "{url}/oauth2callback"' in text and "client_secret" in text


def test_a_signed_out_visit_shows_the_sign_in_screen_and_no_data(app, page):
    url, tmp = app
    page.goto(url + "/explore?table=payments")
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(tmp / "signed_out.png"), full_page=True)
    body = page.locator("body").inner_text()
    assert "데이터 데스크" in body and "로그인" in body
    assert page.locator(PAGE_LINKS).count() == 0  # no navigation
    assert page.locator("[data-testid='stDataFrame']").count() == 0  # no rows
    assert page.locator("[data-testid='stMetric']").count() == 0
    assert "결제" not in body and "payments" not in body.lower().replace(url.lower(), "")


def test_a_listed_person_signs_in_and_the_sidebar_says_who_and_which_role(app, page):
    url, tmp = app
    sign_in(page, url, "ana@example.com", name="Ana Kim")
    page.locator(PAGE_LINKS).first.wait_for(timeout=60_000)
    text = sidebar_text(page)
    assert "Ana Kim" in text and "ana@example.com" in text and "admin" in text
    assert page.get_by_role("button", name=re.compile("로그아웃$")).count() == 1
    wait_idle(page)
    page.screenshot(path=str(tmp / "signed_in_overview.png"), full_page=True)
    # Another page loads too, in the same session.
    page.locator(PAGE_LINKS).filter(has_text="데이터 사전").click()
    page.wait_for_url("**/dictionary**")
    wait_idle(page)
    assert "데이터 사전" in page.locator("h1").first.inner_text()
    assert "ana@example.com" in sidebar_text(page)


def test_a_group_member_gets_the_groups_role(app, page):
    url, _ = app
    sign_in(page, url, "bo@example.com", groups=["Analysts", "everyone"])
    page.locator(PAGE_LINKS).first.wait_for(timeout=60_000)
    text = sidebar_text(page)
    assert "bo@example.com" in text and "analyst" in text


def test_a_person_no_rule_matches_sees_no_access_and_can_sign_out(app, page):
    url, tmp = app
    sign_in(page, url, "eve@example.org", groups=["visitors"])
    page.get_by_text("eve@example.org").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(tmp / "no_access.png"), full_page=True)
    body = page.locator("body").inner_text()
    assert "권한이 없습니다" in body and "관리자" in body
    assert page.locator(PAGE_LINKS).count() == 0
    assert page.locator("[data-testid='stDataFrame']").count() == 0
    sign_out(page)
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=60_000)


def test_a_shared_link_opened_signed_out_lands_on_that_link_after_sign_in(app, page):
    url, tmp = app
    sign_in(page, url, "ana@example.com", path="/explore?table=payments&lang=en")
    page.wait_for_url(re.compile(r"/explore\?"), timeout=60_000)
    wait_idle(page)
    parts = urlsplit(page.url)
    query = parse_qs(parts.query)
    assert parts.path == "/explore" and query.get("table") == ["payments"] and query.get("lang") == ["en"]
    assert page.locator("h1").first.inner_text().strip() == "Explore"  # in the link's language
    page.screenshot(path=str(tmp / "shared_link_after_sign_in.png"), full_page=True)
    # The return address was used once: opening the app's start page later stays there.
    page.goto(url + "/")
    wait_idle(page)
    assert urlsplit(page.url).path == "/"


def sign_out(page) -> None:
    """Press "Sign out"; the mock provider asks to confirm the end of the session."""
    page.get_by_role("button", name=re.compile("(로그아웃|Sign out)$")).first.click()
    end = page.get_by_role("button", name="End session")
    try:
        end.wait_for(timeout=15_000)
        end.click()
    except Exception:  # noqa: BLE001 - a provider without an end-session page returns straight away
        pass


def test_sign_out_returns_to_the_sign_in_screen(app, page):
    url, _ = app
    sign_in(page, url, "ana@example.com")
    page.locator(PAGE_LINKS).first.wait_for(timeout=60_000)
    sign_out(page)
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=60_000)
    assert page.locator(PAGE_LINKS).count() == 0
    # Still signed out after a reload: the identity cookie is gone.
    page.reload()
    page.get_by_role("button", name=SIGN_IN_BUTTON).wait_for(timeout=60_000)
