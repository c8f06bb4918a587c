"""The worker lands a messy stream exactly: newest version per row, tombstones, poison in dead letters."""

from __future__ import annotations

import re
from collections import Counter

from tests.ingest_helpers import (
    Scenario,
    assert_matches_scenario,
    create_topics,
    produce,
    read_only,
    run_worker,
    scenario_config_tables,
)


def test_messy_stream_lands_as_the_newest_version_of_every_row(broker, write_config, topic_prefix, tmp_path):
    scenario = Scenario(topic_prefix).build(total=100_000, poison_share=0.01)
    create_topics(broker.bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
    produced = produce(broker.bootstrap, scenario.messages)
    assert produced == len(scenario.messages)
    config = write_config(tables=scenario_config_tables(), worker={"max_batch_rows": 20000, "max_batch_seconds": 1})

    done = run_worker(config, "--until-idle")

    assert done.returncode == 0, done.stderr[-3000:]
    assert_matches_scenario(tmp_path / "warehouse.duckdb", scenario)
    con = read_only(tmp_path / "warehouse.duckdb")
    try:
        letters = con.execute('SELECT topic, raw, reason FROM _meta.dead_letters').fetchall()
        offsets = dict(((t, p), o) for t, p, o in con.execute('SELECT topic, "partition", next_offset FROM _meta.offsets').fetchall())
        batches = con.execute("SELECT sum(messages), max(batch_id), count(*) FROM _meta.batches").fetchone()
        live_view = con.execute("SELECT count(*) FROM live.transactions").fetchone()[0]
        tombstones = con.execute("SELECT count(*) FROM main.transactions WHERE _deleted").fetchone()[0]
    finally:
        con.close()
    # Every poison message, and nothing else, is a dead letter with its reason.
    assert len(letters) == len(scenario.poison)
    assert Counter(raw for _, raw, _ in letters) == Counter(raw for _, raw, _ in scenario.poison)
    by_raw = {raw: reason for _, raw, reason in letters if raw is not None}
    for _, raw, fragment in scenario.poison:
        if raw is not None:
            assert fragment in by_raw[raw], (fragment, by_raw[raw])
    # Offsets cover every message produced, and the batch log counts them all.
    assert sum(offsets.values()) == len(scenario.messages)
    assert batches[0] == len(scenario.messages)
    # The live view hides tombstones.
    expected_live = sum(1 for row in scenario.expected["transactions"].values() if row is not None)
    assert live_view == expected_live
    assert tombstones == sum(1 for row in scenario.expected["transactions"].values() if row is None) > 0
    # Every batch is in the log: a line of its own when it carries work, or counted in a summary of small ones.
    lines = done.stderr.splitlines()
    own = [line for line in lines if " batch " in line and "messages →" in line]
    summed = [int(re.search(r"\((\d+) small batch\(es\)", line).group(1)) for line in lines if "small batch(es)" in line]
    assert len(own) + sum(summed) == batches[2]
    assert all("decoded" in line and "landed" in line and "lag" in line for line in own)


def test_kafka_sees_the_same_offsets_as_the_warehouse(broker, write_config, topic_prefix, tmp_path):
    """Advisory commits: standard lag tools see the consumer; DuckDB stays the truth."""
    from kafka import KafkaConsumer, TopicPartition

    scenario = Scenario(topic_prefix, seed=5).build(total=3000, poison_share=0)
    create_topics(broker.bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
    produce(broker.bootstrap, scenario.messages)
    config = write_config(tables=scenario_config_tables())
    assert run_worker(config, "--until-idle").returncode == 0

    con = read_only(tmp_path / "warehouse.duckdb")
    stored = {(t, p): o for t, p, o in con.execute('SELECT topic, "partition", next_offset FROM _meta.offsets').fetchall()}
    con.close()
    lag_tool = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="datadesk-worker", enable_auto_commit=False)
    try:
        in_kafka = {key: lag_tool.committed(TopicPartition(*key)) for key in stored}
    finally:
        lag_tool.close()
    assert in_kafka == stored
