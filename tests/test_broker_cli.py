"""`python -m ingest broker` runs the embedded broker in the foreground and stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys

from ingest.broker import wait_until_listening
from tests.conftest import free_port
from tests.ingest_helpers import ROOT, create_topics, produce, worker_env


def test_broker_command_serves_kafka_on_loopback_and_stops_on_sigterm():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "broker", "--port", str(port)],
                            env=worker_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until_listening("127.0.0.1", port, timeout=20)
        create_topics(f"127.0.0.1:{port}", ["smoke"], partitions=1)
        assert produce(f"127.0.0.1:{port}", [("smoke", b"k", b"v")]) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out[-2000:]


def test_missing_broker_binary_gives_a_clear_message():
    done = subprocess.run([sys.executable, "-m", "ingest", "broker", "--port", str(free_port())],
                          env=worker_env({"CALF_TANSU_BIN": "/nonexistent/tansu"}), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "CALF_TANSU_BIN" in done.stderr and "KAFKA_BOOTSTRAP_SERVERS" in done.stderr
