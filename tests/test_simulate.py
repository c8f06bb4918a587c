"""The demo source: a believable business whose numbers reconcile, with personal data that stays home."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from faker import Faker

from ingest.simulate import (
    CATEGORIES, CHANNELS, PII_COLUMNS, PRODUCTS, REGIONS, create_demo_schema, seed_history, tick,
)
from ingest.source import SEOUL
from tests.fixtures_export import SMALL_DAYS, SMALL_MEMBERS

TABLES = ("members", "cards", "merchants", "topups", "payments", "refunds")
PK = {"members": "member_id", "cards": "card_id", "merchants": "merchant_id", "topups": "topup_id",
      "payments": "payment_id", "refunds": "refund_id"}

# The balance rule, computed from the movements alone (not from cards.balance_krw).
MOVEMENTS = """
SELECT c.card_id, c.balance_krw,
       COALESCE(t.s, 0) - COALESCE(p.s, 0) + COALESCE(r.s, 0) AS computed
FROM cards c
LEFT JOIN (SELECT card_id, SUM(amount_krw) s FROM topups GROUP BY card_id) t ON t.card_id = c.card_id
LEFT JOIN (SELECT card_id, SUM(amount_krw) s FROM payments WHERE status = 'approved' GROUP BY card_id) p ON p.card_id = c.card_id
LEFT JOIN (SELECT card_id, SUM(amount_krw) s FROM refunds GROUP BY card_id) r ON r.card_id = c.card_id
"""


def mismatches(conn) -> list:
    return [r for r in conn.exec_driver_sql(MOVEMENTS).all() if r.balance_krw != r.computed]


@pytest.fixture
def small_source(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'src.sqlite'}")
    create_demo_schema(engine)
    end = datetime(2026, 11, 24, 12, 0, tzinfo=SEOUL)
    stats = seed_history(engine, members_count=SMALL_MEMBERS, days=SMALL_DAYS, seed=3, end=end)
    yield engine, stats, end
    engine.dispose()


def test_history_is_a_consistent_business(small_source):
    engine, stats, end = small_source
    with engine.connect() as conn:
        counts = {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar() for t in TABLES}
        assert counts == stats.rows
        assert counts["members"] == SMALL_MEMBERS and counts["payments"] > 300 and counts["refunds"] > 0
        assert mismatches(conn) == []
        assert conn.exec_driver_sql("SELECT MIN(balance_krw) FROM cards").scalar() >= 0
        vocab = {
            ("cards", "product"): set(PRODUCTS), ("cards", "status"): {"active", "suspended", "closed"},
            ("members", "status"): {"active", "dormant", "left"}, ("members", "region"): set(REGIONS),
            ("topups", "channel"): set(CHANNELS), ("merchants", "category"): set(CATEGORIES),
            ("payments", "status"): {"approved", "cancelled"},
        }
        for (table, col), allowed in vocab.items():
            seen = {r[0] for r in conn.exec_driver_sql(f"SELECT DISTINCT {col} FROM {table}")}
            assert seen <= allowed, (table, col, seen - allowed)
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM payments WHERE status='cancelled'").scalar() > 0
        # Cancellations are updates: cancelled_at set and updated_at moved to it.
        assert conn.exec_driver_sql(
            "SELECT COUNT(*) FROM payments WHERE status='cancelled' AND (cancelled_at IS NULL OR updated_at != cancelled_at)"
        ).scalar() == 0
        # Refunds never exceed their payment, and only approved payments are refunded.
        assert conn.exec_driver_sql("""
            SELECT COUNT(*) FROM (SELECT r.payment_id, SUM(r.amount_krw) s, MAX(p.amount_krw) a, MAX(p.status) st
                                  FROM refunds r JOIN payments p USING (payment_id) GROUP BY r.payment_id)
            WHERE s > a OR st != 'approved'""").scalar() == 0
        # Members who left are soft-deleted, with their cards closed.
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM members WHERE (status='left') != (deleted_at IS NOT NULL)").scalar() == 0
        # Every timestamp is Asia/Seoul ISO text, inside the window.
        first, last = conn.exec_driver_sql("SELECT MIN(created_at), MAX(created_at) FROM payments").one()
        assert first.endswith("+09:00") and last.endswith("+09:00")
        assert datetime.fromisoformat(last) <= end
        assert datetime.fromisoformat(first) >= end - timedelta(days=SMALL_DAYS + 1)
        # Personal data is there (it is what the exporter must never send).
        for table, cols in PII_COLUMNS.items():
            for col in cols:
                assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table} WHERE {col} IS NULL OR {col} = ''").scalar() == 0
        phones = [r[0] for r in conn.exec_driver_sql("SELECT phone FROM members LIMIT 5")]
        assert all(p[0] in "0+" for p in phones)


def test_daily_and_weekly_rhythm(small_source):
    engine, _, _ = small_source
    with engine.connect() as conn:
        hours = [datetime.fromisoformat(r[0]).hour for r in conn.exec_driver_sql("SELECT created_at FROM payments")]
    lunch = sum(h in (11, 12, 13) for h in hours)
    night = sum(h in (2, 3, 4) for h in hours)
    assert lunch > 10 * max(night, 1)


def test_every_table_has_the_watermark_index(small_source):
    engine, _, _ = small_source
    insp = sa.inspect(engine)
    for table in TABLES:
        cols = [ix["column_names"] for ix in insp.get_indexes(table)]
        assert ["updated_at", PK[table]] in cols, (table, cols)


def test_same_seed_same_history(tmp_path, small_source):
    engine, _, end = small_source
    other = sa.create_engine(f"sqlite:///{tmp_path / 'again.sqlite'}")
    create_demo_schema(other)
    seed_history(other, members_count=SMALL_MEMBERS, days=SMALL_DAYS, seed=3, end=end)
    q = "SELECT * FROM payments ORDER BY payment_id"
    with engine.connect() as a, other.connect() as b:
        assert a.exec_driver_sql(q).all() == b.exec_driver_sql(q).all()
        assert a.exec_driver_sql("SELECT name, phone FROM members").all() == b.exec_driver_sql("SELECT name, phone FROM members").all()
    other.dispose()


def test_live_ticks_keep_moving_and_keep_reconciling(small_source):
    engine, stats, end = small_source
    with engine.connect() as conn:  # ticks happen after every history row
        end = max(end, datetime.fromisoformat(conn.exec_driver_sql("SELECT MAX(updated_at) FROM cards").scalar()))
    rng = random.Random(1)
    fake = Faker("ko_KR")
    totals = {"payments": 0, "cancellations": 0, "refunds": 0, "members_left": 0, "card_status_changes": 0}
    for i in range(150):
        s = tick(engine, rng, now=end + timedelta(seconds=2 * (i + 1)), fake=fake)
        for k in totals:
            totals[k] += getattr(s, k)
    assert all(v > 0 for v in totals.values()), totals
    with engine.connect() as conn:
        assert mismatches(conn) == []
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM payments").scalar() == stats.rows["payments"] + totals["payments"]
        moved = conn.exec_driver_sql("SELECT COUNT(*) FROM payments WHERE updated_at > ?", (end.isoformat(timespec="microseconds"),)).scalar()
        assert moved >= totals["payments"]
        cancelled_in_ticks = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM payments WHERE cancelled_at > ?", (end.isoformat(timespec="microseconds"),)).scalar()
        assert cancelled_in_ticks == totals["cancellations"]
        # A member who left in a tick: soft-deleted, cards closed at the same moment.
        left = conn.exec_driver_sql(
            "SELECT m.member_id, m.deleted_at FROM members m WHERE m.deleted_at > ?", (end.isoformat(timespec="microseconds"),)
        ).all()
        assert left
        for mid, at in left:
            states = conn.exec_driver_sql("SELECT status, deleted_at FROM cards WHERE member_id = ?", (mid,)).all()
            assert all(s == "closed" and d is not None for s, d in states)


@pytest.mark.mariadb
def test_demo_schema_on_mariadb(mariadb_url):
    engine = sa.create_engine(mariadb_url)
    create_demo_schema(engine)
    seed_history(engine, members_count=100, days=5, seed=2)
    with engine.connect() as conn:
        assert mismatches(conn) == []
        kind = conn.exec_driver_sql(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'payments' AND COLUMN_NAME = 'updated_at'").scalar()
        assert kind.lower() == "datetime(6)"
        ts = conn.exec_driver_sql("SELECT MAX(updated_at) FROM payments").scalar()
        now_local = datetime.now(SEOUL).replace(tzinfo=None)  # DATETIME holds Seoul wall-clock time
        assert ts.tzinfo is None and now_local - timedelta(days=2) < ts <= now_local
    insp = sa.inspect(engine)
    for table in TABLES:
        assert ["updated_at", PK[table]] in [ix["column_names"] for ix in insp.get_indexes(table)]
    engine.dispose()


def test_simulate_command_seeds_once_then_continues(tmp_path):
    from ingest.config import load_config
    from ingest.simulate import run_simulator

    path = tmp_path / "pipeline.toml"
    path.write_text(f'[source]\nurl = "sqlite:///{tmp_path}/data/demo.sqlite"\n', encoding="utf-8")
    cfg = load_config(path, needs=("source",), environ={})
    assert run_simulator(cfg, once=True, seed=1, members_count=120, days=3) == 0
    engine = sa.create_engine(cfg.source.url)
    with engine.connect() as conn:
        first = conn.exec_driver_sql("SELECT COUNT(*) FROM payments").scalar()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert first > 0
    assert run_simulator(cfg, once=True, seed=1, members_count=120, days=3) == 0  # an existing source is kept
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM payments").scalar() == first
    engine.dispose()
