"""Crashes at any moment lose nothing and duplicate nothing; the oracle is proven able to see it."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from tests.ingest_helpers import (
    ROOT,
    Scenario,
    assert_matches_scenario,
    create_topics,
    dead_letter_count,
    messages_landed,
    produce,
    run_worker,
    scenario_config_tables,
    start_worker,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def produced(broker, topic_prefix):
    def make(total: int, poison_share: float = 0.005) -> Scenario:
        scenario = Scenario(topic_prefix, seed=total).build(total=total, poison_share=poison_share)
        create_topics(broker.bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
        assert produce(broker.bootstrap, scenario.messages) == len(scenario.messages)
        return scenario

    return make


def test_sigkill_at_random_moments_then_restart_gives_the_uncrashed_result(produced, write_config, tmp_path):
    scenario = produced(200_000)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 10000, "max_batch_seconds": 0.5})
    warehouse = tmp_path / "warehouse.duckdb"
    rnd = random.Random(42)
    progress = []
    for _ in range(5):
        before = messages_landed(warehouse)
        proc = start_worker(config, log=tmp_path / "worker.log")
        # A random moment once this run is landing (a loaded machine takes a while to start a worker):
        # mid-batch, between batches, or during a checkpoint.
        wait_for(lambda: messages_landed(warehouse) > before or proc.poll() is not None, 120, "a batch to land")
        time.sleep(rnd.uniform(0.0, 1.5))
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
        progress.append(messages_landed(warehouse))
    assert any(0 < p < len(scenario.messages) for p in progress), f"no kill landed mid-ingest: {progress}"

    done = run_worker(config, "--until-idle")

    assert done.returncode == 0, done.stderr[-2000:]
    assert_matches_scenario(warehouse, scenario)
    assert messages_landed(warehouse) == len(scenario.messages)
    assert dead_letter_count(warehouse) == len(scenario.poison)


def _crash_at(config, failpoint: str, planted_bug: bool = False) -> subprocess.CompletedProcess:
    if planted_bug:
        cmd = [sys.executable, str(ROOT / "tests/faults/offsets_outside_transaction.py"), "worker", "--config", str(config), "--until-idle"]
    else:
        cmd = [sys.executable, "-m", "ingest", "worker", "--config", str(config), "--until-idle"]
    return subprocess.run(cmd, env=worker_env({"INGEST_FAILPOINT": failpoint}), capture_output=True, text=True,
                          timeout=180, cwd=config.parent)


@pytest.mark.parametrize("step", ["before_transaction", "mid_merge", "after_commit", "during_checkpoint"])
def test_kill_at_each_named_step_then_restart_loses_and_duplicates_nothing(step, produced, write_config, tmp_path):
    scenario = produced(20_000)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 3000, "max_batch_seconds": 0.5})

    crashed = _crash_at(config, f"{step}:2")
    assert crashed.returncode == -9, f"the failpoint did not kill the worker: {crashed.returncode} {crashed.stderr[-1000:]}"
    recovered = run_worker(config, "--until-idle")

    assert recovered.returncode == 0, recovered.stderr[-2000:]
    assert_matches_scenario(tmp_path / "warehouse.duckdb", scenario)
    assert messages_landed(tmp_path / "warehouse.duckdb") == len(scenario.messages)
    assert dead_letter_count(tmp_path / "warehouse.duckdb") == len(scenario.poison)


def test_negative_control_offsets_committed_outside_the_transaction_are_caught(produced, write_config, tmp_path):
    """Same crash, same oracle, but with a planted bug: the oracle must report lost rows."""
    scenario = produced(20_000)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 3000, "max_batch_seconds": 0.5})

    crashed = _crash_at(config, "mid_merge:2", planted_bug=True)
    assert crashed.returncode == -9
    recovered = run_worker(config, "--until-idle")
    assert recovered.returncode == 0, recovered.stderr[-2000:]

    with pytest.raises(AssertionError, match="missing|old version|tombstones"):
        assert_matches_scenario(tmp_path / "warehouse.duckdb", scenario)
