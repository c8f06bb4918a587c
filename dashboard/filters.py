"""Filters as data: parsed from the URL, checked against the catalog, turned into bound SQL.

A filter is a plain value (`Filter(column, op, values)`); a page is a pure
function of its URL, so everything a person set — table, filters, chart,
sort — round-trips through `st.query_params`:

    table=topups
    period.created_at=last_month            (a preset, relative to today in Asia/Seoul: dashboard/dates.py)
    period.created_at=2026-10-01..2026-10-31 (inclusive dates)
    in.channel=mobile&in.channel=card       (one of these values)
    range.amount_krw=1000..50000            (either side may be empty)
    has.merchant_name=커피                   (contains, case-insensitive)
    sort=amount_krw&desc=1

Only column names found in the catalog reach SQL (quoted); every value is a
bound parameter. Input that does not make sense becomes a `problem` message
for the page to show, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, time as dtime
from typing import Any, Iterable, Mapping, Sequence

from dashboard import dates, i18n
from dashboard.dates import Period
from dashboard.i18n import SEOUL
from dashboard.warehouse import TableInfo, quote

OPS = ("period", "in", "range", "has")
_SEP = ".."


@dataclass(frozen=True)
class Filter:
    column: str
    op: str  # period | in | range | has
    values: tuple = ()  # period: (URL token,) — a preset name or "start..end" (dashboard/dates.py)

    @property
    def active(self) -> bool:
        if self.op == "range":
            return any(v is not None for v in self.values)
        return bool(self.values) and all(v not in (None, "") for v in self.values)


@dataclass(frozen=True)
class ViewState:
    """What the Explore page shows; the URL holds exactly this."""

    table: str | None = None
    filters: tuple[Filter, ...] = ()
    chart: Mapping[str, str] = field(default_factory=dict)  # kind, x, y, color, agg, bucket (see charts.py)
    sort: str | None = None
    desc: bool = False


def today_seoul() -> date:
    return dates.today_seoul()


def period_of(f: Filter, today: date) -> Period | None:
    """The dates a period filter covers (possibly reversed: the page says so), or None when it is not a period."""
    if f.op != "period" or not f.values:
        return None
    try:
        return dates.parse_period(str(f.values[0]), today)
    except ValueError:
        return None


# ────────────────────────────────────────────────────────────── URL ↔ state ──


def _parse_number(text: str) -> float | int | None:
    text = text.strip().replace(",", "")
    if text == "":
        return None
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def parse_state(params: Mapping[str, Sequence[str]], tables: Mapping[str, TableInfo]) -> tuple[ViewState, list[str]]:
    """URL query parameters (key → list of values) → a valid ViewState and messages about what was ignored."""
    problems: list[str] = []
    names = list(tables)
    first = lambda key: (params.get(key) or [None])[-1]  # noqa: E731
    table = first("table")
    if table is not None and table not in tables:
        problems.append(i18n.t("unknown_table", table=table))
        table = None
    if table is None:
        table = names[0] if names else None
    info = tables.get(table) if table else None
    filters: list[Filter] = []
    for key, values in params.items():
        if "." not in key:
            continue
        op, column = key.split(".", 1)
        if op not in OPS or info is None:
            continue
        col = info.column(column)
        if col is None:
            problems.append(i18n.t("unknown_column", column=column))
            continue
        label = column
        if op == "period":
            raw = values[-1]
            try:
                period = dates.parse_period(raw, today_seoul())
            except ValueError:
                problems.append(i18n.t("bad_date", value=raw))
                continue
            filters.append(Filter(column, "period", (period.token,)))  # a reversed range is kept: the page says so
        elif op == "in":
            chosen = tuple(dict.fromkeys(v for v in values if v != ""))
            if col.kind == "bool":
                chosen = tuple(v for v in chosen if v in ("true", "false"))
            if chosen:
                filters.append(Filter(column, "in", chosen))
        elif op == "range":
            raw = values[-1]
            try:
                lo_s, hi_s = raw.split(_SEP, 1) if _SEP in raw else (raw, "")
                lo, hi = _parse_number(lo_s), _parse_number(hi_s)
            except ValueError:
                problems.append(i18n.t("bad_number", column=label, value=raw))
                continue
            if lo is not None and hi is not None and lo > hi:
                problems.append(i18n.t("bad_range", column=label))
                continue
            filters.append(Filter(column, "range", (lo, hi)))
        elif op == "has":
            text = values[-1].strip()
            if text:
                filters.append(Filter(column, "has", (text[:200],)))
    chart = {k: first(k) for k in ("chart", "x", "y", "color", "agg", "bucket") if first(k)}
    sort = first("sort")
    if sort is not None and (info is None or info.column(sort) is None):
        problems.append(i18n.t("unknown_column", column=sort))
        sort = None
    desc = first("desc") in ("1", "true")
    return ViewState(table, tuple(filters), chart, sort, desc), problems


def _fmt_num(v: Any) -> str:
    return "" if v is None else (str(int(v)) if float(v).is_integer() else repr(float(v)))


def state_params(state: ViewState) -> dict[str, str | list[str]]:
    """A ViewState → query parameters (the inverse of `parse_state`)."""
    out: dict[str, str | list[str]] = {}
    if state.table:
        out["table"] = state.table
    for f in state.filters:
        if not f.active:
            continue
        key = f"{f.op}.{f.column}"
        if f.op == "period":
            out[key] = str(f.values[0])
        elif f.op == "in":
            out[key] = [str(v) for v in f.values]
        elif f.op == "range":
            out[key] = f"{_fmt_num(f.values[0])}{_SEP}{_fmt_num(f.values[1])}"
        elif f.op == "has":
            out[key] = str(f.values[0])
    for k, v in state.chart.items():
        if v:
            out[k] = v
    if state.sort:
        out["sort"] = state.sort
        if state.desc:
            out["desc"] = "1"
    return out


# ─────────────────────────────────────────────────────────── state → SQL ──


def _period_bounds(info: TableInfo, column: str, start: date, end: date) -> tuple[Any, Any]:
    """Half-open [start, end + 1 day) in the column's own type, Asia/Seoul for time stamps."""
    col = info.column(column)
    after = end + timedelta(days=1)
    if col is not None and col.is_date:
        return start, after
    if col is not None and "TIME ZONE" not in col.type.upper():
        return datetime.combine(start, dtime()), datetime.combine(after, dtime())
    return datetime.combine(start, dtime(), SEOUL), datetime.combine(after, dtime(), SEOUL)


def where_clause(filters: Iterable[Filter], info: TableInfo, today: date | None = None) -> tuple[str, list[Any]]:
    """`WHERE …` (or '') plus its bound parameters. Filters on unknown columns are skipped."""
    today = today or today_seoul()
    parts: list[str] = []
    params: list[Any] = []
    for f in filters:
        col = info.column(f.column)
        if col is None or not f.active:
            continue
        ident = quote(col.name)
        if f.op == "period":
            period = period_of(f, today)
            if period is None:
                continue
            lo, hi = _period_bounds(info, col.name, period.start, period.end)
            parts.append(f"{ident} >= ? AND {ident} < ?")
            params += [lo, hi]
        elif f.op == "in":
            values = [v == "true" for v in f.values] if col.kind == "bool" else [str(v) for v in f.values]
            cast = "" if col.kind in ("bool", "text") else "::VARCHAR"
            parts.append(f"{ident}{cast} IN ({', '.join('?' * len(values))})")
            params += values
        elif f.op == "range":
            lo, hi = f.values
            if lo is not None:
                parts.append(f"{ident} >= ?")
                params.append(lo)
            if hi is not None:
                parts.append(f"{ident} <= ?")
                params.append(hi)
        elif f.op == "has":
            parts.append(f"contains(lower({ident}::VARCHAR), lower(?))")
            params.append(str(f.values[0]))
    if not parts:
        return "", []
    return "WHERE " + " AND ".join(f"({p})" for p in parts), params


def count_sql(info: TableInfo, where: str) -> str:
    """Matching rows. (Kept apart from the table's total: a WHERE on a time range
    lets DuckDB skip whole row groups — 3 ms instead of 110 ms on 10M rows.)"""
    return f"SELECT count(*) AS n FROM {info.qualified} {where}"


def order_clause(info: TableInfo, sort: str | None, desc: bool, default_order: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """`ORDER BY …` and its bound parameters, as the screen shows the column.

    A column of vocabulary codes sorts by its words in the current language
    (자동충전 after 모바일, as a reader expects), through a CASE whose codes and
    words are bound parameters. Without a chosen sort the rows come in
    `default_order` (the table's primary key), so ids run 1, 2, … 10 and the
    screen and the file agree.
    """
    col = info.column(sort) if sort else None
    if col is not None:
        expr, params = quote(col.name), []
        codes = i18n.vocabulary_order(col.name) if col.kind == "text" else []
        if codes:
            expr = "CASE " + quote(col.name) + " " + " ".join("WHEN ? THEN ?" for _ in codes) + f" ELSE {quote(col.name)} END"
            for code in codes:
                params += [code, i18n.code_label(col.name, code)]
        ties = [quote(c) for c in default_order if c != col.name and info.column(c) is not None]
        # The key breaks ties, so the screen's query and the download's list equal rows in the same order.
        return f"ORDER BY {expr} {'DESC' if desc else 'ASC'} NULLS LAST{''.join(', ' + t for t in ties)}", params
    if default_order and all(info.column(c) is not None for c in default_order):
        return "ORDER BY " + ", ".join(quote(c) for c in default_order), []
    return "", []


def rows_query(info: TableInfo, where: str, params: Sequence[Any], sort: str | None, desc: bool, limit: int,
               local_time: bool = False, default_order: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """The filtered rows in the screen's order, at most `limit`, with their parameters.
    `local_time` turns time stamps into Seoul wall-clock (files)."""
    cols = []
    for c in info.columns:
        if local_time and "TIME ZONE" in c.type.upper():
            cols.append(f"{quote(c.name)}::TIMESTAMP AS {quote(c.name)}")
        else:
            cols.append(quote(c.name))
    order, order_params = order_clause(info, sort, desc, default_order)
    sql = f"SELECT {', '.join(cols)} FROM {info.qualified} {where} {order} LIMIT {int(limit)}"
    return sql, [*params, *order_params]


def summary_sql(info: TableInfo, where: str) -> str | None:
    """count / sum / avg / min / max of every numeric column but identifiers (a sum of card ids means nothing), one scan."""
    nums = summary_columns(info)
    if not nums:
        return None
    parts = []
    for i, c in enumerate(nums):
        q = quote(c.name)
        parts += [f"count({q}) AS c{i}", f"sum({q})::DOUBLE AS s{i}", f"avg({q}) AS a{i}", f"min({q})::DOUBLE AS lo{i}", f"max({q})::DOUBLE AS hi{i}"]
    return f"SELECT {', '.join(parts)} FROM {info.qualified} {where}"


def summary_columns(info: TableInfo) -> list:
    """The columns `summary_sql` describes, in its order."""
    return [c for c in info.columns_of("number") if not i18n.is_identifier(c.name)]


def value_counts_sql(info: TableInfo, column: str, limit: int) -> str:
    """Distinct values of one column with their counts over the whole table (filter options)."""
    q = quote(column)
    return f"SELECT {q} AS value, count(*) AS n FROM {info.qualified} WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(limit)}"


def distinct_count_sql(info: TableInfo, column: str) -> str:
    return f"SELECT approx_count_distinct({quote(column)}) FROM {info.qualified}"


# ───────────────────────────────────────────────────────── describing ──


def describe(filters: Iterable[Filter], info: TableInfo, labels: Mapping[str, str], today: date | None = None) -> list[str]:
    """One human line per active filter, in the current language (Excel filter sheet, CSV note)."""
    today = today or today_seoul()
    lines = []
    for f in filters:
        if not f.active or info.column(f.column) is None:
            continue
        name = labels.get(f.column, f.column)
        if f.op == "period":
            period = period_of(f, today)
            if period is None:
                continue
            text = period.describe()
        elif f.op == "in":
            text = ", ".join(i18n.value_label(f.column, v) if info.column(f.column).kind != "bool" else i18n.t(v) for v in f.values)
        elif f.op == "range":
            lo, hi = f.values
            text = f"{i18n.fmt_number(lo) if lo is not None else ''} – {i18n.fmt_number(hi) if hi is not None else ''}".strip()
        else:
            text = f"{i18n.t('contains')} \"{f.values[0]}\""
        lines.append(f"{name}: {text}")
    return lines


def file_basename(table: str, filters: Iterable[Filter], today: date | None = None) -> str:
    """`topups_2026-10-01_2026-10-31` when a period is set, else `topups_<today>`."""
    today = today or today_seoul()
    for f in filters:
        period = period_of(f, today) if f.active else None
        if period:
            return f"{table}_{period.start.isoformat()}_{period.end.isoformat()}"
    return f"{table}_{today.isoformat()}"
