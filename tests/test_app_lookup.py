"""The look-up page through AppTest on a real DuckDB file: a card's timeline is the union of its source rows in time order."""

from __future__ import annotations

import random
from datetime import timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests import fixtures_app
from tests.fixtures_app import build_warehouse, live, make_rows, write_app_config

APP = str(fixtures_app.ROOT / "streamlit_app.py")
REFUND_TYPES = {"refund_id": "BIGINT", "payment_id": "BIGINT", "card_id": "BIGINT", "merchant_id": "BIGINT",
                "amount_krw": "BIGINT", "reason": "VARCHAR", "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"}


def with_refunds(rows: dict[str, pd.DataFrame], seed: int = 11) -> dict[str, pd.DataFrame]:
    rnd = random.Random(seed)
    pay = rows["payments"]
    picked = pay[pay["status"] == "approved"].sample(120, random_state=seed)
    refunds = pd.DataFrame({
        "refund_id": range(1, len(picked) + 1),
        "payment_id": picked["payment_id"].to_list(),
        "card_id": picked["card_id"].to_list(),
        "merchant_id": picked["merchant_id"].to_list(),
        "amount_krw": [int(a) // 2 for a in picked["amount_krw"]],
        "reason": [rnd.choice(["customer_request", "defective", "duplicate_charge"]) for _ in range(len(picked))],
        "created_at": [c + timedelta(hours=rnd.randint(1, 48)) for c in picked["created_at"]],
    })
    refunds["updated_at"] = refunds["created_at"]
    refunds["_deleted"] = False
    return {**rows, "refunds": refunds}


@pytest.fixture
def lookup_env(tmp_path, monkeypatch):
    monkeypatch.setitem(fixtures_app.TYPES, "refunds", REFUND_TYPES)
    rows = with_refunds(make_rows())
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(warehouse, rows)
    config = write_app_config(tmp_path, warehouse, app=f'state_path = "{tmp_path / "state.sqlite"}"')
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    return rows


def run(params: dict, lang: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if lang:
        at.session_state["lang"] = lang
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("pages/lookup.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def expected_timeline(rows, key: str, value: int) -> pd.DataFrame:
    parts = []
    for table, id_col in (("payments", "payment_id"), ("topups", "topup_id"), ("refunds", "refund_id")):
        frame = live(rows[table])
        if key not in frame:  # top-ups carry no merchant
            continue
        frame = frame[frame[key] == value]
        parts.append(pd.DataFrame({"at": frame["created_at"], "kind": table, "id": frame[id_col],
                                   "amount": frame["amount_krw"]}))
    out = pd.concat(parts)
    out = out.assign(id_text=out["id"].astype(str)).sort_values(["at", "kind", "id_text"], kind="stable")
    return out.reset_index(drop=True)


def test_a_cards_timeline_is_the_union_of_its_rows_in_time_order(lookup_env):
    rows = lookup_env
    refunded_card = int(rows["refunds"]["card_id"].value_counts().index[0])
    at = run({"what": "card", "id": str(refunded_card)}, lang="en")
    want = expected_timeline(rows, "card_id", refunded_card)
    assert {"payments", "topups", "refunds"} <= set(want["kind"])
    grid = at.dataframe[-1].value
    assert len(grid) == len(want)
    assert grid["Id"].astype(int).to_list() == want["id"].to_list()
    assert grid["Kind"].to_list() == want["kind"].map({"payments": "Payments", "topups": "Top-ups",
                                                         "refunds": "Refunds"}).to_list()
    assert grid["Amount (KRW)"].astype(int).to_list() == want["amount"].to_list()
    assert "Card id" not in grid.columns  # the card itself is not repeated on every line
    assert any(f"{len(want)} events" in m.value for m in at.markdown)
    assert at.query_params["id"] == str(refunded_card)


def test_a_merchant_by_part_of_its_name(lookup_env):
    rows = lookup_env
    merchants = live(rows["merchants"])
    target = merchants.iloc[5]
    at = run({"what": "merchant", "q": target["merchant_name"]})
    exact = merchants[merchants["merchant_name"].str.contains(target["merchant_name"], regex=False)]
    if len(exact) > 1:  # "행복마트 1호점" also matches "행복마트 11호점": the page asks which
        at.selectbox(key="lk_pick").set_value(int(target["merchant_id"])).run()
    want = expected_timeline(rows, "merchant_id", int(target["merchant_id"]))
    grid = at.dataframe[-1].value
    assert grid["번호"].astype(int).to_list() == want["id"].to_list()


@pytest.mark.parametrize("typed", ["7'; DROP TABLE cards; --", "1 OR 1=1", "\x00", "9" * 40, "가" * 200])
def test_typed_values_never_break_the_page(lookup_env, typed):
    at = run({"what": "card", "id": typed})
    assert at.warning, "a value that is not an id gets a message"
    at = run({"what": "merchant", "q": typed})  # searched as text, bound: nothing found, no traceback
    assert not at.exception
