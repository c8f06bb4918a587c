"""The demo source: a believable business whose numbers reconcile, with personal data that stays home.

The live business must run at its history's pace (issue 12: a live pace far
above the history's turned "vs yesterday" from −21 % into +200 % within
twenty minutes) and the history must cover 13 months of every event table.
Those tests live a simulated week through the simulator's own loop with a
simulated clock, and compare what lands in the source with what the seeded
history holds — counted with plain SQL, never through the model.
"""

from __future__ import annotations

import fcntl
import math
import random
import shutil
import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from faker import Faker
from sqlalchemy.dialects import mysql, sqlite

from ingest.demo_pace import Arrivals
from ingest.simulate import (
    CATEGORIES, CHANNELS, PII_COLUMNS, PRODUCTS, REGIONS, SeoulTimestamp, create_demo_schema, iso_seoul,
    keep_business_moving, load_business, naive_seoul, run_simulator, seed_history, tick,
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


# ─────────────────────────────────────────────── 13 months, at one pace ──

DEMO_END = datetime(2026, 11, 24, 12, 0, tzinfo=SEOUL)  # a Tuesday, noon
DAY_S = 86_400


@pytest.fixture(scope="module")
def demo_history(tmp_path_factory):
    """What `make run` seeds (the default size and length), ending at DEMO_END; made once for the module."""
    path = tmp_path_factory.mktemp("demo") / "demo_source.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    create_demo_schema(engine)
    stats = seed_history(engine, seed=12, end=DEMO_END)
    engine.dispose()
    return path, stats


EVENT_TIMES = {"payments": "created_at", "topups": "created_at", "refunds": "created_at", "cards": "issued_at"}


def months_between(first: date, last: date) -> list[str]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def test_history_has_13_months_of_every_event_table_and_balances_reconcile(demo_history):
    path, stats = demo_history
    # 13 full months before November 2026, plus November itself up to DEMO_END.
    wanted = months_between(date(2025, 10, 1), DEMO_END.date())
    assert len(wanted) == 14
    with sqlite3.connect(path) as conn:
        per_month = {}
        for table, col in EVENT_TIMES.items():
            per_month[table] = dict(conn.execute(
                f"SELECT substr({col}, 1, 7), COUNT(*) FROM {table} GROUP BY 1 ORDER BY 1").fetchall())
            assert list(per_month[table]) == wanted, f"{table}: months with rows {list(per_month[table])}"
            first = conn.execute(f"SELECT MIN({col}) FROM {table}").fetchone()[0]
            assert first < "2025-10-08", f"{table} starts {first}, not with the launch"
        # No month is nearly empty: after the launch month each has at least 30 % of October 2026's payments
        # (the business grows ~2.5-fold over the year; before issue 12 all but the last two months had none).
        last_full = per_month["payments"]["2026-10"]
        assert all(per_month["payments"][m] >= 0.3 * last_full for m in wanted[1:-1]), per_month["payments"]
        # The business grows: the last full month is busier than the first full one.
        assert per_month["payments"]["2026-10"] > 1.5 * per_month["payments"]["2025-11"]

        # Coherent: nobody and nothing before the launch; every movement after what it moves.
        assert conn.execute("SELECT MIN(joined_at) FROM members").fetchone()[0] >= "2025-10-01T00:00"
        assert conn.execute("SELECT COUNT(*) FROM cards c JOIN members m USING (member_id) "
                            "WHERE c.issued_at < m.joined_at").fetchone()[0] == 0
        for table in ("payments", "topups"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table} x JOIN cards c USING (card_id) "
                                "WHERE x.created_at < c.issued_at").fetchone()[0] == 0, table
        assert conn.execute("SELECT COUNT(*) FROM refunds r JOIN payments p USING (payment_id) "
                            "WHERE r.created_at < p.created_at").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM payments p LEFT JOIN cards c USING (card_id) "
                            "WHERE c.card_id IS NULL").fetchone()[0] == 0

        # Balances reconcile with the movements, for every card.
        off = [r for r in conn.execute(MOVEMENTS).fetchall() if r[1] != r[2]]
        assert off == [] and conn.execute("SELECT MIN(balance_krw) FROM cards").fetchone()[0] >= 0

        # Something for the dormant-cards report: open cards unused for 90 days that still hold 10,000 won.
        idle_since = (DEMO_END - timedelta(days=90)).isoformat()
        dormant = conn.execute(
            "SELECT COUNT(*) FROM cards WHERE status != 'closed' AND balance_krw >= 10000 "
            "AND COALESCE(last_used_at, issued_at) < ?", (idle_since,)).fetchone()[0]
        assert dormant >= 100

        total = sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)
    assert total == sum(stats.rows.values())
    # The demo exports all of it through Kafka on every `make run`: a few hundred thousand rows, not millions.
    assert 250_000 <= total <= 600_000, total
    print(f"\ndefault history: {total:,} rows in {stats.seconds:.1f} s ({stats.rows})")


def counts_by(conn, sql: str, params: tuple, key) -> Counter:
    return Counter(key(datetime.fromisoformat(ts)) for (ts,) in conn.execute(sql, params))


def disagreements(live: Counter, live_days: float, history: Counter, history_days: float, slack: float) -> list[str]:
    """The keys whose live rate per day is further from the history's than 4 Poisson standard deviations + `slack`×rate."""
    out = []
    for key in sorted(set(live) | set(history)):
        a, b = live[key] / live_days, history[key] / history_days
        sigma = math.sqrt(live[key] / live_days ** 2 + history[key] / history_days ** 2)
        if abs(a - b) > 4 * sigma + slack * b:
            out.append(f"{key}: live {a:.1f}/day, history {b:.1f}/day")
    return out


# The business grows ~8 % a month and the live week lies ~2½ weeks after the middle of the
# four history weeks it is compared with: live may run up to 10 % above them on top of the noise.
GROWTH_SLACK = 0.10
# One live day against the mean of four history days of that weekday: each calendar day is up to
# ±8 % busier or quieter than its weekday (ingest/demo_pace.py DAY_SWING) on top of growth and noise.
WEEKDAY_SLACK = GROWTH_SLACK + 0.16


def test_live_business_runs_at_the_pace_of_its_history(demo_history, tmp_path):
    """A week of live business (the simulator's own loop, a simulated clock ticking every 15 minutes)
    against the four weeks of history before it: per hour of the day, per weekday, per day."""
    path, _ = demo_history
    live_path = tmp_path / "live.sqlite"
    shutil.copy(path, live_path)
    engine = sa.create_engine(f"sqlite:///{live_path}")
    with engine.connect() as conn:
        business = load_business(conn, random.Random(99))  # what a restarted simulator does
    start = business.clock
    assert start == DEMO_END.timestamp()
    now, ticks = [start], [0]

    def wait(seconds: float) -> bool:  # the stop event's wait, in simulated time
        ticks[0] += 1
        if ticks[0] > 7 * 24 * 4:
            return True
        now[0] += seconds
        return False

    keep_business_moving(engine, business, clock=lambda: now[0], wait=wait, tick_seconds=900)
    engine.dispose()
    end = start + 7 * DAY_S
    assert now[0] == end

    live_window = (iso_seoul(start), iso_seoul(end))
    history_window = (iso_seoul(start - 28 * DAY_S), iso_seoul(start))
    with sqlite3.connect(live_path) as conn:
        assert conn.execute("SELECT reached_at FROM simulator_clock").fetchone()[0] == iso_seoul(end)
        for table in ("payments", "topups"):
            sql = f"SELECT created_at FROM {table} WHERE created_at >= ? AND created_at < ?"
            live_hours = counts_by(conn, sql, live_window, lambda t: t.hour)
            history_hours = counts_by(conn, sql, history_window, lambda t: t.hour)
            assert sum(live_hours.values()) > 1000, table
            assert disagreements(live_hours, 7, history_hours, 28, GROWTH_SLACK) == [], table
            live_days = counts_by(conn, sql, live_window, lambda t: t.weekday())
            history_days = counts_by(conn, sql, history_window, lambda t: t.weekday())
            assert disagreements(live_days, 1, history_days, 4, WEEKDAY_SLACK) == [], table
            # Negative controls: the same oracle rejects a pace 1.5× too fast and an hour pattern 3 h late.
            assert disagreements(Counter({h: int(n * 1.5) for h, n in live_hours.items()}), 7,
                                 history_hours, 28, GROWTH_SLACK)
            assert disagreements(Counter({(h + 3) % 24: n for h, n in live_hours.items()}), 7,
                                 history_hours, 28, GROWTH_SLACK)
            print(f"\n{table}: live {sum(live_hours.values()) / 7:.0f}/day, "
                  f"history {sum(history_hours.values()) / 28:.0f}/day")

        # Rarer events, per day over the week: cancellations and refunds (payments made before the
        # restart keep their fate), sign-ups (new cards), members leaving.
        rare = {
            "cancellations": "SELECT cancelled_at FROM payments WHERE cancelled_at >= ? AND cancelled_at < ?",
            "refunds": "SELECT created_at FROM refunds WHERE created_at >= ? AND created_at < ?",
            "cards issued": "SELECT issued_at FROM cards WHERE issued_at >= ? AND issued_at < ?",
            "members leaving": "SELECT deleted_at FROM members WHERE deleted_at >= ? AND deleted_at < ?",
        }
        live = Counter({k: sum(counts_by(conn, q, live_window, lambda t: 0).values()) for k, q in rare.items()})
        history = Counter({k: sum(counts_by(conn, q, history_window, lambda t: 0).values()) for k, q in rare.items()})
        assert all(live[k] > 0 for k in rare), live
        assert disagreements(live, 7, history, 28, GROWTH_SLACK) == []

        # Still one business: balances reconcile after a week of live changes.
        assert [r for r in conn.execute(MOVEMENTS).fetchall() if r[1] != r[2]] == []
        # Live rows never carry a time outside the stretch being lived (the exporter's watermark relies on it).
        for table in TABLES:
            late = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE updated_at > ?", (iso_seoul(end),)).fetchone()[0]
            assert late == 0, table


def test_the_pace_does_not_depend_on_the_tick():
    """Arrivals in 2-second ticks (the live simulator) and in one call (an hour at a time, the history) agree."""
    start, days, per_day = DEMO_END.timestamp(), 2, 20_000
    ticked, whole = Arrivals(random.Random(1)), Arrivals(random.Random(2))
    by_tick = [t for i in range(days * DAY_S // 2) for t in ticked.between(start + 2 * i, start + 2 * i + 2, per_day)]
    at_once = whole.between(start, start + days * DAY_S, per_day)
    assert all(start <= t < start + days * DAY_S for t in by_tick + at_once)
    hour = lambda ts: Counter(datetime.fromtimestamp(t, SEOUL).hour for t in ts)  # noqa: E731
    assert disagreements(hour(by_tick), days, hour(at_once), days, 0.0) == []
    # A Tuesday and Wednesday: between 0.85× and 1.15× an average day's 20,000 (weekday × day swing).
    assert 0.85 * per_day * days < len(by_tick) < 1.15 * per_day * days


def test_a_restarted_simulator_lives_through_the_time_it_was_stopped(tmp_path):
    """Stopped two days ago: `simulate --once` fills those two days at the history's pace, then the clock is now."""
    path = tmp_path / "data" / "demo.sqlite"
    path.parent.mkdir()
    (tmp_path / "pipeline.toml").write_text(f'[source]\nurl = "sqlite:///{path}"\n', encoding="utf-8")
    from ingest.config import load_config

    cfg = load_config(tmp_path / "pipeline.toml", needs=("source",), environ={})
    stopped = datetime.now(SEOUL) - timedelta(days=2)
    engine = sa.create_engine(cfg.source.url)
    create_demo_schema(engine)
    seed_history(engine, members_count=1500, seed=4, end=stopped)  # 13 months, like the demo
    assert run_simulator(cfg, once=True, seed=5) == 0
    engine.dispose()
    with sqlite3.connect(path) as conn:
        reached = datetime.fromisoformat(conn.execute("SELECT reached_at FROM simulator_clock").fetchone()[0])
        assert abs((datetime.now(SEOUL) - reached).total_seconds()) < 120
        sql = "SELECT created_at FROM payments WHERE created_at >= ? AND created_at < ?"
        gap = counts_by(conn, sql, (stopped.isoformat(), reached.isoformat()), lambda t: 0)
        before = counts_by(conn, sql, ((stopped - timedelta(days=14)).isoformat(), stopped.isoformat()), lambda t: 0)
        gap_days = (reached - stopped).total_seconds() / DAY_S
        assert gap[0] > 0
        assert disagreements(gap, gap_days, before, 14, WEEKDAY_SLACK) == []
        assert [r for r in conn.execute(MOVEMENTS).fetchall() if r[1] != r[2]] == []


def test_one_simulator_per_source(tmp_path):
    path = tmp_path / "demo.sqlite"
    (tmp_path / "pipeline.toml").write_text(f'[source]\nurl = "sqlite:///{path}"\n', encoding="utf-8")
    from ingest.config import load_config

    cfg = load_config(tmp_path / "pipeline.toml", needs=("source",), environ={})
    with open(f"{path}.simulator.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another simulator is running
        assert run_simulator(cfg, once=True, seed=1, members_count=50, days=2) == 1
    assert not path.exists() or sqlite3.connect(path).execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'payments'").fetchone()[0] == 0
    assert run_simulator(cfg, once=True, seed=1, members_count=50, days=2) == 0  # free again


def test_fast_timestamps_are_seoul_timestamps():
    """The writer formats times itself (for speed); it must write exactly what SeoulTimestamp would."""
    rng = random.Random(8)
    column = SeoulTimestamp()
    for _ in range(2000):
        t = rng.uniform(1.5e9, 2.0e9) + rng.choice((0.0, 0.5, 0.999_999_4, 0.000_000_6))
        moment = datetime.fromtimestamp(t, SEOUL)
        assert iso_seoul(t) == column.process_bind_param(moment, sqlite.dialect())
        assert naive_seoul(t) == column.process_bind_param(moment, mysql.dialect())


def test_a_refused_write_is_lived_again_from_the_source(tmp_path, caplog):
    """Another writer holds the SQLite file: the ticks meanwhile fail, the business reloads from the source
    and lives that time again — no hour goes missing, balances still reconcile."""
    path = tmp_path / "demo.sqlite"
    end = datetime(2026, 11, 24, 8, 0, tzinfo=SEOUL)
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.2})
    create_demo_schema(engine)
    seed_history(engine, members_count=2000, seed=6, end=end)
    with engine.connect() as conn:
        business = load_business(conn, random.Random(3))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # what the simulator's writes now meet
    now, ticks = [end.timestamp()], [0]

    def wait(seconds: float) -> bool:
        ticks[0] += 1
        if ticks[0] == 4:
            blocker.execute("COMMIT")  # the other writer is done after three refused ticks
        if ticks[0] > 8:
            return True
        now[0] += seconds
        return False

    with caplog.at_level("INFO", logger="ingest.simulate"):
        keep_business_moving(engine, business, wait=wait, clock=lambda: now[0], tick_seconds=3600)
    engine.dispose()
    blocker.close()
    refusals = [r for r in caplog.records if "refused a write" in r.getMessage()]
    assert [r.levelname for r in refusals] == ["INFO", "INFO", "WARNING"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT reached_at FROM simulator_clock").fetchone()[0] == iso_seoul(end.timestamp() + 8 * 3600)
        hours = counts_by(conn, "SELECT created_at FROM payments WHERE created_at >= ?", (end.isoformat(),), lambda t: t.hour)
        assert all(hours[h] > 0 for h in range(8, 16)), hours  # 08:00–16:00, the three refused hours included
        assert [r for r in conn.execute(MOVEMENTS).fetchall() if r[1] != r[2]] == []
