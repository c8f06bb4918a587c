"""Look up one thing: a card or a merchant, its attributes and one timeline of everything related.

The look-up page (pages/lookup.py) lays out widgets; this module decides what
a person may type and turns it into bound SQL against the catalog:

- a card by its id, a merchant by its id or a part of its name — only
  identifiers the allow-list carries (pipeline.toml), so a pseudonymised
  member id is never something to search by;
- `timeline_sql`: one statement, the UNION of the related tables (payments,
  top-ups, refunds — those present in the warehouse) in time order, the same
  statement for the screen and the download;
- `monthly_sql`: counts and amounts per month and kind over that timeline.

Table and column names come only from the catalog (quoted); the typed value
is always a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard.warehouse import Catalog, TableInfo, quote


@dataclass(frozen=True)
class Subject:
    kind: str  # URL token: card | merchant
    table: str  # the table holding its attributes
    key: str  # its id column, also the column related tables carry
    name_column: str | None = None  # searchable by a part of this text column


SUBJECTS = {
    "card": Subject("card", "cards", "card_id"),
    "merchant": Subject("merchant", "merchants", "merchant_id", name_column="merchant_name"),
}

# (table, its id column, its detail column): what the timeline shows per related table, in this order.
EVENTS = (("payments", "payment_id", "status"), ("topups", "topup_id", "channel"), ("refunds", "refund_id", "reason"))
EVENT_TIME = "created_at"
TIMELINE_COLUMNS = ("event_at", "measure", "event_id", "card_id", "merchant_id", "amount_krw", "status", "channel",
                    "reason")
NAME_MATCHES_MAX = 50
MAX_ID = 2**63 - 1


class LookupInputError(ValueError):
    """What was typed cannot be looked up; carries the i18n key and values for the message."""

    def __init__(self, key: str, **values: Any):
        super().__init__(key)
        self.key, self.values = key, values


def available(catalog: Catalog, subject: Subject) -> bool:
    info = catalog.tables.get(subject.table)
    return info is not None and info.column(subject.key) is not None


def parse_id(text: str) -> int:
    """A typed id → int; anything else (letters, quotes, 30 digits) is refused with a message key."""
    cleaned = (text or "").strip().replace(",", "")
    if not cleaned.isascii() or not cleaned.isdigit() or int(cleaned) > MAX_ID:
        raise LookupInputError("lookup_bad_id", value=(text or "")[:60])
    return int(cleaned)


def attributes_sql(info: TableInfo, key: str) -> str:
    """The subject's row: every column the catalog lists (only allow-listed columns are ever landed)."""
    cols = ", ".join(quote(c.name) for c in info.columns)
    return f"SELECT {cols} FROM {info.qualified} WHERE {quote(key)} = ? LIMIT 1"


def name_search_sql(info: TableInfo, subject: Subject) -> str:
    """Merchants whose name contains the typed text (any case; % and _ typed are literal)."""
    assert subject.name_column is not None
    return (f"SELECT {quote(subject.key)}, {quote(subject.name_column)} FROM {info.qualified} "
            f"WHERE {quote(subject.name_column)} ILIKE ? ESCAPE '\\' ORDER BY {quote(subject.name_column)}, "
            f"{quote(subject.key)} LIMIT {NAME_MATCHES_MAX}")


def like_pattern(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def related_tables(catalog: Catalog, subject: Subject) -> list[tuple[TableInfo, str, str]]:
    """The related tables present in the warehouse that carry the subject's key and a time column."""
    out = []
    for table, id_col, detail in EVENTS:
        info = catalog.tables.get(table)
        if info is None or info.column(subject.key) is None or info.column(EVENT_TIME) is None:
            continue
        out.append((info, id_col, detail))
    return out


def _typed(info: TableInfo, column: str, cast: str) -> str:
    return f"CAST({quote(column)} AS {cast})" if info.column(column) is not None else f"CAST(NULL AS {cast})"


def timeline_sql(catalog: Catalog, subject: Subject, limit: int, local_time: bool = False) -> tuple[str, int] | None:
    """(the UNION ALL of related rows in time order, how many times the id is bound); None without related tables.

    `local_time` gives Seoul wall-clock times (for files, like the Explore download).
    """
    parts = []
    for info, id_col, detail in related_tables(catalog, subject):
        event_at = f"CAST({quote(EVENT_TIME)} AS TIMESTAMP)" if local_time else quote(EVENT_TIME)
        cols = [f"{event_at} AS event_at", f"'{info.name}' AS measure", f"{_typed(info, id_col, 'BIGINT')} AS event_id",
                f"{_typed(info, 'card_id', 'BIGINT')} AS card_id", f"{_typed(info, 'merchant_id', 'BIGINT')} AS merchant_id",
                f"{_typed(info, 'amount_krw', 'BIGINT')} AS amount_krw"]
        for name in ("status", "channel", "reason"):
            cols.append(f"{_typed(info, name, 'VARCHAR') if name == detail else 'CAST(NULL AS VARCHAR)'} AS {name}")
        parts.append(f"SELECT {', '.join(cols)} FROM {info.qualified} WHERE {quote(subject.key)} = ?")
    if not parts:
        return None
    # info.name comes from the catalog (a landed table name), never from what a person typed.
    sql = (" UNION ALL ".join(parts) +
           f" ORDER BY event_at, measure, event_id LIMIT {int(limit)}")
    return sql, len(parts)


def timeline_count_sql(catalog: Catalog, subject: Subject) -> tuple[str, int] | None:
    built = timeline_sql(catalog, subject, limit=2**62)
    if built is None:
        return None
    sql, binds = built
    return f"SELECT count(*) FROM ({sql})", binds


def monthly_sql(catalog: Catalog, subject: Subject) -> tuple[str, int] | None:
    """Per Seoul calendar month and kind (payments, top-ups, refunds): how many and how much."""
    built = timeline_sql(catalog, subject, limit=2**62)
    if built is None:
        return None
    sql, binds = built
    return (f"SELECT CAST(date_trunc('month', timezone('Asia/Seoul', event_at)) AS DATE) AS x, measure AS color, "
            f"count(*) AS n, CAST(sum(amount_krw) AS BIGINT) AS amount_krw FROM ({sql}) "
            f"GROUP BY ALL ORDER BY x, color"), binds
