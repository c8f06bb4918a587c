"""Data alerts: one mail when the condition becomes true, one when it clears — real store, warehouse and aiosmtpd."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dashboard import app_state
from dashboard.subscriptions import alerts as rules
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL
from tests.fixtures_app import app_env  # noqa: F401  (fixture)
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)
from tests.subscriptions_helpers import text_body
from tests.test_subscriptions_send import make_sender


def day_totals(env) -> dict[date, int]:
    t = env.live("topups")
    days = t["created_at"].map(lambda v: v.astimezone(SEOUL).date())
    return {d: int(a) for d, a in t.groupby(days)["amount_krw"].sum().items()}


def quiet_busy_quiet(env) -> tuple[dict[date, int], tuple[date, date, date], float, datetime]:
    """Three days in a row of the fixture's top-ups, quiet, busy, quiet: (totals per day, the days, a threshold
    between them, the morning after the first day — when a clock starts to check 'yesterday')."""
    totals = day_totals(env)
    today = datetime.now(SEOUL).date()
    days = sorted(d for d in totals if today - timedelta(days=40) <= d < today - timedelta(days=2))
    for a, b, c in zip(days, days[1:], days[2:]):
        if max(totals[a], totals[c]) < totals[b]:
            break
    else:
        raise AssertionError("the fixture has no quiet–busy–quiet days in a row; change its seed")
    threshold = (max(totals[a], totals[c]) + totals[b]) / 2
    morning_after = datetime.combine(a + timedelta(days=1), datetime.min.time(), SEOUL) + timedelta(hours=6)
    return totals, (a, b, c), threshold, morning_after


def test_crossing_and_clearing_a_threshold_sends_exactly_two_mails(app_env, smtp_server):
    server = smtp_server()
    totals, (a, b, c), threshold, start = quiet_busy_quiet(app_env)
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    with app_state.connect(sender.path) as conn:
        alert = store.add_alert(conn, ref="daily_topups", params={"period": "yesterday"}, condition="above",
                                measure="amount_krw", threshold=threshold, recipients=["ops@example.com"],
                                now=start, check_minutes=60)
    for day in (a, b, c):  # each morning, 'yesterday' is the day; checked hourly for six hours
        for half_hours in range(12):
            clock.moment = datetime.combine(day + timedelta(days=1), datetime.min.time(), SEOUL) + timedelta(hours=6, minutes=30 * half_hours)
            sender.tick()
    got = server.wait_for(3, 3)
    assert [m.subject.split("]", 1)[1].split(":")[0].strip() for m in got] == ["알림", "해제"]
    fired, cleared = got
    assert f"{threshold:,.0f}" in fired.subject and "금액(원) 합계가" in fired.subject
    assert f"현재 값: {totals[b]:,}" in text_body(fired.message)
    assert f"현재 값: {totals[c]:,}" in text_body(cleared.message)
    assert str(fired.message["Message-ID"]) != str(cleared.message["Message-ID"])
    with app_state.connect(sender.path) as conn:
        events = store.alert_events(conn, alert)
        (state,) = [x.state for x in store.alerts(conn)]
    assert [(e["change"], e["state"]) for e in events] == [("fired", "sent"), ("cleared", "sent")]
    assert state["active"] == 0 and state["transitions"] == 2


def test_no_rows_for_n_hours_and_when_an_alert_is_checked(app_env):
    import pandas as pd

    alert = store.Alert(id=1, kind="report", ref="x", params={}, measure=None, condition="no_rows", threshold=None,
                        hours=2, time_column="at", recipients=("a@example.com",), lang="ko", check_minutes=30,
                        paused=False, created_at=datetime.now(SEOUL))
    now = datetime(2026, 11, 30, 12, 0, tzinfo=SEOUL)
    recent = pd.DataFrame({"at": [now - timedelta(hours=1, minutes=59)]})
    old = pd.DataFrame({"at": [now - timedelta(hours=2, minutes=1)]})
    assert rules.evaluate(alert, recent, now) == (False, 1.0)
    assert rules.evaluate(alert, old, now) == (True, 0.0)
    assert rules.evaluate(alert, old.iloc[0:0], now) == (True, 0.0)
    checked = {"checked_at": now.isoformat(), "data_version": "41"}
    same = store.Alert(**{**alert.__dict__, "state": checked})
    assert not rules.needs_check(same, "41", now + timedelta(minutes=29))
    assert rules.needs_check(same, "42", now + timedelta(minutes=1))  # a batch landed: checked at once
    assert rules.needs_check(same, "41", now + timedelta(minutes=30))


def test_editing_the_line_is_judged_at_the_next_round(app_env, smtp_server):
    server = smtp_server()
    sender, clock, _ = make_sender(app_env, server.port)
    with app_state.connect(sender.path) as conn:
        alert = store.add_alert(conn, ref="daily_topups", params={"period": "last_30_days"}, condition="above",
                                measure="topups", threshold=1e12, recipients=["ops@example.com"], now=clock.moment)
    sender.tick()
    assert server.wait_for(1, 0.5) == []
    with app_state.connect(sender.path) as conn:
        store.update_alert(conn, alert, threshold=1, hours=None, recipients=["ops@example.com"], now=clock.moment)
    sender.tick()  # same minute: without the edit, the next check would be an hour away
    (got,) = server.wait_for(1, 5)
    assert got.subject.startswith("[데이터 데스크] 알림: 일별 충전 금액 — 충전 건수 합계가 1 초과")
