"""Columns keep the source's types, a value that does not fit is a dead letter, and replay lands it after a fix.

Real MariaDB and SQLite sources, the real broker, the exporter and worker as
processes, a real DuckDB file. The rogue producer is this test, writing an
envelope to the table's topic the way a misbehaving service would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from ingest.envelope import encode_key
from tests.fixtures_export import export_env, run_export_cli
from tests.ingest_helpers import ROOT, read_only, run_worker

TABLES = """
[tables.items]
primary_key = ["item_id"]
watermark = "updated_at"
description = "품목 / items"
[tables.items.columns]
item_id = "번호 / id"
price = "가격 / price"
qty = "수량 / quantity"
day = "날짜 / day"
label = "이름 / label"
updated_at = "변경 시각 / last change"
"""
EXPECTED_TYPES = {"item_id": "BIGINT", "price": "DECIMAL(10,2)", "qty": "INTEGER", "day": "DATE",
                  "label": "VARCHAR", "updated_at": "TIMESTAMP WITH TIME ZONE"}
ROWS = [
    (1, "1234.50", 3, "2026-11-01", "커피", "2026-11-01 09:00:00"),
    (2, "0.10", 0, "2026-11-02", "빵", "2026-11-01 09:00:01"),
    (3, "99999999.99", 2147483647, "2026-11-03", None, "2026-11-01 09:00:02"),
]


def create_items(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (item_id BIGINT PRIMARY KEY, price DECIMAL(10,2) NOT NULL, qty INTEGER NOT NULL, "
            "day DATE NOT NULL, label VARCHAR(40), secret VARCHAR(40), updated_at DATETIME(6) NOT NULL)"
            if engine.dialect.name != "sqlite" else
            "CREATE TABLE items (item_id BIGINT PRIMARY KEY, price DECIMAL(10,2) NOT NULL, qty INTEGER NOT NULL, "
            "day DATE NOT NULL, label VARCHAR(40), secret VARCHAR(40), updated_at DATETIME NOT NULL)")
        conn.exec_driver_sql("CREATE INDEX ix_items_updated_at ON items (updated_at, item_id)")
        for r in ROWS:
            conn.exec_driver_sql(
                "INSERT INTO items (item_id, price, qty, day, label, secret, updated_at) VALUES (?, ?, ?, ?, ?, 's', ?)"
                if engine.dialect.name == "sqlite" else
                "INSERT INTO items (item_id, price, qty, day, label, secret, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, 's', %s)", r)
    engine.dispose()


def send_rogue(bootstrap: str, topic: str, row: dict, source_ts: str) -> None:
    """A producer that ignores the declared types (the test is that producer)."""
    value = json.dumps({"table": "items", "op": "upsert", "pk": {"item_id": row["item_id"]}, "row": row,
                        "source_ts": source_ts, "v": 1}, ensure_ascii=False).encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(topic, key=encode_key({"item_id": row["item_id"]}), value=value).get(timeout=30)
    finally:
        producer.close()


def warehouse(tmp_path, sql: str, params=None):
    con = read_only(tmp_path / "warehouse.duckdb")
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def replay(config) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", "replay", "--config", str(config), "--table", "items"],
                          cwd=ROOT, env=export_env(), capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["mariadb", "sqlite"])
def source_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'items.sqlite'}"
    return request.getfixturevalue("mariadb_url")


def test_source_types_land_and_a_misfit_is_a_dead_letter_that_replay_lands_after_a_fix(
        source_url, export_config, broker, topic_prefix, tmp_path):
    create_items(source_url)
    config = export_config(source_url, tables=TABLES)
    exported = run_export_cli(config, "--once")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert run_worker(config, "--until-idle").returncode == 0

    types = dict(warehouse(tmp_path, "SELECT column_name, data_type FROM information_schema.columns "
                                     "WHERE table_schema = 'main' AND table_name = 'items' AND column_name NOT LIKE '\\_%' ESCAPE '\\'"))
    assert types == EXPECTED_TYPES  # `secret` is not allow-listed: never read, never a column
    rows = warehouse(tmp_path, "SELECT item_id, price, qty, day::VARCHAR, label, "
                               "strftime(updated_at AT TIME ZONE 'Asia/Seoul', '%Y-%m-%d %H:%M:%S') FROM main.items ORDER BY 1")
    assert rows == [(i, Decimal(p), q, d, label, u) for i, p, q, d, label, u in ROWS]

    # A producer that sends text where the source declares an INTEGER: a dead letter, the column stays INTEGER.
    topic = f"{topic_prefix}.items"
    send_rogue(broker.bootstrap, topic, {"item_id": 2, "price": "0.10", "qty": "many", "day": "2026-11-02",
                                         "label": "빵", "updated_at": "2026-11-02T10:00:00+09:00"},
               "2026-11-02T10:00:00+09:00")
    assert run_worker(config, "--until-idle").returncode == 0
    assert warehouse(tmp_path, "SELECT reason FROM _meta.dead_letters") == [("qty: 'many' is not INTEGER",)]
    assert warehouse(tmp_path, "SELECT qty FROM main.items WHERE item_id = 2") == [(0,)]

    # Replay before any fix: it still fails, stays a dead letter, and says why.
    first = replay(config)
    assert first.returncode == 0 and "0 pass today's rules" in first.stdout and "still fail" in first.stdout, first
    if source_url.startswith("sqlite"):
        return  # SQLite cannot change a column's type; the fix below is a migration at the source
    # The fix: a migration at the source makes qty text. The exporter publishes the new types,
    # the worker widens the column, and replay lands the dead letter — once.
    engine = sa.create_engine(source_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE items MODIFY qty VARCHAR(20) NOT NULL")
    engine.dispose()
    assert run_export_cli(config, "--once").returncode == 0
    assert run_worker(config, "--until-idle").returncode == 0
    assert dict(warehouse(tmp_path, "SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_schema = 'main' AND table_name = 'items'"))["qty"] == "VARCHAR"
    fixed = replay(config)
    assert fixed.returncode == 0 and "1 pass today's rules" in fixed.stdout, fixed
    assert warehouse(tmp_path, "SELECT count(*), max(qty) FROM main.items WHERE item_id = 2") == [(1, "many")]
    assert warehouse(tmp_path, "SELECT count(*) FROM _meta.dead_letters WHERE replayed_at IS NOT NULL") == [(1,)]
    assert warehouse(tmp_path, "SELECT kind, upserts FROM _meta.batches ORDER BY batch_id DESC LIMIT 1") == [("replay", 1)]
    again = replay(config)
    assert again.returncode == 0 and "no dead letters to replay" in again.stdout
    assert warehouse(tmp_path, "SELECT count(*) FROM main.items") == [(3,)]
