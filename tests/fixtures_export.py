"""Fixtures for exporter and demo-source tests (owned by the exporter work).

- `demo_tables`: the real allow-list, the [tables.*] part of the repo's pipeline.toml.
- `export_config`: writes a pipeline.toml with [source] and [exporter] for a test.
- `demo_sqlite`: a small seeded demo source (SQLite file in tmp_path).
- helpers: `read_topic` (raw Kafka messages, no consumer group), `run_export_cli`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent

# A one-table source used where the demo schema is more than a test needs.
LEDGER = """
[tables.ledger]
primary_key = ["entry_id"]
watermark = "updated_at"
[tables.ledger.columns]
entry_id = "id"
amount_krw = "amount"
updated_at = "changed"
"""
HASH_KEY = "test-hash-key-4f1c9a7be2d54a0f"  # a test secret: must appear nowhere downstream
SMALL_MEMBERS = 300
SMALL_DAYS = 10


def demo_tables_text() -> str:
    text = (ROOT / "pipeline.toml").read_text(encoding="utf-8")
    return text[text.index("[tables.members]"):]


@pytest.fixture
def demo_tables() -> str:
    return demo_tables_text()


@pytest.fixture
def export_config(write_config, tmp_path):
    """write(source_url, tables=…, chunk_rows=…, overlap_seconds=…, interval_seconds=…) → config path."""

    def write(source_url: str, tables: str | None = None, chunk_rows: int = 500, overlap_seconds: float = 5,
              interval_seconds: float = 0.5, bootstrap: str | None = None, name: str = "pipeline.toml") -> Path:
        extra = f"""
[source]
url = "{source_url}"

[exporter]
interval_seconds = {interval_seconds}
chunk_rows = {chunk_rows}
overlap_seconds = {overlap_seconds}
state_path = "{tmp_path / 'exporter_state.json'}"
"""
        return write_config(tables=tables or demo_tables_text(), extra=extra, bootstrap=bootstrap, name=name)

    return write


@pytest.fixture
def demo_sqlite(tmp_path) -> str:
    """URL of a small seeded demo source (same schema and history generator as the real demo)."""
    from ingest.simulate import create_demo_schema, seed_history

    url = f"sqlite:///{tmp_path / 'demo_source.sqlite'}"
    engine = sa.create_engine(url)
    create_demo_schema(engine)
    seed_history(engine, members_count=SMALL_MEMBERS, days=SMALL_DAYS, seed=11)
    engine.dispose()
    return url


def load(path: Path, hash_key: str | None = HASH_KEY, **env):
    from ingest.config import load_config

    environ = {"PII_HASH_KEY": hash_key} if hash_key else {}
    environ.update(env)
    return load_config(path, needs=("source", "kafka", "exporter", "tables"), environ=environ)


def read_topic(bootstrap: str, topic: str, expect: int | None = None, timeout: float = 30.0,
               schema_records: bool = False) -> list:
    """Every change message of `topic` (raw ConsumerRecords), read without a consumer group.

    Reads until `expect` changes were seen, or until nothing new arrived for
    1.5 s. The exporter's schema records (one per partition, ahead of the
    rows) are left out unless `schema_records`.
    """
    from ingest.envelope import SCHEMA_KEY

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=500)
    try:
        deadline = time.monotonic() + timeout
        parts = None
        while time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                break
            time.sleep(0.2)
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list = []
        changes = 0
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300, max_records=10_000)
            got = [r for recs in batch.values() for r in recs]
            if got:
                changes += sum(1 for r in got if r.key != SCHEMA_KEY)
                out.extend(r for r in got if schema_records or r.key != SCHEMA_KEY)
                quiet_since = time.monotonic()
            if expect is not None and changes >= expect:
                break
            if expect is None and time.monotonic() - quiet_since > 1.5:
                break
        return out
    finally:
        consumer.close()


def latest_by_key(records) -> dict[bytes, dict]:
    import orjson

    out = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.key] = orjson.loads(r.value)
    return out


def export_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_URL", "KAFKA_BOOTSTRAP_SERVERS", "EXPORT_FAILPOINT")}
    env["PII_HASH_KEY"] = HASH_KEY
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_export_cli(config: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", "export", "--config", str(config), *args],
                          cwd=ROOT, env=env or export_env(), capture_output=True, text=True, timeout=timeout)
