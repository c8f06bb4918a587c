"""The saved-views panel every question page shares: save the current address under a name, find and open one.

A saved view is the page's query string (dashboard/saved_views.py). Opening
one is a plain link (`<page>?saved=<id>`) loaded in the same tab: a fresh page
run that reads its state from the address, exactly like a link someone
shared, so what opens is what was saved. `open_from_url` turns `?saved=<id>`
into the stored query before the page reads its widgets.
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from typing import Mapping, Sequence

import streamlit as st

from dashboard import app_state, audit, saved_views
from dashboard.access import current_person
from dashboard.app_state import AppStateError, transaction
from dashboard.audit import AuditError
from dashboard.i18n import t
from dashboard.saved_views import VIEW_PARAM, SavedViewError


def _store(wh):
    return app_state.connect(app_state.store_path(wh.config))


def open_from_url(wh, page: str, url: Mapping[str, list[str]], widget_prefixes: Sequence[str] = ()) -> dict[str, list[str]]:
    """The page's query: the saved view's when the address says `?saved=<id>`, else the address itself.

    The widgets of this page forget what they held (a view opened in the same
    session must not keep the previous question's choices).
    """
    wanted = (url.get(VIEW_PARAM) or [None])[-1]
    if wanted is None:
        return dict(url)
    try:
        with _store(wh) as conn:
            view = saved_views.get(conn, wanted)
    except AppStateError as exc:
        st.error(t("store_failed", msg=str(exc)))
        view = None
    rest = {k: v for k, v in url.items() if k != VIEW_PARAM}
    if view is None or view.page != page:
        st.warning(t("view_missing", id=str(wanted)[:40]))
        return rest
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(tuple(widget_prefixes))]:
        del st.session_state[key]
    st.caption(t("view_opened", name=view.name))
    return view.query()


@contextmanager
def _noted(key: str):
    """A button callback's failure becomes the note shown above the list (it runs before the page draws)."""
    try:
        yield
    except SavedViewError as exc:
        st.session_state[f"{key}_note"] = ("warning", str(exc))
    except AuditError as exc:
        st.session_state[f"{key}_note"] = ("error", str(exc))
    except AppStateError as exc:
        st.session_state[f"{key}_note"] = ("error", t("store_failed", msg=str(exc)))


def _save(wh, page: str, current: Mapping[str, str | Sequence[str]], key: str) -> None:
    """The save button's callback: runs before the page, so the list below already shows the new view."""
    name = st.session_state.get(f"{key}_name", "")
    with _noted(key), _store(wh) as conn, transaction(conn):  # the view and its audit row land together
        view = saved_views.save(conn, name, page, current, owner=current_person().email)
        audit.record(conn, current_person(), "saved_view_save", view.name,
                     {"page": page, "id": view.id, "params": view.params})
        st.session_state[f"{key}_note"] = ("success", t("view_saved", name=view.name))
        st.session_state[f"{key}_name"] = ""


def _may_change(view, me) -> bool:
    """Only its owner (or an admin) renames, replaces or deletes a view; others only see their own listed."""
    return view.owner == me.email or me.is_admin


def _change(wh, view_id: int, key: str, action: str, done: str, apply) -> None:
    """Rename or replace a view (`apply(conn, view)` → the changed view), with its audit row in the same transaction.

    `action` is the audit trail's name for it, `done` the i18n key of the note shown after.
    """
    with _noted(key), _store(wh) as conn, transaction(conn):
        view = saved_views.get(conn, view_id)
        me = current_person()
        if view is None:
            raise SavedViewError(t("view_missing", id=str(view_id)))
        if not _may_change(view, me):
            return
        changed = apply(conn, view)
        audit.record(conn, me, action, changed.name,
                     {"page": changed.page, "id": changed.id, "params": changed.params, "was": view.name})
        st.session_state[f"{key}_note"] = ("success", t(done, name=changed.name))


def _rename(wh, view_id: int, key: str) -> None:
    new_name = st.session_state.get(f"{key}_rename_{view_id}", "")
    _change(wh, view_id, key, "saved_view_rename", "view_renamed", lambda conn, view: saved_views.rename(conn, view.id, new_name))


def _replace(wh, view_id: int, current: Mapping[str, str | Sequence[str]], key: str) -> None:
    """Keep the view's name and link, with the question now on screen (Metabase's "replace original")."""
    _change(wh, view_id, key, "saved_view_update", "view_updated", lambda conn, view: saved_views.update_params(conn, view.id, current))


def _delete(wh, view_id: int, key: str) -> None:
    with _noted(key), _store(wh) as conn, transaction(conn):
        view = saved_views.get(conn, view_id)
        if view is not None and not _may_change(view, current_person()):
            return
        if view is not None and saved_views.delete(conn, view_id):
            audit.record(conn, current_person(), "saved_view_delete", view.name,
                         {"page": view.page, "id": view.id, "params": view.params})


def panel(wh, page: str, current: Mapping[str, str | Sequence[str]], key: str = "sv") -> None:
    """An expander: name + save for the current view, then the saved views (searchable), each a link that opens it."""
    with st.expander(t("saved_views"), icon=":material/bookmark:"):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input(t("view_name"), key=f"{key}_name", max_chars=saved_views.NAME_MAX)
        c2.button(t("save_view"), key=f"{key}_save", icon=":material/bookmark_add:", on_click=_save,
                  args=(wh, page, dict(current), key))
        note = st.session_state.pop(f"{key}_note", None)
        if note:
            getattr(st, note[0])(note[1])
        search = st.text_input(t("view_search"), key=f"{key}_search", max_chars=200)
        try:
            with _store(wh) as conn:
                # Signed in: my views (opening someone's shared link still works); open mode: everyone's.
                found = saved_views.list_views(conn, search, page=page, owner=current_person().email)
        except AppStateError as exc:
            st.error(t("store_failed", msg=str(exc)))
            return
        if not found:
            st.caption(t("view_none"))
        me = current_person()
        for view in found:
            a, b, c = st.columns([4, 1, 1], vertical_alignment="center")
            # target=_self: a page load in this tab, so the view opens from its address like a shared link.
            a.markdown(f'<a href="{html.escape(view.link)}" target="_self" class="dd-saved-view">'
                       f'{html.escape(view.name)}</a>', unsafe_allow_html=True)
            if not _may_change(view, me):
                continue
            with b.popover(t("view_edit"), icon=":material/edit:"):
                st.text_input(t("view_new_name"), value=view.name, key=f"{key}_rename_{view.id}",
                              max_chars=saved_views.NAME_MAX)
                st.button(t("view_rename"), key=f"{key}_ren_{view.id}", on_click=_rename, args=(wh, view.id, key))
                st.divider()
                st.caption(t("view_replace_help"))
                st.button(t("view_replace"), key=f"{key}_rep_{view.id}", icon=":material/sync:", on_click=_replace,
                          args=(wh, view.id, dict(current), key))
            c.button(t("view_delete"), key=f"{key}_del_{view.id}", icon=":material/delete:", on_click=_delete,
                     args=(wh, view.id, key))
