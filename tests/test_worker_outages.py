"""The broker goes away (network cut, or hung) while the worker runs: it rides it out by itself."""

from __future__ import annotations

import os
import signal

import pytest

from ingest.broker import start_broker
from tests.conftest import free_port
from tests.ingest_helpers import (
    Scenario,
    assert_matches_scenario,
    create_topics,
    messages_landed,
    produce,
    scenario_config_tables,
    start_worker,
    stop_process,
    wait_for,
)
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

RETRIES = 4  # reconnect attempts the proxy must refuse after the worker noticed, before an outage ends


@pytest.fixture
def proxied_broker():
    """A broker reachable only through a proxy (it advertises the proxy's port)."""
    proxy_port, broker_port = free_port(), free_port()
    running = start_broker(broker_port, advertised_port=proxy_port)
    proxy = TcpProxy(proxy_port, ("127.0.0.1", broker_port)).start()
    yield running, proxy, f"127.0.0.1:{proxy_port}"
    proxy.stop()
    running.stop()


def _start_with_first_half_landed(bootstrap, write_config, topic_prefix, tmp_path, total: int, seed: int):
    """Produce half a scenario, start the worker and wait until that half has landed.

    Returns (scenario, the other half, worker process, its log, warehouse path).
    """
    scenario = Scenario(topic_prefix, seed=seed).build(total=total, poison_share=0)
    half = len(scenario.messages) // 2
    create_topics(bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
    produce(bootstrap, scenario.messages[:half])
    config = write_config(tables=scenario_config_tables(), bootstrap=bootstrap,
                          worker={"max_batch_rows": 2000, "max_batch_seconds": 0.3})
    warehouse, log = tmp_path / "warehouse.duckdb", tmp_path / "worker.log"
    worker = start_worker(config, log=log)
    try:
        wait_for(lambda: messages_landed(warehouse) >= half, 60, "the first half to land")
    except BaseException:
        stop_process(worker)
        raise
    return scenario, scenario.messages[half:], worker, log, warehouse


def test_network_cut_to_the_broker_is_ridden_out_and_nothing_is_lost(proxied_broker, write_config, topic_prefix, tmp_path):
    _broker, proxy, bootstrap = proxied_broker
    scenario, second, worker, log, warehouse = _start_with_first_half_landed(
        bootstrap, write_config, topic_prefix, tmp_path, total=20_000, seed=7)
    try:
        proxy.cut()
        wait_for(lambda: "unreachable" in log.read_text(), 30, "the worker to notice the outage")
        # Stay down until the worker has tried again and again: it must still say so only once.
        noticed = proxy.refused
        wait_for(lambda: proxy.refused >= noticed + RETRIES, 60, f"{RETRIES} more reconnect attempts")
        proxy.restore()
        produce(bootstrap, second)
        wait_for(lambda: messages_landed(warehouse) >= len(scenario.messages), 90, "everything to land after the outage")
    finally:
        code = stop_process(worker)
    assert code == 0
    text = log.read_text()
    assert text.count("unreachable (") == 1, text[-3000:]
    assert text.count("reachable again") == 1, text[-3000:]
    assert_matches_scenario(warehouse, scenario)


def test_a_hung_broker_is_ridden_out(proxied_broker, write_config, topic_prefix, tmp_path):
    broker, _proxy, bootstrap = proxied_broker
    scenario, second, worker, log, warehouse = _start_with_first_half_landed(
        bootstrap, write_config, topic_prefix, tmp_path, total=10_000, seed=3)
    try:
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: "unreachable" in log.read_text(), 40, "the worker to notice the hang")
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        produce(bootstrap, second)
        wait_for(lambda: messages_landed(warehouse) >= len(scenario.messages), 90, "everything to land after the hang")
        wait_for(lambda: "reachable again" in log.read_text(), 30, "the worker to say it recovered")
    finally:
        code = stop_process(worker)
    assert code == 0
    assert_matches_scenario(warehouse, scenario)


def test_a_worker_started_during_an_outage_waits_for_the_broker(proxied_broker, write_config, topic_prefix, tmp_path):
    _broker, proxy, bootstrap = proxied_broker
    scenario = Scenario(topic_prefix, seed=9).build(total=6_000, poison_share=0)
    create_topics(bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
    config = write_config(tables=scenario_config_tables(), bootstrap=bootstrap,
                          worker={"max_batch_rows": 2000, "max_batch_seconds": 0.3})
    warehouse = tmp_path / "warehouse.duckdb"
    proxy.cut()
    log = tmp_path / "worker.log"
    worker = start_worker(config, log=log)
    try:
        # kafka-python gives up bootstrapping after 30 s; the worker must then keep trying.
        wait_for(lambda: "unreachable" in log.read_text() or worker.poll() is not None, 90, "the worker to meet the outage")
        noticed = proxy.refused
        wait_for(lambda: proxy.refused >= noticed + RETRIES or worker.poll() is not None, 60,
                 f"{RETRIES} more connection attempts after the first failure")
        assert worker.poll() is None, "the worker must wait for the broker, not exit: " + log.read_text()[-2000:]
        proxy.restore()
        produce(bootstrap, scenario.messages)
        wait_for(lambda: messages_landed(warehouse) >= len(scenario.messages), 120, "everything to land once the broker answers")
    finally:
        code = stop_process(worker)
    assert code == 0
    assert_matches_scenario(warehouse, scenario)
