"""`streamlit run streamlit_app.py` as a child process for browser tests, stopped by its process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Sequence

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def start_app(config: Path, log_path: Path, timeout: float = 60, port: int | None = None,
              extra_args: Sequence[str] = ()) -> tuple[subprocess.Popen, str]:
    """Start the app on a loopback port (free unless given) with PIPELINE_CONFIG=`config`; returns
    (process, base URL) once /_stcore/health answers, or fails with the app's log.

    `extra_args` go to `streamlit run` (e.g. the `--secrets.files` of ingest/app_launch.py)."""
    port = port or free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             *extra_args],
            cwd=ROOT, env={**os.environ, "PIPELINE_CONFIG": str(config)}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_app(proc)
            raise AssertionError("streamlit did not start:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.3)


def stop_app(proc: subprocess.Popen) -> None:
    """SIGTERM to the app's process group, SIGKILL if it is still there after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
