"""Exporter benchmark: rows/s from MariaDB, and what the backfill costs the source.

    .venv/bin/python bench/export.py [--rows 1000000] [--chunk 5000] [--ceiling 20000]

Creates a scratch database on the local MariaDB (127.0.0.1:3306, root) with
the demo `payments` table, fills it with --rows rows in one INSERT … SELECT
from the SEQUENCE engine, starts its own embedded broker on a free port, and
runs one exporter pass (the real Exporter, acks=all) over the whole table.

Prints:
- rows/s for the pass (read + envelope + publish + acknowledged + watermark);
- rows examined per row sent, from the handler counters of the exporter's own
  MariaDB session (FLUSH STATUS before, SHOW SESSION STATUS after, the same
  connection id checked) — target ≤ 1.1, i.e. no scans beyond the chunk read.

Then the source's cost, for a backfill without and with the
`max_rows_per_second` ceiling (--ceiling): rows examined per row sent, the
exporter's read time p95, and the MariaDB server's CPU seconds (utime+stime of
the mariadbd process from /proc, read before and after — the server is
local; other clients of it add noise). Last, one completeness pass over the
whole table: its time, rows examined and CPU per million rows counted.
The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from ingest.broker import free_port, start_broker  # noqa: E402
from ingest.config import load_config  # noqa: E402
from ingest.export import Exporter, Publisher, _ensure_topics, _describe_tables  # noqa: E402
from ingest.governor import limit_statement_time  # noqa: E402
from ingest.simulate import create_demo_schema  # noqa: E402
from ingest.source import connect  # noqa: E402
from ingest.watermarks import WatermarkStore  # noqa: E402

TARGET_EXAMINED_PER_SENT = 1.1
HANDLER_READS = ("Handler_read_first", "Handler_read_key", "Handler_read_last", "Handler_read_next",
                 "Handler_read_prev", "Handler_read_rnd", "Handler_read_rnd_next")

CONFIG = """
[source]
url = "mysql+pymysql://root@127.0.0.1:3306/{db}"
[kafka]
bootstrap_servers = "127.0.0.1:{port}"
topic_prefix = "bench{tag}"
partitions = 3
[exporter]
interval_seconds = 60
chunk_rows = {chunk}
overlap_seconds = 5
state_path = "{tmp}/exporter_state.json"
[tables.payments]
primary_key = ["payment_id"]
watermark = "updated_at"
[tables.payments.columns]
payment_id = "id"
card_id = "card"
merchant_id = "merchant"
amount_krw = "amount"
status = "status"
created_at = "paid at"
cancelled_at = "cancelled at"
updated_at = "changed"
"""


def handler_reads(conn) -> int:
    rows = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Handler_read%%'").fetchall()
    status = {k: int(v) for k, v in rows}
    return sum(status[k] for k in HANDLER_READS)


def server_cpu_seconds(conn) -> float | None:
    """CPU seconds the local MariaDB server process has used (utime + stime), or None when not readable."""
    try:
        pid = int(Path(conn.exec_driver_sql("SELECT @@pid_file").scalar()).read_text().strip())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


def source_cost(cfg, ceiling: float, run) -> dict:
    """Run `run(exporter)` on a fresh exporter (own state file) and measure what it cost the source."""
    cfg = dataclasses.replace(cfg, exporter=dataclasses.replace(
        cfg.exporter, max_rows_per_second=ceiling, state_path=Path(str(cfg.exporter.state_path) + f".{ceiling:g}")))
    src = connect(cfg.source)
    limit_statement_time(src, cfg.exporter.statement_timeout_seconds)
    readers, _ = _describe_tables(cfg, src)
    exporter = Exporter(cfg, Publisher(cfg.kafka), WatermarkStore(cfg.exporter.state_path), readers)
    exporter.engine = src
    _ensure_topics(exporter, [cfg.kafka.topic_for("payments")])
    with src.connect() as conn:
        session = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        conn.exec_driver_sql("FLUSH STATUS")
        before = handler_reads(conn)
        cpu0 = server_cpu_seconds(conn)
    t0 = time.monotonic()
    units = run(exporter)
    seconds = time.monotonic() - t0
    with src.connect() as conn:
        same = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar() == session
        examined = handler_reads(conn) - before
        cpu1 = server_cpu_seconds(conn)
    reads = exporter.query_seconds.get("payments", [])
    exporter.publisher.close()
    src.dispose()
    return {"units": units, "seconds": seconds, "examined": examined, "same_session": same,
            "p95": p95(reads), "reads": len(reads), "cpu": None if cpu0 is None or cpu1 is None else cpu1 - cpu0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--ceiling", type=float, default=20_000, help="max_rows_per_second for the second backfill")
    args = ap.parse_args()

    db = "dd_bench_" + uuid.uuid4().hex[:8]
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
    broker = start_broker(free_port())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pipeline.toml"
            path.write_text(CONFIG.format(db=db, port=broker.port, tag=uuid.uuid4().hex[:6], chunk=args.chunk, tmp=tmp))
            cfg = load_config(path, needs=("source", "kafka", "exporter", "tables"), environ={})

            engine = sa.create_engine(cfg.source.url)
            create_demo_schema(engine)
            t0 = time.monotonic()
            with engine.begin() as conn:
                conn.exec_driver_sql(f"""
                    INSERT INTO payments (payment_id, card_id, merchant_id, amount_krw, status, created_at, cancelled_at, updated_at)
                    SELECT seq, MOD(seq * 7919, 25000) + 1, MOD(seq * 31, 1600) + 1, 1000 + MOD(seq * 13, 400) * 100,
                           IF(MOD(seq, 33) = 0, 'cancelled', 'approved'),
                           TIMESTAMP'2026-09-01 00:00:00' + INTERVAL (seq * 7) SECOND,
                           IF(MOD(seq, 33) = 0, TIMESTAMP'2026-09-01 00:10:00' + INTERVAL (seq * 7) SECOND, NULL),
                           TIMESTAMP'2026-09-01 00:00:00' + INTERVAL (seq * 7 - MOD(seq, 3)) SECOND
                    FROM seq_1_to_{args.rows}""")
                conn.exec_driver_sql("ANALYZE TABLE payments")
            engine.dispose()
            print(f"source: {args.rows:,} payments generated in {time.monotonic() - t0:.1f} s")

            free = source_cost(cfg, 0.0, lambda e: e.run_pass()["payments"])
            capped = source_cost(cfg, args.ceiling, lambda e: e.run_pass()["payments"])

            def count_all(e: Exporter) -> int:  # reuses the first backfill's state file: its watermark is the end
                e.cfg = dataclasses.replace(e.cfg, exporter=dataclasses.replace(e.cfg.exporter, completeness_days=400))
                counts = e.completeness_pass()["payments"]
                e.query_seconds["payments"] = [counts.query_seconds]
                return sum(counts.days.values())

            complete = source_cost(cfg, 0.0, count_all)
    finally:
        broker.stop()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()

    ok = True
    for name, r in (("backfill, no ceiling", free), (f"backfill, ceiling {args.ceiling:,.0f} rows/s", capped)):
        per_row = r["examined"] / max(r["units"], 1)
        ok &= r["units"] == args.rows and per_row <= TARGET_EXAMINED_PER_SENT
        cpu = "n/a" if r["cpu"] is None else f"{r['cpu']:.1f} s"
        print(f"{name}: {r['units']:,} rows in {r['seconds']:.1f} s = {r['units'] / r['seconds']:,.0f} rows/s "
              f"(chunks of {args.chunk:,}, acks=all); rows examined per row sent {per_row:.3f} "
              f"({'OK' if per_row <= TARGET_EXAMINED_PER_SENT else 'OVER'} vs {TARGET_EXAMINED_PER_SENT}); "
              f"read p95 {1000 * r['p95']:.1f} ms over {r['reads']:,} reads; MariaDB CPU {cpu}"
              f"{'' if r['same_session'] else ' (WARNING: pooled session changed — examined figure unreliable)'}")
    if args.ceiling:
        print(f"ceiling check: expected ≈ {args.rows / args.ceiling:.1f} s, took {capped['seconds']:.1f} s")
    per_million = 1e6 / max(complete["units"], 1)
    cpu = "n/a" if complete["cpu"] is None else f"{complete['cpu'] * per_million:.2f} s"
    print(f"completeness pass: {complete['units']:,} rows counted per day in {complete['seconds']:.2f} s; per million "
          f"rows: {complete['seconds'] * per_million:.2f} s, {complete['examined'] * per_million / 1e6:.2f} M rows "
          f"examined, MariaDB CPU {cpu}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
