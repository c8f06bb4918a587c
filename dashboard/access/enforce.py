"""Where a role's rules meet SQL: every statement the app runs on the warehouse passes through `secure`.

Pages, the question compiler, curated reports and the scheduler all build
SQL that names tables plainly (`FROM payments`, resolved through the
`live` schema). Before a statement runs (`Warehouse.query`, `query_arrow`,
…), `secure` reads it with DuckDB's own parser and, for a role with rules:

- refuses it when it names a table the role may not read, a schema other
  than the pipeline's status tables, or a table function that could read
  around the rules (`AccessDenied`, a message for the person);
- puts the role's version of every data table it reads in front of it, as
  a common table expression with the table's own name: only the columns
  the role may see, only the rows its row rules allow (joined along the
  model's relationships to the rule's dimension). A name in a query then
  means the role's rows wherever it appears, in sub-queries and the
  statement's own CTEs too.

Row-rule values come from the admin's `[access]` configuration, never from
a person's input; they are written into the CTE as typed SQL literals
(`literal`), so the secured statement still takes the caller's bound
parameters unchanged and is cached per role like any other text.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Iterator, Mapping

import duckdb

from dashboard.access import Person, current_person
from dashboard.access.policy import OPEN, Policy, policy_for, visible_tables
from dashboard.warehouse import Catalog, TableInfo, quote

# Pipeline status a role may read: batch times, counts and health — never message payloads (dead letters).
STATUS_SCHEMA = "_meta"
STATUS_TABLES_DENIED = frozenset({"dead_letters"})
# Lists of table and schema names (no columns, no rows): the app checks which status tables exist.
NAME_LISTS = frozenset({("information_schema", "tables"), ("information_schema", "schemata")})
# Table functions that make rows without reading stored data.
SAFE_FUNCTIONS = frozenset({"generate_series", "range", "unnest"})


class AccessDenied(PermissionError):
    """The statement reads something the person's role may not see; the message names it, never its data."""


# ───────────────────────────────────────────────────────────── who asks ──

_acting: contextvars.ContextVar[Person | None] = contextvars.ContextVar("acting_as", default=None)


@contextmanager
def acting_as(person: Person) -> Iterator[None]:
    """Run queries with `person`'s rules outside a page run (the scheduler renders a subscription as its owner)."""
    token = _acting.set(person)
    try:
        yield
    finally:
        _acting.reset(token)


SYSTEM = Person(email=None, role=None, is_admin=True)  # the app's own status reads; matched by identity only


@contextmanager
def as_system() -> Iterator[None]:
    """Run the app's own fixed status statements (the sidebar's chain health) without a person's rules.

    Only for SQL written in the code, never built from a person's input, whose
    result is a status (fresh / catching up), not rows. Identity-checked: no
    sign-in can produce this person.
    """
    with acting_as(SYSTEM):
        yield


def person_now() -> Person:
    acting = _acting.get()
    return acting if acting is not None else current_person()


def policy_now(config) -> Policy:
    """The rules for whoever the current queries are for (OPEN when the app runs without `[access]`)."""
    person = person_now()
    if person is SYSTEM:
        return OPEN
    return policy_for(getattr(config, "access", None), person)


# ──────────────────────────────────────────────────────── reading the SQL ──

_parser_local = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    con = getattr(_parser_local, "con", None)
    if con is None:
        con = _parser_local.con = duckdb.connect(":memory:")
    return con


@dataclass(frozen=True)
class Reads:
    """What one statement names: plain table names, qualified (schema, table), table functions, its own CTEs."""

    tables: frozenset[str]
    qualified: frozenset[tuple[str, str]]
    functions: frozenset[str]
    ctes: frozenset[str]
    columns: frozenset[str]
    star: bool


@lru_cache(maxsize=2048)
def reads(sql: str) -> Reads:
    """Parse one SELECT statement (DuckDB's parser, `json_serialize_sql`); AccessDenied for anything else."""
    text = _parser().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0]
    tree = json.loads(text)
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        raise AccessDenied("only a single reading statement (SELECT) may run for a role with access rules")
    tables, qualified, functions, ctes, columns = set(), set(), set(), set(), set()
    star = False

    def walk(node: Any) -> None:
        nonlocal star
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "BASE_TABLE":
                schema, name = (node.get("schema_name") or "").lower(), node.get("table_name", "").lower()
                if schema or node.get("catalog_name"):
                    qualified.add((schema, name))
                else:
                    tables.add(name)
            elif kind == "SHOW_REF":  # DESCRIBE / SHOW / SUMMARIZE: names of every column, hidden ones too
                functions.add("describe")
            elif kind == "TABLE_FUNCTION":
                functions.add(str((node.get("function") or {}).get("function_name", "")).lower())
            elif node.get("class") == "COLUMN_REF":
                names = node.get("column_names") or []
                if names:
                    columns.add(str(names[-1]).lower())
            elif node.get("class") == "STAR":
                star = True
            for using in node.get("using_columns") or ():  # JOIN … USING (a, b)
                columns.add(str(using).lower())
            cte_map = node.get("cte_map")
            if isinstance(cte_map, dict):
                for entry in cte_map.get("map", []):
                    ctes.add(str(entry.get("key", "")).lower())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree["statements"][0])
    return Reads(frozenset(tables), frozenset(qualified), frozenset(functions), frozenset(ctes),
                 frozenset(columns), star)


# ─────────────────────────────────────────────────── the role's relations ──


def literal(value: Any) -> str:
    """A typed SQL literal for a value from the `[access]` configuration (never from a person's input)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


_RULE_OPS = {"in": "IN", "not_in": "NOT IN", "eq": "IN", "ne": "NOT IN"}


def _rule_sql(model, rule, alias_of) -> str:
    from dashboard.questions.blocks import dimension_sql, value_type
    from dashboard.questions.filters import coerce

    dim = model.dimension(rule.dimension)
    values = [coerce(v, dim.kind, value_type(dim)) for v in rule.values]
    expr = dimension_sql(dim, alias_of(dim.table))
    # coalesce: a row whose rule value is unknown (no related row, NULL) is not shown
    return f"coalesce({expr} {_RULE_OPS[rule.op]} ({', '.join(literal(v) for v in values)}), FALSE)"


def relation(model, raw: Catalog, table: str, policy: Policy) -> str:
    """The SELECT of what `policy` may read of `table`: its visible columns, the rows its rules allow."""
    info = raw.tables[table]
    aliases: dict[tuple[str, ...], str] = {(): "r0"}
    joins: list[str] = []

    def alias_of(goal: str) -> str:
        key: tuple[str, ...] = ()
        alias = "r0"
        for rel in model.path(table, goal):
            parent, key = alias, key + (rel.id,)
            if key not in aliases:
                aliases[key] = f"r{len(aliases)}"
                target = raw.tables[rel.to_table]
                joins.append(f"LEFT JOIN {quote(target.schema)}.{quote(target.name)} AS {aliases[key]} "
                             f"ON {aliases[key]}.{quote(rel.to_column)} = {parent}.{quote(rel.column)}")
            alias = aliases[key]
        return alias

    where = [_rule_sql(model, rule, alias_of) for rule in policy.rows]
    columns = [c.name for c in info.columns if not policy.hides(table, c.name)]
    select = ", ".join(f"r0.{quote(c)}" for c in columns) or "NULL AS nothing_visible"
    return (f"SELECT {select} FROM {quote(info.schema)}.{quote(info.name)} AS r0"
            + "".join(" " + j for j in joins) + (f" WHERE {' AND '.join(where)}" if where else ""))


@dataclass(frozen=True)
class Guard:
    """One role's view of the warehouse: the relation of every table it may read."""

    policy: Policy
    relations: Mapping[str, str]
    data_tables: frozenset[str]  # every table name in the warehouse, visible or not

    def secure(self, sql: str) -> str:
        if self.policy.everything:
            return sql
        r = reads(sql)
        for schema, name in sorted(r.qualified):
            if schema == STATUS_SCHEMA and name not in STATUS_TABLES_DENIED:
                continue
            if (schema, name) in NAME_LISTS:
                continue
            raise AccessDenied(f"{schema}.{name} is not available to your role")
        for fn in sorted(r.functions):
            if fn not in SAFE_FUNCTIONS and not fn.startswith("ducklake_"):
                raise AccessDenied(f"the function {fn}() is not available to your role")
        used = []
        for name in sorted(r.tables):
            if name in self.relations:
                used.append(name)
            elif name in self.data_tables or name not in r.ctes:
                raise AccessDenied(f"the table {name} is not available to your role")
        return with_ctes(sql, [(name, self.relations[name]) for name in used])


_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_WITH = re.compile(r"WITH(?:\s+RECURSIVE)?\b", re.I)


def with_ctes(sql: str, ctes: list[tuple[str, str]]) -> str:
    """`sql` with `name AS NOT MATERIALIZED (select)` put first in its WITH clause (one made if it has none)."""
    if not ctes:
        return sql
    defs = ", ".join(f"{quote(name)} AS NOT MATERIALIZED ({select})" for name, select in ctes)
    start = _LEADING.match(sql).end()
    head = _WITH.match(sql, start)
    if head:
        return f"{sql[:head.end()]} {defs},{sql[head.end():]}"
    return f"{sql[:start]}WITH {defs} {sql[start:]}"


# ───────────────────────────────────────────────────────── per warehouse ──

_GUARDS: dict[tuple, Guard] = {}
_GUARDS_LOCK = threading.Lock()


def guard_for(warehouse, policy: Policy) -> Guard:
    """The role's guard for the warehouse's current shape (tables, columns, model files)."""
    if policy.everything:
        return Guard(policy, {}, frozenset())
    from dashboard.model import full_model

    raw = warehouse.raw_catalog()
    model = full_model(warehouse)
    key = (id(model), policy.key)
    with _GUARDS_LOCK:
        guard = _GUARDS.get(key)
    if guard is None:
        visible = visible_tables(model, policy) & set(raw.tables)
        relations = {name.lower(): relation(model, raw, name, policy) for name in sorted(visible)}
        guard = Guard(policy, relations, frozenset(n.lower() for n in raw.tables))
        with _GUARDS_LOCK:
            if len(_GUARDS) > 64:
                _GUARDS.clear()
            _GUARDS[key] = guard
    return guard


def secure(warehouse, sql: str) -> str:
    """`sql` as the current person's role may run it (unchanged when the role sees everything)."""
    policy = policy_now(warehouse.config)
    if policy.everything:
        return sql
    return guard_for(warehouse, policy).secure(sql)


def visible_catalog(warehouse, raw: Catalog) -> Catalog:
    """The catalog as the current person's role sees it: its tables, its columns, its row counts."""
    policy = policy_now(warehouse.config)
    if policy.everything or raw.empty:
        return raw
    from dashboard.model import model_for

    model = model_for(warehouse)
    tables = {}
    for name in sorted(model.tables):
        info = raw.tables.get(name)
        if info is None:
            continue
        columns = tuple(c for c in info.columns if not policy.hides(name, c.name))
        count = warehouse.scalar(f"SELECT count(*) FROM {quote(name)}") if policy.rows else info.row_count
        tables[name] = TableInfo(name, info.schema, columns, int(count or 0))
    return Catalog(tables=tables, missing=raw.missing)


def link_names_hidden(warehouse, problems_with) -> bool:
    """Whether a page's link names something the person's role cannot see.

    `problems_with(model, catalog)` parses the link and returns its problems
    (unknown ids). A link that parses with fewer problems against the whole
    warehouse than against the role's view names something hidden from the
    role: the page then says "no access" instead of falling back to
    something else, and never shows the hidden part.
    """
    if policy_now(warehouse.config).everything:
        return False
    from dashboard.model import full_model, model_for

    whole = problems_with(full_model(warehouse), warehouse.raw_catalog())
    own = problems_with(model_for(warehouse), warehouse.catalog())
    return len(whole) < len(own)


def stop_no_access() -> None:
    """Say "no access" on the page and end its run."""
    import streamlit as st

    from dashboard.i18n import t

    st.warning(t("no_access"), icon=":material/lock:")
    st.stop()


__all__ = ["OPEN", "AccessDenied", "Guard", "acting_as", "guard_for", "literal", "person_now", "policy_now",
           "reads", "relation", "secure", "visible_catalog", "with_ctes"]
