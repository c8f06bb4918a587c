"""Exporter under faults: the broker unreachable mid-export, personal data in an allow-listed column."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import orjson
import pytest
import sqlalchemy as sa

from ingest.broker import start_broker
from tests.conftest import free_port
from tests.fixtures_export import LEDGER, ROOT, export_env, load, read_topic, run_export_cli
from tests.ingest_helpers import wait_for
from tests.tcp_proxy import TcpProxy

def make_ledger(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_updated_at ON ledger (updated_at, entry_id)")
    return engine


def add_entries(engine: sa.Engine, first: int, last: int) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO ledger VALUES (?, ?, ?)",
            [(i, i * 100, f"2026-11-24T10:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}+09:00") for i in range(first, last + 1)],
        )


def saved_pk(state_path) -> int | None:
    try:
        return json.loads(state_path.read_text())["tables"]["ledger"]["pk"][0]
    except (FileNotFoundError, KeyError, ValueError):
        return None


@pytest.fixture
def proxied_broker():
    """A broker of its own that advertises a proxy's address, so cutting the proxy cuts every client."""
    proxy_port, broker_port = free_port(), free_port()
    broker = start_broker(broker_port, advertised_port=proxy_port)
    proxy = TcpProxy(proxy_port, ("127.0.0.1", broker_port)).start()
    yield proxy, f"127.0.0.1:{proxy_port}"
    proxy.stop()
    broker.stop()


@pytest.mark.slow
def test_watermark_holds_while_broker_is_unreachable(export_config, tmp_path, proxied_broker):
    proxy, bootstrap = proxied_broker
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = make_ledger(url)
    add_entries(engine, 1, 300)
    config = export_config(url, tables=LEDGER, chunk_rows=100, overlap_seconds=0, interval_seconds=0.3, bootstrap=bootstrap)
    cfg = load(config)
    log_path = tmp_path / "export.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "export", "--config", str(config)],
                                cwd=ROOT, env=export_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: saved_pk(cfg.exporter.state_path) == 300, 60, "the first 300 rows")
        proxy.cut()
        add_entries(engine, 301, 600)
        # The exporter read the new rows and failed to send them (it says so when a send fails),
        # then kept trying: several reconnects refused.
        wait_for(lambda: "Kafka unavailable" in log_path.read_text() or proc.poll() is not None, 60,
                 "the exporter to fail to send the new rows")
        noticed = proxy.refused
        wait_for(lambda: proxy.refused >= noticed + 4 or proc.poll() is not None, 60, "4 more reconnect attempts")
        assert proc.poll() is None, log_path.read_text()
        assert saved_pk(cfg.exporter.state_path) == 300  # nothing acknowledged, nothing recorded
        proxy.restore()
        wait_for(lambda: saved_pk(cfg.exporter.state_path) == 600, 90, "the rows sent during the outage")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    engine.dispose()
    assert code == 0
    keys = {orjson.loads(r.key)["entry_id"] for r in read_topic(bootstrap, cfg.kafka.topic_for("ledger"), expect=600)}
    assert keys == set(range(1, 601))
    log = log_path.read_text()
    assert log.count("Kafka unavailable") == 1 and log.count("Kafka reachable again") == 1, log


def test_personal_data_in_a_listed_column_stops_only_that_table(export_config, demo_sqlite, broker):
    engine = sa.create_engine(demo_sqlite)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE merchants SET merchant_name = '사장님 직통 010-2345-6789' WHERE merchant_id = 3")
        counts = {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                  for t in ("members", "cards", "topups", "payments", "refunds")}
    engine.dispose()
    config = export_config(demo_sqlite)
    cfg = load(config)
    done = run_export_cli(config, "--once")
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "'merchants'" in output and "'merchant_name'" in output and "phone number" in output
    assert "2345" not in output  # the value itself is never printed
    for table, n in counts.items():  # the other tables kept flowing
        got = read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for(table), expect=n)
        assert len({r.key for r in got}) == n, table
    merchants = read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for("merchants"))
    assert not any(b"2345-6789" in r.value for r in merchants)
    assert "merchants" not in json.loads(cfg.exporter.state_path.read_text())["tables"]
