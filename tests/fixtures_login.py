"""Sign-in for tests: a real OIDC provider, the app behind it, and a browser that signs in.

- `oidc_provider` (one per test session): oidc-provider-mock as a child
  process on a free loopback port, stopped by its PID. Any client id/secret
  is accepted. Its authorization form asks only for a subject ("sub"); the
  claims a subject gets (e-mail, name, `groups`, …) are set beforehand with
  `OidcProvider.set_user` (the mock's `PUT /users/<sub>`), which `sign_in` does.
  The browser reaches it as `localhost`, the app as `127.0.0.1`: two hosts,
  so the provider's session cookie and the app's cookies never mix.
- `start_signin_app(tmp_path, provider, access_toml)`: the app with an
  `[access]` section and its sign-in secrets given the way operators give them
  (environment variables turned into a 0600 secrets file by
  ingest/app_launch.py, redirect address from `[app] public_url`).
- `sign_in(page, app_url, email, groups=())`: through the app's "Sign in"
  button and the provider's real form, back to the app.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest

from ingest.app_launch import secret_args
from ingest.config import load_config
from tests.browser_page import wait_idle
from tests.conftest import free_port
from tests.fixtures_app import build_warehouse, make_rows, write_app_config
from tests.streamlit_server import start_app, stop_app

SIGN_IN_BUTTON = re.compile(r"(로그인|Sign in)$")  # the icon's ligature text comes first in the button's name
CLIENT_ID = "datadesk-test"
CLIENT_SECRET = "not-a-real-secret"  # the mock accepts any client credentials


@dataclass
class OidcProvider:
    url: str  # http://localhost:<port>
    process: subprocess.Popen

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def set_user(self, sub: str, email: str | None = None, groups: Sequence[str] = (), name: str | None = None,
                 **claims: object) -> None:
        set_claims(self.url, sub, email, groups, name, **claims)

    def env(self, cookie_secret: str = "c" * 64) -> dict[str, str]:
        """The environment variables an operator sets for this provider (ingest/app_launch.py)."""
        return {"OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET,
                "OIDC_METADATA_URL": self.metadata_url, "AUTH_COOKIE_SECRET": cookie_secret}


def set_claims(provider_url: str, sub: str, email: str | None = None, groups: Sequence[str] = (),
               name: str | None = None, **claims: object) -> None:
    """The claims the provider puts in `sub`'s identity token from the next sign-in on (the mock's PUT /users/<sub>)."""
    body = {"email": email or sub, "groups": list(groups), **claims}
    if name:
        body["name"] = name
    req = urllib.request.Request(f"{provider_url}/users/{urllib.request.quote(sub, safe='')}", method="PUT",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204, r.status


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    provider = OidcProvider(f"http://localhost:{port}", proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(provider.metadata_url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_app(proc)  # its own process group, like the app
            raise AssertionError("oidc-provider-mock did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.2)
    yield provider
    stop_app(proc)  # its own process group, like the app


# Who may look, for the login tests (role tests write their own [access] with roles and rules).
DEFAULT_ACCESS = """
[access]
people = [
  { match = "ana@example.com", role = "admin" },
  { match = "group:analysts", role = "analyst" },
]
[access.roles.analyst]
"""


def start_signin_app(tmp_path: Path, provider: OidcProvider, access_toml: str = DEFAULT_ACCESS,
                     log_name: str = "app.log") -> tuple[subprocess.Popen, str]:
    """The app over the demo warehouse with `access_toml`, signing in at `provider`; (process, base URL).

    Stop it with tests.streamlit_server.stop_app."""
    warehouse = tmp_path / "warehouse.duckdb"
    if not warehouse.exists():
        build_warehouse(warehouse, make_rows())
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    config = write_app_config(tmp_path, warehouse, extra=access_toml,
                              app=f'public_url = "{app_url}"\nstate_path = "{tmp_path / "state" / "app_state.sqlite"}"')
    args = secret_args(load_config(config, needs=("warehouse",), environ={}), provider.env(), files=())
    return start_app(config, tmp_path / log_name, port=port, extra_args=args)


def sign_in(page, app_url: str, email: str, groups: Sequence[str] = (), name: str | None = None,
            path: str = "/", **claims: object) -> None:
    """Open `app_url + path` signed out, press "Sign in", sign in at the provider as `email` with `groups`.

    Returns when the browser is back at the app (the sign-in screen gone). The provider
    is found from where the app's button leads, so a test needs only the app's address."""
    page.goto(app_url + path)
    button = page.get_by_role("button", name=SIGN_IN_BUTTON)
    button.wait_for(timeout=60_000)
    button.click()
    page.wait_for_url("**/oauth2/authorize**", timeout=30_000)
    provider_url = page.url.split("/oauth2/authorize", 1)[0]
    set_claims(provider_url, email, email=email, groups=groups, name=name, **claims)
    page.locator("input[name=sub]").fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda url: url.startswith(app_url) and "oauth2callback" not in url, timeout=30_000)
    page.locator("[data-testid='stApp']").wait_for(timeout=60_000)
    wait_idle(page)
