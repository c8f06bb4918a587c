"""Re-reading every topic from the start changes nothing: replays can never overwrite newer data."""

from __future__ import annotations

import hashlib

from tests.ingest_helpers import Scenario, create_topics, produce, read_only, run_worker, scenario_config_tables


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


def test_consuming_everything_again_leaves_every_table_identical(broker, write_config, topic_prefix, tmp_path):
    scenario = Scenario(topic_prefix, seed=11).build(total=15_000, poison_share=0.01)
    create_topics(broker.bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
    produce(broker.bootstrap, scenario.messages)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 4000})
    warehouse = tmp_path / "warehouse.duckdb"
    assert run_worker(config, "--until-idle").returncode == 0
    before = _digest(warehouse)

    again = run_worker(config, "--until-idle", "--from-beginning")

    assert again.returncode == 0, again.stderr[-2000:]
    assert _digest(warehouse) == before
    assert "stale skipped" in again.stderr
