"""Fault injection: the real worker is SIGKILLed, then SIGSTOPped, while the real watchdog runs.

Each fault must produce exactly one alert mail, within alert_after_seconds +
one check interval (+ the heartbeat period, since the last beat can precede
the fault by that much), and exactly one recovery mail once the worker runs again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from ingest.config import load_config
from ingest.watchdog import AlertHistory, observe
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)
from tests.ingest_helpers import create_topics, start_worker, worker_env

ALERT_AFTER, CHECK, HEARTBEAT = 4.0, 1.0, 1.0
SLACK = 1.5  # process scheduling on a shared 2-core machine, SMTP round trip


def wait_for_count(server, count: int, timeout: float) -> float | None:
    """Seconds until the server holds `count` messages, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(server.messages) >= count:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def wait_for_fresh_heartbeat(path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = datetime.now(timezone.utc)
        obs = observe(path, now, timeout=1)
        if obs.heartbeat_at is not None and (now - obs.heartbeat_at).total_seconds() < 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker wrote no fresh heartbeat into {path} within {timeout} s")


@pytest.mark.slow
def test_killed_and_frozen_worker_each_give_exactly_one_alert_and_one_recovery(
    tmp_path, write_config, topic_prefix, broker, smtp_server
):
    server = smtp_server()
    config = write_config(
        worker={"heartbeat_seconds": HEARTBEAT},
        extra=f"""
[alerts]
check_seconds = {CHECK}
alert_after_seconds = {ALERT_AFTER}
max_lag_messages = 100000
recipients = ["data-team@example.com", "oncall@example.com"]
sender = "datadesk@example.com"
smtp_host = "127.0.0.1"
smtp_port = {server.port}
starttls = false
state_path = "{tmp_path / 'watchdog_state.json'}"
history_path = "{tmp_path / 'alerts.jsonl'}"
""",
    )
    cfg = load_config(config, needs=("warehouse", "alerts"))
    create_topics(broker.bootstrap, [f"{topic_prefix}.transactions", f"{topic_prefix}.cards"])
    procs: list[subprocess.Popen] = []
    try:
        worker = start_worker(config, log=tmp_path / "worker.log")
        procs.append(worker)
        wait_for_fresh_heartbeat(cfg.warehouse.path)
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "ingest", "watchdog", "--config", str(config)],
            env=worker_env(), stdout=open(tmp_path / "watchdog.log", "ab"), stderr=subprocess.STDOUT, cwd=tmp_path,
        )
        procs.append(watchdog)
        time.sleep(ALERT_AFTER + CHECK)
        assert server.messages == [], "a healthy worker must not raise an alert"

        # ── SIGKILL: the process is gone ──
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        took = wait_for_count(server, 1, ALERT_AFTER + CHECK + HEARTBEAT + 10)
        assert took is not None, "no alert mail after the worker was killed"
        assert took <= ALERT_AFTER + CHECK + HEARTBEAT + SLACK, f"alert took {took:.1f} s"
        time.sleep(3 * CHECK)
        assert len(server.messages) == 1, "the alert was repeated"
        alert = server.messages[0]
        assert alert.subject.startswith("[datadesk] ALERT worker down")
        assert sorted(alert.rcpt_tos) == ["data-team@example.com", "oncall@example.com"]
        print(f"\nSIGKILL → alert mail after {took:.2f} s (limit {ALERT_AFTER + CHECK + HEARTBEAT:.0f} s)")

        worker = start_worker(config, log=tmp_path / "worker.log")
        procs.append(worker)
        took = wait_for_count(server, 2, 30)
        assert took is not None, "no recovery mail after the worker was restarted"
        time.sleep(3 * CHECK)
        assert len(server.messages) == 2
        assert server.messages[1].subject.startswith("[datadesk] RECOVERED worker down")
        print(f"restart → recovery mail after {took:.2f} s (includes the worker's start-up)")

        # ── SIGSTOP: the PID exists, the process is frozen; the heartbeat's age gives it away ──
        wait_for_fresh_heartbeat(cfg.warehouse.path)
        worker.send_signal(signal.SIGSTOP)
        took = wait_for_count(server, 3, ALERT_AFTER + CHECK + HEARTBEAT + 10)
        assert took is not None, "a frozen worker was not detected"
        assert took <= ALERT_AFTER + CHECK + HEARTBEAT + SLACK, f"alert took {took:.1f} s"
        assert server.messages[2].subject.startswith("[datadesk] ALERT worker down")
        print(f"SIGSTOP → alert mail after {took:.2f} s")
        worker.send_signal(signal.SIGCONT)
        took = wait_for_count(server, 4, HEARTBEAT + CHECK + 10)
        assert took is not None, "no recovery mail after SIGCONT"
        time.sleep(3 * CHECK)
        assert [m.subject.split(":")[0] for m in server.messages] == [
            "[datadesk] ALERT worker down", "[datadesk] RECOVERED worker down",
        ] * 2
        print(f"SIGCONT → recovery mail after {took:.2f} s")

        history = AlertHistory(cfg.alerts.history_path).read()
        assert [(h["kind"], h["problem"], h["delivered"]) for h in history] == [
            ("alert", "worker_down", True), ("recovery", "worker_down", True),
        ] * 2

        watchdog.send_signal(signal.SIGTERM)
        assert watchdog.wait(10) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
