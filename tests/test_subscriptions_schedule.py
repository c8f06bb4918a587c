"""Subscription slots (dashboard/subscriptions/schedule.py): pure functions, expectations written out by hand."""

from __future__ import annotations

from datetime import datetime

import pytest

from dashboard.subscriptions.schedule import SEOUL, Schedule, latest_slot, next_slot, slot_key, slots_between


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL)


def keys(slots) -> list[str]:
    return [s.strftime("%m-%d %a %H:%M") for s in slots]


WEEK = (at("2026-11-22T23:00"), at("2026-11-30T23:59"))  # Mon 23 Nov .. Mon 30 Nov


def test_daily_business_days_weekly_over_a_week():
    daily = slots_between(Schedule("daily", "09:00"), *WEEK)
    assert keys(daily) == [f"11-{d} {w} 09:00" for d, w in zip(range(23, 31), "Mon Tue Wed Thu Fri Sat Sun Mon".split())]
    business = slots_between(Schedule("business_days", "08:30"), *WEEK)
    assert keys(business) == ["11-23 Mon 08:30", "11-24 Tue 08:30", "11-25 Wed 08:30", "11-26 Thu 08:30",
                              "11-27 Fri 08:30", "11-30 Mon 08:30"]
    weekly = slots_between(Schedule("weekly", "07:15", weekday=0), *WEEK)
    assert keys(weekly) == ["11-23 Mon 07:15", "11-30 Mon 07:15"]


@pytest.mark.parametrize("day, expected", [
    (31, ["2026-11-30", "2026-12-31", "2027-01-31", "2027-02-28", "2027-03-31"]),  # 31 → last day of a short month
    (30, ["2026-11-30", "2026-12-30", "2027-01-30", "2027-02-28", "2027-03-30"]),
    (15, ["2026-11-15", "2026-12-15", "2027-01-15", "2027-02-15", "2027-03-15"]),
])
def test_monthly_on_a_day_the_month_may_lack(day, expected):
    got = slots_between(Schedule("monthly", "06:00", month_day=day), at("2026-11-01T00:00"), at("2027-03-31T23:59"))
    assert [s.date().isoformat() for s in got] == expected


def test_leap_february_keeps_the_29th():
    got = slots_between(Schedule("monthly", "06:00", month_day=31), at("2028-02-01T00:00"), at("2028-02-29T23:59"))
    assert [s.date().isoformat() for s in got] == ["2028-02-29"]


def test_latest_and_next_slot_around_the_time_of_day():
    s = Schedule("business_days", "09:00")
    assert latest_slot(s, at("2026-11-30T08:59")) == at("2026-11-27T09:00")  # Monday before nine → Friday's
    assert latest_slot(s, at("2026-11-30T09:00")) == at("2026-11-30T09:00")
    assert next_slot(s, at("2026-11-27T09:00")) == at("2026-11-30T09:00")  # strictly after: skips the weekend
    # A server clock in UTC still means Seoul wall time.
    utc = datetime.fromisoformat("2026-11-30T00:00+00:00")
    assert latest_slot(s, utc) == at("2026-11-30T09:00")
    assert slot_key(at("2026-11-30T09:00")) == "2026-11-30T09:00+09:00"


@pytest.mark.parametrize("kw, message", [
    (dict(frequency="hourly", at="09:00"), "frequency"),
    (dict(frequency="daily", at="9:00"), "HH:MM"),
    (dict(frequency="daily", at="24:00"), "HH:MM"),
    (dict(frequency="weekly", at="09:00"), "weekday"),
    (dict(frequency="monthly", at="09:00", month_day=32), "day of the month"),
])
def test_a_bad_schedule_says_what_to_fix(kw, message):
    with pytest.raises(ValueError, match=message):
        Schedule(**kw)


def test_business_days_skip_korean_public_holidays():
    """Chuseok 2026 is Thu 24 – Sat 26 September; National Foundation Day (Sat 3 Oct) moves to Mon 5 Oct."""
    got = slots_between(Schedule("business_days", "09:00"), at("2026-09-21T00:00"), at("2026-10-09T23:59"))
    days = [s.date().isoformat() for s in got]
    assert days == ["2026-09-21", "2026-09-22", "2026-09-23",            # 24, 25: Chuseok
                    "2026-09-28", "2026-09-29", "2026-09-30", "2026-10-01", "2026-10-02",
                    "2026-10-06", "2026-10-07", "2026-10-08"]             # 5: substitute holiday, 9: Hangul Day
    # Seollal 2027: Sat 6 – Tue 9 February (the 9th substitutes for Sunday the 7th).
    got = slots_between(Schedule("business_days", "09:00"), at("2027-02-05T00:00"), at("2027-02-12T23:59"))
    assert [s.date().isoformat() for s in got] == ["2027-02-05", "2027-02-10", "2027-02-11", "2027-02-12"]
