"""An alert that can no longer be checked says so once, by mail, instead of going quiet.

Its saved view deleted, its report file removed, or its owner's role no longer
allowed: the recipients get one "cannot be checked" mail naming why, later
rounds add nothing, the Subscriptions list shows it, and once it can be checked
again a second breakage is news again. Real warehouse, app-state store and
aiosmtpd; injected clock.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta

from dashboard import app_state, saved_views
from dashboard.report_runner import BUNDLED_REPORTS_DIR
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL
from dashboard.subscriptions.sender import Sender
from dashboard.warehouse import Warehouse
from ingest.config import load_config
from tests.fixtures_app import app_env  # noqa: F401  (fixture)
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)
from tests.subscriptions_helpers import StepClock, subscription_config, text_body
from tests.test_subscriptions_send import make_sender

START = datetime.now(SEOUL).replace(microsecond=0) - timedelta(days=2)


def hours(sender: Sender, clock: StepClock, n: int) -> None:
    """n scheduler rounds an hour apart (every alert is due: check_minutes is 60)."""
    for _ in range(n):
        clock.moment += timedelta(hours=1, minutes=1)
        sender.tick()


def test_an_alert_on_a_deleted_view_mails_once_that_it_cannot_be_checked(app_env, smtp_server):
    server = smtp_server()
    sender, clock, _ = make_sender(app_env, server.port, start=START)
    with app_state.connect(sender.path) as conn:
        view = saved_views.save(conn, "어제 충전", "explore", "base=topups&m=topups.amount&period=yesterday")
        alert_id = store.add_alert(conn, kind="view", ref=str(view.id), params={"name": view.name}, condition="above",
                                   measure="topups.amount", threshold=1e15, recipients=["ops@example.com"], now=START)
    hours(sender, clock, 2)  # checked, below the line: nothing to say
    with app_state.connect(sender.path) as conn:
        assert store.alerts(conn)[0].state["checked_at"]
        saved_views.delete(conn, view.id)
    hours(sender, clock, 4)
    mails = server.wait_for(2, 3)
    assert len(mails) == 1, [m.subject for m in mails]
    assert "알림 확인 불가" in mails[0].subject and "어제 충전" in mails[0].subject
    body = text_body(mails[0].message)
    assert "저장된 보기 ‘어제 충전’이(가) 삭제되었습니다" in body and "충전 금액(원) 합계가" in body
    with app_state.connect(sender.path) as conn:
        (alert,) = store.alerts(conn)
        assert alert.id == alert_id and alert.state["broken"] == "view_missing"
        assert [e["change"] for e in store.alert_events(conn, alert_id)] == ["broken"]


def test_a_report_alert_whose_file_is_removed_says_so_once_and_again_after_it_was_restored(app_env, smtp_server,
                                                                                            tmp_path):
    server = smtp_server()
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(BUNDLED_REPORTS_DIR / "daily_topups.sql", reports / "daily_topups.sql")
    config = subscription_config(app_env.tmp, app_env.warehouse, server.port)
    text = config.read_text(encoding="utf-8").replace("state_path =", f'reports_dir = "{reports}"\nstate_path =', 1)
    config.write_text(text, encoding="utf-8")
    cfg = load_config(config, needs=("warehouse",))
    wh = Warehouse(cfg)
    clock = StepClock(START)
    sender = Sender(cfg, clock, wh.query_uncached, wh.data_version)
    with app_state.connect(sender.path) as conn:
        alert_id = store.add_alert(conn, ref="daily_topups", params={}, condition="above", measure="amount_krw",
                                   threshold=1e15, recipients=["ops@example.com"], now=START, lang="en")
    hours(sender, clock, 1)
    (reports / "daily_topups.sql").unlink()
    hours(sender, clock, 3)
    assert len(server.wait_for(1, 10)) == 1
    shutil.copy(BUNDLED_REPORTS_DIR / "daily_topups.sql", reports / "daily_topups.sql")
    hours(sender, clock, 1)  # checkable again: state cleared, nothing mailed
    with app_state.connect(sender.path) as conn:
        assert not store.alerts(conn)[0].state["broken"]
    (reports / "daily_topups.sql").unlink()
    hours(sender, clock, 2)
    mails = server.wait_for(3, 3)
    assert len(mails) == 2, [m.subject for m in mails]
    for mail in mails:
        assert "Alert cannot be checked" in mail.subject
        assert "the report file daily_topups.sql is not in the reports folder" in text_body(mail.message)
    with app_state.connect(sender.path) as conn:
        assert [e["change"] for e in store.alert_events(conn, alert_id)] == ["broken", "broken"]
        assert [e["state"] for e in store.alert_events(conn, alert_id)] == ["sent", "sent"]
