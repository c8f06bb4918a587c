"""What a role may see, and the model that role is shown.

A `Policy` is one role's rules from `[access.roles.<name>]`: the tables it
may read, the columns hidden from it, and its row rules. Row rules are
written on model dimensions ("merchants.region in 부산"), so a rule follows
the relationships: a regional manager's payments are the payments whose
merchant is in 부산. A table the rule cannot reach (no path to the rule's
dimension) is not shown to the role at all — a rule is never silently
skipped.

`restrict(model, policy)` is the model the role's pages are built from:
hidden tables, columns and everything made of them (dimensions, measures,
relationships) are absent, so no menu, filter, dictionary entry or
download can name them. What the role's queries may read is enforced where
SQL runs (dashboard/access/enforce.py), whatever page built the SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dashboard.access import Person
from ingest.config import AccessConfig, RowRule


@dataclass(frozen=True)
class Policy:
    """One role's rules; `everything` for the admin role and for an app that runs open."""

    role: str | None
    everything: bool = False
    tables: frozenset[str] | None = None  # None: every table
    hidden: frozenset[tuple[str, str]] = frozenset()  # (table, column)
    rows: tuple[RowRule, ...] = ()

    def may_read_table(self, table: str) -> bool:
        return self.everything or self.tables is None or table in self.tables

    def hides(self, table: str, column: str) -> bool:
        return not self.everything and (table, column) in self.hidden

    @property
    def key(self) -> tuple:
        """Hashable identity, for caches shared by every session of the process."""
        return (self.role, self.everything, self.tables, self.hidden, self.rows)


OPEN = Policy(role=None, everything=True)  # no [access]: everyone sees everything
NOTHING = Policy(role=None, tables=frozenset())  # signed out, or signed in without a role


def policy_for(access: AccessConfig | None, person: Person) -> Policy:
    """The rules for `person` under `[access]` (OPEN without it; NOTHING for someone without a role)."""
    if access is None:
        return OPEN
    if person.email is None or person.role is None or person.role not in access.roles:
        return NOTHING
    if person.role == access.admin_role:
        return Policy(role=person.role, everything=True)
    spec = access.roles[person.role]
    hidden = frozenset(tuple(item.split(".", 1)) for item in spec.hide_columns)
    return Policy(role=spec.name, tables=frozenset(spec.tables) if spec.tables is not None else None,
                  hidden=hidden, rows=spec.rows)


# ──────────────────────────────────────────────────────── the role's model ──


def _mentions(text: str | None, columns: set[str]) -> bool:
    """Whether SQL text written in a model file names one of `columns` (as a word, quoted or not)."""
    if not text or not columns:
        return False
    words = {(quoted.replace('""', '"') or bare).lower()
             for quoted, bare in re.findall(r'"((?:[^"]|"")+)"|([^\W\d]\w*)', text)}
    return any(c.lower() in words for c in columns)


def visible_tables(model, policy: Policy) -> set[str]:
    """The tables the role sees: listed (or all), and reachable by every row rule's dimension."""
    if policy.everything:
        return set(model.tables)
    visible = {t for t in model.tables if policy.may_read_table(t)}
    for rule in policy.rows:
        home = rule.dimension.partition(".")[0]
        if not model.has_dimension(rule.dimension):
            return set()  # a rule naming nothing real: fail closed (the admin's page says why)
        visible = {t for t in visible if model.reaches(t, home)}
    return visible


def rule_problems(model, access: AccessConfig | None) -> list[str]:
    """Row rules whose dimension the model lacks — shown to admins; the role sees nothing until fixed."""
    if access is None or not model.tables:
        return []
    out = []
    for role in access.roles.values():
        for i, rule in enumerate(role.rows):
            if not model.has_dimension(rule.dimension):
                out.append(f"[access.roles.{role.name}.rows[{i}]] dimension = {rule.dimension!r} is not in the data "
                           f"model — use a dimension id such as \"merchants.region\"; until then this role sees nothing")
    return out


def restrict(model, policy: Policy):
    """The model as the role may see it (the same object for `everything`)."""
    from dashboard.model import Model, relink

    if policy.everything:
        return model
    visible = visible_tables(model, policy)
    tables = {}
    for name in visible:
        table = model.tables[name]
        hidden = {c for t, c in policy.hidden if t == name}
        tables[name] = replace(
            table,
            columns=tuple((c, ty) for c, ty in table.columns if c not in hidden),
            dimensions={k: d for k, d in table.dimensions.items() if d.column not in hidden},
            measures={k: m for k, m in table.measures.items()
                      if m.column not in hidden and not _mentions(m.where, hidden) and not _mentions(m.sql, hidden)},
            relationships={k: r for k, r in table.relationships.items()
                           if r.column not in hidden and r.to_table in visible
                           and not policy.hides(r.to_table, r.to_column)},
            search=tuple(c for c in table.search if c not in hidden),
            time=None if table.time in hidden else table.time,
            amount=None if table.amount in hidden else table.amount,
        )
    restricted = Model(tables=tables)
    relink(restricted)
    restricted.problems = []  # model-file problems are the developer's business, shown to admins only
    return restricted
