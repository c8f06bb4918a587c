"""The sign-in gate every page run passes through (streamlit_app.py calls `gate` before the page).

- Open mode (no `[access]`): everyone is ANONYMOUS and sees everything; the
  sidebar says so, so an operator who meant to turn sign-in on notices.
- With `[access]`: signed out → a sign-in screen and nothing else (no page,
  no freshness, no data); signed in → the Person from the identity token's
  claims (dashboard/access: first matching `people` rule gives the role),
  stored in `st.session_state[PERSON_KEY]` on every run, so a changed config
  applies on the next click; signed in without a role → a "no access" screen.

Shared links: `st.login` always returns to the app's root ("/") after the
provider — Streamlit's /oauth2callback redirects there, dropping the page and
its query. The sign-in screen therefore leaves the address it was opened at in
a short-lived cookie (`NEXT_COOKIE`, 10 minutes, path "/", readable by the app
through `st.context.cookies`), and the first run after sign-in clears the
cookie and has the browser open that address. Only the app's own page paths
are accepted from it, so the cookie cannot send anyone elsewhere.
"""

from __future__ import annotations

from typing import Collection, Sequence
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import streamlit as st

from dashboard import i18n
from dashboard.access import ANONYMOUS, PERSON_KEY, Person, person_from_claims
from dashboard.i18n import t
from ingest.config import PipelineConfig

NEXT_COOKIE = "datadesk_next"  # where a signed-out visitor was going (see the module docstring)
NEXT_MAX_AGE_SECONDS = 600
_WELCOMED_KEY = "access_signed_in_once"  # session_state: on_sign_in already ran in this browser session


def on_sign_in(config: PipelineConfig, person: Person) -> None:
    """Called once per browser session, on the first run after a sign-in (and after every reload).

    Also for a person no rule lets in (`person.role is None`: they see "no access" next), so the
    audit trail shows refused sign-ins too. Record first, then let in: a sign-in the trail cannot
    record is refused with the reason.
    """
    from dashboard import audit

    try:
        audit.record_sign_in(config, person)
    except audit.AuditError as exc:
        st.session_state.pop(_WELCOMED_KEY, None)
        st.error(str(exc))
        st.stop()


# ───────────────────────────────────────────── the return-address cookie ──

_COOKIE_JS = """
export default function (component) {
  const { data } = component;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  const value = data.value ? encodeURIComponent(data.value) : "";
  const age = data.value ? data.max_age : 0;
  document.cookie = `${data.name}=${value}; Path=/; Max-Age=${age}; SameSite=Lax${secure}`;
  if (data.go) window.location.replace(data.go);
}
"""
_cookie_component = st.components.v2.component("datadesk_next_cookie", html="<span></span>", js=_COOKIE_JS)


def _set_next_cookie(value: str | None, key: str, go: str | None = None) -> None:
    """Set (or, with None, clear) the return-address cookie in the browser; then open `go`, if given."""
    _cookie_component(key=key, data={"name": NEXT_COOKIE, "value": value or "", "max_age": NEXT_MAX_AGE_SECONDS,
                                      "go": go or ""})


def return_address(current: st.Page | None) -> str | None:
    """The address to come back to after sign-in ("/explore?…"), or None for the plain start page."""
    if current is None:
        return None
    query = [(k, v) for k in st.query_params for v in st.query_params.get_all(k)]
    path = current.url_path  # "" for the start page
    if not path and not query:
        return None
    return "/" + path + ("?" + urlencode(query) if query else "")


def parse_return_address(value: str | None, url_paths: Collection[str]) -> tuple[str, dict[str, list[str]]] | None:
    """(url path, query) from a cookie value, if it names one of the app's pages (`url_paths`, "" = start page)."""
    if not value:
        return None
    try:
        parts = urlsplit(unquote(value))  # the browser stores it percent-encoded (encodeURIComponent)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    name = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if name not in url_paths:
        return None
    return name, parse_qs(parts.query, keep_blank_values=True)


def _return_to_shared_link(pages: Sequence[st.Page], current: st.Page | None) -> bool:
    """First run after sign-in: go to the address the person opened while signed out; True if leaving.

    The browser itself opens the address (after clearing the cookie), not st.switch_page:
    switched from the entry script's first run, Streamlit shows the page but leaves "/"
    in the address bar, so the next "copy link" would share the wrong page. The address
    is relative ("explore?…"), which also holds under a server.baseUrlPath. Runs once per
    browser session: `st.context.cookies` are the session's first request's, so the
    cookie reads the same on every later run of the session.
    """
    target = parse_return_address(st.context.cookies.get(NEXT_COOKIE), {p.url_path for p in pages})
    if target is None:
        return False
    url_path, query = target
    if current is not None and url_path == current.url_path and {k: st.query_params.get_all(k) for k in st.query_params} == query:
        _set_next_cookie(None, key="access_next_clear")
        return False
    go = (url_path or ".") + ("?" + urlencode(query, doseq=True) if query else "")
    _set_next_cookie(None, key="access_next_go", go=go)
    return True


# ──────────────────────────────────────────────────────────────── screens ──


def _language_switch() -> None:
    st.radio(i18n.t("language"), i18n.LANGS, key=i18n.LANG_KEY, horizontal=True,
             format_func=lambda code: {"ko": "한국어", "en": "English"}[code])


def _auth_secrets_present() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all (Streamlit raises FileNotFoundError)
        return False


def _sign_in_screen(config: PipelineConfig, current: st.Page | None) -> None:
    assert config.access is not None
    st.title(t("app_title"))
    st.write(t("signin_intro"))
    if not _auth_secrets_present():
        st.error(t("signin_no_secrets"))
        st.stop()
    _set_next_cookie(return_address(current), key="access_next_set")
    if st.button(t("signin_button"), type="primary", icon=":material/login:"):
        st.login(config.access.provider or None)
    _language_switch()
    st.stop()


def _no_access_screen(person: Person) -> None:
    st.title(t("app_title"))
    st.warning(t("signin_no_access", email=person.email or "?"))
    if st.button(t("signout_button"), icon=":material/logout:"):
        st.logout()
    _language_switch()
    st.stop()


def gate(config: PipelineConfig | None, pages: Sequence[st.Page] = (), current: st.Page | None = None) -> Person:
    """Who is looking; stops the run with a sign-in or "no access" screen when they may not look.

    `pages`/`current` (from st.navigation) let a shared link survive the trip to the provider.
    A config that does not load gives ANONYMOUS: the page shows the configuration error and
    reads nothing (no warehouse without a config).
    """
    if config is None or config.access is None:
        st.session_state[PERSON_KEY] = ANONYMOUS
        return ANONYMOUS
    claims = st.user.to_dict()  # {} when nobody signed in and no [auth] exists (no is_logged_in key then)
    if not claims.get("is_logged_in"):
        st.session_state.pop(PERSON_KEY, None)
        st.session_state.pop(_WELCOMED_KEY, None)
        _sign_in_screen(config, current)
    person = person_from_claims(config.access, claims)
    st.session_state[PERSON_KEY] = person
    if not st.session_state.get(_WELCOMED_KEY):
        if person.role is not None and _return_to_shared_link(pages, current):
            st.stop()  # the browser opens the shared link: a new session, which welcomes the person
        st.session_state[_WELCOMED_KEY] = True
        on_sign_in(config, person)  # the audit trail records the sign-in (role None: let in to nothing)
    if person.role is None:
        _no_access_screen(person)
    return person


def show_sidebar(config: PipelineConfig | None, person: Person) -> None:
    """In the sidebar: who is signed in, their role and "Sign out"; or, running open, a note saying so."""
    if config is None:
        return
    if config.access is None:
        st.caption(t("access_open_note"))
        return
    st.markdown(t("signed_in_as", who=person.name or person.email or "?"))
    if person.name and person.email:
        st.caption(person.email)
    st.caption(t("signed_in_role", role=person.role or "—"))
    if st.button(t("signout_button"), icon=":material/logout:", key="access_sign_out"):
        st.logout()
