"""Subscriptions end to end in one process: real warehouse file, real app-state store, real aiosmtpd, injected clock.

Expected numbers come from the fixture's own rows (pandas, written here),
never from the app's output.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from datetime import date, datetime, timedelta

import holidays
import pandas as pd
import pytest

from dashboard import app_state
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL, Schedule
from dashboard.subscriptions.sender import Sender
from dashboard.warehouse import Warehouse
from ingest.config import load_config
from tests.fixtures_app import app_env  # noqa: F401  (fixture)
from tests.fixtures_smtp import smtp_server, start_smtp  # noqa: F401  (fixture)
from tests.subscriptions_helpers import StepClock, attachment, csv_rows, subscription_config, text_body, xlsx_rows

KR_HOLIDAYS = holidays.country_holidays("KR")  # the calendar business days skip
CHANNEL_KO = {"bank_transfer": "계좌이체", "card": "신용·체크카드", "convenience_store": "편의점", "mobile": "모바일",
              "auto_charge": "자동충전"}


def make_sender(env, port, subscriptions="", start=None):
    path = subscription_config(env.tmp, env.warehouse, port, subscriptions)
    cfg = load_config(path, needs=("warehouse",))
    wh = Warehouse(cfg)
    clock = StepClock(start or datetime.now(SEOUL))
    return Sender(cfg, clock, wh.query_uncached, wh.data_version), clock, cfg


def daily_topups(env, day: date, channel: str | None = None) -> pd.DataFrame:
    """What daily_topups should say for one Seoul day: count and sum per channel (from the generated rows)."""
    t = env.live("topups").copy()
    t["day"] = t["created_at"].map(lambda v: v.astimezone(SEOUL).date())
    t = t[t["day"] == day]
    if channel:
        t = t[t["channel"] == channel]
    return t.groupby("channel").agg(topups=("topup_id", "count"), amount=("amount_krw", "sum")).reset_index()


def window():
    """Eight days around the end of last month, so a monthly 'day 31' slot falls inside (month's last day)."""
    today = datetime.now(SEOUL).date()
    month_end = today.replace(day=1) - timedelta(days=1)
    start = datetime.combine(month_end - timedelta(days=3), datetime.min.time(), SEOUL)
    return start, start + timedelta(days=8)


def expected_slots(start, end, hh, mm, keep) -> list[datetime]:
    out, day = [], start.date()
    while day <= end.date():
        slot = datetime(day.year, day.month, day.day, hh, mm, tzinfo=SEOUL)
        if start < slot <= end and keep(day):
            out.append(slot)
        day += timedelta(days=1)
    return out


def test_a_week_of_daily_weekly_monthly_and_business_day_slots_in_seconds(app_env, smtp_server):
    server = smtp_server()
    start, end = window()
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    with app_state.connect(sender.path) as conn:
        daily = store.add_subscription(conn, ref="daily_topups", params={"period": "yesterday"}, now=start,
                                       schedule=Schedule("daily", "09:00"), recipients=["lead@example.com"],
                                       format="xlsx", lang="ko")
        weekly = store.add_subscription(conn, ref="payments_by_category_region", params={"period": "last_week", "category": "cafe"},
                                        now=start,
                                        schedule=Schedule("weekly", "09:30", weekday=0), recipients=["analyst@example.com"],
                                        format="csv", lang="en")
        monthly = store.add_subscription(conn, ref="daily_topups", params={"period": "last_month", "channel": "card"}, now=start,
                                         schedule=Schedule("monthly", "07:00", month_day=31), recipients=["cfo@example.com"],
                                         format="xlsx", lang="ko")
        business = store.add_subscription(conn, ref="daily_topups", params={"period": "yesterday"}, now=start,
                                          schedule=Schedule("business_days", "08:30"), recipients=["desk@example.com"],
                                          format="csv", lang="ko")
    moment = start
    while moment <= end:  # every 15 minutes of eight days: 769 rounds
        clock.moment = moment
        sender.tick()
        moment += timedelta(minutes=15)

    expected = {
        daily: expected_slots(start, end, 9, 0, lambda d: True),
        weekly: expected_slots(start, end, 9, 30, lambda d: d.weekday() == 0),
        monthly: expected_slots(start, end, 7, 0, lambda d: d.day == min(31, calendar.monthrange(d.year, d.month)[1])),
        business: expected_slots(start, end, 8, 30, lambda d: d.weekday() < 5 and d not in KR_HOLIDAYS),
    }
    assert len(expected[monthly]) == 1 and expected[weekly]
    total = sum(len(v) for v in expected.values())
    got = server.wait_for(total, 20)
    assert len(got) == total, f"expected {total} mails, got {len(got)}"
    by_sub = defaultdict(list)
    for m in got:
        sub_id = int(str(m.message["Message-ID"]).split(".")[1].split("-")[1])
        by_sub[sub_id].append(m)
    ids = [str(m.message["Message-ID"]) for m in got]
    assert len(set(ids)) == len(ids), "a slot was mailed twice"
    for sub_id, slots in expected.items():
        subjects = [m.subject for m in by_sub[sub_id]]
        assert sorted(subjects) == sorted(subjects)  # (readability of the failure below)
        assert [s.strftime("%Y-%m-%d %H:%M") for s in slots] == sorted(s.rsplit("— ", 1)[1] for s in subjects)

    # The daily Excel: Korean headers and channel words, numbers equal to the rows of the day before each slot.
    for m in by_sub[daily]:
        slot_day = date.fromisoformat(m.subject.rsplit("— ", 1)[1][:10])
        name, data = attachment(m.message)
        yesterday = slot_day - timedelta(days=1)
        assert name == f"일별 충전 금액_{yesterday.isoformat()}_{yesterday.isoformat()}.xlsx"
        headers, rows = xlsx_rows(data)
        assert headers == ["일자", "충전 경로", "충전 건수", "금액(원)"]
        want = daily_topups(app_env, yesterday)
        assert sorted((r[1], r[2], r[3]) for r in rows) == sorted(
            (CHANNEL_KO[c], n, a) for c, n, a in want[["channel", "topups", "amount"]].itertuples(index=False))
        assert all(r[0].date() == yesterday for r in rows)
        assert m.rcpt_tos == ["lead@example.com"]
        assert "구독하신 보고서 「일별 충전 금액」" in text_body(m.message)
        assert "http://desk.example/subscriptions?sub=" in text_body(m.message)

    # The weekly CSV in English: last week's approved cafe payments per region.
    for m in by_sub[weekly]:
        slot_day = date.fromisoformat(m.subject.rsplit("— ", 1)[1][:10])
        monday = slot_day - timedelta(days=slot_day.weekday() + 7)
        assert attachment(m.message) is not None, text_body(m.message)
        name, data = attachment(m.message)
        sunday = monday + timedelta(days=6)
        assert name == f"Payments by merchant category and region_{monday.isoformat()}_{sunday.isoformat()}.csv"
        headers, rows = csv_rows(data)
        assert headers[:4] == ["Category", "Region", "Payments", "Amount (KRW)"]
        p = app_env.live("payments").merge(app_env.live("merchants")[["merchant_id", "category", "region"]], on="merchant_id")
        p = p[(p["status"] == "approved") & (p["category"] == "cafe")]
        p = p[p["created_at"].map(lambda v: monday <= v.astimezone(SEOUL).date() <= sunday)]
        want = p.groupby("region").agg(n=("payment_id", "count"), amount=("amount_krw", "sum"))
        assert sorted((int(r[2]), int(r[3])) for r in rows) == sorted((int(n), int(a)) for n, a in want.itertuples(index=False))
        assert {r[0] for r in rows} <= {"Cafe"}

    # The monthly one: last month, card only.
    (m,) = by_sub[monthly]
    slot_day = date.fromisoformat(m.subject.rsplit("— ", 1)[1][:10])
    first = (slot_day.replace(day=1) - timedelta(days=1)).replace(day=1)
    last = slot_day.replace(day=1) - timedelta(days=1)
    _, rows = xlsx_rows(attachment(m.message)[1])
    want_amount = sum(int(daily_topups(app_env, first + timedelta(days=i), "card")["amount"].sum())
                      for i in range((last - first).days + 1))
    assert {r[1] for r in rows} == {"신용·체크카드"} and sum(r[3] for r in rows) == want_amount

    with app_state.connect(sender.path) as conn:
        states = {(r["subscription_id"], r["slot"]): r["state"] for r in store.deliveries(conn)}
    assert set(states.values()) == {"sent"} and len(states) == total


def test_korean_subject_body_and_file_name_round_trip_and_use_rfc2231(app_env, smtp_server):
    server = smtp_server()
    sender, clock, _ = make_sender(app_env, server.port, start=datetime.now(SEOUL) - timedelta(days=2))
    sent = []
    real_send = sender.send
    sender.send = lambda alerts, msg, timeout: (sent.append(msg.as_bytes()), real_send(alerts, msg, timeout))
    with app_state.connect(sender.path) as conn:
        at = (datetime.now(SEOUL) - timedelta(minutes=1)).strftime("%H:%M")  # due a minute ago: on time
        sub = store.add_subscription(conn, ref="daily_topups", params={"period": "last_7_days"}, now=clock.moment,
                                     schedule=Schedule("daily", at), recipients=["a@example.com", "b@example.com"])
    clock.moment = datetime.now(SEOUL)
    sender.tick()
    (got,) = server.wait_for(1, 10)
    raw = sent[0]
    # RFC 2231 (possibly split into numbered parts), not raw UTF-8 or an RFC 2047 word in the parameter.
    assert re.search(rb"filename\*(0\*)?=utf-8''%EC%9D%BC", raw), raw[:2000]
    assert b"=?utf-8?" in raw.split(b"\n\n", 1)[0]  # the subject is encoded, not 8-bit
    assert got.subject.startswith("[데이터 데스크] 일별 충전 금액 — ")
    name, data = attachment(got.message)
    assert name.startswith("일별 충전 금액_") and name.endswith(".xlsx")
    assert xlsx_rows(data)[0] == ["일자", "충전 경로", "충전 건수", "금액(원)"]
    body = text_body(got.message)
    assert "조건: 기간:" in body and "(최근 7일)" in body
    html = got.message.get_body(preferencelist=("html",)).get_content()
    assert "<table" in html and "금액(원)" in html and "원</td>" in html
    assert sorted(got.rcpt_tos) == ["a@example.com", "b@example.com"]
    assert str(got.message["Message-ID"]).startswith(f"<datadesk.sub-{sub}.")


def test_missed_slots_while_stopped_send_only_the_latest_marked_late(app_env, smtp_server):
    server = smtp_server()
    start = datetime.now(SEOUL).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=4)
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    with app_state.connect(sender.path) as conn:
        sub = store.add_subscription(conn, ref="daily_topups", params={"period": "yesterday"}, now=start,
                                     schedule=Schedule("daily", "09:00"), recipients=["a@example.com"], format="csv")
    clock.moment = start + timedelta(days=3, hours=12)  # slots at day 0, 1, 2 and 3 09:00 passed while "down"
    sender.tick()
    (got,) = server.wait_for(1, 10)
    latest = (start + timedelta(days=3, hours=9)).strftime("%Y-%m-%d %H:%M")
    assert got.subject == f"[데이터 데스크] (지연) 일별 충전 금액 — {latest}"
    assert f"예약 시각 {latest} 에 보내지 못해" in text_body(got.message)
    with app_state.connect(sender.path) as conn:
        log = [(r["slot"][:10], r["state"], r["late"]) for r in store.deliveries(conn, sub)]
    days = [(start + timedelta(days=i)).date().isoformat() for i in range(4)]
    assert log == [(days[0], "missed", 0), (days[1], "missed", 0), (days[2], "missed", 0), (days[3], "sent", 1)]
    sender.tick()
    assert len(server.wait_for(2, 0.5)) == 1


def test_smtp_down_delays_mails_none_lost_and_others_not_blocked(app_env):
    from tests.conftest import free_port

    port = free_port()
    start = datetime.now(SEOUL).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    sender, clock, _ = make_sender(app_env, port, start=start)  # nothing listens on the port yet: SMTP is down
    with app_state.connect(sender.path) as conn:
        a = store.add_subscription(conn, ref="daily_topups", params={"period": "yesterday"}, now=start,
                                   schedule=Schedule("daily", "09:00"), recipients=["a@example.com"], format="csv")
        b = store.add_subscription(conn, ref="top_merchants", params={"period": "yesterday"}, now=start,
                                   schedule=Schedule("daily", "10:00"), recipients=["b@example.com"], format="csv",
                                   skip_empty=False)
        gone = store.add_subscription(conn, ref="daily_topups", params={}, now=start,
                                      schedule=Schedule("daily", "09:00"), recipients=["c@example.com"], format="csv")
        conn.execute("UPDATE subscriptions SET ref = 'no_such_report' WHERE id = ?", (gone,))
    import time

    moment = start
    slowest = 0.0
    while moment <= start + timedelta(days=2):  # two days with the server down
        clock.moment = moment
        t0 = time.monotonic()
        sender.tick()
        slowest = max(slowest, time.monotonic() - t0)
        moment += timedelta(minutes=30)
    assert slowest < 2.0  # a refused connection costs little; nobody waits for anybody
    with app_state.connect(sender.path) as conn:
        rows = store.deliveries(conn)
    assert {r["state"] for r in rows} == {"due"} and len(rows) == 6  # 2 days × 3 subscriptions, all kept
    assert all(r["attempts"] >= 1 and "ConnectionRefused" in (r["error"] or "") for r in rows)
    server = start_smtp(port=port)
    try:
        end = start + timedelta(days=2, hours=1)
        while moment <= end:  # back-off (60 s doubling up to 10 min) passes; every slot goes out
            clock.moment = moment
            sender.tick()
            moment += timedelta(minutes=5)
        got = server.wait_for(6, 15)
        assert len(got) == 6
        ids = [str(m.message["Message-ID"]) for m in got]
        assert len(set(ids)) == 6
        assert all("(지연)" in m.subject for m in got)
        missing = [m for m in got if m.rcpt_tos == ["c@example.com"]]
        assert len(missing) == 2 and "no_such_report.sql 를 찾을 수 없습니다" in text_body(missing[0].message)
        with app_state.connect(sender.path) as conn:
            rows = store.deliveries(conn)
        assert {r["state"] for r in rows} == {"sent"} and all(r["late"] for r in rows)
        assert {r["subscription_id"] for r in rows} == {a, b, gone}
    finally:
        server.stop()


def test_skip_when_empty_and_the_empty_mail_when_not(app_env, smtp_server):
    server = smtp_server()
    start = datetime.now(SEOUL) - timedelta(days=1, hours=1)
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    empty = {"period": "2019-01-01..2019-01-02"}
    with app_state.connect(sender.path) as conn:
        skip = store.add_subscription(conn, ref="daily_topups", params=empty, now=start,
                                      schedule=Schedule("daily", start.strftime("%H:%M")), recipients=["a@example.com"])
        keep = store.add_subscription(conn, ref="daily_topups", params=empty, now=start, skip_empty=False,
                                      schedule=Schedule("daily", start.strftime("%H:%M")), recipients=["b@example.com"])
    clock.moment = datetime.now(SEOUL)
    sender.tick()
    (got,) = server.wait_for(1, 10)
    assert got.rcpt_tos == ["b@example.com"] and attachment(got.message) is None
    assert "이번 결과는 비어 있습니다" in text_body(got.message)
    with app_state.connect(sender.path) as conn:
        assert store.last_delivery(conn, skip)["state"] == "skipped"
        assert store.last_delivery(conn, keep)["state"] == "sent"


def test_an_attachment_above_the_limit_becomes_a_link_and_the_mail_says_so(app_env, smtp_server):
    server = smtp_server()
    start = datetime.now(SEOUL) - timedelta(days=1, hours=1)
    sender, clock, _ = make_sender(app_env, server.port, "max_attachment_bytes = 1000", start=start)
    with app_state.connect(sender.path) as conn:
        sub = store.add_subscription(conn, ref="daily_topups", params={"period": "last_30_days"}, now=start, lang="en",
                                     schedule=Schedule("daily", start.strftime("%H:%M")), recipients=["a@example.com"])
    clock.moment = datetime.now(SEOUL)
    sender.tick()
    (got,) = server.wait_for(1, 10)
    assert attachment(got.message) is None
    body = text_body(got.message)
    assert "above the mail attachment limit (1 KB)" in body
    assert "http://desk.example/reports?report=daily_topups&period=last_30_days" in body
    with app_state.connect(sender.path) as conn:
        row = store.last_delivery(conn, sub)
    assert row["linked"] == 1 and row["bytes"] > 1000


def test_send_now_sends_one_mail_at_the_next_round(app_env, smtp_server):
    server = smtp_server()
    sender, clock, cfg = make_sender(app_env, server.port)
    with app_state.connect(sender.path) as conn:
        sub = store.add_subscription(conn, ref="daily_topups", params={"period": "yesterday"}, now=clock.moment,
                                     schedule=Schedule("monthly", "09:00", month_day=1), recipients=["a@example.com"])
        store.request_send_now(conn, sub, clock.moment, "example.com")
    sender.tick()
    sender.tick()
    got = server.wait_for(2, 3)
    assert len(got) == 1 and "(지연)" not in got[0].subject


@pytest.mark.parametrize("recipients, problem", [([], "no recipients"), (["not-an-address"], "not an e-mail address")])
def test_a_subscription_without_good_recipients_is_refused(app_env, recipients, problem):
    sender, clock, _ = make_sender(app_env, 25)
    with app_state.connect(sender.path) as conn, pytest.raises(ValueError, match=problem):
        store.add_subscription(conn, ref="daily_topups", params={}, now=clock.moment,
                               schedule=Schedule("daily", "09:00"), recipients=recipients)
