"""Find planted marker strings wherever someone downstream could read them: a DuckDB file, Kafka bytes, logs.

PII tests plant a unique marker in every personal value at the source and
then look for markers downstream. Where to look matters:

- A DuckDB file cannot be checked by searching its bytes. DuckDB compresses
  string columns (FSST, dictionary) once a column holds enough similar
  values, and a compressed marker is not in the file as bytes at all:
  measured with duckdb 1.5.5, a 19-character marker among 3,000 demo shop
  names (stored FSST) was not in the file's bytes, among 2,000 it still was
  (stored uncompressed); with Faker company names it vanished at 2,000. So the
  warehouse is scanned through SQL, every column of every table, which sees
  exactly what any reader of the file would see. (A byte search still has a
  use next to it: it also sees free blocks, which SQL cannot.)
- Kafka messages and logs are plain bytes and text: a regular expression.

Markers are found by pattern (e.g. `cnry[0-9a-f]{16}`), not one search per
marker, so ten thousand planted values cost one pass over the data.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _as_text(column: str, data_type: str) -> str:
    """A column's value as the text a reader would see; BLOBs decoded as UTF-8 where they are UTF-8."""
    if data_type == "BLOB":
        return f"coalesce(try(decode({_q(column)})), CAST({_q(column)} AS VARCHAR))"
    return f"CAST({_q(column)} AS VARCHAR)"


def warehouse_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str]]:
    """(schema, table, column, type) of every column of every base table in the attached file, whatever its schema.

    Every type is scanned, not only VARCHAR: JSON, BLOB, lists and structs hold text too.
    """
    return con.execute(
        "SELECT c.table_schema, c.table_name, c.column_name, c.data_type "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "  ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database() "
        "ORDER BY 1, 2, c.ordinal_position"
    ).fetchall()


def find_in_warehouse(path: Path, pattern: str) -> dict[str, set[str]]:
    """'schema.table.column' → the distinct matches of `pattern` (RE2 syntax) in its values; columns without a match left out.

    Opens the file read-only: call it once the writer has stopped.
    """
    con = duckdb.connect(str(path), read_only=True)
    try:
        found: dict[str, set[str]] = {}
        for schema, table, column, data_type in warehouse_columns(con):
            matches = con.execute(
                f"SELECT DISTINCT unnest(regexp_extract_all({_as_text(column, data_type)}, $pattern)) "
                f"FROM {_q(schema)}.{_q(table)}",
                {"pattern": pattern},
            ).fetchall()
            if matches:
                found[f"{schema}.{table}.{column}"] = {m for (m,) in matches}
        return found
    finally:
        con.close()


def find_in_text(data: str | bytes, pattern: str) -> set[str]:
    """The distinct matches of `pattern` in text or bytes (bytes read as UTF-8, undecodable bytes replaced)."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return set(re.findall(pattern, text))


def file_bytes(path: Path) -> bytes:
    """The DuckDB file and its WAL as bytes (see the module docstring for what a byte search can and cannot see)."""
    wal = path.with_name(path.name + ".wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
