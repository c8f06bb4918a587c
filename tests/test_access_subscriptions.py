"""A subscription mail is rendered with its owner's access rules: never more than the owner may see."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard import app_state
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL, Schedule
from dashboard.subscriptions.sender import Sender
from dashboard.warehouse import Warehouse
from ingest.config import load_config
from tests.fixtures_app import build_warehouse
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)
from tests.questions_fixtures import business_rows
from tests.subscriptions_helpers import StepClock, attachment, csv_rows, subscription_config, text_body

ACCESS = """
[access]
people = [{ match = "busan@example.com", role = "busan" }]

[access.roles.busan]
tables = ["payments", "refunds", "merchants"]
rows = [{ dimension = "merchants.region", op = "in", values = ["부산"] }]
"""


@pytest.fixture
def sender_env(tmp_path):
    rows = business_rows()
    path = tmp_path / "warehouse.duckdb"
    build_warehouse(path, rows)
    return tmp_path, path, rows


def test_the_owners_rules_shape_the_mail_and_a_report_beyond_them_is_not_sent(sender_env, smtp_server):
    tmp, warehouse, rows = sender_env
    server = smtp_server()
    cfg = load_config(subscription_config(tmp, warehouse, server.port, ACCESS), needs=("warehouse",))
    wh = Warehouse(cfg)
    start = datetime.now(SEOUL) - timedelta(days=1, hours=1)
    clock = StepClock(start)
    sender = Sender(cfg, clock, wh.query_uncached, wh.data_version)
    daily = Schedule("daily", start.strftime("%H:%M"))
    period = {"period": "last_365_days"}
    with app_state.connect(sender.path) as conn:
        store.add_subscription(conn, ref="top_merchants", params={**period, "top_n": "1000"}, schedule=daily,
                               recipients=["a@example.com"], now=start, format="csv", owner="busan@example.com")
        store.add_subscription(conn, ref="daily_topups", params=period, schedule=daily, recipients=["b@example.com"],
                               now=start, format="csv", owner="busan@example.com")
    clock.moment = datetime.now(SEOUL)
    sender.tick()
    mails = {m.rcpt_tos[0]: m.message for m in server.wait_for(2, 15)}

    _, data = attachment(mails["a@example.com"])
    header, body = csv_rows(data)  # headers in the mail's language (Korean)
    assert body and {row[header.index("지역")] for row in body} == {"부산"}
    merchants = rows["merchants"]
    busan = set(merchants.loc[merchants.region == "부산", "merchant_id"].astype(str))
    assert {row[header.index("가맹점 번호")] for row in body} <= busan

    refused = mails["b@example.com"]
    assert attachment(refused) is None
    assert "busan@example.com" in text_body(refused) and "볼 수 없어" in text_body(refused)
