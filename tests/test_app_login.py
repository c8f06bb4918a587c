"""The sign-in gate without a browser (Streamlit's AppTest): open mode, and [access] before anyone signs in.

Signing in itself needs a provider and a browser: tests/test_browser_login.py.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.fixtures_app import ROOT, run_page, write_app_config

ACCESS = '\n[access]\npeople = [{ match = "ana@example.com", role = "admin" }]\n'
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "k" * 64, "client_id": "desk",
        "client_secret": "s3cret", "server_metadata_url": "https://login.example.com/.well-known/openid-configuration"}


def signed_out_run(page: str = "pages/explore.py", secrets: dict | None = None, lang: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    if lang:
        at.session_state["lang"] = lang
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_open_mode_says_so_in_the_sidebar(app_env):
    at = run_page("pages/overview.py", lang="en")
    assert "Open: no sign-in, everyone sees everything." in [c.value for c in at.sidebar.caption]
    assert not [b for b in at.sidebar.button if "Sign out" in b.label]


def test_with_access_a_signed_out_visit_gets_the_sign_in_button_and_no_page(app_env, monkeypatch, tmp_path):
    config = write_app_config(tmp_path, app_env.warehouse, extra=ACCESS)
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    at = signed_out_run(secrets={"auth": AUTH}, lang="en")
    assert [b.label for b in at.button] == ["Sign in"]
    assert at.title[0].value == "Data desk" and len(at.title) == 1  # not the Explore page's title
    assert not at.dataframe and not at.metric and not at.sidebar.markdown  # no page, no sidebar, no freshness


def test_with_access_but_no_secrets_the_screen_names_what_to_set(app_env, monkeypatch, tmp_path):
    config = write_app_config(tmp_path, app_env.warehouse, extra=ACCESS)
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    at = signed_out_run()
    assert not at.button  # nothing to press that could not work
    (error,) = at.error
    for name in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_METADATA_URL", "AUTH_COOKIE_SECRET", "secrets.toml"):
        assert name in error.value
