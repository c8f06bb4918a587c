"""Re-reading every topic from the start changes nothing: replays can never overwrite newer data.

The duplicate oracle used here (`assert_matches_scenario`) is shown able to
fire: a worker with a planted insert-instead-of-merge must fail it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.ingest_helpers import (
    ROOT,
    Scenario,
    assert_matches_scenario,
    create_topics,
    produce,
    read_only,
    run_worker,
    scenario_config_tables,
    warehouse_value,
    worker_env,
)


def _digest(path) -> dict[str, str]:
    con = read_only(path)
    try:
        out = {}
        for table, pk in Scenario.TABLES.items():
            order = ", ".join(pk)
            rows = con.execute(
                f'SELECT * EXCLUDE (_ingested_at, _kafka_partition, _kafka_offset) FROM main."{table}" ORDER BY {order}'
            ).fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        out["dead_letters"] = str(con.execute("SELECT count(*) FROM _meta.dead_letters").fetchone()[0])
        return out
    finally:
        con.close()


@dataclass(frozen=True)
class BatchTotals:
    """What `_meta.batches` says the batches after `after_batch_id` did."""

    batches: int
    messages: int
    applied: int  # upserts + deletes
    skipped_stale: int


def _batch_totals(path, after_batch_id: int) -> BatchTotals:
    con = read_only(path)
    try:
        row = con.execute(
            "SELECT count(*), coalesce(sum(messages), 0), coalesce(sum(upserts + deletes), 0), "
            "coalesce(sum(skipped_stale), 0) FROM _meta.batches WHERE batch_id > $after", {"after": after_batch_id},
        ).fetchone()
    finally:
        con.close()
    return BatchTotals(*row)


def _produced(broker, topic_prefix) -> Scenario:
    scenario = Scenario(topic_prefix, seed=11).build(total=15_000, poison_share=0.01)
    create_topics(broker.bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
    assert produce(broker.bootstrap, scenario.messages) == len(scenario.messages)
    return scenario


def test_consuming_everything_again_leaves_every_table_identical(broker, write_config, topic_prefix, tmp_path):
    scenario = _produced(broker, topic_prefix)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 4000})
    warehouse = tmp_path / "warehouse.duckdb"
    first = run_worker(config, "--until-idle")
    assert first.returncode == 0, first.stderr[-2000:]
    assert_matches_scenario(warehouse, scenario)
    before = _digest(warehouse)
    last_batch = warehouse_value(warehouse, "SELECT max(batch_id) FROM _meta.batches")
    assert _batch_totals(warehouse, -1).messages == len(scenario.messages)

    again = run_worker(config, "--until-idle", "--from-beginning")

    assert again.returncode == 0, again.stderr[-2000:]
    assert _digest(warehouse) == before
    assert_matches_scenario(warehouse, scenario)
    # The replay really happened and really was refused, by the numbers the worker committed:
    produced = len(scenario.messages)
    valid = produced - len(scenario.poison)
    keys = sum(len(rows) for rows in scenario.expected.values())
    replay = _batch_totals(warehouse, last_batch)
    assert _batch_totals(warehouse, -1).messages == 2 * produced, "every message was delivered a second time"
    assert replay.messages == produced
    assert replay.applied + replay.skipped_stale == valid, replay
    assert replay.applied <= keys, f"at most each row's newest version may be written again: {replay}"
    assert replay.skipped_stale >= valid - keys > 0, replay


def _planted_worker(config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tests/faults/insert_instead_of_merge.py"), "worker", "--config", str(config), *args],
        env=worker_env(), capture_output=True, text=True, timeout=180, cwd=config.parent)


@pytest.mark.slow
def test_negative_control_insert_instead_of_merge_is_caught_by_the_duplicate_oracle(
        broker, write_config, topic_prefix, tmp_path):
    """Same stream, same replay, a planted bug: the oracle must report duplicate rows."""
    scenario = _produced(broker, topic_prefix)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 4000})
    first = _planted_worker(config, "--until-idle")
    assert first.returncode == 0, first.stderr[-2000:]
    again = _planted_worker(config, "--until-idle", "--from-beginning")
    assert again.returncode == 0, again.stderr[-2000:]

    with pytest.raises(AssertionError, match="duplicate rows for a key"):
        assert_matches_scenario(tmp_path / "warehouse.duckdb", scenario)
