"""Personal data never leaves the source: a pattern guard and a keyed hash. Pure functions.

The allow-list (`[tables.<t>.columns]`) is the first defence: a column that is
not listed is never read. This module is the second, for the day someone lists
`phone` by mistake: `find_pii` looks at every value of a chunk before it is
published and names the first column whose values look like personal data.
It never returns or logs the value itself.

`keyed_hash` is what `hash = true` columns send instead of their value: an
HMAC-SHA256 with the secret from env PII_HASH_KEY, so ids still join across
tables but cannot be reversed by hashing guesses (a plain SHA-256 of a member
id can be brute-forced in seconds; the HMAC cannot without the key).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

# Korean mobile (010, 011, 016-019), Seoul 02, regional 031-064, 070 VoIP,
# optionally +82 without the leading 0. Separators optional; digits around
# must not continue the number (an amount or an id is not a phone number).
_PHONE = re.compile(
    r"(?<![\d])(?:\+82[ -]?(?:1[016789]|2|[3-6][1-5]|70)|01[016789]|02|0[3-6][1-5]|070)[ .-]?\d{3,4}[ .-]?\d{4}(?![\d])"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 주민등록번호: YYMMDD-GNNNNNN (gender/century digit 1-8). With the dash the shape
# alone is telling; a bare 13-digit run must also start with a valid month/day.
_RRN = re.compile(
    r"(?<![\d])(?:\d{6}-[1-8]\d{6}|\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[1-8]\d{6})(?![\d])"
)
# 16 digits, optionally in groups of four; Luhn-checked below.
_CARD = re.compile(r"(?<![\d])\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}(?![\d])")

PATTERNS = ("phone number", "e-mail address", "resident registration number", "card number")


@dataclass(frozen=True)
class PiiFinding:
    """Where personal-looking data was seen. Deliberately holds no value."""

    table: str
    column: str
    pattern: str  # one of PATTERNS


class PiiDetected(Exception):
    """A listed column carries values that look like personal data; the table must stop."""

    def __init__(self, finding: PiiFinding):
        self.finding = finding
        super().__init__(
            f"table {finding.table!r}, column {finding.column!r}: values look like a {finding.pattern} — "
            f"export of {finding.table} stopped. Remove the column from [tables.{finding.table}.columns], "
            f"or mark it hash = true if it must stay joinable, then restart the exporter"
        )


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _has_card(text: str) -> bool:
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group(0))
        if luhn_ok(digits):
            return True
    return False


def classify(value: Any) -> str | None:
    """The PII pattern `value` matches, or None. Only text and big integers can match."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        # An id or an amount below 10^12 cannot be any of the patterns; a 13-digit
        # integer could be an RRN without its dash, a 16-digit one a card number.
        if -(10**12) < value < 10**12:
            return None
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    if len(text) < 9:
        return None
    if "@" in text and _EMAIL.search(text):
        return "e-mail address"
    if _RRN.search(text):
        return "resident registration number"
    if _has_card(text):
        return "card number"
    if _PHONE.search(text):
        return "phone number"
    return None


def find_pii(table: str, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> PiiFinding | None:
    """First (column, pattern) among `columns` of `rows` that looks personal, else None."""
    for row in rows:
        for col in columns:
            pattern = classify(row.get(col))
            if pattern is not None:
                return PiiFinding(table, col, pattern)
    return None


def keyed_hash(value: Any, key: bytes) -> str | None:
    """HMAC-SHA256(key, str(value)) as hex; None stays None (a missing id stays missing)."""
    if value is None:
        return None
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
