"""The demo source: a believable prepaid-card business in SQLite (or MariaDB, for tests).

`python -m ingest simulate` creates the schema, seeds a reproducible history —
13 full months before the current one, every event table from the launch on
(about half a million rows, generated in seconds) — and then keeps the
business moving at the pace of that same history: the live simulator and the
history are one model (ingest/demo_business.py, ingest/demo_pace.py), so
"today vs yesterday" compares like with like. A source that already exists is
continued from the moment it reached (`simulator_clock`), and the time the
demo was stopped is lived through first, so the days in between are not empty.

What the rest of the pipeline relies on:
- members, cards and merchants carry personal data (name, phone, e-mail, birth
  date, address, card number, owner name/phone, business registration number)
  in the shape Faker ko_KR gives it; none of it is in pipeline.toml's allow-list;
- every table has `updated_at` and an index on (updated_at, pk); every change
  of a row, including every balance change of a card, moves its `updated_at`,
  and every write is stamped at or after the previous one (the exporter's
  watermark never has to look back further than its overlap);
- balances reconcile exactly:
  cards.balance_krw = Σ topups − Σ payments (approved) + Σ refunds;
- timestamps are Asia/Seoul: ISO-8601 text with +09:00 in SQLite (so text order
  is time order), DATETIME(6) local time on MariaDB.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import math
import random
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine

from ingest.config import PipelineConfig
from ingest.demo_business import (  # noqa: F401  (CHANNELS, PRODUCTS, card_number: re-exported, tests import them from here)
    CATEGORIES, CHANNELS, INSERT_COLUMNS, KEYS, PAYMENTS_PER_CARD_DAY, PRODUCTS, REGIONS, TOPUPS_PER_CARD_DAY,
    UPDATE_COLUMNS, Business, People, Weights, card_number, sign_up_times,
)
from ingest.demo_pace import DAY, SEOUL_OFFSET, expected
from ingest.source import SEOUL, connect

log = logging.getLogger("ingest.simulate")


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


# ─────────────────────────────────────────────────────── the simulator's own ──

# How far the business has been lived. Not in pipeline.toml, so never exported;
# without it a restarted simulator would have to guess from the newest row and
# would live the quiet minutes after it twice.
simulator_clock = sa.Table(
    "simulator_clock", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("reached_at", sa.String(40), nullable=False),  # ISO-8601, +09:00
)

DEMO_MEMBERS = 6_000  # ~375k rows over 13–14 months: the demo re-exports them all on every start
HISTORY_MONTHS = 13  # full months before the current one
SETTLED_AFTER_DAYS = 8  # a payment older than this can no longer be cancelled or refunded
CATCH_UP_STEP = 6 * 3600.0  # the time the demo was stopped is lived in 6-hour transactions


# ──────────────────────────────────────────────────────────── reading/writing ──


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=2048)
def _day_text(day: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


def _seoul_parts(t: float) -> tuple[int, int]:
    """(whole seconds of Seoul wall-clock time since 1970, microseconds), rounded as datetime.fromtimestamp does."""
    frac, whole = math.modf(t)
    us = round(frac * 1_000_000)  # half-even on the fraction, like CPython's fromtimestamp
    seconds = int(whole) + int(SEOUL_OFFSET)
    if us >= 1_000_000:
        seconds, us = seconds + 1, us - 1_000_000
    return seconds, us


def iso_seoul(t: float) -> str:
    """Epoch seconds as SeoulTimestamp writes them on SQLite ("2026-11-24T10:00:00.000000+09:00").

    Made here without a zone-aware datetime per value (the history has a
    million of them); tests/test_simulate.py checks the two agree.
    """
    seconds, us = _seoul_parts(t)
    day, s = divmod(seconds, 86_400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{_day_text(day)}T{h:02d}:{m:02d}:{s:02d}.{us:06d}+09:00"


def naive_seoul(t: float) -> datetime:
    """Epoch seconds as SeoulTimestamp writes them on MySQL/MariaDB: Seoul wall-clock time, no zone."""
    seconds, us = _seoul_parts(t)
    return datetime(1970, 1, 1) + timedelta(seconds=seconds, microseconds=us)


def epoch(value: Any) -> float | None:
    """A timestamp as the source returns it (ISO text, naive Seoul DATETIME, aware datetime) → epoch seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=SEOUL)
    return value.timestamp()


class _Writer:
    """Writes the business's changes with the driver's executemany: the history is ~375k rows.

    Plain driver statements (no per-value type processing) are what keep
    seeding in seconds; the timestamp format is SeoulTimestamp's, made by
    `iso_seoul` / `naive_seoul`. Table and column names come from the code,
    never from data.
    """

    def __init__(self, conn: Connection):
        self.conn = conn
        self.mysql = conn.dialect.name in ("mysql", "mariadb")
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self.stamp: Callable[[float], Any] = naive_seoul if self.mysql else iso_seoul
        self.day: Callable[[date], Any] = (lambda d: d) if self.mysql else date.isoformat
        self.rows: dict[str, int] = {}

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if rows:
            marks = ", ".join([self.mark] * len(columns))
            self.conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            self.rows[table] = self.rows.get(table, 0) + len(rows)

    def update(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if rows:
            sets = ", ".join(f"{c} = {self.mark}" for c in columns)
            self.conn.exec_driver_sql(f"UPDATE {table} SET {sets} WHERE {KEYS[table]} = {self.mark}", rows)

    def changes(self, business: Business, settled_before: float | None = None) -> None:
        out = business.changes(self.stamp, self.day, settled_before=settled_before)
        for table in ("members", "cards", "topups", "payments", "refunds"):
            if table in out:
                inserts, updates = out[table]
                self.insert(table, INSERT_COLUMNS[table], inserts)
                self.update(table, UPDATE_COLUMNS.get(table, ()), updates)

    def clock(self, t: float) -> None:
        self.conn.execute(simulator_clock.delete())
        self.conn.execute(simulator_clock.insert().values(id=1, reached_at=iso_seoul(t)))


@contextmanager
def _without_gc() -> Iterator[None]:
    """The business is hundreds of thousands of small objects, none of them garbage while it runs:
    Python's cycle collector re-scanning them costs a third of the seeding time, for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ──────────────────────────────────────────────────────────────── history ──


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


def history_start(end: datetime, days: int | None) -> datetime:
    """Midnight `days` days before `end`; by default the first day of the month HISTORY_MONTHS full months back."""
    end = end.astimezone(SEOUL)
    if days is not None:
        return (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    months = end.year * 12 + end.month - 1 - HISTORY_MONTHS
    return datetime(months // 12, months % 12 + 1, 1, tzinfo=SEOUL)


@dataclass
class HistoryStats:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    start: datetime | None = None
    end: datetime | None = None


def seed_history(
    engine: Engine,
    members_count: int = DEMO_MEMBERS,
    days: int | None = None,
    seed: int | None = None,
    end: datetime | None = None,
) -> HistoryStats:
    """Fill an empty demo schema with the business from its launch to `end` (default: now), in one transaction.

    The launch is HISTORY_MONTHS full months before `end`'s month (or `days`
    days before `end`); exactly `members_count` members sign up in between.
    The same seed and end give the same rows.
    """
    started = time.monotonic()
    rng = random.Random(seed)
    people = People(rng)
    end = (end or datetime.now(SEOUL)).astimezone(SEOUL)
    start = history_start(end, days)
    t0, t_end = start.timestamp(), end.timestamp()

    merchant_rows = []
    categories, regions = Weights(CATEGORIES), Weights(REGIONS)
    for mid in range(1, max(20, members_count // 12) + 1):
        created = t0 - rng.random() * 1000 * DAY  # shops were there before the card
        category = categories.pick(rng)
        merchant_rows.append((mid, _merchant_name(rng, category, mid), people.name(), people.phone(),
                              _business_reg_no(rng), category, regions.pick(rng), created, created))
    business = Business(rng, people, [(r[0], r[5]) for r in merchant_rows], clock=t0)
    for at in sign_up_times(rng, members_count, t0, t_end, midnight=t0):
        business.schedule(at, "join")

    with engine.begin() as conn, _without_gc():
        writer = _Writer(conn)
        writer.insert("merchants", ("merchant_id", "merchant_name", "owner_name", "owner_phone", "business_reg_no",
                                    "category", "region", "created_at", "updated_at"),
                      [(*r[:7], writer.stamp(r[7]), writer.stamp(r[8])) for r in merchant_rows])
        t = t0
        while t < t_end:  # a week at a time, so that settled payments leave memory as they go
            t = min(t_end, t + 7 * DAY)
            business.advance(t)
            writer.changes(business, settled_before=t - SETTLED_AFTER_DAYS * DAY)
        writer.changes(business)
        writer.clock(t_end)
    rows = {name: writer.rows.get(name, 0) for name in ("members", "cards", "merchants", "topups", "payments", "refunds")}
    return HistoryStats(rows=rows, seconds=time.monotonic() - started, start=start, end=end)


# ─────────────────────────────────────────────────────────── live business ──


def _scalar(conn: Connection, sql: str, *params: Any) -> Any:
    return conn.exec_driver_sql(sql, params).scalar()


def reached(conn: Connection) -> float | None:
    """How far the business in this source has been lived (epoch seconds), None for an empty source."""
    if sa.inspect(conn).has_table("simulator_clock"):
        value = _scalar(conn, "SELECT reached_at FROM simulator_clock")
        if value is not None:
            return epoch(value)
    newest = [epoch(_scalar(conn, f"SELECT MAX(updated_at) FROM {t}")) for t in KEYS]
    newest = [t for t in newest if t is not None]
    return max(newest) if newest else None


def load_business(conn: Connection, rng: random.Random) -> Business:
    """The business as the source holds it, ready to go on from where it stopped."""
    writer = _Writer(conn)
    clock = reached(conn)
    if clock is None:
        raise ValueError("the demo source is empty: seed it first (python -m ingest simulate --once)")
    merchants = conn.exec_driver_sql("SELECT merchant_id, category FROM merchants").all()
    business = Business(rng, People(rng), [tuple(r) for r in merchants], clock=clock)
    members = [(r[0], r[1], epoch(r[2]), epoch(r[3]), epoch(r[4])) for r in conn.exec_driver_sql(
        "SELECT member_id, status, joined_at, updated_at, deleted_at FROM members")]
    cards = [(r[0], r[1], r[2], int(r[3]), epoch(r[4]), epoch(r[5]), epoch(r[6]), epoch(r[7])) for r in conn.exec_driver_sql(
        "SELECT card_id, member_id, status, balance_krw, issued_at, last_used_at, updated_at, deleted_at FROM cards")]
    since = writer.stamp(clock - SETTLED_AFTER_DAYS * DAY)
    refunded = dict(conn.exec_driver_sql(
        f"SELECT r.payment_id, SUM(r.amount_krw) FROM refunds r JOIN payments p ON p.payment_id = r.payment_id "
        f"WHERE p.created_at >= {writer.mark} GROUP BY r.payment_id", (since,)).all())
    payments = [(r[0], r[1], r[2], int(r[3]), r[4], epoch(r[5]), epoch(r[6]), epoch(r[7]), int(refunded.get(r[0], 0)))
                for r in conn.exec_driver_sql(
                    "SELECT payment_id, card_id, merchant_id, amount_krw, status, created_at, cancelled_at, updated_at "
                    f"FROM payments WHERE created_at >= {writer.mark}", (since,))]
    next_id = {t: int(_scalar(conn, f"SELECT COALESCE(MAX({KEYS[t]}), 0) FROM {t}")) + 1
               for t in ("members", "cards", "topups", "payments", "refunds")}
    business.load(members, cards, payments, next_id)
    business.join_per_day = _recent_sign_ups_per_day(members, clock)
    return business


def _recent_sign_ups_per_day(members: list[tuple], clock: float) -> float:
    """Sign-ups per day over the last four weeks (or the later half of a shorter history)."""
    joined = [m[2] for m in members if m[2] is not None and m[2] <= clock]
    if not joined:
        return 0.0
    window = min(28 * DAY, (clock - min(joined)) / 2)
    if window <= 0:
        return 0.0
    return sum(1 for t in joined if t > clock - window) / (window / DAY)


def live_until(engine: Engine, business: Business, until: float, step: float = CATCH_UP_STEP) -> int:
    """Live the business up to `until`, one transaction per `step` of business time; returns the rows written.

    Each transaction also moves `simulator_clock`, so the source and the
    business agree at every commit. If a commit fails, the business in memory
    is ahead of the source: the caller must load it again (`load_business`).
    """
    written = 0
    with _without_gc() if until - business.clock > step else nullcontext():  # a catch-up is a small history
        while business.clock < until:
            target = min(until, business.clock + step)
            with engine.begin() as conn:
                writer = _Writer(conn)
                business.advance(target)
                writer.changes(business)
                writer.clock(business.clock)
            written += sum(writer.rows.values())
    return written


def keep_business_moving(
    engine: Engine,
    business: Business,
    wait: Callable[[float], bool],
    clock: Callable[[], float] = time.time,
    tick_seconds: float = 2.0,
    rng: random.Random | None = None,
) -> Business:
    """Every `tick_seconds`, live the business up to `clock()`; until `wait(tick_seconds)` returns True.

    `clock` and `wait` are the wall clock and a stop event's wait in the
    simulator; a test passes a simulated clock to live a week in seconds. The
    pace does not depend on the tick: `ingest.demo_pace.Arrivals`.
    """
    refused = 0
    while not wait(tick_seconds):
        try:
            live_until(engine, business, clock())
            refused = 0
        except sa.exc.OperationalError as exc:  # e.g. SQLite busy for longer than its timeout
            refused += 1
            # Once is weather (the next tick lives the same time again); a source that keeps refusing needs a person.
            (log.warning if refused >= 3 else log.info)(
                "the demo source refused a write %d time(s) in a row (%s); reloading the business from it and going on",
                refused, exc.orig)
            with engine.connect() as conn:
                business = load_business(conn, rng or business.rng)
    return business


# ────────────────────────────────────────────────────────────── bursts ──


@dataclass
class TickStats:
    payments: int = 0
    topups: int = 0
    cancellations: int = 0
    refunds: int = 0
    card_status_changes: int = 0
    members_left: int = 0
    members_joined: int = 0


def tick(engine: Engine, rng: random.Random, now: datetime | None = None, fake=None) -> TickStats:
    """A burst of business at `now` (default: the wall clock) whatever the pace, in one transaction.

    For tests and tools that need the source to move right now (payments, a
    top-up, maybe a cancellation, refund, suspension, a member leaving or
    joining); balances stay reconciled. The live simulator keeps the pace
    instead (`keep_business_moving`). `fake` is accepted from earlier callers
    and unused: personal data comes from `People`.
    """
    at = (now or datetime.now(SEOUL)).timestamp()
    with engine.begin() as conn:
        business = load_business(conn, rng)
        business.burst(at)
        writer = _Writer(conn)
        writer.changes(business)
        writer.clock(business.clock)
    return TickStats(**{k: business.counts.get(k, 0) for k in TickStats.__dataclass_fields__})


# ─────────────────────────────────────────────────────────────── entry ──


def _is_empty(engine: Engine) -> bool:
    insp = sa.inspect(engine)
    if not insp.has_table("members"):
        return True
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(members)).scalar() == 0


def _warn_if_incoherent(engine: Engine, where: str) -> None:
    """An older simulator made payments for its last 60 days only, beside cards two years old."""
    with engine.connect() as conn:
        first_card = epoch(_scalar(conn, "SELECT MIN(issued_at) FROM cards"))
        first_payment = epoch(_scalar(conn, "SELECT MIN(created_at) FROM payments"))
    if first_card is not None and first_payment is not None and first_payment - first_card > 14 * DAY:
        log.warning("%s was made by an older simulator: cards from %s but payments only from %s, so monthly "
                    "reports look empty. Stop the demo and run `make clean` to rebuild it with %d months of history",
                    where, iso_seoul(first_card)[:10], iso_seoul(first_payment)[:10], HISTORY_MONTHS)


class SimulatorBusy(RuntimeError):
    pass


def _hold_writer_lock(url: sa.URL):
    """One simulator per SQLite source: each keeps the business in memory and writes it back (OS lock, dropped on exit)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database + ".simulator.lock")
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SimulatorBusy(f"another simulator is writing {url.database} (lock {path}) — stop it first") from None
    return handle


def _span(seconds: float) -> str:
    if seconds >= 2 * DAY:
        return f"{seconds / DAY:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def run_simulator(
    cfg: PipelineConfig,
    once: bool,
    seed: int | None,
    members_count: int = DEMO_MEMBERS,
    days: int | None = None,
    tick_seconds: float = 2.0,
) -> int:
    """`python -m ingest simulate`: create + seed on first start, live through any gap, then tick until SIGTERM/SIGINT."""
    assert cfg.source is not None
    url = sa.make_url(cfg.source.url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = _hold_writer_lock(url)
    except SimulatorBusy as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    engine = connect(cfg.source)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    where = url.database or url.render_as_string(hide_password=True)
    try:
        if _is_empty(engine):
            create_demo_schema(engine)
            stats = seed_history(engine, members_count=members_count, days=days, seed=seed)
            log.info("seeded %s rows of history from %s to %s in %.1f s (%s)", f"{sum(stats.rows.values()):,}",
                     stats.start.date(), stats.end.strftime("%Y-%m-%d %H:%M"), stats.seconds,
                     ", ".join(f"{k} {v:,}" for k, v in stats.rows.items()))
            if once or stop.is_set():
                return 0
        else:
            create_demo_schema(engine)  # adds what an older simulator's source lacks (simulator_clock)
        rng = random.Random(seed)
        with engine.connect() as conn:
            business = load_business(conn, rng)
        gap = time.time() - business.clock
        if once or gap > 60:  # not again in `ingest run`'s live simulator, right after its seed step said it
            _warn_if_incoherent(engine, where)
        if gap > 60:
            started = time.monotonic()
            rows = live_until(engine, business, time.time())
            log.info("lived through the %s since the demo last ran: %s row(s) in %.1f s", _span(gap), f"{rows:,}",
                     time.monotonic() - started)
        if once or stop.is_set():
            return 0
        today = datetime.now(SEOUL).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        cards = len(business.usable)
        log.info("the business goes on at its history's pace: %s cards in use, about %s payments and %s top-ups "
                 "today", f"{cards:,}", f"{expected(PAYMENTS_PER_CARD_DAY * cards, today, today + DAY):,.0f}",
                 f"{expected(TOPUPS_PER_CARD_DAY * cards, today, today + DAY):,.0f}")
        keep_business_moving(engine, business, wait=stop.wait, tick_seconds=tick_seconds, rng=rng)
        return 0
    finally:
        engine.dispose()
        if lock is not None:
            lock.close()
