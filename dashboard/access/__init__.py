"""Who is looking, and what they may see (docs/access.md).

Without an `[access]` section the app runs open: everyone is the same
anonymous person who sees everything (the demo). With it, every page needs a
sign-in (OIDC through `st.login`, dashboard/access/login.py); the person's
e-mail or groups pick one role (`[access] people`, first match wins), and the
role's rules are applied by the query layer (dashboard/access/policy.py),
never by pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ingest.config import AccessConfig


@dataclass(frozen=True)
class Person:
    """The viewer of a page run, or the owner of a subscription the scheduler renders."""

    email: str | None  # None: nobody signed in (open mode)
    name: str | None = None
    groups: tuple[str, ...] = ()
    role: str | None = None  # None with an e-mail: signed in, but no rule gives them a role
    is_admin: bool = False

    @property
    def signed_in(self) -> bool:
        return self.email is not None

    @property
    def label(self) -> str:
        """How the audit trail and the sidebar name this person."""
        return self.email or "anonymous"


ANONYMOUS = Person(email=None, role=None, is_admin=True)  # open mode: no sign-in, sees everything


def role_for(access: AccessConfig, email: str | None, groups: tuple[str, ...] = ()) -> str | None:
    """The role of the first `[access] people` line that matches (e-mail, "group:<g>" or "*"), else None."""
    if not email:
        return None
    email = email.strip().lower()
    lowered = {g.strip().lower() for g in groups}
    for rule in access.people:
        if rule.match == "*" or rule.match == email or (rule.match.startswith("group:") and rule.match[6:] in lowered):
            return rule.role
    return None


def person_from_claims(access: AccessConfig, claims: Mapping[str, Any]) -> Person:
    """A signed-in person from the identity token's claims (`st.user`)."""
    email = claims.get("email")
    email = str(email).strip().lower() if email else None
    raw = claims.get(access.groups_claim) or ()
    groups = (raw,) if isinstance(raw, str) else tuple(str(g) for g in raw)
    role = role_for(access, email, groups)
    return Person(email=email, name=claims.get("name") or None, groups=groups, role=role,
                  is_admin=role is not None and role == access.admin_role)


def person_for(access: AccessConfig | None, email: str | None, groups: tuple[str, ...] = ()) -> Person:
    """A person known by e-mail and groups only (a subscription's owner, when the scheduler renders it)."""
    if access is None:
        return ANONYMOUS
    role = role_for(access, email, groups)
    return Person(email=email, groups=tuple(groups), role=role, is_admin=role is not None and role == access.admin_role)


PERSON_KEY = "access_person"  # st.session_state key: the Person the sign-in gate let in (dashboard/access/login.py)


def current_person() -> Person:
    """The viewer of this page run: the signed-in person, or ANONYMOUS when the app runs open.

    Set once per run by the sign-in gate in streamlit_app.py; outside a page
    run (tests, the scheduler) there is no viewer and this is ANONYMOUS —
    background jobs pass the subscription owner's Person explicitly.
    """
    try:
        import streamlit as st

        person = st.session_state.get(PERSON_KEY)
    except Exception:  # noqa: BLE001 - no Streamlit session (a script, the scheduler)
        person = None
    return person if isinstance(person, Person) else ANONYMOUS
