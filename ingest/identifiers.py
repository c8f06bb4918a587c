"""SQL identifiers: the one rule for a field name to become a column, quoting, and the system columns.

Shared by the decode stage (`decode_sql.py`) and the landing (`landing_sql.py`)
so that neither imports the other for its quoting helpers.

The column-name rule (documented in docs/contracts.md): a row field becomes a
warehouse column only if its name

- starts with a letter (ASCII A–Z, a–z, or Hangul),
- continues with letters, digits 0–9 or '_',
- is at most 63 characters long;

names starting with '_' are the warehouse's own (`SYSTEM_COLUMNS`). Any other
name — with a NUL, a quote, a space, a right-to-left mark, an emoji, 64+
characters, or empty — makes its message a dead letter whose reason states
this rule. A name that passes the rule contains no character that could end
a quoted identifier, so `q()` is safe on it; everything else a message
carries (values, and names that fail the rule) only ever reaches DuckDB as a
bound parameter or inside a registered Arrow table.
"""

from __future__ import annotations

import re
from typing import Mapping

from ingest.schema import TIMESTAMPTZ

# Hangul: syllables, compatibility jamo, jamo. The same text serves Python `re` and DuckDB (RE2).
_HANGUL = "\u3131-\u318e\uac00-\ud7a3\u1100-\u11ff"
COLUMN_NAME_PATTERN = f"[A-Za-z{_HANGUL}][A-Za-z0-9_{_HANGUL}]{{0,62}}"
COLUMN_NAME_RULE = (
    "a column name starts with a letter (A–Z, a–z or Hangul), continues with letters, digits and '_', "
    "and has at most 63 characters ('_…' names are reserved for the warehouse)"
)
_COLUMN_NAME = re.compile(COLUMN_NAME_PATTERN)


def is_column_name(name: str) -> bool:
    """Whether a row field may become a warehouse column (the rule above)."""
    return _COLUMN_NAME.fullmatch(name) is not None


# Columns the landing adds to every table (the warehouse layout in docs/contracts.md).
SYSTEM_COLUMNS: dict[str, str] = {
    "_source_ts": TIMESTAMPTZ,
    "_ingested_at": TIMESTAMPTZ,
    "_deleted": "BOOLEAN",
    "_kafka_partition": "INTEGER",
    "_kafka_offset": "BIGINT",
}
HIDDEN_IN_VIEW = ("_deleted", "_kafka_partition", "_kafka_offset")


def own_columns(columns: Mapping[str, str]) -> dict[str, str]:
    """A table's columns without the ones the landing adds (`SYSTEM_COLUMNS`)."""
    return {c: t for c, t in columns.items() if c not in SYSTEM_COLUMNS}


def q(identifier: str) -> str:
    """A quoted identifier — only for config names and names that pass `is_column_name`."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A string literal — only for config names and fixed text, never message data."""
    return "'" + text.replace("'", "''") + "'"
