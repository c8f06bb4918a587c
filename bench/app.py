"""How fast does Explore answer, and how fast are downloads? (not a timed test: prints figures)

    .venv/bin/python bench/app.py [--rows 10000000] [--changes 40] [--export-rows 1000000]

Builds a synthetic `transactions` table (10M rows by default, generated with
DuckDB SQL, time-ordered as the worker lands it, with the worker's system
columns, tombstones and the `live` view) in a temporary DuckDB file, then:

1. filter → data: for a series of filter changes (date range, categories,
   amount range), the app's path for the table + chart — the count, the
   chart's aggregate and the first 10,000 rows, each through
   dashboard.warehouse (fresh read-only connection, settings, time-out guard,
   Arrow → pandas), uncached — against the same SQL on one open DuckDB
   connection (the floor). Target: p95 < 300 ms and ≤ 2× raw.
2. downloads of 1M rows: CSV (query → Arrow → labelled like the screen →
   csv_bytes with BOM, the path a click takes: downloads.file_bytes) against
   DuckDB's own `COPY (…) TO 'x.csv'`; and XLSX. Target: CSV ≤ 1.5× COPY.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from dashboard import charts, downloads, filters, i18n, tables  # noqa: E402
from dashboard.filters import Filter  # noqa: E402
from dashboard.warehouse import Warehouse  # noqa: E402
from ingest.config import load_config  # noqa: E402

CATEGORIES = ["convenience", "cafe", "restaurant", "transport", "online", "culture", "retail"]
START = date(2026, 1, 1)
DAYS = 330

BUILD_SQL = f"""
SET TimeZone = 'Asia/Seoul';
CREATE SCHEMA IF NOT EXISTS live;
CREATE TABLE main.transactions AS
SELECT i AS tx_id,
       (hash(i) % 200000)::BIGINT AS card_id,
       ['topup', 'payment', 'refund'][1 + (hash(i * 7) % 3)::INTEGER] AS kind,
       {CATEGORIES!r}[1 + (hash(i * 13) % 7)::INTEGER] AS category,
       ['서울', '경기', '인천', '부산', '대구', '대전', '광주', '제주'][1 + (hash(i * 19) % 8)::INTEGER] AS region,
       (100 * (1 + hash(i * 17) % 1000))::BIGINT AS amount_krw,
       TIMESTAMPTZ '{START} 00:00:00+09' + to_microseconds((i * ({DAYS} * 86400000000 // $rows))::BIGINT) AS created_at,
       TIMESTAMPTZ '{START} 00:00:00+09' + to_microseconds((i * ({DAYS} * 86400000000 // $rows))::BIGINT) AS updated_at,
       TIMESTAMPTZ '{START} 00:00:00+09' + to_microseconds((i * ({DAYS} * 86400000000 // $rows))::BIGINT) AS _source_ts,
       now() AS _ingested_at,
       i % 100 = 0 AS _deleted,
       (i % 3)::INTEGER AS _kafka_partition,
       i AS _kafka_offset
FROM range($rows) t(i);
CREATE VIEW live.transactions AS
SELECT * EXCLUDE (_deleted, _kafka_partition, _kafka_offset) FROM main.transactions WHERE NOT _deleted;
CHECKPOINT;
"""


def build(path: Path, rows: int) -> None:
    con = duckdb.connect(str(path))
    try:
        for stmt in BUILD_SQL.replace("$rows", str(rows)).split(";\n"):
            if stmt.strip():
                con.execute(stmt)
    finally:
        con.close()


def random_filters(rnd: random.Random) -> list[Filter]:
    span = rnd.choice([1, 7, 30, 30, 90])
    start = START + timedelta(days=rnd.randrange(0, DAYS - span))
    out = [Filter("created_at", "period", (f"{start}..{start + timedelta(days=span - 1)}",))]
    if rnd.random() < 0.7:
        out.append(Filter("category", "in", tuple(rnd.sample(CATEGORIES, rnd.randint(1, 3)))))
    if rnd.random() < 0.3:
        lo = rnd.randrange(0, 50000, 1000)
        out.append(Filter("amount_krw", "range", (lo, lo + rnd.randrange(1000, 50000, 1000))))
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def main() -> int:
    with i18n.language("ko"):  # no Streamlit session here: fix the language the labels use
        return run()


def run() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--export-rows", type=int, default=1_000_000)
    ap.add_argument("--skip-xlsx", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_app_") as tmp:
        tmp = Path(tmp)
        db = tmp / "warehouse.duckdb"
        t0 = time.perf_counter()
        build(db, args.rows)
        print(f"built transactions: {args.rows:,} rows in {time.perf_counter() - t0:.1f} s "
              f"({db.stat().st_size / 1e6:.0f} MB)")
        (tmp / "pipeline.toml").write_text(f'[warehouse]\npath = "{db}"\n[app]\nmemory_limit = "2GB"\n', encoding="utf-8")
        wh = Warehouse(load_config(tmp / "pipeline.toml", needs=("warehouse",)))
        info = wh.catalog().table("transactions")
        cap = wh.app.max_display_rows
        spec = charts.ChartSpec(kind="stacked_bar", x="created_at", bucket="day", agg="sum", y="amount_krw", color="category")

        def plan(fs):
            where, params = filters.where_clause(fs, info)
            chart_sql, chart_params = charts.chart_query(spec, info, where, params)
            return [(filters.count_sql(info, where), params), (chart_sql, chart_params),
                    filters.rows_query(info, where, params, None, False, cap)]

        rnd = random.Random(42)
        changes = [plan(random_filters(rnd)) for _ in range(args.changes + 3)]

        # The floor: the same SQL on one open connection. It runs in its own phase: DuckDB shares
        # one instance per file and process, and the app's connections lock their configuration.
        raw = duckdb.connect(str(db), read_only=True, config={"enable_external_access": False, "memory_limit": "2GB"})
        raw.execute("SET search_path = 'live,main'; SET TimeZone = 'Asia/Seoul'")
        raw_ms = []
        for i, queries in enumerate(changes):
            t = time.perf_counter()
            for sql, p in queries:
                raw.execute(sql, p).to_arrow_table()
            if i >= 3:  # the first three warm the OS cache
                raw_ms.append((time.perf_counter() - t) * 1000)
        raw.close()

        # The same, but opening the file per filter change as every reader must (the worker needs
        # the file back between batches, docs/design.md): a cold DuckDB instance each time, no app code.
        reopen_ms = []
        for i, queries in enumerate(changes):
            t = time.perf_counter()
            con = duckdb.connect(str(db), read_only=True, config={"enable_external_access": False, "memory_limit": "2GB"})
            con.execute("SET search_path = 'live,main'; SET TimeZone = 'Asia/Seoul'")
            for sql, p in queries:
                con.execute(sql, p).to_arrow_table()
            con.close()
            if i >= 3:
                reopen_ms.append((time.perf_counter() - t) * 1000)

        app_ms, figure_ms, shown = [], [], []
        for i, queries in enumerate(changes):
            t = time.perf_counter()
            with wh.reading():  # what a page run does: one fresh read-only connection, settings, time-out guard
                frames = [wh.query_uncached(sql, p) for sql, p in queries]  # … and Arrow → pandas
            took = time.perf_counter() - t
            t = time.perf_counter()
            charts.figure(frames[1], spec, {})  # the plotly object the page draws (reported apart: not DuckDB work)
            if i >= 3:
                app_ms.append(took * 1000)
                figure_ms.append((time.perf_counter() - t) * 1000)
                shown.append(int(frames[0].iat[0, 0]))
        p50a, p95a, p50r, p95r = pct(app_ms, .5), pct(app_ms, .95), pct(raw_ms, .5), pct(raw_ms, .95)
        print(f"\nfilter → data (count + chart aggregate + {cap:,} rows), {args.changes} changes, "
              f"matching rows median {int(statistics.median(shown)):,}")
        print(f"  app (dashboard.warehouse, uncached)             p50 {p50a:7.1f} ms   p95 {p95a:7.1f} ms")
        print(f"  raw, one open connection                        p50 {p50r:7.1f} ms   p95 {p95r:7.1f} ms")
        p50o, p95o = pct(reopen_ms, .5), pct(reopen_ms, .95)
        print(f"  raw, file opened per change (the readers' rule)  p50 {p50o:7.1f} ms   p95 {p95o:7.1f} ms"
              f"  → app/that p95 {p95a / p95o:.2f}×, p50 {p50a / p50o:.2f}×")
        print(f"  (+ building the plotly figure: p50 {pct(figure_ms, .5):.1f} ms, p95 {pct(figure_ms, .95):.1f} ms)")
        print(f"  p95 {p95a:.0f} ms vs target 300 ms → {'OK' if p95a < 300 else 'MISSED'} ({p95a / 300:.2f} of target)")
        print(f"  app/raw (one open connection) p95 {p95a / p95r:.2f}×, p50 {p50a / p50r:.2f}× vs target ≤ 2× → "
              f"{'OK' if p95a / p95r <= 2 else 'MISSED'}")

        # ── downloads of N rows ────────────────────────────────────────────
        n = args.export_rows
        export_sql, _ = filters.rows_query(info, "", [], None, False, n, local_time=True)
        columns = tables.views_for_table(info)  # what the screen shows: codes become words in the file too
        copy_con = duckdb.connect(str(db), read_only=True)  # COPY needs file access, which app connections lack
        copy_con.execute("SET search_path = 'live,main'; SET TimeZone = 'Asia/Seoul'")
        copy_s = []
        for _ in range(3):
            t = time.perf_counter()
            copy_con.execute(f"COPY ({export_sql}) TO '{tmp / 'copy.csv'}' (HEADER)")
            copy_s.append(time.perf_counter() - t)
        copy_con.close()
        csv_s, size = [], 0
        for _ in range(3):
            t = time.perf_counter()
            data = downloads.file_bytes("csv", wh.query_arrow(export_sql), columns)
            (tmp / "app.csv").write_bytes(data)
            csv_s.append(time.perf_counter() - t)
            size = len(data)
        copy_best, csv_best = min(copy_s), min(csv_s)
        print(f"\ndownload of {n:,} rows")
        print(f"  DuckDB COPY … TO csv   {copy_best:6.2f} s  ({(tmp / 'copy.csv').stat().st_size / 1e6:.0f} MB)")
        print(f"  app CSV (BOM, labelled) {csv_best:5.2f} s  ({size / 1e6:.0f} MB) → {csv_best / copy_best:.2f}× COPY "
              f"vs target ≤ 1.5× → {'OK' if csv_best / copy_best <= 1.5 else 'MISSED'}")
        if not args.skip_xlsx:
            t = time.perf_counter()
            table = wh.query_arrow(export_sql)
            fetched = time.perf_counter() - t
            data = downloads.file_bytes("xlsx", table, columns, filters_text=["bench: no filters"], title="transactions")
            xlsx_s = time.perf_counter() - t
            print(f"  app XLSX               {xlsx_s:6.2f} s  ({len(data) / 1e6:.0f} MB; query {fetched:.2f} s) "
                  f"→ {xlsx_s / copy_best:.1f}× COPY (no target; Excel files are written cell by cell)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
