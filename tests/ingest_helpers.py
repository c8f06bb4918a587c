"""Helpers for worker tests: produce envelopes, run the worker, read the outcome.

The expected final state is always computed here, from what the test
produced — never by asking the warehouse what it holds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import duckdb
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from ingest import warehouse_lake
from ingest.batch import Message, raw_batch
from ingest.config import WarehouseConfig
from ingest.envelope import encode_envelope, encode_key
from ingest.landing import Heartbeat, LandingResult, land_batch
from ingest.decode import Decoder

ROOT = Path(__file__).resolve().parent.parent
KST = timezone(timedelta(hours=9))
BASE_TS = datetime(2026, 11, 1, 9, 0, tzinfo=KST)


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int = 3) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        admin.close()


def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> int:
    """Send (topic, key, value) in order; returns how many the broker acknowledged."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024,
                             max_in_flight_requests_per_connection=1)
    n = 0
    try:
        futures = [producer.send(t, key=k, value=v) for t, k, v in messages]
        producer.flush(timeout=120)
        for f in futures:
            f.get(timeout=60)
            n += 1
    finally:
        producer.close()
    return n


def ts(seconds: float) -> str:
    return (BASE_TS + timedelta(seconds=seconds)).isoformat()


def worker_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("INGEST_FAILPOINT", None)
    env.update(extra or {})
    return env


def run_worker(config: Path, *args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingest", "worker", "--config", str(config), *args],
        env=worker_env(env), capture_output=True, text=True, timeout=timeout, cwd=config.parent,
    )


def start_worker(config: Path, *args: str, env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "worker", "--config", str(config), *args],
        env=worker_env(env), stdout=out, stderr=subprocess.STDOUT, cwd=config.parent,
    )


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def warehouse_value(path: Path, sql: str):
    """One value read from the warehouse file (waiting while the worker writes)."""
    con = read_only(path)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def messages_landed(path: Path) -> int:
    """Kafka messages the warehouse has landed: the sum of the stored next offsets (0 before the first batch)."""
    if isinstance(path, Path) and not path.exists():
        return 0
    try:
        return warehouse_value(path, "SELECT coalesce(sum(next_offset), 0) FROM _meta.offsets")
    except (warehouse_lake.LakeUnavailable, duckdb.CatalogException):
        return 0  # a lake not created yet, or created but without its bookkeeping yet


def dead_letter_count(path: Path) -> int:
    return warehouse_value(path, "SELECT count(*) FROM _meta.dead_letters")


def land_upserts(con: duckdb.DuckDBPyConnection, decoder: Decoder, table: str, key: str, rows: list[dict],
                 first_offset: int = 0) -> LandingResult:
    """Upsert envelopes of `rows` on topic "p.<table>", partition 0, through the real decode stage and
    landing into `con`. Built with json, not orjson: integers beyond 64 bits are part of some tests."""
    msgs = [
        Message(f"p.{table}", 0, first_offset + i, None,
                json.dumps({"table": table, "op": "upsert", "pk": {key: r[key]}, "row": r,
                            "source_ts": BASE_TS.isoformat(), "v": 1}).encode())
        for i, r in enumerate(rows)
    ]
    heartbeat = Heartbeat("w", BASE_TS, "running", 1, "h", 0)
    return land_batch(con, decoder.decode_batch(raw_batch(msgs)), heartbeat, [], BASE_TS)


def read_only(path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse: a DuckDB file (Path), or a lake (its `WarehouseConfig`)."""
    if isinstance(path, WarehouseConfig):
        return warehouse_lake.connect(path, read_only=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ───────────────────────────────────────────────────────────── scenario ──


@dataclass
class Scenario:
    """A stream of changes over several tables, and the state it must produce.

    Each key gets 1–4 versions with distinct `source_ts`; some versions are
    sent twice (duplicates), some are sent after a newer one (out of order),
    some keys end in a delete; about 1% of messages are poison of several
    kinds. `expected` is the newest version per key — by construction.
    """

    prefix: str
    seed: int = 7
    messages: list[tuple[str, bytes | None, bytes | None]] = field(default_factory=list)
    expected: dict[str, dict[tuple, dict | None]] = field(default_factory=dict)  # table → key → row (None = deleted)
    poison: list[tuple[str, bytes | None, str]] = field(default_factory=list)  # (topic, raw, reason fragment)

    TABLES = {"transactions": ("tx_id",), "cards": ("card_id",), "balances": ("card_id", "day")}

    def topic(self, table: str) -> str:
        return f"{self.prefix}.{table}"

    def build(self, total: int, poison_share: float = 0.01) -> "Scenario":
        rnd = random.Random(self.seed)
        per_table = total // len(self.TABLES)
        for table, pk_cols in self.TABLES.items():
            self.expected[table] = {}
            sent = 0
            key_no = 0
            while sent < per_table:
                key_no += 1
                pk = self._pk(table, key_no)
                n_versions = rnd.choice((1, 1, 2, 3, 4))
                versions = []
                for v in range(n_versions):
                    t = key_no * 10 + v  # strictly increasing per key
                    is_delete = v == n_versions - 1 and n_versions > 1 and rnd.random() < 0.15
                    row = self._row(table, pk, v, t, rnd)
                    versions.append(("delete" if is_delete else "upsert", row, ts(t)))
                order = list(range(n_versions))
                if n_versions > 2 and rnd.random() < 0.3:  # an older version arrives last
                    order[-1], order[-2] = order[-2], order[-1]
                for i in order:
                    op, row, source_ts = versions[i]
                    value = encode_envelope(table, op, pk, row, source_ts, source_ts)
                    self.messages.append((self.topic(table), encode_key(pk), value))
                    sent += 1
                    if rnd.random() < 0.1:  # a duplicate delivery
                        self.messages.append((self.topic(table), encode_key(pk), value))
                        sent += 1
                op, row, _ = versions[-1]
                self.expected[table][tuple(str(pk[c]) for c in pk_cols)] = None if op == "delete" else row
        self._add_poison(rnd, int(len(self.messages) * poison_share))
        return self

    def _pk(self, table: str, n: int) -> dict:
        if table == "balances":
            return {"card_id": n // 3, "day": f"2026-11-{n % 3 + 1:02d}"}
        return {self.TABLES[table][0]: n}

    def _row(self, table: str, pk: dict, version: int, t: int, rnd: random.Random) -> dict:
        row = dict(pk)
        row.update({"amount_krw": rnd.randrange(1000, 100000, 100), "note": f"v{version}-{rnd.randrange(10**6)}",
                    "version": version, "updated_at": ts(t)})
        return row

    def _add_poison(self, rnd: random.Random, n: int) -> None:
        kinds = [
            (b"\xff\xfe not json", "not valid JSON"),
            (b'{"table": "transactions"}', "not an envelope"),
            (None, "empty message value"),
            (encode_envelope("transactions", "upsert", {"wrong_key": 1}, {"wrong_key": 1}, ts(1), ts(1)), "primary_key"),
            (encode_envelope("transactions", "upsert", {"tx_id": {"a": 1}}, {"tx_id": 1}, ts(1), ts(1)), "not coercible"),
            (b'{"table":"transactions","op":"merge","pk":{"tx_id":1},"row":{"tx_id":1},"source_ts":"2026-11-01T09:00:00+09:00","v":1}', "op 'merge'"),
            (b'{"table":"transactions","op":"upsert","pk":{"tx_id":1},"row":{"tx_id":1},"source_ts":"yesterday","v":1}', "source_ts"),
            (encode_envelope("cards", "upsert", {"tx_id": 5}, {"tx_id": 5}, ts(1), ts(1)), "names table 'cards'"),
        ]
        topic = self.topic("transactions")
        for i in range(n):
            raw, reason = kinds[i % len(kinds)]
            # Unique bytes per poison message so each is a distinct dead letter.
            if raw is not None and raw.startswith(b"{"):
                raw = raw[:-1] + b', "poison_no": ' + str(i).encode() + b"}"
            elif raw is not None:
                raw = raw + b" #" + str(i).encode()
            pos = rnd.randrange(len(self.messages))
            self.messages.insert(pos, (topic, b"poison", raw))
            self.poison.append((topic, raw, reason))


def warehouse_rows(path: Path, table: str, pk_cols: tuple[str, ...]) -> tuple[dict[tuple, dict], set[tuple], int]:
    """(live rows by key, tombstoned keys, total physical rows) as the warehouse holds them."""
    con = read_only(path)
    try:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema='main' AND table_name=$t", {"t": table}).fetchall()]
        wanted = [c for c in ("amount_krw", "note", "version") if c in cols]
        sel = ", ".join([f'CAST("{c}" AS VARCHAR)' for c in pk_cols] + [f'"{c}"' for c in wanted]
                        + ["epoch_us(updated_at)", "_deleted"])
        rows = con.execute(f'SELECT {sel} FROM main."{table}"').fetchall()
    finally:
        con.close()
    live, dead = {}, set()
    n = len(pk_cols)
    for r in rows:
        key = tuple(r[:n])
        if r[-1]:
            dead.add(key)
        else:
            live[key] = dict(zip(wanted + ["updated_at_us"], r[n:-1]))
    return live, dead, len(rows)


def expected_live(rows: dict[tuple, dict | None]) -> dict[tuple, dict]:
    out = {}
    for key, row in rows.items():
        if row is None:
            continue
        ts_us = int(datetime.fromisoformat(row["updated_at"]).timestamp() * 1_000_000)
        out[key] = {"amount_krw": row["amount_krw"], "note": row["note"], "version": row["version"], "updated_at_us": ts_us}
    return out


def assert_matches_scenario(path: Path, scenario: Scenario) -> None:
    for table, pk_cols in Scenario.TABLES.items():
        live, dead, physical = warehouse_rows(path, table, pk_cols)
        exp = scenario.expected[table]
        exp_live = expected_live(exp)
        exp_dead = {k for k, v in exp.items() if v is None}
        assert physical == len(live) + len(dead), f"{table}: duplicate rows for a key"
        missing = exp_live.keys() - live.keys()
        extra = live.keys() - exp_live.keys()
        assert not missing, f"{table}: {len(missing)} rows missing, e.g. {sorted(missing)[:3]}"
        assert not extra, f"{table}: {len(extra)} unexpected live rows, e.g. {sorted(extra)[:3]}"
        wrong = [k for k in exp_live if live[k] != exp_live[k]]
        assert not wrong, f"{table}: {len(wrong)} rows hold an old version, e.g. {wrong[0]}: {live[wrong[0]]} != {exp_live[wrong[0]]}"
        assert dead == exp_dead, f"{table}: tombstones differ ({len(dead ^ exp_dead)} keys)"


def scenario_config_tables() -> str:
    return """
[tables.transactions]
primary_key = ["tx_id"]
description = "거래 / transactions"

[tables.cards]
primary_key = ["card_id"]

[tables.balances]
primary_key = ["card_id", "day"]
"""


def kill_at_random_moments(config: Path, warehouse, total: int, rnd: random.Random, rounds: int,
                           max_pause: float, log: Path) -> list[int]:
    """Start the worker and SIGKILL it at a random moment once it is landing, `rounds` times.

    The moment falls mid-batch, between batches or during a checkpoint (a
    loaded machine takes a while to start a worker, so the pause starts once
    this run landed something). Stops early when everything has landed: a
    fast machine leaves nothing to interrupt. Returns the messages landed
    after each kill. `warehouse`: the file's path, or a lake's WarehouseConfig.
    """
    progress = []
    for _ in range(rounds):
        before = messages_landed(warehouse)
        if before >= total:
            break
        proc = start_worker(config, log=log)
        wait_for(lambda: messages_landed(warehouse) > before or proc.poll() is not None, 120, "a batch to land")
        time.sleep(rnd.uniform(0.0, max_pause))
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
        progress.append(messages_landed(warehouse))
    assert any(0 < p < total for p in progress), f"no kill landed mid-ingest: {progress}"
    return progress


def assert_a_worker_run_lands_the_scenario(config: Path, warehouse, scenario: "Scenario") -> None:
    """A worker run to idle leaves exactly the scenario's rows, every message landed, every poison a dead letter."""
    done = run_worker(config, "--until-idle")
    assert done.returncode == 0, done.stderr[-2000:]
    assert_matches_scenario(warehouse, scenario)
    assert messages_landed(warehouse) == len(scenario.messages)
    assert dead_letter_count(warehouse) == len(scenario.poison)
