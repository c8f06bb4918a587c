"""When a subscription's mails are due: slots of a schedule, at HH:MM Asia/Seoul. Pure functions.

A slot is an aware datetime in Asia/Seoul (no daylight saving there, so every
day has each wall-clock time exactly once). Nothing here reads the clock:
callers pass `now`, which lets the scheduler and the tests run a week of
slots in seconds.

Kinds:
- daily          every day at HH:MM
- business_days  Monday to Friday except Korean public holidays (Seollal,
                 Chuseok, substitute holidays …) as the pinned `holidays`
                 package knows them — a holiday decreed after its release
                 (an election day, say) needs a package upgrade;
- weekly         on one weekday (0 = Monday)
- monthly        on one day of the month; a day the month lacks (31 in
                 November, 29–31 in February) means the month's last day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")
FREQUENCIES = ("daily", "business_days", "weekly", "monthly")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_LOOKBACK_DAYS = 63  # longer than any gap between two slots (a monthly one)


@dataclass(frozen=True)
class Schedule:
    frequency: str
    at: str  # "HH:MM" Asia/Seoul
    weekday: int | None = None  # weekly
    month_day: int | None = None  # monthly

    def __post_init__(self):
        problem = schedule_problem(self.frequency, self.at, self.weekday, self.month_day)
        if problem:
            raise ValueError(problem)

    @property
    def clock(self) -> time:
        hh, mm = self.at.split(":")
        return time(int(hh), int(mm))


def schedule_problem(frequency: str, at: str, weekday: int | None, month_day: int | None) -> str | None:
    """None when the four fields make a schedule, else what to fix."""
    if frequency not in FREQUENCIES:
        return f"frequency {frequency!r} — pick one of {', '.join(FREQUENCIES)}"
    if not _HHMM.match(at or ""):
        return f"time {at!r} — write it as HH:MM, e.g. 09:00"
    if frequency == "weekly" and (weekday is None or not 0 <= weekday <= 6):
        return "a weekly schedule needs a weekday (0 = Monday … 6 = Sunday)"
    if frequency == "monthly" and (month_day is None or not 1 <= month_day <= 31):
        return "a monthly schedule needs a day of the month between 1 and 31"
    return None


@lru_cache(maxsize=64)
def _korean_holidays(year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays("KR", years=year))


def is_korean_holiday(day: date) -> bool:
    return day in _korean_holidays(day.year)


def runs_on(schedule: Schedule, day: date) -> bool:
    """Whether the schedule has a slot on this calendar day (Asia/Seoul)."""
    if schedule.frequency == "daily":
        return True
    if schedule.frequency == "business_days":
        return day.weekday() < 5 and not is_korean_holiday(day)
    if schedule.frequency == "weekly":
        return day.weekday() == schedule.weekday
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == min(schedule.month_day, last)


def slot_on(schedule: Schedule, day: date) -> datetime | None:
    return datetime.combine(day, schedule.clock, SEOUL) if runs_on(schedule, day) else None


def slots_between(schedule: Schedule, after: datetime, until: datetime) -> list[datetime]:
    """Every slot with after < slot <= until, oldest first."""
    a, u = after.astimezone(SEOUL), until.astimezone(SEOUL)
    out, day = [], a.date()
    while day <= u.date():
        s = slot_on(schedule, day)
        if s is not None and a < s <= u:
            out.append(s)
        day += timedelta(days=1)
    return out


def latest_slot(schedule: Schedule, now: datetime) -> datetime | None:
    """The last slot at or before `now` (None only if none in the last two months, which cannot happen)."""
    n = now.astimezone(SEOUL)
    for back in range(_LOOKBACK_DAYS):
        s = slot_on(schedule, n.date() - timedelta(days=back))
        if s is not None and s <= n:
            return s
    return None


def next_slot(schedule: Schedule, now: datetime) -> datetime:
    """The first slot strictly after `now`."""
    n = now.astimezone(SEOUL)
    for ahead in range(_LOOKBACK_DAYS):
        s = slot_on(schedule, n.date() + timedelta(days=ahead))
        if s is not None and s > n:
            return s
    raise AssertionError(schedule)


def slot_key(slot: datetime) -> str:
    """The slot as stored in the delivery log: `2026-11-30T09:00+09:00`, one spelling per slot."""
    return slot.astimezone(SEOUL).isoformat(timespec="minutes")
