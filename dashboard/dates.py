"""One period control for every page: presets relative to today (Asia/Seoul) or two dates.

A period travels in URLs as one token, the same on every page:

    last_month | this_week | last_30_days | …   a preset, re-evaluated every day
    2026-10-01..2026-10-31                      two inclusive dates

so a bookmarked "last month" stays last month, and a pasted range stays that
range. `period_picker` is the widget (a preset list, two date fields for a
custom range) used by Explore's date filter and by every report's `daterange`
parameter. A start after the end is kept as it is and said out loud
(`Period.reversed`), never swapped or answered with "no data".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import streamlit as st

from dashboard import i18n
from dashboard.i18n import SEOUL, t

CALENDAR_PRESETS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year", "last_year")
LAST_N_DAYS = (7, 30, 90, 365)
PRESETS = CALENDAR_PRESETS + tuple(f"last_{n}_days" for n in LAST_N_DAYS)
CUSTOM = "custom"
SEP = ".."
MAX_LAST_DAYS = 3660
_LAST_N = re.compile(r"^last_(\d{1,4})_days$")


@dataclass(frozen=True)
class Period:
    """Inclusive dates, and the preset they came from (None for a typed range)."""

    start: date
    end: date
    preset: str | None = None

    def __iter__(self):
        """`start, end = period` — a period unpacks to its two dates."""
        return iter((self.start, self.end))

    @property
    def reversed(self) -> bool:
        return self.start > self.end

    @property
    def token(self) -> str:
        """What goes into the URL: the preset's name, else `start..end`."""
        return self.preset or f"{self.start.isoformat()}{SEP}{self.end.isoformat()}"

    def describe(self) -> str:
        """`2026-10-01 – 2026-10-31 (지난달)` for filter notes and file sheets."""
        text = f"{self.start.isoformat()} – {self.end.isoformat()}"
        return f"{text} ({preset_label(self.preset)})" if self.preset else text


def today_seoul(now: datetime | None = None) -> date:
    """Today in Asia/Seoul, the business's calendar, whatever the server's zone."""
    return (now or datetime.now(SEOUL)).astimezone(SEOUL).date()


def last_n_days(preset: str) -> int | None:
    m = _LAST_N.match(preset)
    if not m:
        return None
    n = int(m.group(1))
    return n if 1 <= n <= MAX_LAST_DAYS else None


def is_preset(token: str) -> bool:
    return token in CALENDAR_PRESETS or last_n_days(token) is not None


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """Inclusive (start, end) of a preset relative to `today`. Weeks start on Monday."""
    if preset == "today":
        return today, today
    if preset == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if preset == "this_week":
        return today - timedelta(days=today.weekday()), today
    if preset == "last_week":
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "this_year":
        return today.replace(month=1, day=1), today
    if preset == "last_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    n = last_n_days(preset)
    if n is not None:
        return today - timedelta(days=n - 1), today
    raise ValueError(f"unknown preset {preset!r}")


def preset_period(preset: str, today: date) -> Period:
    start, end = preset_range(preset, today)
    return Period(start, end, preset)


def parse_period(token: str, today: date) -> Period:
    """A URL token → Period. Raises ValueError (with the bad text) when it is neither a preset nor a range."""
    token = token.strip()
    if is_preset(token):
        return preset_period(token, today)
    start_s, sep, end_s = token.partition(SEP)
    if not sep:
        raise ValueError(token)
    try:
        return Period(date.fromisoformat(start_s.strip()), date.fromisoformat(end_s.strip()))
    except ValueError:
        raise ValueError(token) from None


def preset_label(preset: str) -> str:
    n = last_n_days(preset)
    if n is not None:
        return t("preset_last_n_days", n=i18n.fmt_number(n))
    return t("preset_" + preset)


def reversed_message(period: Period) -> str:
    return t("period_reversed", start=period.start.isoformat(), end=period.end.isoformat())


FINER = {"year": "month", "quarter": "month", "month": "day", "week": "day", "day": "hour", "hour": "hour"}


def bucket(grain: str, start: date) -> Period:
    """The days of one time bucket starting on `start`: a week is 7 days, a month to its last day, …"""
    if grain == "week":
        return Period(start, start + timedelta(days=6))
    months = {"month": 1, "quarter": 3, "year": 12}.get(grain)
    if months is None:  # day, hour: that day
        return Period(start, start)
    month = start.month - 1 + months
    following = date(start.year + month // 12, month % 12 + 1, 1)
    return Period(start, following - timedelta(days=1))


# ─────────────────────────────────────────────────────────────── widget ──


def _seed(key: str, value: Any) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def period_picker(key: str, label: str, value: Period | None, *, allow_all: bool = False,
                  today: date | None = None, container: Any = None) -> Period | None:
    """The period control: a preset list (plus "all time" when `allow_all`) and, for a custom
    range, a start and an end date side by side. Returns the chosen Period (None = all time).

    `value` seeds the widgets once (from the URL); afterwards the widgets own
    the choice. A reversed custom range comes back as it is, with an error
    under the control saying so — callers skip the query rather than answer
    "no data".
    """
    box = container if container is not None else st
    today = today or today_seoul()
    options = ([""] if allow_all else []) + list(PRESETS)
    if value is not None and value.preset and value.preset not in options:
        options.append(value.preset)  # e.g. last_45_days from a link
    options.append(CUSTOM)
    preset_key, start_key, end_key = f"{key}.preset", f"{key}.start", f"{key}.end"
    if value is None:
        _seed(preset_key, "" if allow_all else "last_30_days")
    else:
        _seed(preset_key, value.preset or CUSTOM)
    fallback = value or preset_period("last_30_days", today)
    _seed(start_key, fallback.start)
    _seed(end_key, fallback.end)
    if st.session_state[preset_key] not in options:
        st.session_state[preset_key] = options[0]

    def name(option: str) -> str:
        if option == "":
            return t("no_date_filter")
        if option == CUSTOM:
            return t("preset_custom")
        return preset_label(option)

    chosen = box.selectbox(label, options, key=preset_key, format_func=name)
    if chosen == "":
        return None
    if chosen != CUSTOM:
        period = preset_period(chosen, today)
        # Keep the custom fields on the preset's dates, so "custom" starts from what was shown.
        st.session_state[start_key], st.session_state[end_key] = period.start, period.end
        box.caption(f"{period.start.isoformat()} – {period.end.isoformat()}")
        return period
    left, right = box.columns(2)
    start = left.date_input(t("date_start"), key=start_key, format="YYYY-MM-DD")
    end = right.date_input(t("date_end"), key=end_key, format="YYYY-MM-DD")
    if not isinstance(start, date) or not isinstance(end, date):  # a field emptied by hand
        box.warning(t("bad_period", value=f"{start}..{end}"))
        return fallback if not fallback.reversed else None
    period = Period(start, end)
    if period.reversed:
        box.error(reversed_message(period), icon=":material/event_busy:")
    return period
