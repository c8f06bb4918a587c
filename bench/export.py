"""Exporter benchmark: rows/s from MariaDB, and rows examined per row sent.

    .venv/bin/python bench/export.py [--rows 1000000] [--chunk 5000]

Creates a scratch database on the local MariaDB (127.0.0.1:3306, root) with
the demo `payments` table, fills it with --rows rows in one INSERT … SELECT
from the SEQUENCE engine, starts its own embedded broker on a free port, and
runs one exporter pass (the real Exporter, acks=all) over the whole table.

Prints:
- rows/s for the pass (read + envelope + publish + acknowledged + watermark);
- rows examined per row sent, from the handler counters of the exporter's own
  MariaDB session (FLUSH STATUS before, SHOW SESSION STATUS after, the same
  connection id checked) — target ≤ 1.1, i.e. no scans beyond the chunk read.
The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=5000)
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

            src = connect(cfg.source)
            readers, _ = _describe_tables(cfg, src)
            exporter = Exporter(cfg, Publisher(cfg.kafka), WatermarkStore(cfg.exporter.state_path), readers)
            exporter.engine = src
            _ensure_topics(exporter, [cfg.kafka.topic_for("payments")])
            with src.connect() as conn:
                session = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
                conn.exec_driver_sql("FLUSH STATUS")
                before = handler_reads(conn)
            t0 = time.monotonic()
            sent = exporter.run_pass()["payments"]
            seconds = time.monotonic() - t0
            with src.connect() as conn:
                same = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar() == session
                examined = handler_reads(conn) - before
            exporter.publisher.close()
            src.dispose()
    finally:
        broker.stop()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()

    per_row = examined / max(sent, 1)
    print(f"export: {sent:,} rows in {seconds:.1f} s = {sent / seconds:,.0f} rows/s "
          f"(chunks of {args.chunk:,}, acks=all, one pass)")
    print(f"rows examined per row sent: {per_row:.3f} ({examined:,} handler reads"
          f"{'' if same else ', WARNING: pooled session changed — figure unreliable'}); "
          f"ratio to the {TARGET_EXAMINED_PER_SENT} target: {per_row / TARGET_EXAMINED_PER_SENT:.2f} "
          f"({'OK' if per_row <= TARGET_EXAMINED_PER_SENT else 'OVER'})")
    return 0 if sent == args.rows else 1


if __name__ == "__main__":
    sys.exit(main())
