"""Operating the worker: one per warehouse, clean stop, lost offsets surfaced, transport reset."""

from __future__ import annotations

import signal
import time

import pytest

from ingest.broker import start_broker
from ingest.envelope import encode_envelope, encode_key
from tests.conftest import free_port
from tests.ingest_helpers import create_topics, produce, read_only, run_worker, start_worker, stop_process, ts

TABLES = """
[tables.cards]
primary_key = ["card_id"]
[tables.topups]
primary_key = ["topup_id"]
"""


def _messages(prefix: str, table: str, key: str, n: int, start: int = 0):
    return [(f"{prefix}.{table}", encode_key({key: i}),
             encode_envelope(table, "upsert", {key: i}, {key: i, "amount_krw": 1000 * i}, ts(i), ts(i)))
            for i in range(start, start + n)]


def _wait_for_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_a_second_worker_on_the_same_warehouse_exits_with_a_clear_message(broker, write_config, tmp_path):
    config = write_config(tables=TABLES)
    first = start_worker(config, log=tmp_path / "first.log")
    try:
        _wait_for_file(tmp_path / "warehouse.duckdb.worker.lock")
        time.sleep(1)
        second = run_worker(config, "--until-idle", timeout=60)
    finally:
        code = stop_process(first, signal.SIGINT)
    assert second.returncode == 1
    assert "another worker (pid" in second.stderr and str(first.pid) in second.stderr
    assert code == 0, "SIGINT must stop the worker cleanly"


def test_sigterm_finishes_the_batch_and_exits_zero_and_the_lock_is_released(broker, write_config, topic_prefix, tmp_path):
    create_topics(broker.bootstrap, [f"{topic_prefix}.cards"])
    produce(broker.bootstrap, _messages(topic_prefix, "cards", "card_id", 20_000))
    config = write_config(tables=TABLES, worker={"max_batch_rows": 5000, "max_batch_seconds": 5})
    worker = start_worker(config, log=tmp_path / "w.log")
    time.sleep(2.5)
    assert stop_process(worker, signal.SIGTERM) == 0
    con = read_only(tmp_path / "warehouse.duckdb")
    try:
        rows = con.execute("SELECT count(*) FROM main.cards").fetchone()[0]
        landed = con.execute("SELECT coalesce(sum(next_offset), 0) FROM _meta.offsets").fetchone()[0]
        state = con.execute("SELECT state FROM _meta.heartbeat WHERE worker = 'worker'").fetchone()[0]
    finally:
        con.close()
    assert rows == landed, "what was landed and the offsets agree"
    assert state == "stopped"
    # The lock went with the process: a new worker starts at once and finishes the job.
    again = run_worker(config, "--until-idle")
    assert again.returncode == 0
    con = read_only(tmp_path / "warehouse.duckdb")
    assert con.execute("SELECT count(*) FROM main.cards").fetchone()[0] == 20_000
    con.close()


@pytest.fixture
def empty_broker():
    """A brand-new broker: what a restarted embedded broker (memory storage) looks like."""
    running = start_broker(free_port())
    yield running
    running.stop()


def test_offsets_the_broker_no_longer_has_stop_that_partition_loudly_and_others_go_on(
        broker, empty_broker, write_config, topic_prefix, tmp_path):
    # 1. Land 3,000 cards from the first broker: stored offsets ~1,000 per partition.
    create_topics(broker.bootstrap, [f"{topic_prefix}.cards", f"{topic_prefix}.topups"])
    produce(broker.bootstrap, _messages(topic_prefix, "cards", "card_id", 3000))
    config = write_config(tables=TABLES)
    assert run_worker(config, "--until-idle").returncode == 0

    # 2. The transport is replaced by an empty broker holding a few new messages.
    create_topics(empty_broker.bootstrap, [f"{topic_prefix}.cards", f"{topic_prefix}.topups"])
    produce(empty_broker.bootstrap, _messages(topic_prefix, "cards", "card_id", 30, start=5000))
    produce(empty_broker.bootstrap, _messages(topic_prefix, "topups", "topup_id", 500))
    config = write_config(tables=TABLES, bootstrap=empty_broker.bootstrap)
    done = run_worker(config, "--until-idle")

    assert done.returncode == 0
    assert "STOPPED" in done.stderr and "re-export" in done.stderr
    con = read_only(tmp_path / "warehouse.duckdb")
    try:
        stopped = con.execute(
            "SELECT topic, \"partition\", reason FROM _meta.partitions WHERE state = 'stopped' ORDER BY 2").fetchall()
        beat = con.execute("SELECT state, message FROM _meta.heartbeat WHERE worker = 'worker'").fetchone()
        cards = con.execute("SELECT count(*) FROM main.cards").fetchone()[0]
        topups = con.execute("SELECT count(*) FROM main.topups").fetchone()[0]
    finally:
        con.close()
    assert [s[:2] for s in stopped] == [(f"{topic_prefix}.cards", p) for p in range(3)]
    assert all("beyond the end of the log" in s[2] for s in stopped)
    assert beat[0] == "stopped" and "re-export needed" in beat[1]
    assert cards == 3000, "nothing was skipped silently: the new cards wait for a re-export"
    assert topups == 500, "the other topic went on"

    # 3. The operator confirms the transport was reset: everything is read from the start.
    reset = run_worker(config, "--until-idle", "--transport-reset")
    assert reset.returncode == 0
    con = read_only(tmp_path / "warehouse.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM main.cards").fetchone()[0] == 3030
        assert con.execute("SELECT count(*) FROM main.topups").fetchone()[0] == 500
        assert con.execute("SELECT count(*) FROM _meta.partitions WHERE state = 'stopped'").fetchone()[0] == 0
    finally:
        con.close()
