"""The demo business's rhythm: how many events to expect in any stretch of time.

One intensity drives both the seeded history and the live simulator, so the
live business runs at the pace its own history shows (issue 12: a live pace
twenty times the history's made "vs yesterday" jump from −21 % to +200 % in
twenty minutes). Events of a kind form a Poisson process whose rate is

    per_day × activity(t) / 86,400 s

where `per_day` comes from the business's size (usable cards, members) and
`activity` is the weekday × day × hour-of-day pattern, 1.0 on an average
hour. The rate is constant within each clock hour, so `Arrivals` produces the
same process whatever the step: one call per hour for the history, one per
two-second tick live, one per five simulated minutes in a test.

Times are float seconds since the epoch. Seoul has kept UTC+9 all year since
1988, so local clock hours and days are plain arithmetic.
"""

from __future__ import annotations

import math
import random

DAY = 86_400.0
HOUR = 3_600.0
SEOUL_OFFSET = 9 * HOUR

# Relative activity per hour of day (commute, lunch, evening) and per weekday (Mon=0).
HOUR_WEIGHTS = (0.3, 0.15, 0.1, 0.08, 0.1, 0.35, 1.0, 2.3, 3.0, 2.0, 1.8, 2.6, 3.4, 2.6, 1.9, 1.8, 2.0, 2.6, 3.2, 2.9, 2.3, 1.8, 1.2, 0.7)
WEEKDAY_FACTOR = (0.95, 0.97, 1.0, 1.02, 1.15, 1.25, 1.05)
DAY_SWING = 0.16  # each calendar day is up to ±8 % busier or quieter than its weekday (weather, paydays…)

_HOUR_SHARE = tuple(24 * w / sum(HOUR_WEIGHTS) for w in HOUR_WEIGHTS)  # mean 1.0

_MASK = (1 << 64) - 1


def unit(salt: int, key: int) -> float:
    """A uniform number in [0, 1) fixed by (salt, key) — splitmix64.

    The per-entity traits of the business (how busy a card is, when it goes
    quiet, whether a payment will be refunded) come from here rather than
    from the running random stream, so a simulator that restarts from the
    source finds every card and payment with the fate the history gave it.
    """
    z = (key * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return ((z ^ (z >> 31)) >> 11) * 2.0 ** -53


def local_day(t: float) -> int:
    """Days since 1970-01-01 on Seoul's calendar."""
    return int((t + SEOUL_OFFSET) // DAY)


def local_hour(t: float) -> int:
    return int((t + SEOUL_OFFSET) % DAY // HOUR)


def weekday(day: int) -> int:
    """Monday = 0 for a `local_day` number (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


def day_factor(day: int) -> float:
    return 1.0 + DAY_SWING * (unit(7, day) - 0.5)


def activity(t: float) -> float:
    """How busy the business is at `t` relative to an average hour (weekday × day × hour)."""
    day = local_day(t)
    return WEEKDAY_FACTOR[weekday(day)] * day_factor(day) * _HOUR_SHARE[local_hour(t)]


def next_hour(t: float) -> float:
    """The first clock-hour boundary strictly after `t`."""
    return (math.floor(t / HOUR) + 1) * HOUR  # Seoul's offset is whole hours


def expected(per_day: float, start: float, end: float) -> float:
    """Expected number of events in [start, end) at `per_day` on an average day."""
    total, t = 0.0, start
    while t < end:
        stop = min(end, next_hour(t))
        total += per_day * activity(t) * (stop - t) / DAY
        t = stop
    return total


class Arrivals:
    """One kind of event as a Poisson process with the business's rhythm.

    The unspent part of the exponential waiting time is kept between calls,
    so the events of [a, b) and then [b, c) follow the same law as those of
    [a, c) in one call: the step size of the caller does not change the pace.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.budget = rng.expovariate(1.0)

    def between(self, start: float, end: float, per_day: float) -> list[float]:
        out: list[float] = []
        t = start
        while t < end:
            stop = min(end, next_hour(t))
            rate = per_day * activity(t) / DAY  # events per second, constant until `stop`
            room = rate * (stop - t)
            while self.budget <= room:
                t += self.budget / rate
                room -= self.budget
                out.append(t)
                self.budget = self.rng.expovariate(1.0)
            self.budget -= room
            t = stop
        return out
