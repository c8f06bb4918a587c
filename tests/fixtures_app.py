"""Fixtures for the app tests: a real DuckDB warehouse file in tmp_path, in the worker's layout.

`build_warehouse` writes `main.<table>` tables (with the landing's system
columns and some tombstones), the `live.<table>` views, `_meta` (from
ingest/sql/meta.sql) with one batch row, and the `.version` sidecar — the
same shape the worker produces (ingest/landing_sql.py), so the app cannot
tell the difference. The generated rows are returned too: tests compute what they
expect from them (with pandas or a separate DuckDB connection), never from
the app.

`app_env` = that warehouse + a pipeline.toml (the repo's demo tables, so the
real column descriptions label the screen) + PIPELINE_CONFIG pointing at it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from ingest import landing_sql
from ingest.warehouse_file import open_writer

ROOT = Path(__file__).resolve().parent.parent
SEOUL = ZoneInfo("Asia/Seoul")
CHANNELS = ["bank_transfer", "card", "convenience_store", "mobile", "auto_charge"]
CATEGORIES = ["convenience", "cafe", "restaurant", "transport", "online", "culture", "retail"]
REGIONS = ["서울", "경기", "인천", "부산", "대구", "대전", "광주", "제주"]
PRODUCTS = ["standard", "transit", "gift", "youth"]


def demo_tables_toml() -> str:
    """The [tables.*] part of the repo's pipeline.toml (real descriptions, absent columns, hash flags)."""
    text = (ROOT / "pipeline.toml").read_text(encoding="utf-8")
    return text[text.index("[tables."):]


def write_app_config(tmp_path: Path, warehouse: Path, extra: str = "", app: str = "") -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f"""
[warehouse]
path = "{warehouse}"

[exporter]
interval_seconds = 10

[worker]
max_batch_seconds = 1

[app]
max_display_rows = 500
max_download_rows = 100000
query_timeout_seconds = 20
memory_limit = "512MB"
{app}
{extra}
{demo_tables_toml()}
""",
        encoding="utf-8",
    )
    return path


def _now_seoul() -> datetime:
    return datetime.now(SEOUL).replace(microsecond=0)


def make_rows(seed: int = 7, topups: int = 3000, payments: int = 2000) -> dict[str, pd.DataFrame]:
    """Synthetic demo rows (no real people): timestamps spread over the last ~75 days."""
    rnd = random.Random(seed)
    now = _now_seoul()

    def when() -> datetime:
        return now - timedelta(seconds=rnd.randint(0, 75 * 86400))

    cards = pd.DataFrame({
        "card_id": range(1, 201),
        "member_id": [f"{rnd.getrandbits(256):064x}" for _ in range(200)],
        "product": [rnd.choice(PRODUCTS) for _ in range(200)],
        "status": [rnd.choice(["active", "active", "active", "suspended", "closed"]) for _ in range(200)],
        "balance_krw": [rnd.randint(0, 200) * 500 for _ in range(200)],
        "issued_at": [when() for _ in range(200)],
    })
    merchants = pd.DataFrame({
        "merchant_id": range(1, 81),
        "merchant_name": [f"{rnd.choice(['행복', '푸른', '하나', '새봄', '우리'])}{rnd.choice(['마트', '카페', '식당', '서점'])} {i}호점"
                          for i in range(1, 81)],
        "category": [rnd.choice(CATEGORIES) for _ in range(80)],
        "region": [rnd.choice(REGIONS) for _ in range(80)],
        "created_at": [when() for _ in range(80)],
    })
    top = pd.DataFrame({
        "topup_id": range(1, topups + 1),
        "card_id": [rnd.randint(1, 200) for _ in range(topups)],
        "channel": [rnd.choice(CHANNELS) for _ in range(topups)],
        "amount_krw": [rnd.choice([5000, 10000, 20000, 30000, 50000, 100000]) for _ in range(topups)],
        "created_at": [when() for _ in range(topups)],
    })
    pay_created = [when() for _ in range(payments)]
    status = [rnd.choice(["approved"] * 9 + ["cancelled"]) for _ in range(payments)]
    pay = pd.DataFrame({
        "payment_id": range(1, payments + 1),
        "card_id": [rnd.randint(1, 200) for _ in range(payments)],
        "merchant_id": [rnd.randint(1, 80) for _ in range(payments)],
        "amount_krw": [rnd.randint(1, 400) * 100 for _ in range(payments)],
        "status": status,
        "created_at": pay_created,
        "cancelled_at": [c + timedelta(hours=1) if s == "cancelled" else None for c, s in zip(pay_created, status)],
    })
    for frame in (cards, merchants, top, pay):
        ts_col = "issued_at" if "issued_at" in frame else "created_at"
        frame["updated_at"] = frame[ts_col]
    # A few tombstones: rows the source deleted. The live views must hide them.
    deleted = {"topups": set(rnd.sample(range(1, topups + 1), topups // 50)), "payments": set(), "cards": set(), "merchants": set()}
    for name, frame, pk in (("topups", top, "topup_id"), ("payments", pay, "payment_id"),
                            ("cards", cards, "card_id"), ("merchants", merchants, "merchant_id")):
        frame["_deleted"] = frame[pk].isin(deleted[name])
    return {"cards": cards, "merchants": merchants, "topups": top, "payments": pay}


TYPES = {
    "cards": {"card_id": "BIGINT", "member_id": "VARCHAR", "product": "VARCHAR", "status": "VARCHAR",
              "balance_krw": "BIGINT", "issued_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"},
    "merchants": {"merchant_id": "BIGINT", "merchant_name": "VARCHAR", "category": "VARCHAR", "region": "VARCHAR",
                  "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"},
    "topups": {"topup_id": "BIGINT", "card_id": "BIGINT", "channel": "VARCHAR", "amount_krw": "BIGINT",
               "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"},
    "payments": {"payment_id": "BIGINT", "card_id": "BIGINT", "merchant_id": "BIGINT", "amount_krw": "BIGINT",
                 "status": "VARCHAR", "created_at": "TIMESTAMPTZ", "cancelled_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"},
}


def build_warehouse(path: Path, rows: dict[str, pd.DataFrame], batch_id: int = 1, now: datetime | None = None) -> None:
    """Write the worker's layout into a fresh DuckDB file and its .version sidecar.

    `now` stamps `_ingested_at` and the batch (two warehouses compared row for row share one).
    """
    meta_sql = (ROOT / "ingest" / "sql" / "meta.sql").read_text(encoding="utf-8")
    now = now or _now_seoul()
    with open_writer(path) as con:
        con.execute("SET TimeZone = 'Asia/Seoul'")
        con.execute(meta_sql)
        for table, frame in rows.items():
            con.execute(landing_sql.create_table(table, TYPES[table]))
            data = frame.copy()
            data["_source_ts"] = data["updated_at"]
            data["_ingested_at"] = now
            data["_kafka_partition"] = 0
            data["_kafka_offset"] = range(len(data))
            con.register("staging", data)
            cols = ", ".join(landing_sql.q(c) for c in data.columns)
            con.execute(f"INSERT INTO main.{landing_sql.q(table)} ({cols}) SELECT {cols} FROM staging")
            con.unregister("staging")
            con.execute(landing_sql.create_live_view(table))
        con.execute(
            "INSERT INTO _meta.batches (batch_id, started_at, committed_at, messages, upserts, deletes, skipped_stale, dead_letters, seconds, tables, offsets, lag_messages) VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0.1, ?, '{}', 0)",
            [batch_id, now - timedelta(seconds=3), now, sum(len(f) for f in rows.values()),
             sum(len(f) for f in rows.values()), list(rows)],
        )
        con.execute("CHECKPOINT")
    path.with_name(path.name + ".version").write_text(str(batch_id), encoding="utf-8")


def live(frame: pd.DataFrame) -> pd.DataFrame:
    """What the live view shows: tombstones removed."""
    return frame[~frame["_deleted"]].drop(columns=["_deleted"])


@dataclass
class AppEnv:
    config: Path
    warehouse: Path
    rows: dict[str, pd.DataFrame]
    tmp: Path

    def live(self, table: str) -> pd.DataFrame:
        return live(self.rows[table])


@pytest.fixture
def app_env(tmp_path, monkeypatch) -> AppEnv:
    warehouse = tmp_path / "warehouse.duckdb"
    rows = make_rows()
    build_warehouse(warehouse, rows)
    config = write_app_config(tmp_path, warehouse)
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    return AppEnv(config, warehouse, rows, tmp_path)


@pytest.fixture
def empty_app_env(tmp_path, monkeypatch) -> AppEnv:
    """A config whose warehouse file does not exist yet (pipeline never started)."""
    warehouse = tmp_path / "warehouse.duckdb"
    config = write_app_config(tmp_path, warehouse)
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    return AppEnv(config, warehouse, {}, tmp_path)


@pytest.fixture
def captured_downloads(monkeypatch):
    """Record the deferred download callables the page registers (the real MediaFileManager still runs)."""
    files: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        files[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return files


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Debian chromium driven by Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


def run_page(page: str, params: dict | None = None, lang: str | None = None) -> AppTest:
    """The app's entry script (sidebar and all) run by Streamlit's AppTest on `page`, with URL `params` and a language."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    if lang:
        at.session_state["lang"] = lang
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
