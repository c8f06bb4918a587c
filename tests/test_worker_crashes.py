"""Crashes at any moment lose nothing and duplicate nothing; the oracle is proven able to see it."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from tests.ingest_helpers import (
    ROOT,
    assert_a_worker_run_lands_the_scenario,
    assert_matches_scenario,
    kill_at_random_moments,
    run_worker,
    scenario_config_tables,
    worker_env,
)

pytestmark = pytest.mark.slow


def test_sigkill_at_random_moments_then_restart_gives_the_uncrashed_result(produced, write_config, tmp_path):
    scenario = produced(200_000)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 10000, "max_batch_seconds": 0.5})
    warehouse = tmp_path / "warehouse.duckdb"

    kill_at_random_moments(config, warehouse, len(scenario.messages), random.Random(42), rounds=5, max_pause=1.5,
                           log=tmp_path / "worker.log")

    assert_a_worker_run_lands_the_scenario(config, warehouse, scenario)


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

    assert_a_worker_run_lands_the_scenario(config, tmp_path / "warehouse.duckdb", scenario)


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
