"""A reader polling the warehouse during ingest never sees half a batch and never fails."""

from __future__ import annotations

import threading
import time

from ingest.envelope import encode_envelope, encode_key
from ingest.warehouse_file import WarehouseMissing, open_reader
from tests.ingest_helpers import create_topics, produce, start_worker, stop_process, ts

TABLES = """
[tables.orders]
primary_key = ["order_id"]
[tables.items]
primary_key = ["item_id"]
"""


def test_reader_sees_only_whole_batches_while_the_worker_writes(broker, write_config, topic_prefix, tmp_path):
    # Every message is a new row, so in any committed state:
    #   rows in a table == offsets landed for its topic.
    # A torn read (rows without their offsets, or the reverse) breaks that.
    n = 30_000
    messages = []
    for i in range(n):
        table = "orders" if i % 2 else "items"
        key = "order_id" if table == "orders" else "item_id"
        pk = {key: i}
        messages.append((f"{topic_prefix}.{table}", encode_key(pk),
                         encode_envelope(table, "upsert", pk, {**pk, "qty": i % 7}, ts(i), ts(i))))
    create_topics(broker.bootstrap, [f"{topic_prefix}.orders", f"{topic_prefix}.items"])
    produce(broker.bootstrap, messages)
    config = write_config(tables=TABLES, worker={"max_batch_rows": 1500, "max_batch_seconds": 0.2})
    warehouse = tmp_path / "warehouse.duckdb"

    snapshots: list[tuple[int, int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                with open_reader(warehouse, timeout=30) as con:
                    tables = {r[0] for r in con.execute(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema='main'").fetchall()}
                    rows = sum(con.execute(f'SELECT count(*) FROM main."{t}"').fetchone()[0] for t in tables & {"orders", "items"})
                    landed = con.execute("SELECT coalesce(sum(next_offset), 0) FROM _meta.offsets").fetchone()[0]
                    batches = con.execute("SELECT coalesce(sum(upserts), 0) FROM _meta.batches").fetchone()[0]
                snapshots.append((rows, landed, batches))
            except WarehouseMissing:
                pass
            except BaseException as exc:  # any failure is a finding
                errors.append(exc)
            time.sleep(0.005)

    readers = [threading.Thread(target=poll) for _ in range(2)]
    for r in readers:
        r.start()
    worker = start_worker(config, log=tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (snapshots and snapshots[-1][1] == n):
            time.sleep(0.1)
    finally:
        done.set()
        for r in readers:
            r.join()
        code = stop_process(worker)
    assert code == 0
    assert not errors, f"readers failed: {errors[:3]}"
    assert snapshots[-1] == (n, n, n)
    torn = [s for s in snapshots if not (s[0] == s[1] == s[2])]
    assert not torn, f"torn reads: {torn[:5]}"
    mid_ingest = [s for s in snapshots if 0 < s[1] < n]
    assert len(mid_ingest) >= 3, "the readers should have looked during the ingest, not only after"


def test_the_warehouse_file_appears_complete_or_not_at_all(tmp_path):
    """Readers check `path.exists()`: a half-written header must never be visible there."""
    from ingest.landing import ensure_meta
    from ingest.warehouse_file import create_warehouse

    path = tmp_path / "warehouse.duckdb"
    seen_during_creation = []

    def initialise(con):
        seen_during_creation.append(path.exists())
        ensure_meta(con)

    assert create_warehouse(path, initialise) is True
    assert seen_during_creation == [False]
    with open_reader(path, timeout=5) as con:
        assert con.execute("SELECT count(*) FROM _meta.batches").fetchone()[0] == 0
    assert create_warehouse(path, initialise) is False  # never replaces an existing warehouse
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]
