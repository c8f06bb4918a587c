"""Two workers vs one on a lake, and a model for N workers on N machines.

    .venv/bin/python bench/workers.py [--messages 200000] [--partitions 6] [--catalog postgres|sqlite]

Starts its own embedded broker, produces N typed envelopes (bench/ingest.py's
stream) and lands them twice into fresh lakes: once with one worker, once with
two (`--worker-id a`, `--worker-id b`, both `--until-idle`). For each run it
prints the wall time (first start → last commit), the workers' CPU seconds,
the landing commits that met another commit and were retried, and the batches
dropped because their partitions moved.

This machine has 2 cores and one worker already keeps both busy (fetch,
decode and landing threads), so two workers here share the same CPU: the
measured ratio says little about two machines. The model below says more:

    per worker, CPU per message   c = worker CPU seconds / messages  (1 worker)
    serial commit time per batch  s = landing seconds per batch      (_meta.batches.seconds)
    conflicts per commit          k = retried commits / commits      (2 workers)

Every two concurrent commits conflict (DuckLake checks per table, and every
batch rewrites `_meta` rows), so commits are serial: at most 1 / s batches a
second, each retry costing one landing. With batches of B messages,

    throughput(N) ≈ min( N / c ,  B / (s · (1 + k · (N − 1))) )

N workers on N machines scale with N until the serial commits saturate.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from ingest import warehouse_lake  # noqa: E402
from ingest.broker import free_port, start_broker  # noqa: E402
from ingest.config import load_config  # noqa: E402
from ingest.warehouse_target import open_for_reading  # noqa: E402

from bench.ingest import produce  # noqa: E402  (bench/ingest.py's stream; as bench.ingest it shadows nothing)

TOPIC_PREFIX = "bench"
BATCH_ROWS = 20_000
LEASE_SECONDS = 6


def new_catalog(kind: str, workdir: Path) -> tuple[str, callable]:
    """A fresh, empty catalog: (the [warehouse] catalog value, what drops it afterwards)."""
    if kind == "sqlite":
        return f"sqlite:{workdir / 'catalog.sqlite'}", lambda: None
    name = "bench_" + uuid.uuid4().hex[:10]
    con = duckdb.connect()
    warehouse_lake._install(con, "postgres")
    con.execute("ATTACH 'dbname=postgres host=127.0.0.1 port=5432 user=postgres' AS pg (TYPE postgres)")
    con.execute(f"CALL postgres_execute('pg', 'CREATE DATABASE {name}', use_transaction => false)")

    def drop() -> None:
        con.execute(f"CALL postgres_execute('pg', 'DROP DATABASE IF EXISTS {name} WITH (FORCE)', use_transaction => false)")
        con.close()

    return f"postgres:dbname={name} host=127.0.0.1 port=5432 user=postgres", drop


def run(bootstrap: str, workdir: Path, catalog: str, workers: int) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "pipeline.toml"
    config.write_text(f"""
[kafka]
bootstrap_servers = "{bootstrap}"
topic_prefix = "{TOPIC_PREFIX}"
[warehouse]
path = "warehouse.duckdb"
catalog = "{catalog}"
data_path = "files"
[worker]
max_batch_rows = {BATCH_ROWS}
max_batch_seconds = 2
idle_exit_seconds = 5
lease_seconds = {LEASE_SECONDS}
[tables.transactions]
primary_key = ["tx_id"]
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("INGEST_FAILPOINT", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = datetime.now(timezone.utc)
    procs = [subprocess.Popen([sys.executable, "-m", "ingest", "worker", "--config", str(config), "--until-idle",
                               "--worker-id", f"w{i}"], env=env, cwd=workdir, stderr=subprocess.PIPE, text=True)
             for i in range(workers)]
    logs = [p.communicate()[1] for p in procs]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if any(p.returncode != 0 for p in procs):
        raise SystemExit("a worker failed:\n" + "\n".join(log[-1500:] for log in logs))
    (workdir / "workers.log").write_text("\n".join(logs), encoding="utf-8")
    with open_for_reading(load_config(config, needs=("warehouse",)).warehouse) as con:
        last, messages, commits, landing = con.execute(
            "SELECT max(committed_at), sum(messages), count(*), sum(seconds) FROM _meta.batches WHERE messages > 0"
        ).fetchone()
    conflicts = sum(int(n) for log in logs for n in re.findall(r"(\d+) landing commit\(s\) met another commit", log))
    dropped = sum(int(n) for log in logs for n in re.findall(r"(\d+) batch\(es\) dropped", log))
    return {
        "workers": workers, "messages": int(messages), "wall": (last - start).total_seconds(),
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "commits": int(commits), "landing_per_commit": float(landing) / max(1, commits),
        "conflicts": conflicts, "dropped": dropped,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--catalog", choices=("postgres", "sqlite"), default="postgres")
    args = ap.parse_args()

    broker = start_broker(free_port())
    results = []
    try:
        size = produce(broker.bootstrap, args.messages, args.partitions, typed=True)
        print(f"{args.messages:,} messages of ~{size} bytes on {args.partitions} partitions; catalog {args.catalog}")
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            for n in (1, 2):
                catalog, drop = new_catalog(args.catalog, Path(tmp) / f"n{n}")
                try:
                    results.append(run(broker.bootstrap, Path(tmp) / f"n{n}", catalog, n))
                finally:
                    drop()
    finally:
        broker.stop()

    for r in results:
        print(f"{r['workers']} worker(s): {r['messages'] / r['wall']:>9,.0f} msgs/s  wall {r['wall']:6.1f} s  "
              f"CPU {r['cpu']:6.1f} s  commits {r['commits']:4d}  landing/commit {r['landing_per_commit']:.2f} s  "
              f"conflicts retried {r['conflicts']:4d} ({r['conflicts'] / r['wall']:.2f}/s)  batches dropped {r['dropped']}")
    one, two = results
    print(f"two workers / one on this 2-core machine: {two['messages'] / two['wall'] / (one['messages'] / one['wall']):.2f}")
    c = one["cpu"] / one["messages"]
    s = one["landing_per_commit"]
    b = one["messages"] / one["commits"]
    k = two["conflicts"] / max(1, two["commits"])
    print(f"model: c = {c * 1e6:.1f} µs CPU/message, s = {s:.2f} s per commit, B = {b:,.0f} messages/commit, "
          f"k = {k:.2f} conflicts per commit with 2 workers")
    for n in (1, 2, 4, 8):
        cpu_bound = n / c
        commit_bound = b / (s * (1 + k * (n - 1)))
        print(f"  N = {n}: predicted {min(cpu_bound, commit_bound):>9,.0f} msgs/s "
              f"({'CPU' if cpu_bound <= commit_bound else 'serial commits'} bound; CPU {cpu_bound:,.0f}, commits {commit_bound:,.0f})")


if __name__ == "__main__":
    main()
