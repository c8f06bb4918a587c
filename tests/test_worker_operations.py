"""Operating the worker: one per warehouse, clean stop, lost offsets surfaced, transport reset."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass

import pytest

from ingest.broker import start_broker
from ingest.envelope import encode_envelope, encode_key
from tests.conftest import free_port
from tests.ingest_helpers import (
    ROOT,
    create_topics,
    produce,
    read_only,
    run_worker,
    start_worker,
    stop_process,
    ts,
    wait_for,
    warehouse_value,
    worker_env,
)

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


def _lock_taken_by(lock_path, pid: int) -> bool:
    """The worker writes its pid into the lock file only once it holds the lock (`WorkerLock.acquire`)."""
    try:
        return lock_path.read_text().strip() == str(pid)
    except FileNotFoundError:
        return False


def test_a_second_worker_on_the_same_warehouse_exits_with_a_clear_message(broker, write_config, tmp_path):
    config = write_config(tables=TABLES)
    first = start_worker(config, log=tmp_path / "first.log")
    try:
        wait_for(lambda: _lock_taken_by(tmp_path / "warehouse.duckdb.worker.lock", first.pid) or first.poll() is not None,
                 60, "the first worker to take the lock")
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
        second = run_worker(config, "--until-idle", timeout=60)
    finally:
        code = stop_process(first, signal.SIGINT)
    assert second.returncode == 1
    assert "another worker (pid" in second.stderr and str(first.pid) in second.stderr
    assert code == 0, "SIGINT must stop the worker cleanly"


# ─────────────────────────────────────────── SIGTERM in the middle of a batch ──

CARDS, TOPUPS = 3000, 2000


@dataclass
class StoppedMidBatch:
    returncode: int
    log: str
    next_offsets: dict[str, int]  # topic → sum of the stored next offsets over its partitions
    rows: dict[str, dict[int, int]]  # table → key → amount_krw
    batches: list[tuple[int, int]]  # (batch_id, messages)
    state: str | None


def _sigterm_while_a_batch_is_half_merged(broker, write_config, topic_prefix, tmp_path, command: list[str]) -> StoppedMidBatch:
    """Produce two topics, hold the worker inside the transaction of its one batch, SIGTERM it, release it.

    `max_batch_rows` is exactly what was produced and the time cut is far off,
    so the first batch is known in advance: every message of both topics.
    The hold (`ingest/failpoints.py`) comes after the first table is merged
    and before the second one and the offsets are written.
    """
    create_topics(broker.bootstrap, [f"{topic_prefix}.cards", f"{topic_prefix}.topups"])
    produce(broker.bootstrap, _messages(topic_prefix, "cards", "card_id", CARDS)
            + _messages(topic_prefix, "topups", "topup_id", TOPUPS))
    config = write_config(tables=TABLES, worker={"max_batch_rows": CARDS + TOPUPS, "max_batch_seconds": 600})
    hold, log = tmp_path / "hold", tmp_path / "w.log"
    with open(log, "ab") as out:
        worker = subprocess.Popen(command + ["worker", "--config", str(config)], cwd=config.parent, stdout=out,
                                  stderr=subprocess.STDOUT, env=worker_env({"INGEST_FAILPOINT": f"mid_merge:1:hold:{hold}"}))
    try:
        wait_for(lambda: (hold / "held").exists() or worker.poll() is not None, 120, "the worker to reach mid_merge")
        assert worker.poll() is None, log.read_text()[-3000:]
        worker.send_signal(signal.SIGTERM)
        wait_for(lambda: "SIGTERM received" in log.read_text(), 30, "the worker to take the signal while held")
        (hold / "release").touch()
        returncode = worker.wait(60)
    finally:
        stop_process(worker, signal.SIGKILL)
    con = read_only(tmp_path / "warehouse.duckdb")
    try:
        next_offsets = dict(con.execute("SELECT topic, sum(next_offset) FROM _meta.offsets GROUP BY topic").fetchall())
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        rows = {t: dict(con.execute(f"SELECT {k}, amount_krw FROM main.{t} WHERE NOT _deleted").fetchall()) if t in tables else {}
                for t, k in (("cards", "card_id"), ("topups", "topup_id"))}
        batches = con.execute("SELECT batch_id, messages FROM _meta.batches ORDER BY batch_id").fetchall()
        state = con.execute("SELECT state FROM _meta.heartbeat WHERE worker = 'worker'").fetchone()
    finally:
        con.close()
    return StoppedMidBatch(returncode, log.read_text(), next_offsets, rows, batches, state and state[0])


def _assert_the_held_batch_landed(outcome: StoppedMidBatch, topic_prefix: str) -> None:
    """Expectations from what the test produced: every offset, every row of both topics, in one batch."""
    assert outcome.next_offsets == {f"{topic_prefix}.cards": CARDS, f"{topic_prefix}.topups": TOPUPS}, \
        f"the batch's offsets did not land: {outcome.next_offsets}"
    assert outcome.rows["cards"] == {i: 1000 * i for i in range(CARDS)}, "the batch's cards did not all land"
    assert outcome.rows["topups"] == {i: 1000 * i for i in range(TOPUPS)}, "the batch's top-ups did not all land"
    assert [m for _, m in outcome.batches] == [CARDS + TOPUPS], f"one batch, all of it: {outcome.batches}"


def test_sigterm_during_a_batch_finishes_that_batch_then_exits_zero_and_releases_the_lock(
        broker, write_config, topic_prefix, tmp_path):
    outcome = _sigterm_while_a_batch_is_half_merged(
        broker, write_config, topic_prefix, tmp_path, [sys.executable, "-m", "ingest"])

    assert outcome.returncode == 0, outcome.log[-3000:]
    _assert_the_held_batch_landed(outcome, topic_prefix)
    assert outcome.state == "stopped"
    # The lock went with the process: a new worker starts at once, and finds nothing left to land.
    again = run_worker(tmp_path / "pipeline.toml", "--until-idle")
    assert again.returncode == 0, again.stderr[-2000:]
    assert warehouse_value(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM _meta.batches") == 1


@pytest.mark.slow
def test_negative_control_a_worker_that_drops_the_batch_on_sigterm_is_caught(broker, write_config, topic_prefix, tmp_path):
    """Same stop, with a planted bug (SIGTERM exits at once, the transaction rolls back): the check must fail."""
    outcome = _sigterm_while_a_batch_is_half_merged(
        broker, write_config, topic_prefix, tmp_path, [sys.executable, str(ROOT / "tests/faults/sigterm_abandons_batch.py")])

    assert outcome.returncode == 0, "the planted bug looks like a clean stop from outside"
    with pytest.raises(AssertionError, match="offsets did not land"):
        _assert_the_held_batch_landed(outcome, topic_prefix)


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
