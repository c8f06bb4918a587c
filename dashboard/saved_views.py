"""Saved views: a name for a page address, so a question can be reopened or shared by link.

A view is the page's query string (the URL is the state of every page), kept
in the app-state store (dashboard/app_state, table `saved_views`). Opening
`?saved=<id>` on the page loads that query string; the language is not part of
a view, so a Korean and an English reader each see it in their own.

Names are unique per owner, regardless of letter case; `owner` stays empty
until access control exists (then one person's "월간 환불" does not block
another's). Every function takes an open connection, so a page opens the store
once per run and the tests use a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode

from dashboard.app_state import transaction
from dashboard.i18n import t

VIEW_PARAM = "saved"  # ?saved=<id> opens a saved view (`view=` is the question's summary | rows | pivot)
NAME_MAX = 120
NOT_SAVED = ("lang", VIEW_PARAM)  # the reader's language and the view pointer itself are never stored


class SavedViewError(ValueError):
    """Something a person can fix (an empty or taken name, a view that is gone); the message says what to do."""


@dataclass(frozen=True)
class SavedView:
    id: int
    name: str
    owner: str | None
    page: str
    params: str  # a query string, e.g. "measure=payments.count&dim=merchants.category"
    created_at: str
    updated_at: str

    @property
    def link(self) -> str:
        """The address that reopens this view, relative to the app's root."""
        return f"{self.page}?{VIEW_PARAM}={self.id}"

    @property
    def full_link(self) -> str:
        """The page's address with the whole view in it (works without the store)."""
        return f"{self.page}?{self.params}" if self.params else self.page

    def query(self) -> dict[str, list[str]]:
        """The stored query string as the pages read the URL: key → list of values."""
        return parse_query(self.params)


def query_string(params: Mapping[str, str | Sequence[str]]) -> str:
    """A page's query parameters → a stable query string (keys sorted, repeated keys kept in order)."""
    pairs = []
    for key in sorted(params):
        if key in NOT_SAVED:
            continue
        values = params[key]
        for value in ([values] if isinstance(values, str) else list(values)):
            pairs.append((key, str(value)))
    return urlencode(pairs)


def parse_query(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in parse_qsl(text or "", keep_blank_values=True):
        if key not in NOT_SAVED:
            out.setdefault(key, []).append(value)
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())  # no control characters, tabs or double spaces in a list entry
    if not name:
        raise SavedViewError(t("view_name_empty"))
    if len(name) > NAME_MAX:
        raise SavedViewError(t("view_name_long", n=NAME_MAX))
    return name


def _row(row: sqlite3.Row | None) -> SavedView | None:
    return None if row is None else SavedView(**{k: row[k] for k in row.keys()})


def _taken(conn: sqlite3.Connection, name: str, owner: str | None, except_id: int | None = None) -> bool:
    row = conn.execute(
        "SELECT id FROM saved_views WHERE ifnull(owner, '') = ifnull(?, '') AND lower(name) = lower(?) AND id IS NOT ?",
        (owner, name, except_id)).fetchone()
    return row is not None


def save(conn: sqlite3.Connection, name: str, page: str, params: Mapping[str, str | Sequence[str]] | str,
         owner: str | None = None) -> SavedView:
    """Store the page's current query as a new named view; a name already used by this owner is refused."""
    name = _clean_name(name)
    text = params if isinstance(params, str) else query_string(params)
    now = _now()
    with transaction(conn):
        if _taken(conn, name, owner):
            raise SavedViewError(t("view_name_taken", name=name))
        cur = conn.execute(
            "INSERT INTO saved_views (name, owner, page, params, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (name, owner, page, text, now, now))
        new_id = cur.lastrowid
    return get(conn, new_id)


def get(conn: sqlite3.Connection, view_id: int | str) -> SavedView | None:
    """The view with this id, or None (a deleted view, or an id someone mistyped into the URL)."""
    try:
        key = int(str(view_id).strip())
    except ValueError:
        return None
    return _row(conn.execute("SELECT * FROM saved_views WHERE id = ?", (key,)).fetchone())


def list_views(conn: sqlite3.Connection, search: str = "", page: str | None = None, owner: str | None = None,
               limit: int = 200) -> list[SavedView]:
    """Views whose name contains `search` (any case), newest change first; optionally of one page or owner."""
    pattern = "%" + search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        "SELECT * FROM saved_views WHERE lower(name) LIKE ? ESCAPE '\\'"
        " AND (? IS NULL OR page = ?) AND (? IS NULL OR ifnull(owner, '') = ?)"
        " ORDER BY updated_at DESC, id DESC LIMIT ?",
        (pattern, page, page, owner, owner, limit)).fetchall()
    return [_row(r) for r in rows]


def rename(conn: sqlite3.Connection, view_id: int, new_name: str) -> SavedView:
    name = _clean_name(new_name)
    with transaction(conn):
        current = get(conn, view_id)
        if current is None:
            raise SavedViewError(t("view_missing", id=view_id))
        if _taken(conn, name, current.owner, except_id=current.id):
            raise SavedViewError(t("view_name_taken", name=name))
        conn.execute("UPDATE saved_views SET name = ?, updated_at = ? WHERE id = ?", (name, _now(), current.id))
    return get(conn, view_id)


def update_params(conn: sqlite3.Connection, view_id: int, params: Mapping[str, str | Sequence[str]] | str) -> SavedView:
    """Replace a view's question with the page's current one (same name, same link)."""
    text = params if isinstance(params, str) else query_string(params)
    with transaction(conn):
        if conn.execute("UPDATE saved_views SET params = ?, updated_at = ? WHERE id = ?",
                        (text, _now(), int(view_id))).rowcount == 0:
            raise SavedViewError(t("view_missing", id=view_id))
    return get(conn, view_id)


def delete(conn: sqlite3.Connection, view_id: int) -> bool:
    """Remove a view; False when it was already gone (two people deleting the same view is not an error)."""
    with transaction(conn):
        return conn.execute("DELETE FROM saved_views WHERE id = ?", (int(view_id),)).rowcount > 0
