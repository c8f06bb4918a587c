"""Shared fixtures: real services, started and stopped by PID.

- `broker`: one embedded Tansu broker per test session, on a free loopback
  port, through the same launcher as `python -m ingest broker`.
- `topic_prefix`: a fresh prefix per test, so tests sharing the broker never
  see each other's topics.
- `write_config`: writes a pipeline.toml for a test into its tmp dir.
- `mariadb_url`: a fresh database on the local MariaDB, dropped afterwards.
- `chromium_path`: Debian chromium; skipped locally when missing, a failure
  under CI=true (a browser test must not silently not run in CI).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.broker import free_port, start_broker  # noqa: E402,F401 (tests import free_port from here)

pytest_plugins = ["tests.fixtures_export", "tests.fixtures_app", "tests.fixtures_login"]

PYTHON = sys.executable
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def broker():
    running = start_broker(free_port())
    yield running
    running.stop()


@pytest.fixture
def topic_prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


DEFAULT_TABLES = """
[tables.transactions]
primary_key = ["tx_id"]
description = "카드 거래 / card transactions"
[tables.transactions.columns]
tx_id = "거래 번호 / transaction id"
card_id = "카드 / card"
amount_krw = "금액(원) / amount (KRW)"
updated_at = "변경 시각 / last change"

[tables.cards]
primary_key = ["card_id"]
description = "카드 / cards"
[tables.cards.columns]
card_id = "카드 / card"
status = "상태 / status"
"""


@pytest.fixture
def write_config(tmp_path, broker, topic_prefix):
    """Write a pipeline.toml for this test; returns its path.

    `extra` is appended verbatim (more sections); `tables` replaces the
    default two-table layout; `worker` overrides [worker] keys.
    """

    def write(tables: str = DEFAULT_TABLES, extra: str = "", worker: dict | None = None,
              bootstrap: str | None = None, name: str = "pipeline.toml") -> Path:
        w = {"max_batch_rows": 5000, "max_batch_seconds": 0.5, "heartbeat_seconds": 1, "idle_exit_seconds": 3}
        w.update(worker or {})
        worker_lines = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in w.items())
        path = tmp_path / name
        path.write_text(
            f"""
[kafka]
bootstrap_servers = "{bootstrap or broker.bootstrap}"
topic_prefix = "{topic_prefix}"
partitions = 3

[warehouse]
path = "{tmp_path / 'warehouse.duckdb'}"

[worker]
{worker_lines}
{extra}
{tables}
""",
            encoding="utf-8",
        )
        return path

    return write


@pytest.fixture
def produced(broker, topic_prefix):
    """produced(total, poison_share) → a `Scenario` of changes (with poison) already on the broker."""
    from tests.ingest_helpers import Scenario, create_topics, produce

    def make(total: int, poison_share: float = 0.005) -> Scenario:
        scenario = Scenario(topic_prefix, seed=total).build(total=total, poison_share=poison_share)
        create_topics(broker.bootstrap, [scenario.topic(t) for t in Scenario.TABLES])
        assert produce(broker.bootstrap, scenario.messages) == len(scenario.messages)
        return scenario

    return make


@pytest.fixture
def mariadb_url():
    """A brand-new MariaDB database for one test: mysql+pymysql://root@127.0.0.1:3306/<name>."""
    import pymysql

    name = "dd_" + uuid.uuid4().hex[:12]
    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    except pymysql.err.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"MariaDB on 127.0.0.1:3306 is not reachable in CI: {exc}")
        pytest.skip(f"MariaDB on 127.0.0.1:3306 is not reachable: {exc}")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("CI") == "true":
            pytest.fail("Debian chromium is missing in CI — .ci/run installs it with apt-get install -y chromium")
        pytest.skip("Debian chromium not installed (apt-get install -y chromium)")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
