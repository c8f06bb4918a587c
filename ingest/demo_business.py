"""The demo's prepaid-card business as state and events — no SQL here.

`Business` holds members, cards and the payments that can still be cancelled
or refunded, and `advance(until)` lives it forward event by event. The
seeded history and the live simulator are the same object: ingest/simulate.py
starts it empty at the launch and advances it to now, or loads it from the
source and advances it to the wall clock every tick. So the live business
runs at its history's pace by construction (ingest/demo_pace.py), and the
balance rule holds after every event:

    cards.balance_krw = Σ top-ups − Σ approved payments + Σ refunds

What the business does, per average day (demo_pace adds the weekday, day and
hour-of-day rhythm):

- members sign up (the history draws exactly `members_count` sign-ups: a
  launch month, then growth; live, at the rate of the last four weeks); each
  gets a card within the hour, a quarter a second card within 90 days;
- a usable card (issued, active, not gone quiet) pays PAYMENTS_PER_CARD_DAY
  times and tops up TOPUPS_PER_CARD_DAY times, busier cards more often;
  a payment larger than the balance is preceded by an automatic top-up;
- 3 % of payments are cancelled within two days, 2 % refunded (in part or
  whole) within a week;
- about a third of the cards go quiet after a few months (they keep their
  balance: the dormant-cards report has something to find); a member none of
  whose cards was used for 30 days is `dormant` until the next use;
- cards are suspended now and then and come back after ~2 days; members
  leave (a soft delete: `deleted_at`), which closes their cards.

A card's busyness and quiet date, a member's card plan and a payment's fate
come from `demo_pace.unit(salt, id)`, not from the random stream, so a
business loaded back from the source continues exactly where it stood.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect
from collections import Counter
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any, Callable

from ingest.demo_pace import DAY, HOUR, HOUR_WEIGHTS, Arrivals, local_day, next_hour, unit, weekday

# ──────────────────────────────────────────────────────────── vocabulary ──

PRODUCTS = {"standard": 0.55, "transit": 0.25, "gift": 0.08, "youth": 0.12}
CHANNELS = {"bank_transfer": 0.30, "card": 0.20, "convenience_store": 0.15, "mobile": 0.30, "auto_charge": 0.05}
CATEGORIES = {"convenience": 0.24, "cafe": 0.18, "restaurant": 0.18, "transport": 0.20, "online": 0.10, "culture": 0.04, "retail": 0.06}
REGIONS = {
    "서울": 0.19, "경기": 0.26, "인천": 0.06, "부산": 0.065, "대구": 0.045, "대전": 0.03, "광주": 0.03, "울산": 0.02,
    "세종": 0.008, "강원": 0.03, "충북": 0.03, "충남": 0.04, "전북": 0.035, "전남": 0.035, "경북": 0.05, "경남": 0.065, "제주": 0.013,
}
REFUND_REASONS = {"customer_request": 0.5, "defective": 0.15, "duplicate_charge": 0.1, "partial_return": 0.25}
WEEKEND_CATEGORY_BOOST = {"transport": 0.5, "cafe": 1.3, "culture": 2.0, "restaurant": 1.3, "retail": 1.4}
AMOUNTS = {  # category → (min, max) KRW, rounded to 100
    "convenience": (1_000, 15_000), "cafe": (3_500, 9_000), "restaurant": (8_000, 45_000),
    "transport": (1_250, 2_800), "online": (9_900, 120_000), "culture": (12_000, 60_000), "retail": (5_000, 90_000),
}
TOPUP_AMOUNTS = {10_000: 0.25, 20_000: 0.2, 30_000: 0.2, 50_000: 0.25, 100_000: 0.1}

# ───────────────────────────────────────────────────────────────── pace ──

PAYMENTS_PER_CARD_DAY = 0.18
TOPUPS_PER_CARD_DAY = 0.05
SUSPENSIONS_PER_CARD_DAY = 0.0008
LEAVES_PER_MEMBER_DAY = 0.0003
MIN_LEAVES_PER_DAY = 0.8  # even a small business (tests seed 300 members) loses a member now and then
SUSPENSION_MEAN_DAYS = 2.0
CANCEL_SHARE, CANCEL_WITHIN_DAYS = 0.03, 2
REFUND_SHARE, REFUND_WITHIN_DAYS = 0.02, 7
SECOND_CARD_SHARE, SECOND_CARD_WITHIN_DAYS = 0.25, 90
QUIET_SHARE, QUIET_MEAN_DAYS = 0.35, 120
DORMANT_AFTER_DAYS = 30
LAUNCH_SHARE, LAUNCH_DAYS = 0.3, 30  # members who joined in the launch month
JOIN_GROWTH = 2.5  # sign-ups per day grow this much from the launch to now
MAX_WEIGHT = 2.0  # a card's busyness: 0.25 … 2.0, mean ~0.83

# Salts for demo_pace.unit: one per trait (7 is demo_pace's day factor).
_BUSY, _QUIET, _QUIET_AFTER, _FATE, _FATE_DELAY, _SECOND, _SECOND_DELAY, _FIRST_DELAY = 11, 12, 13, 14, 15, 16, 17, 18

# Column order of the rows `Business.changes` hands out (ingest/simulate.py writes them).
INSERT_COLUMNS = {
    "members": ("member_id", "name", "phone", "email", "birth_date", "address", "birth_year", "region", "status",
                "joined_at", "updated_at", "deleted_at"),
    "cards": ("card_id", "member_id", "card_number", "product", "status", "balance_krw", "issued_at", "last_used_at",
              "updated_at", "deleted_at"),
    "topups": ("topup_id", "card_id", "channel", "amount_krw", "created_at", "updated_at"),
    "payments": ("payment_id", "card_id", "merchant_id", "amount_krw", "status", "created_at", "cancelled_at", "updated_at"),
    "refunds": ("refund_id", "payment_id", "card_id", "merchant_id", "amount_krw", "reason", "created_at", "updated_at"),
}
UPDATE_COLUMNS = {  # then the key, last
    "members": ("status", "updated_at", "deleted_at"),
    "cards": ("status", "balance_krw", "last_used_at", "updated_at", "deleted_at"),
    "payments": ("status", "cancelled_at", "updated_at"),
}
KEYS = {"members": "member_id", "cards": "card_id", "merchants": "merchant_id", "topups": "topup_id",
        "payments": "payment_id", "refunds": "refund_id"}


class Weights:
    """A weighted choice with precomputed cumulative weights (random.choices rebuilds them per call)."""

    __slots__ = ("values", "cum", "total")

    def __init__(self, weights: dict[Any, float] | list[tuple[Any, float]]):
        pairs = list(weights.items()) if isinstance(weights, dict) else list(weights)
        self.values = [v for v, _ in pairs]
        self.cum = list(accumulate(w for _, w in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> Any:
        return self.values[bisect(self.cum, rng.random() * self.total)]


_PRODUCTS, _CHANNELS, _REGIONS, _REASONS, _TOPUPS = (Weights(w) for w in (PRODUCTS, CHANNELS, REGIONS, REFUND_REASONS, TOPUP_AMOUNTS))
_WEEKDAY_CATEGORIES = Weights(CATEGORIES)
_WEEKEND_CATEGORIES = Weights({k: w * WEEKEND_CATEGORY_BOOST.get(k, 1.0) for k, w in CATEGORIES.items()})


def round100(x: float) -> int:
    return max(100, int(round(x / 100.0)) * 100)


def card_number(rng: random.Random) -> str:
    """A 16-digit Luhn-valid number in a made-up prepaid BIN range (9410…)."""
    body = "9410" + "".join(str(rng.randrange(10)) for _ in range(11))
    total = 0
    for i, ch in enumerate(reversed(body)):  # the check digit will sit right of these, so double the even positions
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)


# ───────────────────────────────────────────────────────── personal data ──


@lru_cache(maxsize=1)
def _person_vocabulary() -> tuple[Weights, Weights, list[str], list[str]]:
    """Faker ko_KR's name lists and a fixed pool of its addresses and e-mail names, made once per process."""
    from faker import Faker
    from faker.providers.person.ko_KR import Provider

    fake = Faker("ko_KR")
    fake.seed_instance(20_241_124)
    last = Weights(dict(Provider.last_names))
    first = Weights(dict(Provider.first_names))
    return last, first, [fake.address() for _ in range(400)], [fake.user_name() for _ in range(400)]


class People:
    """Personal data for members and shop owners, in the shape Faker ko_KR gives it.

    One Faker call per member costs ~1.2 ms (12 s for 10,000 members); names
    from Faker's own lists and a pool of its addresses, varied by our seeded
    random stream, cost microseconds and look the same.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng

    def name(self) -> str:
        last, first, _, _ = _person_vocabulary()
        return last.pick(self.rng) + first.pick(self.rng)

    def phone(self) -> str:
        r = self.rng
        return f"010-{r.randrange(2000, 10000):04d}-{r.randrange(10000):04d}"

    def person(self, at: float) -> tuple[str, str, str, date, str]:
        """(name, phone, e-mail, birth date, address) of someone 14 to 80 years old at `at`."""
        r = self.rng
        _, _, addresses, user_names = _person_vocabulary()
        email = f"{r.choice(user_names)}{r.randrange(100)}@{r.choice(('example.com', 'example.net', 'example.org'))}"
        address = f"{r.choice(addresses)} {r.randrange(101, 116)}동 {r.randrange(1, 26)}{r.randrange(1, 9):02d}호"
        birth = date(1970, 1, 1) + timedelta(days=local_day(at) - int(r.uniform(14, 80) * 365.25))
        return self.name(), self.phone(), email, birth, address


# ────────────────────────────────────────────────────────────── entities ──


class _Pool:
    """A set with O(1) add, discard and uniform random choice."""

    __slots__ = ("items", "index")

    def __init__(self) -> None:
        self.items: list = []
        self.index: dict = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, x) -> None:
        if x not in self.index:
            self.index[x] = len(self.items)
            self.items.append(x)

    def discard(self, x) -> None:
        i = self.index.pop(x, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.index[last] = i

    def choice(self, rng: random.Random):
        return self.items[int(rng.random() * len(self.items))] if self.items else None


class Member:
    __slots__ = ("member_id", "pii", "region", "status", "joined_at", "updated_at", "deleted_at", "last_use", "cards")

    def __init__(self, member_id: int, joined_at: float, status: str = "active", updated_at: float | None = None,
                 deleted_at: float | None = None, pii: tuple | None = None, region: str | None = None):
        self.member_id, self.pii, self.region, self.status = member_id, pii, region, status
        self.joined_at, self.updated_at, self.deleted_at = joined_at, updated_at or joined_at, deleted_at
        self.last_use = joined_at  # latest card use, or joining
        self.cards: list[Card] = []


class Card:
    __slots__ = ("card_id", "member", "card_number", "product", "status", "balance", "issued_at", "last_used_at",
                 "updated_at", "deleted_at", "quiet_at", "weight")

    def __init__(self, card_id: int, member: Member, issued_at: float, status: str = "active", balance: int = 0,
                 last_used_at: float | None = None, updated_at: float | None = None, deleted_at: float | None = None,
                 card_number: str | None = None, product: str | None = None):
        self.card_id, self.member, self.card_number, self.product = card_id, member, card_number, product
        self.status, self.balance, self.issued_at, self.last_used_at = status, balance, issued_at, last_used_at
        self.updated_at, self.deleted_at = updated_at or issued_at, deleted_at
        self.quiet_at = quiet_at(card_id, issued_at)
        self.weight = busyness(card_id)


class Payment:
    __slots__ = ("payment_id", "card", "merchant_id", "amount", "status", "created_at", "cancelled_at", "updated_at", "refunded")

    def __init__(self, payment_id: int, card: Card, merchant_id: int, amount: int, created_at: float,
                 status: str = "approved", cancelled_at: float | None = None, updated_at: float | None = None,
                 refunded: int = 0):
        self.payment_id, self.card, self.merchant_id, self.amount = payment_id, card, merchant_id, amount
        self.status, self.created_at, self.cancelled_at = status, created_at, cancelled_at
        self.updated_at, self.refunded = updated_at or created_at, refunded


def busyness(card_id: int) -> float:
    """How much a card is used relative to others (0.25 … 2.0): a few heavy users, many light ones."""
    u = unit(_BUSY, card_id)
    return 0.25 + 1.75 * u * u


def quiet_at(card_id: int, issued_at: float) -> float:
    """When the card stops being used (infinity for the two thirds that never do)."""
    if unit(_QUIET, card_id) >= QUIET_SHARE:
        return math.inf
    return issued_at - math.log(1.0 - unit(_QUIET_AFTER, card_id)) * QUIET_MEAN_DAYS * DAY


def card_plan(member_id: int, joined_at: float) -> list[float]:
    """When the member's cards are issued: one within the hour, for a quarter a second within 90 days."""
    plan = [joined_at + unit(_FIRST_DELAY, member_id) * HOUR]
    if unit(_SECOND, member_id) < SECOND_CARD_SHARE:
        plan.append(joined_at + HOUR + unit(_SECOND_DELAY, member_id) * (SECOND_CARD_WITHIN_DAYS * DAY - HOUR))
    return plan


def payment_fate(payment_id: int, created_at: float) -> tuple[str, float] | None:
    """("cancel" | "refund", when) for the payments that will have one, else None."""
    u = unit(_FATE, payment_id)
    if u >= CANCEL_SHARE + REFUND_SHARE:
        return None
    later = unit(_FATE_DELAY, payment_id)
    if u < CANCEL_SHARE:
        return "cancel", created_at + 30 + later * (CANCEL_WITHIN_DAYS * DAY - 30)
    return "refund", created_at + HOUR + later * (REFUND_WITHIN_DAYS * DAY - HOUR)


def sign_up_times(rng: random.Random, count: int, start: float, end: float, midnight: float) -> list[float]:
    """`count` sign-up moments in [start, end): a launch month, then sign-ups growing JOIN_GROWTH-fold.

    `midnight` is a Seoul midnight at or before `start`; times of day follow the
    same hour-of-day pattern as everything else.
    """
    span = (end - start) / DAY
    launch = min(LAUNCH_DAYS, span * 0.1)
    growth = math.log(JOIN_GROWTH) / max(span - launch, 1.0)
    stretch = math.expm1(growth * (span - launch))
    hours = Weights(list(enumerate(HOUR_WEIGHTS)))
    out = []
    for _ in range(count):
        if rng.random() < LAUNCH_SHARE:
            x = rng.random() * launch
        else:
            x = launch + math.log1p(rng.random() * stretch) / growth
        raw = start + x * DAY
        day = midnight + math.floor((raw - midnight) / DAY) * DAY
        t = day + hours.pick(rng) * HOUR + rng.random() * HOUR
        out.append(t if start <= t < end else raw)
    return out


# ─────────────────────────────────────────────────────────────── business ──


class Business:
    """The business's state and its clock; see the module docstring for what happens in it."""

    def __init__(self, rng: random.Random, people: People, merchants: list[tuple[int, str]], clock: float):
        self.rng, self.people = rng, people
        self.clock = clock  # everything up to here has happened
        self.floor = clock  # start of the stretch being lived: no event is stamped before it
        self.by_category: dict[str, list[int]] = {}
        for merchant_id, category in merchants:
            self.by_category.setdefault(category, []).append(merchant_id)
        self.members: dict[int, Member] = {}
        self.cards: dict[int, Card] = {}
        self.open_payments: dict[int, Payment] = {}  # those a cancellation or refund may still reach
        self.usable = _Pool()  # cards that pay and top up: issued, active, not gone quiet
        self.in_service = _Pool()  # members who have not left
        self.join_per_day = 0.0  # live sign-ups (the history schedules its own, exactly `members_count`)
        self.next_id = dict.fromkeys(("members", "cards", "topups", "payments", "refunds"), 1)
        self.counts: Counter[str] = Counter()  # events that happened, by kind
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._arrivals = {kind: Arrivals(rng) for kind in ("payment", "topup", "suspension", "leave", "join")}
        self._new: dict[str, list] = {"members": [], "cards": [], "payments": []}
        self._dirty: dict[str, dict[int, Any]] = {"members": {}, "cards": {}, "payments": {}}
        self._rows: dict[str, list[tuple]] = {"topups": [], "refunds": []}
        self._handlers: dict[str, Callable[[float, Any], None]] = {
            "payment": self._payment, "topup": self._topup, "suspension": self._suspension, "leave": self._leave,
            "join": self._join, "issue": self._issue, "quiet": self._quiet, "check": self._check,
            "reactivate": self._reactivate, "cancel": self._cancel, "refund": self._refund,
        }

    def load(self, members: list[tuple], cards: list[tuple], payments: list[tuple], next_id: dict[str, int]) -> None:
        """Take up the business as the source holds it at `self.clock` (the live simulator's start).

        members: (member_id, status, joined_at, updated_at, deleted_at);
        cards: (card_id, member_id, status, balance, issued_at, last_used_at, updated_at, deleted_at);
        payments, those within refund reach: (payment_id, card_id, merchant_id, amount, status, created_at,
        cancelled_at, updated_at, refunded). Times are epoch seconds. What was due
        after `clock` — a second card, a cancellation, a card going quiet — is
        scheduled again from the traits the history gave each row.
        """
        now = self.clock
        for member_id, status, joined_at, updated_at, deleted_at in members:
            m = Member(member_id, joined_at, status, updated_at, deleted_at)
            self.members[member_id] = m
        for card_id, member_id, status, balance, issued_at, last_used_at, updated_at, deleted_at in cards:
            m = self.members.get(member_id)
            if m is None:  # a card without its member cannot move money
                continue
            self._add_card(Card(card_id, m, issued_at, status, balance, last_used_at, updated_at, deleted_at), now)
            if last_used_at is not None and last_used_at > m.last_use:
                m.last_use = last_used_at
        for m in self.members.values():
            if m.status == "left":
                continue
            self.in_service.add(m)
            if m.status == "active":
                self.schedule(max(now, m.last_use + DORMANT_AFTER_DAYS * DAY), "check", m)
            for n, at in enumerate(card_plan(m.member_id, m.joined_at)):
                if at > now and len(m.cards) <= n:
                    self.schedule(at, "issue", m)
        for card in self.cards.values():
            if card.status == "suspended":  # memoryless: the rest of a suspension is as long as a new one
                self.schedule(now + self.rng.expovariate(1.0 / (SUSPENSION_MEAN_DAYS * DAY)), "reactivate", card)
        for pid, card_id, merchant_id, amount, status, created_at, cancelled_at, updated_at, refunded in payments:
            card = self.cards.get(card_id)
            if card is None:
                continue
            p = Payment(pid, card, merchant_id, amount, created_at, status, cancelled_at, updated_at, refunded)
            self.open_payments[pid] = p
            fate = payment_fate(pid, created_at)
            if status == "approved" and fate is not None and fate[1] > now:
                self.schedule(fate[1], fate[0], p)
        self.next_id.update(next_id)

    # ── time
    def schedule(self, at: float, kind: str, subject: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, subject))

    def advance(self, until: float) -> None:
        """Live every event in (clock, until], hour by hour (each hour's rates from the business at its start)."""
        if until <= self.clock:
            return
        self.floor = t = self.clock
        arrivals = self._arrivals
        while t < until:
            stop = min(until, next_hour(t))
            cards, members = len(self.usable), len(self.in_service)
            for kind, per_day in (("payment", PAYMENTS_PER_CARD_DAY * cards), ("topup", TOPUPS_PER_CARD_DAY * cards),
                                  ("suspension", SUSPENSIONS_PER_CARD_DAY * cards),
                                  ("leave", max(LEAVES_PER_MEMBER_DAY * members, MIN_LEAVES_PER_DAY) if members else 0.0),
                                  ("join", self.join_per_day)):
                for at in arrivals[kind].between(t, stop, per_day):
                    self.schedule(at, kind)
            queue, handlers = self._queue, self._handlers
            while queue and queue[0][0] <= stop:
                at, _, kind, subject = heapq.heappop(queue)
                handlers[kind](at, subject)
            t = stop
        self.clock = until

    # ── events
    def _busy_card(self) -> Card | None:
        items, rnd = self.usable.items, self.rng.random
        if not items:
            return None
        for _ in range(64):
            card = items[int(rnd() * len(items))]
            if rnd() * MAX_WEIGHT < card.weight:
                break
        return card

    def _touch(self, table: str, obj: Any, key: int) -> None:
        self._dirty[table][key] = obj

    def _join(self, t: float, _: Any) -> None:
        member_id = self._take_id("members")
        m = Member(member_id, t, pii=self.people.person(t), region=_REGIONS.pick(self.rng))
        self.members[member_id] = m
        self.in_service.add(m)
        self._new["members"].append(m)
        for at in card_plan(member_id, t):
            self.schedule(at, "issue", m)
        self.schedule(t + DORMANT_AFTER_DAYS * DAY, "check", m)
        self.counts["members_joined"] += 1

    def _issue(self, t: float, m: Member) -> None:
        if m.status == "left":
            return
        card = Card(self._take_id("cards"), m, t, card_number=card_number(self.rng), product=_PRODUCTS.pick(self.rng))
        self._add_card(card, t)
        self._new["cards"].append(card)
        self.counts["cards_issued"] += 1

    def _add_card(self, card: Card, now: float) -> None:
        self.cards[card.card_id] = card
        card.member.cards.append(card)
        if card.status == "active" and card.quiet_at > now:
            self.usable.add(card)
            if card.quiet_at < math.inf:
                self.schedule(card.quiet_at, "quiet", card)

    def _quiet(self, t: float, card: Card) -> None:
        self.usable.discard(card)

    def _check(self, t: float, m: Member) -> None:
        if m.status != "active":
            return
        due = m.last_use + DORMANT_AFTER_DAYS * DAY
        if due > t:
            self.schedule(due, "check", m)
            return
        m.status, m.updated_at = "dormant", t
        self._touch("members", m, m.member_id)
        self.counts["members_dormant"] += 1

    def _payment(self, t: float, _: Any = None) -> None:
        card = self._busy_card()
        if card is None:
            return
        rng = self.rng
        category = (_WEEKEND_CATEGORIES if weekday(local_day(t)) >= 5 else _WEEKDAY_CATEGORIES).pick(rng)
        merchants = self.by_category.get(category)
        if not merchants:
            return
        lo, hi = AMOUNTS[category]
        amount = round100(rng.uniform(lo, hi) if rng.random() < 0.8 else rng.uniform(lo, lo + (hi - lo) * 0.3))
        if card.balance < amount:
            # Auto-charge tops up what is missing plus a cushion, in 10,000 won steps, seconds before.
            charge = ((amount - card.balance + 9_999) // 10_000) * 10_000 + rng.choice((20_000, 30_000, 50_000))
            self._add_topup(card, max(self.floor, t - rng.uniform(1, 20)), charge, "auto_charge")
        payment = Payment(self._take_id("payments"), card, rng.choice(merchants), amount, t)
        self.open_payments[payment.payment_id] = payment
        self._new["payments"].append(payment)
        card.balance -= amount
        card.last_used_at = card.updated_at = t
        self._touch("cards", card, card.card_id)
        m = card.member
        m.last_use = t
        if m.status == "dormant":
            m.status, m.updated_at = "active", t
            self._touch("members", m, m.member_id)
            self.schedule(t + DORMANT_AFTER_DAYS * DAY, "check", m)
        fate = payment_fate(payment.payment_id, t)
        if fate is not None:
            self.schedule(fate[1], fate[0], payment)
        self.counts["payments"] += 1

    def _topup(self, t: float, _: Any = None) -> None:
        card = self._busy_card()
        if card is not None:
            self._add_topup(card, t, _TOPUPS.pick(self.rng), _CHANNELS.pick(self.rng))

    def _add_topup(self, card: Card, t: float, amount: int, channel: str) -> None:
        self._rows["topups"].append((self._take_id("topups"), card.card_id, channel, amount, t, t))
        card.balance += amount
        card.updated_at = max(card.updated_at, t)
        self._touch("cards", card, card.card_id)
        self.counts["topups"] += 1

    def _suspension(self, t: float, _: Any = None) -> None:
        card = self.usable.choice(self.rng)
        if card is not None:
            self._suspend(t, card)

    def _suspend(self, t: float, card: Card) -> None:
        card.status, card.updated_at = "suspended", t
        self._touch("cards", card, card.card_id)
        self.usable.discard(card)
        self.schedule(t + self.rng.expovariate(1.0 / (SUSPENSION_MEAN_DAYS * DAY)), "reactivate", card)
        self.counts["card_status_changes"] += 1

    def _reactivate(self, t: float, card: Card) -> None:
        if card.status != "suspended":
            return
        card.status, card.updated_at = "active", t
        self._touch("cards", card, card.card_id)
        if card.quiet_at > t:
            self.usable.add(card)
        self.counts["card_status_changes"] += 1

    def _leave(self, t: float, _: Any = None) -> None:
        m = self.in_service.choice(self.rng)
        if m is not None:
            self._member_leaves(t, m)

    def _member_leaves(self, t: float, m: Member) -> None:
        m.status, m.deleted_at, m.updated_at = "left", t, t
        self._touch("members", m, m.member_id)
        self.in_service.discard(m)
        for card in m.cards:
            if card.status != "closed":
                card.status, card.deleted_at, card.updated_at = "closed", t, t
                self._touch("cards", card, card.card_id)
                self.usable.discard(card)
        self.counts["members_left"] += 1

    def _cancel(self, t: float, p: Payment) -> None:
        card = p.card
        if p.status != "approved" or p.refunded or card.status == "closed":
            return
        p.status, p.cancelled_at, p.updated_at = "cancelled", t, t
        self._touch("payments", p, p.payment_id)
        card.balance += p.amount
        card.updated_at = t
        self._touch("cards", card, card.card_id)
        self.counts["cancellations"] += 1

    def _refund(self, t: float, p: Payment) -> None:
        card = p.card
        if p.status != "approved" or card.status == "closed":
            return
        rng = self.rng
        amount = p.amount if rng.random() < 0.6 else round100(p.amount * rng.uniform(0.2, 0.8))
        amount = min(amount, p.amount - p.refunded)
        if amount <= 0:
            return
        self._rows["refunds"].append((self._take_id("refunds"), p.payment_id, card.card_id, p.merchant_id, amount,
                                      _REASONS.pick(rng), t, t))
        p.refunded += amount
        card.balance += amount
        card.updated_at = t
        self._touch("cards", card, card.card_id)
        self.counts["refunds"] += 1

    def _take_id(self, table: str) -> int:
        n = self.next_id[table]
        self.next_id[table] = n + 1
        return n

    # ── a burst, for tools and tests that need the source to move right now
    def burst(self, t: float) -> None:
        """A handful of events at `t` whatever the pace (payments, a top-up, maybe a cancellation…)."""
        t = max(t, self.clock)
        self.floor = self.clock = t
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            self._payment(t)
        if rng.random() < 0.5:
            self._topup(t)
        recent = [p for p in self.open_payments.values() if p.status == "approved" and p.card.status != "closed"]
        if recent and rng.random() < 0.3:
            candidates = [p for p in recent if not p.refunded]
            if candidates:
                self._cancel(t, rng.choice(candidates))
        if recent and rng.random() < 0.2:
            self._refund(t, rng.choice(recent))
        if rng.random() < 0.2:
            suspended = [c for c in self.cards.values() if c.status == "suspended"]
            if suspended and rng.random() < 0.5:
                self._reactivate(t, rng.choice(suspended))
            else:
                self._suspension(t)
        if rng.random() < 0.05:
            self._leave(t)
        if rng.random() < 0.1:
            self._join(t, None)

    # ── what changed
    def changes(self, stamp: Callable[[float], Any], day: Callable[[date], Any], *,
                settled_before: float | None = None) -> dict[str, tuple[list[tuple], list[tuple]]]:
        """Rows to insert and to update since the last call, per table, with times through `stamp`.

        With `settled_before` (the history, written in stretches) only top-ups,
        refunds and the payments made before that moment — which nothing can
        change any more — are handed out; members and cards wait for the call
        without it, which hands out everything.
        """
        def s(t: float | None) -> Any:
            return None if t is None else stamp(t)

        def both(created: float, updated: float) -> tuple[Any, Any]:  # most rows never change: format once
            c = stamp(created)
            return c, (c if updated == created else stamp(updated))

        out: dict[str, tuple[list[tuple], list[tuple]]] = {}
        out["topups"] = ([(i, c, ch, a, *both(t1, t2)) for i, c, ch, a, t1, t2 in self._rows["topups"]], [])
        out["refunds"] = ([(i, p, c, mid, a, r, *both(t1, t2)) for i, p, c, mid, a, r, t1, t2 in self._rows["refunds"]], [])
        self._rows = {"topups": [], "refunds": []}

        new_payments = self._new["payments"]
        if settled_before is None:
            write, keep = new_payments, []
        else:
            write = [p for p in new_payments if p.created_at < settled_before]
            keep = [p for p in new_payments if p.created_at >= settled_before]
        self._new["payments"] = keep
        def payment_row(p: Payment) -> tuple:
            created, updated = both(p.created_at, p.updated_at)
            return p.payment_id, p.card.card_id, p.merchant_id, p.amount, p.status, created, s(p.cancelled_at), updated

        out["payments"] = ([payment_row(p) for p in write], [])
        dirty = self._dirty["payments"]
        for p in write:
            dirty.pop(p.payment_id, None)
        if settled_before is None:
            pending = {p.payment_id for p in keep}
            out["payments"][1].extend((p.status, s(p.cancelled_at), s(p.updated_at), pid)
                                      for pid, p in dirty.items() if pid not in pending)
            self._dirty["payments"] = {}
            horizon = self.clock - (REFUND_WITHIN_DAYS + 1) * DAY
            self.open_payments = {pid: p for pid, p in self.open_payments.items() if p.created_at >= horizon}
        else:
            self.open_payments = {pid: p for pid, p in self.open_payments.items() if p.created_at >= settled_before}
            return out

        members, cards = self._new["members"], self._new["cards"]
        out["members"] = ([(m.member_id, m.pii[0], m.pii[1], m.pii[2], day(m.pii[3]), m.pii[4], m.pii[3].year, m.region,
                            m.status, s(m.joined_at), s(m.updated_at), s(m.deleted_at)) for m in members], [])
        new_ids = {m.member_id for m in members}
        out["members"][1].extend((m.status, s(m.updated_at), s(m.deleted_at), mid)
                                 for mid, m in self._dirty["members"].items() if mid not in new_ids)
        out["cards"] = ([(c.card_id, c.member.member_id, c.card_number, c.product, c.status, c.balance, s(c.issued_at),
                          s(c.last_used_at), s(c.updated_at), s(c.deleted_at)) for c in cards], [])
        new_ids = {c.card_id for c in cards}
        out["cards"][1].extend((c.status, c.balance, s(c.last_used_at), s(c.updated_at), s(c.deleted_at), cid)
                               for cid, c in self._dirty["cards"].items() if cid not in new_ids)
        self._new["members"], self._new["cards"] = [], []
        self._dirty["members"], self._dirty["cards"] = {}, {}
        return out
