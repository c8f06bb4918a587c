"""A six-table demo warehouse (members, cards, merchants, top-ups, payments, refunds) for model and question tests.

Built with tests/fixtures_app.py's `build_warehouse` (the worker's layout:
main tables, live views, _meta, the version sidecar) from rows generated
here, which the tests compute their expectations from with pandas.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dashboard.model import Model, load_model
from dashboard.warehouse import Warehouse
from ingest.config import load_config
from tests import fixtures_app
from tests.fixtures_app import REGIONS, SEOUL, build_warehouse, live, make_rows, write_app_config

ROOT = Path(__file__).resolve().parent.parent
REASONS = ["customer_request", "defective", "duplicate_charge", "partial_return"]

fixtures_app.TYPES.setdefault("members", {"member_id": "VARCHAR", "birth_year": "BIGINT", "region": "VARCHAR",
                                          "status": "VARCHAR", "joined_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"})
fixtures_app.TYPES.setdefault("refunds", {"refund_id": "BIGINT", "payment_id": "BIGINT", "card_id": "BIGINT",
                                          "merchant_id": "BIGINT", "amount_krw": "BIGINT", "reason": "VARCHAR",
                                          "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"})


def business_rows(seed: int = 11, payments: int = 3000) -> dict[str, pd.DataFrame]:
    rows = make_rows(seed=seed, payments=payments)
    rnd = random.Random(seed + 1)
    cards = rows["cards"]
    members = pd.DataFrame({
        "member_id": cards["member_id"],
        "birth_year": [rnd.randint(1950, 2008) for _ in range(len(cards))],
        "region": [rnd.choice(REGIONS) for _ in range(len(cards))],
        "status": [rnd.choice(["active", "active", "dormant", "left"]) for _ in range(len(cards))],
        "joined_at": [t - timedelta(days=rnd.randint(0, 400)) for t in cards["issued_at"]],
    })
    members["updated_at"] = members["joined_at"]
    members["_deleted"] = False
    pay = live(rows["payments"])
    approved = pay[pay["status"] == "approved"].sample(frac=0.12, random_state=seed)
    # some payments are refunded twice (two partial refunds): a join from payments to refunds would fan out
    approved = pd.concat([approved, approved.sample(frac=0.2, random_state=seed + 2)])
    refunds = pd.DataFrame({
        "refund_id": range(1, len(approved) + 1),
        "payment_id": approved["payment_id"].to_numpy(),
        "card_id": approved["card_id"].to_numpy(),
        "merchant_id": approved["merchant_id"].to_numpy(),
        "amount_krw": [max(100, int(a * rnd.choice([0.25, 0.5, 1.0])) // 100 * 100) for a in approved["amount_krw"]],
        "reason": [rnd.choice(REASONS) for _ in range(len(approved))],
        "created_at": [c + timedelta(hours=rnd.randint(1, 200)) for c in approved["created_at"]],
    })
    refunds["updated_at"] = refunds["created_at"]
    refunds["_deleted"] = False
    rows["members"] = members
    rows["refunds"] = refunds
    return rows


@dataclass
class Business:
    config_path: Path
    warehouse: Warehouse
    model: Model
    rows: dict[str, pd.DataFrame]

    def live(self, table: str) -> pd.DataFrame:
        frame = live(self.rows[table]) if "_deleted" in self.rows[table] else self.rows[table]
        out = frame.copy()
        for col in out.columns:
            if isinstance(out[col].dtype, pd.DatetimeTZDtype) or col.endswith("_at"):
                out[col] = pd.to_datetime(out[col], utc=True).dt.tz_convert(SEOUL)
        return out

    def query(self, compiled):
        return self.warehouse.query_uncached(compiled.sql, compiled.params)


def make_business(tmp_path: Path, monkeypatch=None, rows=None) -> Business:
    path = tmp_path / "warehouse.duckdb"
    rows = rows or business_rows()
    build_warehouse(path, rows)
    config_path = write_app_config(tmp_path, path)
    if monkeypatch is not None:
        monkeypatch.setenv("PIPELINE_CONFIG", str(config_path))
    config = load_config(config_path, needs=("warehouse",))
    wh = Warehouse(config)
    model = load_model(config, wh.catalog(), directory=ROOT / "models")
    return Business(config_path, wh, model, rows)


@pytest.fixture(scope="module")
def business(tmp_path_factory) -> Business:
    return make_business(tmp_path_factory.mktemp("business"))


def now_seoul() -> datetime:
    return datetime.now(SEOUL)
