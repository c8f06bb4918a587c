"""The time windows of a question: the period, and the one it is compared with.

Periods are Seoul calendar days (dashboard/dates.py presets or a typed
range), turned into half-open [start, end) moments so a filter on a
timestamp column stays a plain range scan. Comparison kinds live in
`COMPARISONS`, one small class each, so a new kind ("same weekday last
week") touches one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dashboard.dates import Period, parse_period, today_seoul


@dataclass(frozen=True)
class Window:
    start: datetime  # Seoul wall clock, inclusive
    end: datetime  # exclusive


@dataclass(frozen=True)
class Windows:
    current: Window
    previous: Window | None
    shift_days: int = 0  # how far previous rows move to line up with the current ones
    shift_years: int = 0


def _window(start: date, end: date) -> Window:
    return Window(datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time()))


class Comparison:
    id = "none"

    def previous(self, period: Period) -> tuple[Window | None, int, int]:
        return None, 0, 0


class PreviousPeriod(Comparison):
    """The same number of days just before (last 30 days vs the 30 before them)."""

    id = "previous"

    def previous(self, period):
        days = (period.end - period.start).days + 1
        start = period.start - timedelta(days=days)
        return _window(start, period.start - timedelta(days=1)), days, 0


class SamePeriodLastYear(Comparison):
    id = "year"

    def previous(self, period):
        def back(day: date) -> date:
            try:
                return day.replace(year=day.year - 1)
            except ValueError:  # 29 February
                return day.replace(year=day.year - 1, day=28)
        return _window(back(period.start), back(period.end)), 0, 1


COMPARISONS = {c.id: c for c in (Comparison(), PreviousPeriod(), SamePeriodLastYear())}


def windows(period_token: str, compare: str, today: date | None = None) -> Windows:
    period = parse_period(period_token, today or today_seoul())
    previous, days, years = COMPARISONS[compare].previous(period)
    return Windows(_window(period.start, period.end), previous, days, years)
