"""Look up one thing: what may be looked up, and how a timeline line reads.

The statements come from the one query compiler (`compile_lookup`,
`compile_lookup_search` in dashboard/questions/compile.py); the look-up page
(pages/lookup.py) lays out widgets. This module decides the rest:

- `SUBJECTS`: what a person may look up — a card by its id, a merchant by its
  id or a part of its name; only identifiers the allow-list carries, so a
  pseudonymised member id is never something to search by;
- `detail_text`: the one-line "what happened" of a timeline event, from the
  event's row (JSON from the compiler) in words: "결제 상태: 승인 · 가맹점: 8".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dashboard import i18n


@dataclass(frozen=True)
class Subject:
    kind: str  # URL token: card | merchant
    table: str  # the model table looked up
    searchable: bool = False  # a part of its name finds it (the model's `search` columns)


SUBJECTS = {
    "card": Subject("card", "cards"),
    "merchant": Subject("merchant", "merchants", searchable=True),
}
MAX_ID = 2**63 - 1
LINKS = ("card_id", "merchant_id", "payment_id")  # ids worth showing on a line: where the event points


class LookupInputError(ValueError):
    """What was typed cannot be an id; carries the i18n key and values for the message."""

    def __init__(self, key: str, **values: Any):
        super().__init__(key)
        self.key, self.values = key, values


def available(model, subject: Subject) -> bool:
    tm = model.tables.get(subject.table)
    return tm is not None and len(tm.primary_key) == 1 and bool(model.related_event_tables(subject.table))


def parse_id(text: str) -> int:
    """A typed id → int; anything else (letters, quotes, 30 digits) is refused with a message key."""
    cleaned = (text or "").strip().replace(",", "")
    if not cleaned.isascii() or not cleaned.isdigit() or int(cleaned) > MAX_ID:
        raise LookupInputError("lookup_bad_id", value=(text or "")[:60])
    return int(cleaned)


def detail_text(model, source: str, details: str | None, subject_key: str, lang: str) -> str:
    """The event's coded values as words and the other things it points at, e.g. "결제 상태: 승인 · 가맹점: 8"."""
    try:
        row = json.loads(details) if details else {}
    except ValueError:
        return ""
    tm = model.tables.get(source)
    if tm is None or not isinstance(row, dict):
        return ""
    parts = []
    for column, value in row.items():
        if value is None or column.startswith("_") or column == subject_key or column in tm.primary_key:
            continue
        dim = tm.dimensions.get(column)
        if dim is None:
            continue
        words = dim.value_label(value, lang)
        if words is not None:
            parts.append(f"{dim.label.text(lang)}: {words}")
        elif column in LINKS:
            parts.append(f"{dim.label.text(lang)}: {i18n.value_label(column, value)}")
    return " · ".join(parts)
