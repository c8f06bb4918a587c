"""Lake vs single file: the same ingest and the same app questions, side by side in one run.

    .venv/bin/python bench/lake.py [--messages 1000000] [--runs 20] [--catalogs sqlite,postgres]

One embedded broker; bench/ingest.py's stream (N `transactions` envelopes on
3 partitions) plus 5,000 `merchants`, produced once. One worker lands them
(bench/ingest.py's run_worker) into one DuckDB file, then into a DuckLake
per catalog (SQLite; PostgreSQL on 127.0.0.1:5432 in a throw-away database,
as bench/workers.py makes it). Each lake is then maintained
(`warehouse_lake.maintain`: merge small files, expire, clean up).

Then the app's questions, through the app's reader (dashboard.warehouse:
read-only, locked settings, Arrow → pandas, uncached) and the real compiler
over the model (`model_for`, `compile_summary`; a model file in the work
folder declares transactions.merchant → merchants): a plain count(*), a
count by day, a sum by a category, a sum by the merchant's category (one
join). The answers are compared first, so both warehouses answer the same
question; then each runs `--runs` times, file and lake alternating. The
file stays open for the whole timing loop (as between the queries of one
page run), so this measures queries, not opening the file, which the app
pays once per page run on a file and never on a lake.

Prints msgs/s for each and the ratio lake/file, per question p50/p95 on each
and the ratio, data files per table before and after maintenance, and the
load average (the machine is shared: figures vary ±30% between runs).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import KST, TABLE, maintain_lake, produce, run_worker, topic_producer  # noqa: E402
from bench.questions import p95  # noqa: E402
from bench.workers import new_catalog  # noqa: E402
from dashboard.model import model_for  # noqa: E402
from dashboard.questions import Question, compile_summary  # noqa: E402
from dashboard.warehouse import Warehouse  # noqa: E402
from ingest.broker import free_port, start_broker  # noqa: E402
from ingest.config import load_config  # noqa: E402
from ingest.envelope import encode_envelope, encode_key  # noqa: E402

MERCHANTS = 5_000
CATEGORIES = ("convenience", "cafe", "restaurant", "transport", "online", "culture", "retail")
TABLES = {TABLE: "tx_id", "merchants": "merchant_id"}
MODEL = """table = "transactions"
time = "created_at"
[relationships.merchant]
column = "merchant_id"
to = "merchants"
[measures.count]
label = "거래 건수 / Transactions"
agg = "count"
[measures.amount]
label = "금액(원) / Amount (KRW)"
agg = "sum"
column = "amount_krw"
"""
COUNT_ALL = "SELECT count(*) FROM transactions"
QUESTIONS = {
    "count by day": Question(TABLE, ("transactions.count",), time="transactions.created_at", grain="day"),
    "sum by channel": Question(TABLE, ("transactions.amount",), ("transactions.channel",)),
    "sum by merchant category (join)": Question(TABLE, ("transactions.amount",), ("merchants.category",)),
}


def produce_merchants(bootstrap: str) -> None:
    """The one side of the join: merchant_id 0..4,999 (the ids bench/ingest.py's transactions use)."""
    producer = topic_producer(bootstrap, "merchants", 1)
    when = datetime(2026, 9, 1, tzinfo=KST).isoformat()
    for m in range(MERCHANTS):
        row = {"merchant_id": m, "merchant_name": f"가맹점 {m}", "category": CATEGORIES[m % len(CATEGORIES)],
               "created_at": when, "updated_at": when}
        producer.send("bench.merchants", key=encode_key({"merchant_id": m}),
                      value=encode_envelope("merchants", "upsert", {"merchant_id": m}, row, when, when))
    producer.flush()
    producer.close()


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def app_queries(wh: Warehouse) -> dict[str, tuple[str, list]]:
    """Name → (sql, params): what the app would run for each question on this warehouse."""
    model = model_for(wh)
    out = {"count(*)": (COUNT_ALL, [])}
    for name, question in QUESTIONS.items():
        compiled = compile_summary(model, question)
        out[name] = (compiled.sql, list(compiled.params))
    return out


def time_questions(warehouses: dict[str, Warehouse], runs: int) -> dict[str, dict[str, list[float]]]:
    """Question → warehouse → milliseconds per run, after checking that every warehouse gives the same answer."""
    queries = {name: app_queries(wh) for name, wh in warehouses.items()}
    first = next(iter(warehouses))
    for question, (sql, params) in queries[first].items():
        expected = warehouses[first].query_uncached(sql, params)
        for name, wh in warehouses.items():
            got = wh.query_uncached(*queries[name][question])
            if not got.sort_values(list(got.columns)).reset_index(drop=True).equals(
                    expected.sort_values(list(expected.columns)).reset_index(drop=True)):
                raise SystemExit(f"{question}: {name} answers differently from {first}:\n{got.head()}\n{expected.head()}")
    timings = {q: {name: [] for name in warehouses} for q in queries[first]}
    with ExitStack() as held:
        for wh in warehouses.values():
            held.enter_context(wh.reading())  # the file stays open, as within one page run (a lake always is)
        for _ in range(runs + 2):  # the first two are warm-up
            for question in timings:
                for name, wh in warehouses.items():
                    started = time.perf_counter()
                    wh.query_uncached(*queries[name][question])
                    timings[question][name].append((time.perf_counter() - started) * 1000)
    return {q: {name: values[2:] for name, values in by.items()} for q, by in timings.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--catalogs", default="sqlite,postgres", help="lake catalogs to compare, of: sqlite, postgres")
    args = ap.parse_args()
    # The app's reader caches through Streamlit, which warns on every call outside a page run.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    catalogs = [c for c in args.catalogs.split(",") if c]
    total = args.messages + MERCHANTS
    print(f"at start: {load()}")
    broker = start_broker(free_port())
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        drops = []
        try:
            started = time.perf_counter()
            size = produce(broker.bootstrap, args.messages, 3, typed=False)
            produce_merchants(broker.bootstrap)
            print(f"produced {args.messages:,} transactions (~{size} bytes) + {MERCHANTS:,} merchants "
                  f"in {time.perf_counter() - started:.0f} s; {load()}")
            rates, warehouses, files = {}, {}, {}
            for name in ["file", *catalogs]:
                workdir = Path(tmp) / name
                (workdir / "models").mkdir(parents=True)
                (workdir / "models" / "transactions.toml").write_text(MODEL, encoding="utf-8")
                catalog = None
                if name != "file":
                    catalog, drop = new_catalog(name, workdir)
                    drops.append(drop)
                run = run_worker(broker.bootstrap, workdir, catalog, TABLES)
                assert run.messages == total, f"{name}: the worker landed {run.messages:,} of {total:,} messages"
                rates[name] = run.rate
                print(f"ingest into {name:<9}: {run.rate:>9,.0f} msgs/s; {load()}")
                if name != "file":
                    files[name] = maintain_lake(run.config)
                warehouses[name] = Warehouse(load_config(run.config, needs=("warehouse",)))
            timings = time_questions(warehouses, args.runs)
            print(f"questions done; {load()}\n")
        finally:
            for drop in drops:
                drop()
            broker.stop()

    lakes = [n for n in warehouses if n != "file"]
    print("ingest (1 worker)          " + "".join(f"{n:>12}" for n in warehouses) + "".join(f"{n + '/file':>14}" for n in lakes))
    print(f"{'msgs/s':<27}" + "".join(f"{rates[n]:>12,.0f}" for n in warehouses)
          + "".join(f"{rates[n] / rates['file']:>14.2f}" for n in lakes))
    print(f"\nquestions, ms over {args.runs} runs: p50 / p95 on each, then lake/file of p50 / p95")
    print(f"  {'':<33}" + "".join(f"{n:>17}" for n in warehouses))
    for question, by in timings.items():
        cells = "".join(f"{statistics.median(by[n]):>8.1f} /{p95(by[n]):>7.1f}" for n in warehouses)
        ratios = "".join(f"   {n}: {statistics.median(by[n]) / statistics.median(by['file']):.2f} / "
                         f"{p95(by[n]) / p95(by['file']):.2f}" for n in lakes)
        print(f"  {question:<33}{cells}{ratios}")
    print("\ndata files per table (before → after maintenance)")
    for name, (before, after, seconds) in files.items():
        per_table = ", ".join(f"{t} {before.get(t, 0):,} → {after.get(t, 0):,}" for t in TABLES)
        print(f"  {name:<9}{per_table}; every table incl. _meta {sum(before.values()):,} → {sum(after.values()):,} "
              f"({seconds:.1f} s)")


if __name__ == "__main__":
    main()
