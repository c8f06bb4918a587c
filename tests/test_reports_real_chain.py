"""Every report on a warehouse built by the real chain: simulator → exporter → Kafka → worker → DuckDB.

Read through the app's own reader (dashboard/warehouse.py: Asia/Seoul, locked
configuration, positional binding). Expectations are computed with plain SQL
over the SQLite source the simulator wrote — a different engine and the rows
before any of the pipeline touched them.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from dashboard.report_runner import default_values, run_report, seoul_today
from dashboard.reports import BrokenReport, load_reports, parse_report
from dashboard.warehouse import Warehouse
from ingest.config import load_config
from tests.fixtures_export import HASH_KEY, load

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def chain(demo_sqlite, export_config, tmp_path):
    from ingest.export import run_exporter
    from ingest.worker import run_worker

    path = export_config(demo_sqlite)
    assert run_exporter(load(path), once=True, reset_watermarks=False) == 0
    cfg = load_config(path, needs=("kafka", "warehouse", "tables"), environ={"PII_HASH_KEY": HASH_KEY})
    assert run_worker(cfg, until_idle=True) == 0
    wh = Warehouse(load_config(path, needs=("warehouse",)))
    source = sqlite3.connect(demo_sqlite.removeprefix("sqlite:///"))
    yield wh, source
    source.close()


def test_reports_on_the_real_chain_agree_with_the_source(chain):
    wh, source = chain
    today = seoul_today()
    query = wh.query_uncached
    reports = load_reports(wh.config.app.reports_dir or ROOT / "sql")
    assert not [r for r in reports if isinstance(r, BrokenReport)]
    results = {}
    for r in reports:
        results[r.slug] = run_report(r, default_values(r, today), query)
    assert all(len(df.columns) for df in results.values())

    # The simulator keeps the balance rule, and the worker landed everything: no card is off.
    assert results["card_balance_mismatches"].empty
    recon = results["balance_reconciliation_daily"]
    assert recon["difference_krw"].iloc[-1] == 0

    # Top-ups per Seoul day and channel over the default 30 days, today included (SQLite text is local time, +09:00).
    start = (today - dt.timedelta(days=29)).isoformat()
    expected = {
        (day, channel): (n, amount)
        for day, channel, n, amount in source.execute(
            "SELECT substr(created_at, 1, 10), channel, count(*), sum(amount_krw) FROM topups "
            "WHERE substr(created_at, 1, 10) BETWEEN ? AND ? GROUP BY 1, 2", (start, today.isoformat()))
    }
    df = results["daily_topups"]
    got = {(str(d)[:10], c): (n, a) for d, c, n, a in zip(df["day"], df["channel"], df["topups"], df["amount_krw"])}
    assert got == expected and len(expected) > 20

    # Approved payments by merchant category and region.
    expected = {
        (cat, region): (n, amount)
        for cat, region, n, amount in source.execute(
            "SELECT m.category, m.region, count(*), sum(p.amount_krw) FROM payments p JOIN merchants m USING (merchant_id) "
            "WHERE p.status = 'approved' AND substr(p.created_at, 1, 10) BETWEEN ? AND ? GROUP BY 1, 2",
            (start, today.isoformat()))
    }
    df = results["payments_by_category_region"]
    assert {(c, r): (n, a) for c, r, n, a in zip(df["category"], df["region"], df["payments"], df["amount_krw"])} == expected

    # Cards on file (closed-and-deleted ones are tombstones) issued per month and product, last year.
    file = ROOT / "sql" / "cards_issued_monthly.sql"
    year_ago = parse_report(file.read_text(encoding="utf-8"), file)
    (lo, hi) = default_values(year_ago, today)["period"]
    expected = Counter({
        (month, product): n
        for month, product, n in source.execute(
            "SELECT substr(issued_at, 1, 7), product, count(*) FROM cards WHERE deleted_at IS NULL "
            "AND substr(issued_at, 1, 10) BETWEEN ? AND ? GROUP BY 1, 2", (lo.isoformat(), hi.isoformat()))
    })
    df = results["cards_issued_monthly"]
    assert Counter({(str(m)[:7], p): n for m, p, n in zip(df["month"], df["product"], df["cards"])}) == expected

    # Pseudonymised member ids (keyed hash on both tables) still join exactly as the originals did.
    hashed = query("SELECT count(*) AS n FROM cards c JOIN members m USING (member_id)", [])["n"].iloc[0]
    joined = source.execute(
        "SELECT count(*) FROM cards c JOIN members m USING (member_id) WHERE c.deleted_at IS NULL AND m.deleted_at IS NULL"
    ).fetchone()[0]
    assert hashed == joined > 0
