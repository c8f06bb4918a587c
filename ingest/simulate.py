"""The demo source: a believable prepaid-card business in SQLite (or MariaDB, for tests).

`python -m ingest simulate` creates the schema, seeds a reproducible history
(a few hundred thousand rows by default, generated in seconds) and then keeps
the business moving: every few seconds new top-ups and payments, and updates —
cancellations, refunds, card suspensions, members leaving (a soft delete).

What the rest of the pipeline relies on:
- members, cards and merchants carry personal data (name, phone, e-mail, birth
  date, address, card number, owner name/phone, business registration number)
  generated with Faker ko_KR; none of it is in pipeline.toml's allow-list;
- every table has `updated_at` and an index on (updated_at, pk); every change
  of a row, including every balance change of a card, moves its `updated_at`;
- balances reconcile exactly (DESIGN.md balance rule):
  cards.balance_krw = Σ topups − Σ payments (approved) + Σ refunds;
- timestamps are Asia/Seoul: ISO-8601 text with +09:00 in SQLite (so text order
  is time order), DATETIME(6) local time on MariaDB.
"""

from __future__ import annotations

import heapq
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from ingest.config import PipelineConfig
from ingest.pii import luhn_ok
from ingest.source import SEOUL, connect

log = logging.getLogger("ingest.simulate")

# ──────────────────────────────────────────────────────────── vocabulary ──

PRODUCTS = {"standard": 0.55, "transit": 0.25, "gift": 0.08, "youth": 0.12}
CHANNELS = {"bank_transfer": 0.30, "card": 0.20, "convenience_store": 0.15, "mobile": 0.30, "auto_charge": 0.05}
CATEGORIES = {"convenience": 0.24, "cafe": 0.18, "restaurant": 0.18, "transport": 0.20, "online": 0.10, "culture": 0.04, "retail": 0.06}
REGIONS = {
    "서울": 0.19, "경기": 0.26, "인천": 0.06, "부산": 0.065, "대구": 0.045, "대전": 0.03, "광주": 0.03, "울산": 0.02,
    "세종": 0.008, "강원": 0.03, "충북": 0.03, "충남": 0.04, "전북": 0.035, "전남": 0.035, "경북": 0.05, "경남": 0.065, "제주": 0.013,
}
REFUND_REASONS = {"customer_request": 0.5, "defective": 0.15, "duplicate_charge": 0.1, "partial_return": 0.25}
# Relative activity per hour of day (commute, lunch, evening) and per weekday (Mon=0).
HOUR_WEIGHTS = (0.3, 0.15, 0.1, 0.08, 0.1, 0.35, 1.0, 2.3, 3.0, 2.0, 1.8, 2.6, 3.4, 2.6, 1.9, 1.8, 2.0, 2.6, 3.2, 2.9, 2.3, 1.8, 1.2, 0.7)
WEEKDAY_FACTOR = (0.95, 0.97, 1.0, 1.02, 1.15, 1.25, 1.05)
WEEKEND_CATEGORY_BOOST = {"transport": 0.5, "cafe": 1.3, "culture": 2.0, "restaurant": 1.3, "retail": 1.4}
AMOUNTS = {  # category → (min, max) KRW, rounded to 100
    "convenience": (1_000, 15_000), "cafe": (3_500, 9_000), "restaurant": (8_000, 45_000),
    "transport": (1_250, 2_800), "online": (9_900, 120_000), "culture": (12_000, 60_000), "retail": (5_000, 90_000),
}
TOPUP_AMOUNTS = {10_000: 0.25, 20_000: 0.2, 30_000: 0.2, 50_000: 0.25, 100_000: 0.1}


def _pick(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# ───────────────────────────────────────────────────────────────── schema ──


class _IsoText(sa.String):
    """ISO-8601 text whose column SQLite declares DATETIME, so the exporter reads the column as a timestamp."""

    __visit_name__ = "DATETIME"


class SeoulTimestamp(sa.TypeDecorator):
    """Asia/Seoul timestamp: ISO text with +09:00 on SQLite (declared DATETIME), DATETIME(6) local time on MySQL/MariaDB."""

    impl = sa.String(32)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(_IsoText(32))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        local = value.astimezone(SEOUL) if value.tzinfo else value.replace(tzinfo=SEOUL)
        if dialect.name in ("mysql", "mariadb"):
            return local.replace(tzinfo=None)
        return local.isoformat(timespec="microseconds")

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        return value.replace(tzinfo=SEOUL)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, SeoulTimestamp(), nullable=nullable)


metadata = sa.MetaData()

members = sa.Table(
    "members", metadata,
    sa.Column("member_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("email", sa.String(80), nullable=False),
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("birth_year", sa.Integer, nullable=False),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    _ts("joined_at"), _ts("updated_at"), _ts("deleted_at", nullable=True),
    sa.Index("ix_members_updated_at", "updated_at", "member_id"),
)
cards = sa.Table(
    "cards", metadata,
    sa.Column("card_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("member_id", sa.Integer, nullable=False),
    sa.Column("card_number", sa.String(19), nullable=False),
    sa.Column("product", sa.String(10), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("balance_krw", sa.BigInteger, nullable=False),
    _ts("issued_at"), _ts("last_used_at", nullable=True), _ts("updated_at"), _ts("deleted_at", nullable=True),
    sa.Index("ix_cards_updated_at", "updated_at", "card_id"),
    sa.Index("ix_cards_member_id", "member_id"),
)
merchants = sa.Table(
    "merchants", metadata,
    sa.Column("merchant_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("merchant_name", sa.String(80), nullable=False),
    sa.Column("owner_name", sa.String(40), nullable=False),
    sa.Column("owner_phone", sa.String(20), nullable=False),
    sa.Column("business_reg_no", sa.String(12), nullable=False),
    sa.Column("category", sa.String(12), nullable=False),
    sa.Column("region", sa.String(8), nullable=False),
    _ts("created_at"), _ts("updated_at"),
    sa.Index("ix_merchants_updated_at", "updated_at", "merchant_id"),
)
topups = sa.Table(
    "topups", metadata,
    sa.Column("topup_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("card_id", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("amount_krw", sa.BigInteger, nullable=False),
    _ts("created_at"), _ts("updated_at"),
    sa.Index("ix_topups_updated_at", "updated_at", "topup_id"),
)
payments = sa.Table(
    "payments", metadata,
    sa.Column("payment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("card_id", sa.Integer, nullable=False),
    sa.Column("merchant_id", sa.Integer, nullable=False),
    sa.Column("amount_krw", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    _ts("created_at"), _ts("cancelled_at", nullable=True), _ts("updated_at"),
    sa.Index("ix_payments_updated_at", "updated_at", "payment_id"),
)
refunds = sa.Table(
    "refunds", metadata,
    sa.Column("refund_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.Integer, nullable=False),
    sa.Column("card_id", sa.Integer, nullable=False),
    sa.Column("merchant_id", sa.Integer, nullable=False),
    sa.Column("amount_krw", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    _ts("created_at"), _ts("updated_at"),
    sa.Index("ix_refunds_updated_at", "updated_at", "refund_id"),
    sa.Index("ix_refunds_payment_id", "payment_id"),
)

PII_COLUMNS = {
    "members": ("name", "phone", "email", "birth_date", "address"),
    "cards": ("card_number",),
    "merchants": ("owner_name", "owner_phone", "business_reg_no"),
}


def create_demo_schema(engine: Engine) -> None:
    """Create the demo tables and indexes (SQLite or MySQL/MariaDB); existing tables are kept."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # WAL: the exporter reads while the simulator writes.
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    metadata.create_all(engine)


# ──────────────────────────────────────────────────────────────── history ──


def card_number(rng: random.Random) -> str:
    """A 16-digit Luhn-valid number in a made-up prepaid BIN range (9410…)."""
    body = "9410" + "".join(str(rng.randrange(10)) for _ in range(11))
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


def _business_reg_no(rng: random.Random) -> str:
    return f"{rng.randrange(100, 1000)}-{rng.randrange(10, 100)}-{rng.randrange(10000, 100000)}"


# Shop names from word lists, not Faker's company names: those can contain a
# person's full name, and merchant_name is allow-listed.
_BRANDS = ("행복", "햇살", "바다", "하늘", "우리", "새봄", "푸른", "한빛", "미소", "온누리", "초록", "다온")
_SHOP_WORDS = {
    "convenience": "편의점", "cafe": "커피", "restaurant": "식당", "transport": "교통", "online": "온라인몰",
    "culture": "문화공간", "retail": "마트",
}


def _merchant_name(rng: random.Random, category: str, merchant_id: int) -> str:
    return f"{rng.choice(_BRANDS)}{_SHOP_WORDS[category]} {merchant_id}호점"


def _round100(x: float) -> int:
    return max(100, int(round(x / 100.0)) * 100)


@dataclass
class HistoryStats:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Card:
    card_id: int
    member_id: int
    issued_at: datetime
    balance: int = 0
    status: str = "active"
    updated_at: datetime | None = None
    last_used_at: datetime | None = None
    deleted_at: datetime | None = None


def _moment(rng: random.Random, day: datetime) -> datetime:
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return day + timedelta(hours=hour, seconds=rng.random() * 3600)


def seed_history(
    engine: Engine,
    members_count: int = 20_000,
    days: int = 60,
    seed: int | None = None,
    end: datetime | None = None,
) -> HistoryStats:
    """Fill an empty demo schema with `days` of business ending at `end` (default: now).

    About 15 rows per member: members=20,000 gives ~300k rows in a few seconds.
    The same seed and end give the same rows.
    """
    from faker import Faker

    started = time.monotonic()
    rng = random.Random(seed)
    fake = Faker("ko_KR")
    fake.seed_instance(seed if seed is not None else rng.randrange(2**31))
    end = (end or datetime.now(SEOUL)).astimezone(SEOUL)
    start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)

    # Members: most joined before the window, some during it.
    member_rows: list[dict[str, Any]] = []
    for mid in range(1, members_count + 1):
        if rng.random() < 0.75:
            joined = start - timedelta(seconds=rng.random() * 730 * 86400)
        else:
            joined = _moment(rng, start + timedelta(days=rng.randrange(days)))
            joined = min(joined, end - timedelta(minutes=1))
        birth = fake.date_of_birth(minimum_age=14, maximum_age=80)
        member_rows.append({
            "member_id": mid, "name": fake.name(), "phone": fake.phone_number(), "email": fake.email(),
            "birth_date": birth, "address": fake.address(), "birth_year": birth.year,
            "region": _pick(rng, REGIONS), "status": "active",
            "joined_at": joined, "updated_at": joined, "deleted_at": None,
        })

    # Cards: one per member, a quarter have a second one.
    card_list: list[_Card] = []
    card_rows_extra: dict[int, dict[str, Any]] = {}
    for m in member_rows:
        for n in range(2 if rng.random() < 0.25 else 1):
            issued = m["joined_at"] + timedelta(seconds=rng.random() * (3600 if n == 0 else 90 * 86400))
            issued = min(issued, end - timedelta(seconds=30))
            c = _Card(len(card_list) + 1, m["member_id"], issued, updated_at=issued)
            card_list.append(c)
            card_rows_extra[c.card_id] = {"card_number": card_number(rng), "product": _pick(rng, PRODUCTS)}

    merchant_rows = []
    for mid in range(1, max(20, members_count // 12) + 1):
        created = start - timedelta(seconds=rng.random() * 1000 * 86400)
        merchant_rows.append({
            "merchant_id": mid, "merchant_name": _merchant_name(rng, category := _pick(rng, CATEGORIES), mid),
            "owner_name": fake.name(), "owner_phone": fake.phone_number(), "business_reg_no": _business_reg_no(rng),
            "category": category, "region": _pick(rng, REGIONS), "created_at": created, "updated_at": created,
        })
    by_category: dict[str, list[int]] = {}
    for m in merchant_rows:
        by_category.setdefault(m["category"], []).append(m["merchant_id"])

    # Events, processed in time order so that balances are right at every moment.
    events: list[tuple[datetime, int, str, Any]] = []
    seq = 0

    def push(t: datetime, kind: str, data: Any = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, data))

    per_day = members_count * 0.15
    for d in range(days + 1):
        day = start + timedelta(days=d)
        factor = WEEKDAY_FACTOR[day.weekday()] * rng.uniform(0.9, 1.1)
        for _ in range(int(per_day * factor)):
            push(_moment(rng, day), "payment")
        for _ in range(int(per_day * factor * 0.2)):
            push(_moment(rng, day), "topup")
        for _ in range(max(1, int(members_count * 0.001))):
            push(_moment(rng, day), "card_status")
        if rng.random() < 0.9:
            for _ in range(max(1, int(members_count * 0.0004))):
                push(_moment(rng, day), "member_leaves")

    topup_rows: list[dict[str, Any]] = []
    payment_rows: list[dict[str, Any]] = []
    refund_rows: list[dict[str, Any]] = []
    refunded: dict[int, int] = {}
    member_by_id = {m["member_id"]: m for m in member_rows}
    cards_by_member: dict[int, list[_Card]] = {}
    for c in card_list:
        cards_by_member.setdefault(c.member_id, []).append(c)

    def usable_card(t: datetime) -> _Card | None:
        for _ in range(20):
            c = card_list[rng.randrange(len(card_list))]
            if c.status == "active" and c.issued_at <= t:
                return c
        return None

    def topup(c: _Card, t: datetime, amount: int, channel: str) -> None:
        topup_rows.append({"topup_id": len(topup_rows) + 1, "card_id": c.card_id, "channel": channel,
                           "amount_krw": amount, "created_at": t, "updated_at": t})
        c.balance += amount
        c.updated_at = t

    while events:
        t, _, kind, data = heapq.heappop(events)
        if t > end:
            break
        if kind == "payment":
            c = usable_card(t)
            if c is None:
                continue
            weekend = t.weekday() >= 5
            cat_w = {k: w * (WEEKEND_CATEGORY_BOOST.get(k, 1.0) if weekend else 1.0) for k, w in CATEGORIES.items()}
            cat = _pick(rng, cat_w)
            if cat not in by_category:
                continue
            lo, hi = AMOUNTS[cat]
            amount = _round100(rng.uniform(lo, hi) if rng.random() < 0.8 else rng.uniform(lo, lo + (hi - lo) * 0.3))
            if c.balance < amount:
                need = amount - c.balance
                # Auto-charge tops up what is missing plus a cushion, in 10,000 won steps.
                charge = ((need + 9_999) // 10_000) * 10_000 + rng.choice((20_000, 30_000, 50_000))
                topup(c, t - timedelta(seconds=rng.uniform(1, 20)), charge, "auto_charge")
            pid = len(payment_rows) + 1
            payment_rows.append({"payment_id": pid, "card_id": c.card_id, "merchant_id": rng.choice(by_category[cat]),
                                 "amount_krw": amount, "status": "approved", "created_at": t, "cancelled_at": None,
                                 "updated_at": t})
            c.balance -= amount
            c.last_used_at = t
            c.updated_at = t
            r = rng.random()
            if r < 0.03:
                push(t + timedelta(seconds=rng.uniform(30, 2 * 86400)), "cancel", pid)
            elif r < 0.05:
                push(t + timedelta(seconds=rng.uniform(3600, 7 * 86400)), "refund", pid)
        elif kind == "topup":
            c = usable_card(t)
            if c is not None:
                topup(c, t, _pick(rng, TOPUP_AMOUNTS), _pick(rng, CHANNELS))
        elif kind == "cancel":
            p = payment_rows[data - 1]
            c = card_list[p["card_id"] - 1]
            if p["status"] != "approved" or data in refunded or c.status == "closed":
                continue
            p.update(status="cancelled", cancelled_at=t, updated_at=t)
            c.balance += p["amount_krw"]
            c.updated_at = t
        elif kind == "refund":
            p = payment_rows[data - 1]
            c = card_list[p["card_id"] - 1]
            if p["status"] != "approved" or c.status == "closed":
                continue
            amount = p["amount_krw"] if rng.random() < 0.6 else _round100(p["amount_krw"] * rng.uniform(0.2, 0.8))
            amount = min(amount, p["amount_krw"] - refunded.get(data, 0))
            if amount <= 0:
                continue
            refunded[data] = refunded.get(data, 0) + amount
            refund_rows.append({"refund_id": len(refund_rows) + 1, "payment_id": data, "card_id": c.card_id,
                                "merchant_id": p["merchant_id"], "amount_krw": amount,
                                "reason": _pick(rng, REFUND_REASONS), "created_at": t, "updated_at": t})
            c.balance += amount
            c.updated_at = t
        elif kind == "card_status":
            c = card_list[rng.randrange(len(card_list))]
            if c.status == "active" and c.issued_at <= t:
                c.status, c.updated_at = "suspended", t
                push(t + timedelta(seconds=rng.uniform(3600, 5 * 86400)), "card_reactivate", c.card_id)
        elif kind == "card_reactivate":
            c = card_list[data - 1]
            if c.status == "suspended":
                c.status, c.updated_at = "active", t
        elif kind == "member_leaves":
            m = member_by_id[rng.randrange(1, members_count + 1)]
            if m["status"] != "active" or m["joined_at"] > t:
                continue
            m.update(status="left", deleted_at=t, updated_at=t)
            for c in cards_by_member.get(m["member_id"], []):
                c.status, c.deleted_at, c.updated_at = "closed", t, max(t, c.updated_at or t)

    # Members whose cards were not used for 30 days at the end are dormant.
    last_use: dict[int, datetime] = {}
    for c in card_list:
        seen = c.last_used_at or c.issued_at
        if seen > last_use.get(c.member_id, seen - timedelta(1)):
            last_use[c.member_id] = seen
    for m in member_rows:
        since = last_use.get(m["member_id"], m["joined_at"])
        if m["status"] == "active" and since + timedelta(days=30) <= end:
            t = since + timedelta(days=30)
            m.update(status="dormant", updated_at=max(m["updated_at"], t))

    card_rows = []
    for c in card_list:
        card_rows.append({"card_id": c.card_id, "member_id": c.member_id, **card_rows_extra[c.card_id],
                          "status": c.status, "balance_krw": c.balance, "issued_at": c.issued_at,
                          "last_used_at": c.last_used_at, "updated_at": c.updated_at or c.issued_at,
                          "deleted_at": c.deleted_at})

    stats = HistoryStats()
    with engine.begin() as conn:
        for table, rows in ((members, member_rows), (cards, card_rows), (merchants, merchant_rows),
                            (topups, topup_rows), (payments, payment_rows), (refunds, refund_rows)):
            for i in range(0, len(rows), 20_000):
                conn.execute(table.insert(), rows[i:i + 20_000])
            stats.rows[table.name] = len(rows)
    stats.seconds = time.monotonic() - started
    return stats


# ────────────────────────────────────────────────────────────── the trickle ──


@dataclass
class TickStats:
    payments: int = 0
    topups: int = 0
    cancellations: int = 0
    refunds: int = 0
    card_status_changes: int = 0
    members_left: int = 0
    members_joined: int = 0


def _random_row(conn, table: sa.Table, pk: sa.Column, rng: random.Random, where, lo_fraction: float = 0.0):
    top = conn.execute(sa.select(sa.func.max(pk))).scalar() or 0
    if top == 0:
        return None
    lo = max(1, int(top * lo_fraction))
    for _ in range(15):
        row = conn.execute(sa.select(table).where(pk == rng.randint(lo, top), where)).mappings().first()
        if row is not None:
            return row
    return None


def tick(engine: Engine, rng: random.Random, now: datetime | None = None, fake=None) -> TickStats:
    """One step of live business, in one transaction; balances stay reconciled."""
    now = (now or datetime.now(SEOUL)).astimezone(SEOUL)
    s = TickStats()
    hour_factor = HOUR_WEIGHTS[now.hour] / (sum(HOUR_WEIGHTS) / 24)
    with engine.begin() as conn:
        def card_moves(card, delta: int, t: datetime, used: bool = False) -> None:
            values = {"balance_krw": cards.c.balance_krw + delta, "updated_at": t}
            if used:
                values["last_used_at"] = t
            conn.execute(cards.update().where(cards.c.card_id == card["card_id"]).values(**values))

        for _ in range(rng.randint(0, max(1, round(3 * hour_factor)))):
            card = _random_row(conn, cards, cards.c.card_id, rng, cards.c.status == "active")
            merchant = _random_row(conn, merchants, merchants.c.merchant_id, rng, sa.true())
            if card is None or merchant is None:
                break
            lo, hi = AMOUNTS[merchant["category"]]
            amount = _round100(rng.uniform(lo, hi))
            t = now
            balance = card["balance_krw"]
            if balance < amount:
                top = ((amount - balance + 9_999) // 10_000) * 10_000
                conn.execute(topups.insert().values(card_id=card["card_id"], channel="auto_charge", amount_krw=top,
                                                    created_at=t, updated_at=t))
                s.topups += 1
                card_moves(card, top, t)
            conn.execute(payments.insert().values(card_id=card["card_id"], merchant_id=merchant["merchant_id"],
                                                  amount_krw=amount, status="approved", created_at=t, updated_at=t))
            card_moves(card, -amount, t, used=True)
            s.payments += 1
        if rng.random() < 0.5 * hour_factor:
            card = _random_row(conn, cards, cards.c.card_id, rng, cards.c.status == "active")
            if card is not None:
                amount = _pick(rng, TOPUP_AMOUNTS)
                conn.execute(topups.insert().values(card_id=card["card_id"], channel=_pick(rng, CHANNELS),
                                                    amount_krw=amount, created_at=now, updated_at=now))
                card_moves(card, amount, now)
                s.topups += 1
        if rng.random() < 0.3:
            p = _random_row(conn, payments, payments.c.payment_id, rng, payments.c.status == "approved", 0.98)
            if p is not None:
                card = conn.execute(sa.select(cards).where(cards.c.card_id == p["card_id"])).mappings().first()
                has_refund = conn.execute(sa.select(refunds.c.refund_id).where(refunds.c.payment_id == p["payment_id"]).limit(1)).first()
                if card is not None and card["status"] != "closed" and has_refund is None:
                    conn.execute(payments.update().where(payments.c.payment_id == p["payment_id"])
                                 .values(status="cancelled", cancelled_at=now, updated_at=now))
                    card_moves(card, p["amount_krw"], now)
                    s.cancellations += 1
        if rng.random() < 0.2:
            p = _random_row(conn, payments, payments.c.payment_id, rng, payments.c.status == "approved", 0.95)
            if p is not None:
                card = conn.execute(sa.select(cards).where(cards.c.card_id == p["card_id"])).mappings().first()
                done = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount_krw), 0))
                                    .where(refunds.c.payment_id == p["payment_id"])).scalar()
                amount = min(_round100(p["amount_krw"] * rng.uniform(0.3, 1.0)), p["amount_krw"] - int(done))
                if card is not None and card["status"] != "closed" and amount > 0:
                    conn.execute(refunds.insert().values(payment_id=p["payment_id"], card_id=p["card_id"],
                                                         merchant_id=p["merchant_id"], amount_krw=amount,
                                                         reason=_pick(rng, REFUND_REASONS), created_at=now, updated_at=now))
                    card_moves(card, amount, now)
                    s.refunds += 1
        if rng.random() < 0.2:
            card = _random_row(conn, cards, cards.c.card_id, rng, cards.c.status != "closed")
            if card is not None:
                new = "suspended" if card["status"] == "active" else "active"
                conn.execute(cards.update().where(cards.c.card_id == card["card_id"]).values(status=new, updated_at=now))
                s.card_status_changes += 1
        if rng.random() < 0.05:
            m = _random_row(conn, members, members.c.member_id, rng, members.c.status != "left")
            if m is not None:
                conn.execute(members.update().where(members.c.member_id == m["member_id"])
                             .values(status="left", deleted_at=now, updated_at=now))
                conn.execute(cards.update().where(cards.c.member_id == m["member_id"], cards.c.status != "closed")
                             .values(status="closed", deleted_at=now, updated_at=now))
                s.members_left += 1
        if rng.random() < 0.1 and fake is not None:
            birth = fake.date_of_birth(minimum_age=14, maximum_age=80)
            mid = conn.execute(members.insert().values(
                name=fake.name(), phone=fake.phone_number(), email=fake.email(), birth_date=birth,
                address=fake.address(), birth_year=birth.year, region=_pick(rng, REGIONS), status="active",
                joined_at=now, updated_at=now)).inserted_primary_key[0]
            conn.execute(cards.insert().values(member_id=mid, card_number=card_number(rng), product=_pick(rng, PRODUCTS),
                                               status="active", balance_krw=0, issued_at=now, updated_at=now))
            s.members_joined += 1
    return s


# ─────────────────────────────────────────────────────────────── entry ──


def _is_empty(engine: Engine) -> bool:
    insp = sa.inspect(engine)
    if not insp.has_table("members"):
        return True
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(members)).scalar() == 0


def run_simulator(
    cfg: PipelineConfig,
    once: bool,
    seed: int | None,
    members_count: int = 20_000,
    days: int = 60,
    tick_seconds: float = 2.0,
) -> int:
    """`python -m ingest simulate`: create + seed on first start, then tick until SIGTERM/SIGINT."""
    from faker import Faker

    assert cfg.source is not None
    url = sa.make_url(cfg.source.url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = connect(cfg.source)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if _is_empty(engine):
            create_demo_schema(engine)
            stats = seed_history(engine, members_count=members_count, days=days, seed=seed)
            log.info("seeded %d rows of history in %.1f s (%s)", sum(stats.rows.values()), stats.seconds,
                     ", ".join(f"{k} {v}" for k, v in stats.rows.items()))
        else:
            create_demo_schema(engine)
            log.info("demo source exists; continuing the business")
        if once or stop.is_set():
            return 0
        rng = random.Random(seed)
        fake = Faker("ko_KR")
        while not stop.wait(tick_seconds):
            try:
                tick(engine, rng, fake=fake)
            except sa.exc.OperationalError as exc:  # e.g. SQLite busy for longer than its timeout
                log.warning("tick skipped: %s", exc.orig)
        return 0
    finally:
        engine.dispose()
