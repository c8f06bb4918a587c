"""Is the query compiler as fast as a hand-written query? (not a timed test: prints figures)

    .venv/bin/python bench/questions.py [--payments 10000000] [--cards 1000000] [--merchants 10000] [--runs 25]

Builds a DuckDB file in the `live` schema with payments, cards, merchants,
members and refunds generated in SQL with range() (deterministic hashes,
timestamps over the last 400 days), then times one question — top 20
merchants by amount over the last 30 days, with payment counts, the previous
30 days beside them (value, previous, Δ, Δ%), the rest as "others": one
join, one grouping, a comparison and top N — compiled by
dashboard/questions/compile.py against a DuckDB query written by hand for
the same result. Both run on one read-only connection with the app's
settings (no external access, memory limit, Asia/Seoul), alternating,
uncached. The results are compared first, so the two really answer the same
question. Prints p50/p95 of each and the ratios to the limits:
p95 < 500 ms and compiler ≤ 2× hand-written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from dashboard.dates import preset_range, today_seoul  # noqa: E402
from dashboard.i18n import SEOUL  # noqa: E402
from dashboard.model import load_model  # noqa: E402
from dashboard.questions import Question, compile_summary  # noqa: E402
from dashboard.warehouse import Catalog, ColumnInfo, TableInfo  # noqa: E402
from ingest.config import load_config  # noqa: E402

BUILD = """
CREATE TEMP MACRO h(i, salt, n) AS CAST(hash(i, salt) % n AS BIGINT);
CREATE SCHEMA live;
CREATE TABLE live.merchants AS
SELECT i AS merchant_id, '가맹점 ' || i AS merchant_name,
       ['convenience','cafe','restaurant','transport','online','culture','retail'][1 + h(i, 'c', 7)] AS category,
       ['서울','경기','인천','부산','대구','대전','광주','제주'][1 + h(i, 'r', 8)] AS region,
       now() - to_seconds(CAST(h(i, 't', (800 * 86400)) AS BIGINT)) AS created_at,
       now() AS updated_at
FROM range(1, {merchants} + 1) AS r(i);
CREATE TABLE live.members AS
SELECT 'm' || i AS member_id, CAST(1950 + h(i, 'y', 58) AS BIGINT) AS birth_year,
       ['서울','경기','인천','부산','대구','대전','광주','제주'][1 + h(i, 'r', 8)] AS region,
       'active' AS status, now() - to_seconds(CAST(h(i, 't', (800 * 86400)) AS BIGINT)) AS joined_at,
       now() AS updated_at
FROM range(1, {members} + 1) AS r(i);
CREATE TABLE live.cards AS
SELECT i AS card_id, 'm' || (1 + h(i, 'm', {members})) AS member_id,
       ['standard','transit','gift','youth'][1 + h(i, 'p', 4)] AS product, 'active' AS status,
       CAST(h(i, 'b', 200) AS BIGINT) * 500 AS balance_krw,
       now() - to_seconds(CAST(h(i, 't', (800 * 86400)) AS BIGINT)) AS issued_at, now() AS updated_at
FROM range(1, {cards} + 1) AS r(i);
CREATE TABLE live.payments AS
SELECT i AS payment_id, CAST(1 + h(i, 'c', {cards}) AS BIGINT) AS card_id,
       CAST(1 + h(i, 'm', {merchants}) AS BIGINT) AS merchant_id,
       CAST(1 + h(i, 'a', 400) AS BIGINT) * 100 AS amount_krw,
       CASE WHEN h(i, 's', 10) = 0 THEN 'cancelled' ELSE 'approved' END AS status,
       now() - to_seconds(CAST(({payments} - i) * (400 * 86400) // {payments} AS BIGINT)) AS created_at,
       CAST(NULL AS TIMESTAMPTZ) AS cancelled_at, now() AS updated_at
FROM range(1, {payments} + 1) AS r(i);
CREATE TABLE live.refunds AS
SELECT payment_id AS refund_id, payment_id, card_id, merchant_id, amount_krw // 2 AS amount_krw,
       'customer_request' AS reason, created_at + INTERVAL 1 DAY AS created_at, updated_at
FROM live.payments WHERE status = 'approved' AND h(payment_id, 'f', 100) = 0;
CHECKPOINT;
"""

HAND_WRITTEN = """
WITH per AS (
    SELECT m.merchant_name,
           sum(p.amount_krw) FILTER (WHERE p.created_at >= $1) AS amount,
           count(*) FILTER (WHERE p.created_at >= $1) AS payments,
           sum(p.amount_krw) FILTER (WHERE p.created_at < $1) AS prev_amount,
           count(*) FILTER (WHERE p.created_at < $1) AS prev_payments
    FROM live.payments AS p
    LEFT JOIN live.merchants AS m ON m.merchant_id = p.merchant_id
    WHERE p.created_at >= $3 AND p.created_at < $2
    GROUP BY m.merchant_name
),
ranked AS (
    SELECT *, row_number() OVER (ORDER BY coalesce(amount, 0) DESC, merchant_name) AS rn FROM per
),
topped AS (
    SELECT CASE WHEN rn <= 20 THEN merchant_name END AS merchant_name, rn > 20 AS others,
           coalesce(sum(amount), 0) AS amount, coalesce(sum(payments), 0) AS payments,
           coalesce(sum(prev_amount), 0) AS prev_amount, coalesce(sum(prev_payments), 0) AS prev_payments
    FROM ranked GROUP BY ALL
)
SELECT merchant_name, others,
       CAST(amount AS DOUBLE) AS amount, CAST(prev_amount AS DOUBLE) AS prev_amount,
       CAST(amount - prev_amount AS DOUBLE) AS amount_delta,
       CAST(100.0 * (amount - prev_amount) / nullif(abs(prev_amount), 0) AS DOUBLE) AS amount_delta_pct,
       CAST(payments AS DOUBLE) AS payments, CAST(prev_payments AS DOUBLE) AS prev_payments,
       CAST(payments - prev_payments AS DOUBLE) AS payments_delta,
       CAST(100.0 * (payments - prev_payments) / nullif(abs(prev_payments), 0) AS DOUBLE) AS payments_delta_pct
FROM topped ORDER BY others, amount DESC, merchant_name
"""


def build(path: Path, payments: int, cards: int, merchants: int) -> None:
    started = time.perf_counter()
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'Asia/Seoul'")
        con.execute(BUILD.format(payments=payments, cards=cards, merchants=merchants, members=max(1, cards // 2)))
    print(f"built {path.name}: {payments:,} payments, {cards:,} cards, {merchants:,} merchants "
          f"in {time.perf_counter() - started:.1f} s")


def catalog(con: duckdb.DuckDBPyConnection) -> Catalog:
    rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'live' ORDER BY table_name, ordinal_position").fetchall()
    tables: dict[str, list[ColumnInfo]] = {}
    for table, column, dtype in rows:
        tables.setdefault(table, []).append(ColumnInfo(column, dtype))
    return Catalog(tables={t: TableInfo(t, "live", tuple(c), 0) for t, c in tables.items()})


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--db", type=Path, help="reuse (or create) this DuckDB file instead of a temporary one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench_questions.duckdb"
        if not path.exists():
            build(path, args.payments, args.cards, args.merchants)
        # The app's connection rules (dashboard/warehouse.py): read-only, no files, memory limit, Seoul time.
        con = duckdb.connect(str(path), read_only=True,
                             config={"enable_external_access": False, "memory_limit": args.memory_limit})
        con.execute("SET GLOBAL TimeZone = 'Asia/Seoul'")
        con.execute("SET lock_configuration = true")

        config = load_config(ROOT / "pipeline.toml", needs=())
        model = load_model(config, catalog(con), directory=ROOT / "models")
        q = Question("payments", ("payments.amount", "payments.payments"), ("merchants.merchant_name",),
                     time="payments.created_at", period="last_30_days", compare="previous", top=20)
        compiled = compile_summary(model, q)
        start, end = preset_range("last_30_days", today_seoul())
        cur_start = datetime.combine(start, datetime.min.time(), SEOUL)
        cur_end = datetime.combine(end + timedelta(days=1), datetime.min.time(), SEOUL)
        prev_start = cur_start - (cur_end - cur_start)
        hand_params = [cur_start, cur_end, prev_start]

        ours = con.execute(compiled.sql, list(compiled.params)).df()
        theirs = con.execute(HAND_WRITTEN, hand_params).df()
        same = (len(ours) == len(theirs) == 21
                and list(ours["merchants.merchant_name"].fillna("~")) == list(theirs["merchant_name"].fillna("~"))
                and all((ours[a] - theirs[b]).abs().max() < 1e-6 for a, b in (
                    ("payments.amount", "amount"), ("payments.amount__previous", "prev_amount"),
                    ("payments.payments", "payments"), ("payments.payments__delta_pct", "payments_delta_pct"))))
        print(f"model problems (tables this bench does not build): {len(model.problems)}")
        print(f"same result: {same} ({len(ours)} rows: top 20 + others)")
        if not same:
            print(ours.head(), theirs.head(), sep="\n")
            sys.exit(1)

        timings: dict[str, list[float]] = {"compiler": [], "hand-written": []}
        for _ in range(2):  # warm-up
            con.execute(compiled.sql, list(compiled.params)).df()
            con.execute(HAND_WRITTEN, hand_params).df()
        for _ in range(args.runs):
            for name, sql, params in (("compiler", compiled.sql, list(compiled.params)),
                                      ("hand-written", HAND_WRITTEN, hand_params)):
                started = time.perf_counter()
                con.execute(sql, params).df()
                timings[name].append((time.perf_counter() - started) * 1000)
        print(f"{'query':<14}{'p50 ms':>10}{'p95 ms':>10}")
        for name, values in timings.items():
            print(f"{name:<14}{statistics.median(values):>10.1f}{p95(values):>10.1f}")
        ours95, theirs95 = p95(timings["compiler"]), p95(timings["hand-written"])
        print(f"compiler p95 / 500 ms limit: {ours95 / 500:.2f}  "
              f"({'OK' if ours95 < 500 else 'OVER'})")
        print(f"compiler p95 / hand-written p95: {ours95 / theirs95:.2f} (limit 2.00, "
              f"{'OK' if ours95 <= 2 * theirs95 else 'OVER'})")
        con.close()


if __name__ == "__main__":
    main()
