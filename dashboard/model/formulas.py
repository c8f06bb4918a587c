"""Checking measure formulas with DuckDB's own parser, never by running them on data.

Formulas come from model files that developers write, not from app users;
still, a typo must become a message naming the file and key, not a failing
page. Two checks, both on a private in-memory DuckDB with no data:

- `parse_error`: `json_serialize_sql` parses `SELECT <expr> FROM t` and
  reports a syntax error; more than one statement is refused;
- `bind_error`: `EXPLAIN` of the same on an empty table with the catalog's
  columns and types, so an unknown column or function is found too.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Iterable

import duckdb

REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\}")

_LOCK = threading.Lock()
_CON: duckdb.DuckDBPyConnection | None = None


def _con() -> duckdb.DuckDBPyConnection:
    global _CON
    if _CON is None:
        _CON = duckdb.connect(":memory:", config={"enable_external_access": False})
    return _CON


def parse_error(expression: str) -> str | None:
    """None when `expression` is one SQL expression; else DuckDB's parser message."""
    with _LOCK:
        text = _con().execute("SELECT json_serialize_sql(?)", [f"SELECT {expression} FROM t"]).fetchone()[0]
    tree = json.loads(text)
    if tree.get("error"):
        return str(tree.get("error_message") or "does not parse")
    if len(tree.get("statements", ())) != 1:
        return "holds more than one statement"
    return None


def bind_error(expression: str, columns: Iterable[tuple[str, str]], *, aggregate: bool) -> str | None:
    """None when `expression` binds against an empty table with these (name, type) columns."""
    from dashboard.warehouse import quote

    cols = ", ".join(f"{quote(name)} {ctype}" for name, ctype in columns)
    with _LOCK:
        con = _con().cursor()
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE t ({cols})")
            query = f"SELECT {expression} FROM t" if aggregate else f"SELECT count(*) FROM t WHERE {expression}"
            con.execute(f"EXPLAIN {query}")
        except duckdb.Error as exc:
            return str(exc).splitlines()[0]
        finally:
            con.close()
    return None


def formula_refs(formula: str) -> list[str]:
    """The `{table.measure}` references of a formula, in order of appearance."""
    return [f"{t}.{m}" for t, m in REF.findall(formula)]


def substitute(formula: str, replace) -> str:
    """The formula with each `{table.measure}` replaced by `replace("table.measure")`."""
    return REF.sub(lambda m: replace(f"{m.group(1)}.{m.group(2)}"), formula)
