"""Sign-in secrets (ingest/app_launch.py) and the return address kept across the provider (dashboard/access/login.py).

The browser side of both is in tests/test_browser_login.py; here the rules an
operator meets: what the launcher writes, when it refuses to start, and which
return addresses the app accepts from a cookie.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dashboard.access.login import parse_return_address
from ingest.app_launch import AUTH_ENV, SecretsMissing, secret_args
from ingest.config import load_config
from tests.fixtures_app import write_app_config

ROOT = Path(__file__).resolve().parent.parent
ENV = {"OIDC_CLIENT_ID": "desk", "OIDC_CLIENT_SECRET": "s3cret", "AUTH_COOKIE_SECRET": "k" * 64,
       "OIDC_METADATA_URL": "https://login.example.com/.well-known/openid-configuration"}
ACCESS = '\n[access]\npeople = [{ match = "ana@example.com", role = "admin" }]\n'


def config(tmp_path: Path, access: str = ACCESS, app: str = ""):
    path = write_app_config(tmp_path, tmp_path / "warehouse.duckdb", extra=access,
                            app=f'state_path = "{tmp_path / "state" / "app_state.sqlite"}"\n{app}')
    return load_config(path, needs=("warehouse",), environ={})


def test_open_mode_needs_no_secrets(tmp_path):
    assert secret_args(config(tmp_path, access=""), {}, files=()) == []


def test_secrets_from_the_environment_go_to_a_private_file_with_the_public_address(tmp_path):
    cfg = config(tmp_path, app='public_url = "https://desk.example.com/"')
    args = secret_args(cfg, ENV, files=())
    assert args[0] == "--secrets.files"
    path = Path(args[1])
    assert path.parent == tmp_path / "state" and stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth == {"redirect_uri": "https://desk.example.com/oauth2callback", "cookie_secret": "k" * 64,
                    "client_id": "desk", "client_secret": "s3cret", "server_metadata_url": ENV["OIDC_METADATA_URL"]}
    # Written again at every start: a rotated secret takes effect on restart.
    secret_args(cfg, {**ENV, "OIDC_CLIENT_SECRET": "rotated"}, files=())
    assert tomllib.loads(path.read_text())["auth"]["client_secret"] == "rotated"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_named_provider_gets_its_own_section(tmp_path):
    cfg = config(tmp_path, access=ACCESS.replace("[access]\n", '[access]\nprovider = "company"\n'))
    auth = tomllib.loads(Path(secret_args(cfg, ENV, files=())[1]).read_text())["auth"]
    assert set(auth) == {"redirect_uri", "cookie_secret", "company"}
    assert auth["company"]["client_id"] == "desk"


def test_a_secrets_file_with_an_auth_section_is_enough(tmp_path):
    own = tmp_path / "secrets.toml"
    own.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n')
    assert secret_args(config(tmp_path), {}, files=(tmp_path / "missing.toml", own)) == []


def test_no_secrets_anywhere_is_refused_with_what_to_set(tmp_path):
    with pytest.raises(SecretsMissing) as err:
        secret_args(config(tmp_path), {}, files=(tmp_path / "missing.toml",))
    for name in AUTH_ENV.values():
        assert name in str(err.value)
    assert "secrets.toml" in str(err.value)


def test_some_variables_without_the_others_name_the_missing_ones(tmp_path):
    partial = {k: v for k, v in ENV.items() if k != "OIDC_CLIENT_SECRET"}
    with pytest.raises(SecretsMissing, match="OIDC_CLIENT_SECRET is not set"):
        secret_args(config(tmp_path), partial, files=())


def test_a_short_cookie_secret_is_refused(tmp_path):
    with pytest.raises(SecretsMissing, match="AUTH_COOKIE_SECRET"):
        secret_args(config(tmp_path), {**ENV, "AUTH_COOKIE_SECRET": "short"}, files=())


def test_the_app_command_refuses_to_start_without_secrets(tmp_path):
    cfg = config(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no OIDC_* variables, no ~/.streamlit
    if (ROOT / ".streamlit" / "secrets.toml").exists():
        pytest.skip("this checkout has its own .streamlit/secrets.toml")
    r = subprocess.run([sys.executable, "-m", "ingest", "app", "--config", str(cfg.path), "--port", "1"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "OIDC_CLIENT_ID" in r.stderr and "[access]" in r.stderr


PAGES = {"", "explore", "dictionary"}  # url paths; "" is the start page


def test_a_return_address_names_one_of_the_apps_pages():
    assert parse_return_address("%2Fexplore%3Ftable%3Dpayments%26lang%3Den", PAGES) == (
        "explore", {"table": ["payments"], "lang": ["en"]})
    assert parse_return_address("/?lang=en", PAGES) == ("", {"lang": ["en"]})


@pytest.mark.parametrize("value", ["https://evil.example/explore", "//evil.example/explore", "/nowhere?x=1",
                                   "explore", "javascript:alert(1)", "", None])
def test_any_other_return_address_is_ignored(value):
    assert parse_return_address(value, PAGES) is None
