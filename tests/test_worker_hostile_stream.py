"""No message stops the worker: hostile payloads mixed into a stream of good changes, on the real broker.

Every good change lands exactly (the expected state is computed here, from
what the test produced), the stored offsets reach the end of every
partition, and every hostile message is a dead letter with its reason.
One hostile message trips a planted fault that no check foresees
(INGEST_POISON_MARKER): only narrowing the failing batch down saves the rest,
and the negative control (INGEST_NARROWING=off) shows the oracle then fails.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from ingest.envelope import SCHEMA_KEY, encode_key, encode_schema_record
from tests.ingest_helpers import (
    Scenario,
    assert_matches_scenario,
    create_topics,
    messages_landed,
    produce,
    read_only,
    run_worker,
    scenario_config_tables,
    ts,
)

MARKER = "planted-fault-7f3a"
MAX_BYTES = 65536
DECLARED = {
    "transactions": {"tx_id": "BIGINT"},
    "cards": {"card_id": "BIGINT"},
    "balances": {"card_id": "BIGINT", "day": "DATE"},
}
ROW_TYPES = {"amount_krw": "BIGINT", "note": "VARCHAR", "version": "INTEGER", "updated_at": "TIMESTAMP WITH TIME ZONE"}


def hostile_messages(rnd: random.Random) -> list[tuple[bytes | None, str]]:
    """(value, reason fragment) of messages for the transactions topic that must all be dead letters."""
    n = iter(range(900_000, 999_999))

    def env(row_extra: dict | None = None, **over) -> dict:
        key = next(n)
        e = {"table": "transactions", "op": "upsert", "pk": {"tx_id": key},
             "row": {"tx_id": key, "amount_krw": 1000, "note": "x", "version": 0, "updated_at": ts(1)},
             "source_ts": ts(1), "exported_at": ts(2), "v": 1}
        e["row"].update(row_extra or {})
        e.update(over)
        return e

    def raw(e: dict) -> bytes:
        return json.dumps(e, ensure_ascii=False).encode()

    out: list[tuple[bytes | None, str]] = [
        (rnd.randbytes(64), ""),
        (b'{"table": "\xff\xfe", "op": "upsert"}', "not UTF-8"),
        (b"", "empty message value"),
        (None, "empty message value"),
        (raw(env())[:-25], "not valid JSON"),
        (b"[" * 30_000 + b"]" * 30_000, "not an envelope"),
        (b'{"table": "transactions", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "not an envelope"),
        (raw(env({"amount_krw": json.loads("[" * 40 + "1" + "]" * 40)})), "nests 40 levels deep"),
        (raw(env({"note": "y" * (MAX_BYTES + 10)})), "the limit is 65,536"),
        (raw(env(op="merge")), "op 'merge'"),
        (raw(env(table="cards")), "names table 'cards'"),
        (raw(env(pk={"tx_id": None})), "not coercible"),
        (raw(env(pk={"tx_id": 5, "extra": 1})), "pk has columns"),
        (raw(env(source_ts="yesterday")), "source_ts"),
        (raw(env({"Amount_krw": 5})), "only in case"),
    ]
    for name in ("a\x00b", "a'b", 'a"b', "a\\b", "a\nb", "\u200fabc", "😀", "x" * 300, "", "_deleted", "a b"):
        out.append((raw(env({name: 1})), "is not usable"))
    for field, value in (("amount_krw", 2**70), ("amount_krw", 1e308), ("version", -0.0), ("amount_krw", "NaN"),
                         ("amount_krw", [1, 2]), ("amount_krw", {"a": 1}), ("version", "1,000원")):
        out.append((raw(env({field: value})), f"{field}: "))
    twice = raw(env()).replace(b'"row": {', b'"row": {"note": "first", ', 1)
    out.append((twice, "twice"))
    out.append((raw(env({"note": MARKER})), "planted fault"))
    return out


def schema_records(scenario: Scenario, partitions: int) -> list[tuple[str, int, bytes, bytes]]:
    return [
        (scenario.topic(table), p, SCHEMA_KEY,
         encode_schema_record(table, list(DECLARED[table]), {**DECLARED[table], **ROW_TYPES}, ts(0)))
        for table in Scenario.TABLES for p in range(partitions)
    ]


def run_stream(broker, topic_prefix, write_config, tmp_path, env: dict, run=None):
    """Produce the stream, then `run(config)` (default: one worker to idle) → (scenario, hostile, total, its result)."""
    rnd = random.Random(3)
    scenario = Scenario(topic_prefix, seed=5).build(total=6000, poison_share=0.0)
    hostile = hostile_messages(rnd)
    create_topics(broker.bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
    # Types first, in every partition: they precede every change that needs them.
    schema = schema_records(scenario, 3)
    assert produce_to_partitions(broker.bootstrap, schema) == len(schema)
    stream = list(scenario.messages)
    for value, _ in hostile:
        stream.insert(rnd.randrange(len(stream)), (scenario.topic("transactions"), encode_key({"h": rnd.random()}), value))
    assert produce(broker.bootstrap, stream) == len(stream)
    config = write_config(tables=scenario_config_tables(),
                          worker={"max_batch_rows": 2000, "max_message_bytes": MAX_BYTES})
    total = len(schema) + len(stream)
    if run is not None:
        return scenario, hostile, total, run(config, total)
    done = run_worker(config, "--until-idle", env=env, timeout=300)
    return scenario, hostile, total, done


def produce_to_partitions(bootstrap: str, records: list[tuple[str, int, bytes, bytes]]) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [producer.send(t, key=k, value=v, partition=p) for t, p, k, v in records]
        producer.flush(timeout=60)
        return sum(1 for f in futures if f.get(timeout=30))
    finally:
        producer.close()


def check(tmp_path, scenario: Scenario, hostile, total: int, done, warehouse=None) -> None:
    """`warehouse`: the file (default: the test's), or a lake's WarehouseConfig; `done` None: already checked."""
    warehouse = warehouse if warehouse is not None else tmp_path / "warehouse.duckdb"
    if done is not None:
        assert done.returncode == 0, done.stderr[-2000:]
    assert messages_landed(warehouse) == total  # the stored offsets reach the end of every partition
    assert_matches_scenario(warehouse, scenario)
    con = read_only(warehouse)
    try:
        dead = con.execute("SELECT raw, reason FROM _meta.dead_letters").fetchall()
        columns = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main'").fetchall()}
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema = 'main' AND table_name = 'transactions'").fetchall())
    finally:
        con.close()
    assert len(dead) == len(hostile), f"{len(dead)} dead letters for {len(hostile)} hostile messages"

    def digest(v):
        return hashlib.sha256(v or b"").hexdigest()

    by_raw: dict[str, list[str]] = {}
    for raw, reason in dead:
        by_raw.setdefault(digest(raw), []).append(reason)
    for value, fragment in hostile:
        reasons = by_raw.get(digest(value))
        assert reasons, f"hostile message not a dead letter: {value[:80] if value else value!r}"
        assert any(fragment in r for r in reasons), f"{fragment!r} not in {reasons}"
    wanted = {*DECLARED["transactions"], *DECLARED["balances"], *ROW_TYPES}
    assert {c for c in columns if not c.startswith("_")} == wanted  # no hostile name became a column
    assert types["amount_krw"] == "BIGINT" and types["version"] == "INTEGER"  # no hostile value widened a column


def test_hostile_payloads_are_dead_letters_and_every_good_change_lands(broker, topic_prefix, write_config, tmp_path):
    scenario, hostile, total, done = run_stream(broker, topic_prefix, write_config, tmp_path,
                                                {"INGEST_POISON_MARKER": MARKER})
    check(tmp_path, scenario, hostile, total, done)
    assert "narrowing it down" in done.stderr


@pytest.mark.slow
def test_negative_control_without_narrowing_the_oracle_fails(broker, topic_prefix, write_config, tmp_path):
    scenario, hostile, total, done = run_stream(broker, topic_prefix, write_config, tmp_path,
                                                {"INGEST_POISON_MARKER": MARKER, "INGEST_NARROWING": "off"})
    with pytest.raises(AssertionError):
        check(tmp_path, scenario, hostile, total, done)
    assert done.returncode == 1 and "narrowing is off" in done.stderr
