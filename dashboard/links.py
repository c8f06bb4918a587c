"""Links people share: the URL carries the view *and* the language, and a button copies it.

- `keep_language` (called once per run by the app shell): the first visit
  takes the language from `?lang=en`; afterwards the sidebar switch decides and
  the URL follows it, so a reload or a shared link opens in the same language.
  Korean, the default, leaves no `lang` in the URL.
- `set_query`: what pages call instead of `st.query_params.from_dict`, so
  writing a page's own state never drops the language.
- `copy_link_button`: copies the address bar (the view + language) to the
  clipboard. It runs in the page itself (st.components.v2, no iframe), uses
  the Clipboard API and falls back to a selected text field where a browser
  refuses (plain http on another machine is not a "secure context").
"""

from __future__ import annotations

from typing import Mapping

import streamlit as st

from dashboard import i18n
from dashboard.i18n import t

def keep_language() -> None:
    """Session language ⇄ `?lang=`: read on the session's first run, written on every run after."""
    if i18n.LANG_KEY not in st.session_state:
        wanted = st.query_params.get(i18n.LANG_KEY)
        st.session_state[i18n.LANG_KEY] = wanted if wanted in i18n.LANGS else i18n.DEFAULT_LANG
    current = st.session_state.get(i18n.LANG_KEY, i18n.DEFAULT_LANG)
    if current not in i18n.LANGS:
        current = st.session_state[i18n.LANG_KEY] = i18n.DEFAULT_LANG
    if current == i18n.DEFAULT_LANG:
        if i18n.LANG_KEY in st.query_params:
            del st.query_params[i18n.LANG_KEY]
    elif st.query_params.get(i18n.LANG_KEY) != current:
        st.query_params[i18n.LANG_KEY] = current


def page_params() -> dict[str, list[str]]:
    """The URL's query arguments that belong to the page (the language is the shell's)."""
    return {k: st.query_params.get_all(k) for k in st.query_params if k != i18n.LANG_KEY}


def set_query(params: Mapping[str, str | list[str]]) -> None:
    """Make the URL hold exactly `params` (+ the language); no write when it already does."""
    wanted = {k: (list(v) if isinstance(v, (list, tuple)) else [str(v)]) for k, v in params.items()}
    if page_params() == wanted:
        return
    lang = st.query_params.get(i18n.LANG_KEY)
    merged: dict[str, str | list[str]] = dict(params)
    if lang and i18n.LANG_KEY not in merged:
        merged[i18n.LANG_KEY] = lang
    st.query_params.from_dict(merged)


_COPY_HTML = """<div class="dd-copy"><button type="button"><svg viewBox="0 0 24 24" aria-hidden="true"><path
d="M3.9 12a3.1 3.1 0 0 1 3.1-3.1h4V7H7a5 5 0 0 0 0 10h4v-1.9H7A3.1 3.1 0 0 1 3.9 12zM8 13h8v-2H8v2zm9-6h-4v1.9h4a3.1
3.1 0 0 1 0 6.2h-4V17h4a5 5 0 0 0 0-10z"/></svg><span class="dd-label"></span></button>
<span class="dd-note" role="status"></span>
<input class="dd-url" type="text" readonly hidden></div>"""
_COPY_CSS = """
.dd-copy { display: flex; align-items: center; gap: 0.75rem; flex-wrap: wrap; font-family: var(--st-font); }
.dd-copy button { font: inherit; font-size: var(--st-base-font-size, 1rem); padding: 0.25rem 0.75rem; min-height: 2.5rem;
  border-radius: var(--st-button-radius, 0.5rem); border: 1px solid var(--st-border-color, #d5dae5);
  background: var(--st-background-color, #fff); color: var(--st-text-color, #31333f); cursor: pointer; }
.dd-copy button { display: inline-flex; align-items: center; gap: 0.4rem; }
.dd-copy button svg { width: 1.1rem; height: 1.1rem; fill: currentColor; }
.dd-copy button:hover { border-color: var(--st-primary-color); color: var(--st-primary-color); }
.dd-copy .dd-note { color: var(--st-text-color); opacity: 0.7; font-size: 0.875rem; }
.dd-copy .dd-url { flex: 1 1 24rem; font: inherit; font-size: 0.875rem; padding: 0.25rem 0.5rem; }
"""
_COPY_JS = """
export default function (component) {
  const { data, parentElement } = component;
  const button = parentElement.querySelector("button");
  const note = parentElement.querySelector(".dd-note");
  const field = parentElement.querySelector(".dd-url");
  button.querySelector(".dd-label").textContent = data.label;
  button.onclick = async () => {
    const url = window.location.href;
    let copied = false;
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch (e) {
      field.hidden = false;
      field.value = url;
      field.select();
      try { copied = document.execCommand("copy"); } catch (e2) { copied = false; }
    }
    field.hidden = copied;
    note.textContent = copied ? data.copied : data.failed;
  };
}
"""
_copy_component = st.components.v2.component("datadesk_copy_link", html=_COPY_HTML, css=_COPY_CSS, js=_COPY_JS)


def copy_link_button(key: str = "copy_link") -> None:
    """A "copy link" button for the page's current address (its view and language)."""
    _copy_component(key=key, data={"label": t("copy_link"), "copied": t("link_copied"), "failed": t("link_not_copied")})
