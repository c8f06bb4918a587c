"""The Overview's numbers: today's and this month's KPIs against the period before, and a 30-day trend.

"Change vs the previous period" compares like with like: today so far
against yesterday up to the same time of day, and this month so far against
the previous month up to the same day and time (Asia/Seoul calendar). The
SQL is fixed text over a fixed set of tables; only instants are bound.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

import pandas as pd

from dashboard import i18n

SEOUL = ZoneInfo("Asia/Seoul")
QueryFn = Callable[[str, list], pd.DataFrame]

# measure → (table it needs, aggregate over rows of the period)
MEASURES = {
    "topups_krw": ("topups", "coalesce(sum(amount_krw), 0)", ""),
    "topups": ("topups", "count(*)", ""),
    "payments_krw": ("payments", "coalesce(sum(amount_krw), 0)", "status = 'approved' AND "),
    "payments": ("payments", "count(*)", "status = 'approved' AND "),
    "refunds_krw": ("refunds", "coalesce(sum(amount_krw), 0)", ""),
    "active_cards": ("payments", "count(DISTINCT card_id)", "status = 'approved' AND "),
}
# the columns each measure reads (a role may see a table without all of them: the measure is then left out)
COLUMNS = {"topups_krw": {"amount_krw"}, "topups": set(), "payments_krw": {"amount_krw", "status"},
           "payments": {"status"}, "refunds_krw": {"amount_krw"}, "active_cards": {"card_id", "status"}}
TREND_COLUMNS = {"topups": {"amount_krw"}, "payments": {"amount_krw", "status"}, "refunds": {"amount_krw"}}


def _has(available, table: str, columns: set[str]) -> bool:
    """`available`: table names, or table → its visible columns (then the columns must be there too)."""
    if table not in available:
        return False
    if isinstance(available, Mapping):
        return (columns | {"created_at"}) <= set(available[table])
    return True


@dataclass(frozen=True)
class Period:
    name: str  # today | month
    start: datetime
    end: datetime
    prev_start: datetime
    prev_end: datetime


def periods(now: datetime) -> tuple[Period, Period]:
    """Today so far vs yesterday to the same time; month so far vs last month to the same offset."""
    now = now.astimezone(SEOUL)
    day0 = datetime.combine(now.date(), time(), SEOUL)
    today = Period("today", day0, now, day0 - timedelta(days=1), now - timedelta(days=1))
    month0 = datetime.combine(now.date().replace(day=1), time(), SEOUL)
    prev_month0 = datetime.combine((now.date().replace(day=1) - timedelta(days=1)).replace(day=1), time(), SEOUL)
    prev_end = min(prev_month0 + (now - month0), month0)
    month = Period("month", month0, now, prev_month0, prev_end)
    return today, month


def kpi_sql(available: Iterable[str]) -> tuple[str, list[str]]:
    """One query: a row per (period, current|previous) with a column per measure whose table exists."""
    names = [name for name, (table, _, _) in MEASURES.items() if _has(available, table, COLUMNS[name])]
    cols = [f"(SELECT {agg} FROM {table} WHERE {cond}created_at >= p.s AND created_at < p.e) AS {name}"
            for name, (table, agg, cond) in MEASURES.items() if name in names]
    if not cols:
        return "", []
    sql = (
        "WITH p(period, which, s, e) AS (VALUES "
        "('today', 'current', $1::TIMESTAMPTZ, $2::TIMESTAMPTZ), ('today', 'previous', $3::TIMESTAMPTZ, $4::TIMESTAMPTZ), "
        "('month', 'current', $5::TIMESTAMPTZ, $6::TIMESTAMPTZ), ('month', 'previous', $7::TIMESTAMPTZ, $8::TIMESTAMPTZ)) "
        f"SELECT p.period, p.which, {', '.join(cols)} FROM p"
    )
    return sql, names


def kpis(query: QueryFn, available: Iterable[str], now: datetime) -> dict[str, dict[str, dict[str, float]]]:
    """{period: {measure: {"current": x, "previous": y}}} for the measures whose tables exist."""
    today, month = periods(now)
    sql, names = kpi_sql(available)
    out: dict[str, dict[str, dict[str, float]]] = {"today": {}, "month": {}}
    if not sql:
        return out
    params = [today.start, today.end, today.prev_start, today.prev_end, month.start, month.end, month.prev_start, month.prev_end]
    df = query(sql, params)
    for row in df.itertuples(index=False):
        for name in names:
            out[row.period].setdefault(name, {})[row.which] = float(getattr(row, name))
    return out


def change_pct(current: float, previous: float) -> float | None:
    """Percent change; None when there is nothing to compare with."""
    if not previous:
        return None
    return 100.0 * (current - previous) / previous


def trend_sql(available: Iterable[str]) -> str:
    """Daily money in and out (Asia/Seoul days) since $1, long format: day, measure, amount_krw."""
    parts = []
    if _has(available, "topups", TREND_COLUMNS["topups"]):
        parts.append("SELECT created_at, 'topups' AS measure, amount_krw FROM topups WHERE created_at >= $1")
    if _has(available, "payments", TREND_COLUMNS["payments"]):
        parts.append("SELECT created_at, 'payments' AS measure, amount_krw FROM payments WHERE status = 'approved' AND created_at >= $1")
    if _has(available, "refunds", TREND_COLUMNS["refunds"]):
        parts.append("SELECT created_at, 'refunds' AS measure, amount_krw FROM refunds WHERE created_at >= $1")
    if not parts:
        return ""
    return (
        "SELECT CAST(timezone('Asia/Seoul', created_at) AS DATE) AS day, measure, CAST(sum(amount_krw) AS BIGINT) AS amount_krw "
        f"FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL ORDER BY day, measure"
    )


def trend_start(today: date, days: int = 30) -> datetime:
    return datetime.combine(today - timedelta(days=days - 1), time(), SEOUL)


TILE_ROW_UNITS = 40  # width of a metric's value across the page, in digit widths, shared by a row's tiles
TILES_PER_ROW = 3  # metric tiles side by side at most (reports: the row count and its totals)


def text_units(text: str) -> int:
    """Display width in digit widths: a Hangul syllable is two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def tile_krw(value: float, lang: str, tiles: int) -> tuple[str, str | None]:
    """(what a tile shows, its tooltip) for an amount in a row of `tiles` metric tiles.

    The exact amount when it fits its tile; else the short form (26.0억원 /
    ₩2.6B) with the exact amount in the tooltip — Streamlit cuts a value that
    does not fit ("2,598,600,00…"), which reads as a different number.
    """
    exact = i18n.fmt_krw(value, lang)
    if text_units(exact) <= TILE_ROW_UNITS // max(1, tiles):
        return exact, None
    return compact_krw(value, lang), exact


def compact_krw(value: float, lang: str) -> str:
    """A money amount short enough for a KPI tile: 4,754만원 / 1.2억원 in Korean, ₩47.5M in English."""
    v = round(value)
    if lang == "en":
        for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(v) >= size:
                return f"₩{v / size:,.1f}{unit}"
        return f"₩{v:,}"
    if abs(v) >= 100_000_000:
        return f"{v / 100_000_000:,.1f}억원"
    if abs(v) >= 10_000:
        return f"{round(v / 10_000):,}만원"
    return f"{v:,}원"
