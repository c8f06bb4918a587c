"""Ingest benchmark: worker end to end vs the raw kafka-python consume rate.

    .venv/bin/python bench/ingest.py [--messages 1000000] [--partitions 3] [--typed]

Starts its own embedded broker on a free port, produces N envelopes (~350
bytes each, a few versions per key, like real change streams), then measures
in the same run:

1. raw consume: kafka-python polls the topic and counts (nothing else);
2. the worker, as a subprocess with --until-idle, from its start to the
   commit of its last batch (read from _meta.batches), and its peak memory.

With --lake, the worker lands into a DuckLake (SQLite catalog, Parquet files
under the temp folder) and the file count before and after maintenance is printed.

With --typed, a schema record declaring every column's type goes to each
partition first, as the exporter sends it: the worker then checks every value
against its declared type (the product's normal path) instead of inferring.

Prints msgs/s for both, their ratio (target ≥ 0.45 on this 2-core machine)
and peak RSS (target < 1 GiB).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from ingest import warehouse_lake  # noqa: E402
from ingest.config import load_config  # noqa: E402
from ingest.broker import free_port, start_broker  # noqa: E402
from ingest.envelope import SCHEMA_KEY, encode_envelope, encode_key, encode_schema_record  # noqa: E402
from ingest.warehouse_target import open_for_reading  # noqa: E402

KST = timezone(timedelta(hours=9))
LOG = ROOT / "bench" / "out" / "ingest-worker.log"
TOPIC_PREFIX = "bench"
TABLE = "transactions"
TARGET = 0.45
DECLARED = {"tx_id": "BIGINT", "card_id": "INTEGER", "merchant_id": "INTEGER", "amount_krw": "BIGINT",
            "kind": "VARCHAR", "channel": "VARCHAR", "status": "VARCHAR",
            "created_at": "TIMESTAMP WITH TIME ZONE", "updated_at": "TIMESTAMP WITH TIME ZONE"}


def topic_producer(bootstrap: str, table: str, partitions: int) -> KafkaProducer:
    """Create the table's topic with `partitions` partitions; a producer that batches like the exporter."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(f"{TOPIC_PREFIX}.{table}", partitions, 1)])
    admin.close()
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)


def produce(bootstrap: str, n: int, partitions: int, typed: bool) -> int:
    """N envelopes of `transactions` (a third as many keys: a few versions each); returns their average size."""
    topic = f"{TOPIC_PREFIX}.{TABLE}"
    producer = topic_producer(bootstrap, TABLE, partitions)
    if typed:
        record = encode_schema_record(TABLE, ["tx_id"], DECLARED, datetime.now(KST).isoformat())
        for p in range(partitions):
            producer.send(topic, key=SCHEMA_KEY, value=record, partition=p).get(timeout=30)
    rnd = random.Random(1)
    base = datetime(2026, 10, 1, tzinfo=KST)
    keys = max(1, n // 3)
    size = 0
    for i in range(n):
        tx = rnd.randrange(keys)
        when = (base + timedelta(seconds=i)).isoformat(timespec="microseconds")
        row = {
            "tx_id": tx, "card_id": rnd.randrange(100_000), "merchant_id": rnd.randrange(5_000),
            "amount_krw": rnd.randrange(1_000, 300_000, 100), "kind": rnd.choice(("payment", "topup", "refund")),
            "channel": rnd.choice(("card", "bank_transfer", "convenience_store", "mobile")),
            "status": "approved", "created_at": when, "updated_at": when,
        }
        value = encode_envelope(TABLE, "upsert", {"tx_id": tx}, row, when, when)
        size += len(value)
        producer.send(topic, key=encode_key({"tx_id": tx}), value=value)
    producer.flush()
    producer.close()
    return size // max(n, 1)


def raw_consume(bootstrap: str, n: int, partitions: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_poll_records=5000, fetch_max_wait_ms=200)
    tps = [TopicPartition(f"{TOPIC_PREFIX}.{TABLE}", p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    count = 0
    start = time.perf_counter()
    while count < n:
        for recs in consumer.poll(timeout_ms=1000, max_records=5000).values():
            count += len(recs)
    seconds = time.perf_counter() - start
    consumer.close()
    return count / seconds


@dataclass(frozen=True)
class WorkerRun:
    rate: float  # messages per second, from the worker's start to its last commit
    peak_kib: int  # the largest child process so far (ru_maxrss)
    messages: int  # as _meta.batches counts them
    config: Path  # the pipeline.toml it ran with (its [warehouse] for reading afterwards)


def run_worker(bootstrap: str, workdir: Path, catalog: str | None = None,
               tables: Mapping[str, str] | None = None) -> WorkerRun:
    """One worker with --until-idle over `tables` (name → primary key column), into `workdir`'s
    warehouse.duckdb, or into a DuckLake when `catalog` is set (its data files under workdir/lake/files)."""
    tables = tables or {TABLE: "tx_id"}
    config = workdir / "pipeline.toml"
    lake_keys = f'catalog = "{catalog}"\ndata_path = "lake/files"\n' if catalog else ""
    table_keys = "".join(f'[tables.{name}]\nprimary_key = ["{key}"]\n' for name, key in tables.items())
    config.write_text(f"""
[kafka]
bootstrap_servers = "{bootstrap}"
topic_prefix = "{TOPIC_PREFIX}"
[warehouse]
path = "warehouse.duckdb"
{lake_keys}[worker]
max_batch_rows = 50000
max_batch_seconds = 5
idle_exit_seconds = 3
{table_keys}""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start_wall = datetime.now(timezone.utc)
    proc = subprocess.run([sys.executable, "-m", "ingest", "worker", "--config", str(config), "--until-idle"],
                          env=env, cwd=workdir, capture_output=True, text=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.write_text(proc.stderr, encoding="utf-8")  # one line per batch: read and landing seconds
    if proc.returncode != 0:
        raise SystemExit(f"worker failed: {proc.stderr[-2000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open_for_reading(load_config(config, needs=("warehouse",)).warehouse) as con:
        last_commit, messages = con.execute("SELECT max(committed_at), sum(messages) FROM _meta.batches").fetchone()
    return WorkerRun(messages / (last_commit - start_wall).total_seconds(), peak_kib, int(messages), config)


def maintain_lake(config: Path) -> tuple[dict[str, int], dict[str, int], float]:
    """Data files per table before and after `warehouse_lake.maintain` on the config's lake, and its seconds."""
    warehouse = load_config(config, needs=("warehouse",)).warehouse
    with warehouse_lake.open_lake(warehouse, read_only=True) as con:
        before = warehouse_lake.file_counts(con)
    figures = warehouse_lake.maintain(warehouse, log=lambda _m: None)
    with warehouse_lake.open_lake(warehouse, read_only=True) as con:
        after = warehouse_lake.file_counts(con)
    return before, after, figures["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--typed", action="store_true", help="declare the column types first (schema records)")
    ap.add_argument("--lake", action="store_true", help="land into a DuckLake (SQLite catalog, Parquet files) instead of one DuckDB file")
    args = ap.parse_args()
    total = args.messages + (args.partitions if args.typed else 0)
    broker = start_broker(free_port())
    try:
        t = time.perf_counter()
        avg = produce(broker.bootstrap, args.messages, args.partitions, args.typed)
        print(f"produced {args.messages:,} envelopes (~{avg} bytes each{', types declared' if args.typed else ''}) "
              f"in {time.perf_counter() - t:.1f} s")
        raw = raw_consume(broker.bootstrap, total, args.partitions)
        print(f"raw kafka-python consume : {raw:>10,.0f} msgs/s")
        with tempfile.TemporaryDirectory() as tmp:
            run = run_worker(broker.bootstrap, Path(tmp), catalog="sqlite:lake/catalog.sqlite" if args.lake else None)
            if args.lake:
                before, after, seconds = maintain_lake(run.config)
                print(f"lake data files          : {sum(before.values()):>10,} after the load → "
                      f"{sum(after.values()):,} after maintenance ({seconds:.1f} s)")
        rate, peak_kib = run.rate, run.peak_kib
        assert run.messages == total, f"worker landed {run.messages} of {total}"
        ratio = rate / raw
        where = "into a DuckLake" if args.lake else "into one DuckDB file"
        print(f"worker ({where}) end to end: {rate:>10,.0f} msgs/s   ratio to raw {ratio:.2f} "
              f"(target ≥ {TARGET}: {ratio / TARGET:.2f}× the floor)")
        print(f"worker peak memory       : {peak_kib / 1024:>10,.0f} MiB   ratio to limit {peak_kib / 1024 / 1024:.2f} (limit 1 GiB)")
        print(f"worker log (per batch)   : {LOG.relative_to(ROOT)}")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
