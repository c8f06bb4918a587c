"""Subscriptions and data alerts on saved Explore views: real warehouse, real app-state store, real aiosmtpd, injected clock.

Expected numbers come from the fixture's rows with pandas, never from the app's output.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from dashboard import app_state, saved_views
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL, Schedule
from dashboard.subscriptions.sender import Sender
from dashboard.warehouse import Warehouse
from ingest.config import load_config
from tests.fixtures_app import app_env, build_warehouse  # noqa: F401  (fixture)
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)
from tests.questions_fixtures import business_rows
from tests.subscriptions_helpers import StepClock, attachment, csv_rows, subscription_config, text_body, xlsx_rows
from tests.test_subscriptions_alerts import quiet_busy_quiet
from tests.test_subscriptions_send import CHANNEL_KO, make_sender

BY_CHANNEL = "base=topups&m=topups.amount&m=topups.topups&d=topups.channel&time=topups.created_at&period=last_7_days"


def save_view(path, name: str, params: str, owner: str | None = None) -> saved_views.SavedView:
    with app_state.connect(path) as conn:
        return saved_views.save(conn, name, "explore", params, owner=owner)


def seoul_days(frame: pd.DataFrame) -> pd.Series:
    return frame["created_at"].map(lambda v: v.astimezone(SEOUL).date())


def test_a_weekly_view_mail_resolves_last_7_days_at_each_send(app_env, smtp_server):
    server = smtp_server()
    today = datetime.now(SEOUL).date()
    first = today - timedelta(days=today.weekday() + 21)  # a Monday three weeks ago; the next one a week later
    start = datetime.combine(first - timedelta(days=1), datetime.min.time(), SEOUL)
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    view = save_view(sender.path, "주간 충전 경로별", BY_CHANNEL)
    with app_state.connect(sender.path) as conn:
        store.add_subscription(conn, kind="view", ref=str(view.id), params={"name": view.name}, now=start,
                               schedule=Schedule("weekly", "09:00", weekday=0), recipients=["lead@example.com"],
                               format="xlsx", lang="ko")
    for monday in (first, first + timedelta(days=7)):
        clock.moment = datetime.combine(monday, datetime.min.time(), SEOUL) + timedelta(hours=9, minutes=1)
        sender.tick()
    mails = server.wait_for(2, 15)
    assert len(mails) == 2

    topups = app_env.live("topups").copy()
    topups["day"] = seoul_days(topups)
    for mail, monday in zip(sorted(mails, key=lambda m: m.subject), (first, first + timedelta(days=7))):
        since = monday - timedelta(days=6)
        assert "주간 충전 경로별" in mail.subject and monday.isoformat() in mail.subject
        name, data = attachment(mail.message)
        assert name == f"주간 충전 경로별_{since.isoformat()}_{monday.isoformat()}.xlsx"
        headers, rows = xlsx_rows(data)
        assert headers == ["충전 경로", "충전 금액(원)", "충전 건수"]
        week = topups[(topups.day >= since) & (topups.day <= monday)]
        expected = {CHANNEL_KO[c]: (int(g.amount_krw.sum()), len(g)) for c, g in week.groupby("channel")}
        assert {r[0]: (int(r[1]), int(r[2])) for r in rows} == expected
        body = text_body(mail.message)
        assert f"{since.isoformat()} – {monday.isoformat()} (최근 7일)" in body
        assert f"http://desk.example/explore?saved={view.id}&lang=ko" in body
    windows = [xlsx_rows(attachment(m.message)[1])[1] for m in mails]
    assert windows[0] != windows[1], "both mails carried the same week: the period was fixed at save time"


def test_an_alert_on_a_views_measure_mails_once_when_it_crosses_and_once_when_it_clears(app_env, smtp_server):
    server = smtp_server()
    totals, (a, b, c), threshold, start = quiet_busy_quiet(app_env)
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    # Split by channel and capped at two groups: the alert still judges the whole day, every channel together.
    view = save_view(sender.path, "어제 충전", "base=topups&m=topups.amount&d=topups.channel&top=2"
                                              "&time=topups.created_at&period=yesterday")
    with app_state.connect(sender.path) as conn:
        store.add_alert(conn, kind="view", ref=str(view.id), params={"name": view.name}, condition="above",
                        measure="topups.amount", threshold=threshold, recipients=["ops@example.com"], now=start,
                        check_minutes=60)
    for day in (a, b, c):
        for half_hours in range(12):
            clock.moment = datetime.combine(day + timedelta(days=1), datetime.min.time(), SEOUL) + timedelta(
                hours=6, minutes=30 * half_hours)
            sender.tick()
    got = server.wait_for(3, 3)
    assert [m.subject.split("]", 1)[1].split(":")[0].strip() for m in got] == ["알림", "해제"]
    fired, cleared = got
    assert "어제 충전" in fired.subject and "충전 금액(원) 합계가" in fired.subject
    assert f"현재 값: {totals[b]:,}" in text_body(fired.message)
    assert f"현재 값: {totals[c]:,}" in text_body(cleared.message)
    assert f"explore?saved={view.id}" in text_body(fired.message)


ACCESS = """
[access]
people = [{ match = "busan@example.com", role = "busan" }, { match = "head@example.com", role = "head" }]

[access.roles.head]
tables = ["payments", "refunds", "merchants", "cards"]

[access.roles.busan]
tables = ["payments", "refunds", "merchants"]
hide_columns = ["payments.card_id"]
rows = [{ dimension = "merchants.region", op = "in", values = ["부산"] }]
"""


def test_a_view_mail_holds_only_what_its_owner_may_see(tmp_path, smtp_server):
    rows = business_rows()
    build_warehouse(tmp_path / "warehouse.duckdb", rows)
    server = smtp_server()
    cfg = load_config(subscription_config(tmp_path, tmp_path / "warehouse.duckdb", server.port, ACCESS),
                      needs=("warehouse",))
    wh = Warehouse(cfg)
    start = datetime.now(SEOUL) - timedelta(days=1, hours=1)
    clock = StepClock(start)
    sender = Sender(cfg, clock, wh.query_uncached, wh.data_version, warehouse=wh)
    daily = Schedule("daily", start.strftime("%H:%M"))
    payments = save_view(sender.path, "결제 내역", "base=payments&view=rows&time=payments.created_at"
                                                 "&period=last_365_days", owner="busan@example.com")
    by_product = save_view(sender.path, "상품별 결제", "base=payments&m=payments.payments&d=cards.product",
                           owner="busan@example.com")
    with app_state.connect(sender.path) as conn:
        for view, to, owner in ((payments, "busan@example.com", "busan@example.com"), (payments, "open@example.com", "head@example.com"),
                                (by_product, "product@example.com", "busan@example.com")):
            store.add_subscription(conn, kind="view", ref=str(view.id), params={"name": view.name}, schedule=daily,
                                   recipients=[to], now=start, format="csv", owner=owner)
    clock.moment = datetime.now(SEOUL)
    sender.tick()
    mails = {m.rcpt_tos[0]: m.message for m in server.wait_for(3, 20)}

    busan_header, busan_body = csv_rows(attachment(mails["busan@example.com"])[1])
    open_header, open_body = csv_rows(attachment(mails["open@example.com"])[1])
    (missing,) = set(open_header) - set(busan_header)  # exactly the hidden column, the card, is missing
    assert "카드" in missing
    merchants = rows["merchants"]
    busan = set(merchants.loc[merchants.region == "부산", "merchant_id"].astype(str))
    merchant_col = busan_header.index(next(h for h in busan_header if "가맹점" in h))
    assert busan_body and {r[merchant_col] for r in busan_body} <= busan
    assert len(open_body) > len(busan_body)

    refused = mails["product@example.com"]
    assert attachment(refused) is None
    assert "busan@example.com" in text_body(refused) and "볼 수 없어" in text_body(refused)


def test_a_deleted_view_gives_a_mail_saying_so(app_env, smtp_server):
    server = smtp_server()
    start = datetime.now(SEOUL) - timedelta(days=1, hours=1)
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    view = save_view(sender.path, "월간 충전", BY_CHANNEL)
    with app_state.connect(sender.path) as conn:
        sub = store.add_subscription(conn, kind="view", ref=str(view.id), params={"name": view.name}, now=start,
                                     schedule=Schedule("daily", start.strftime("%H:%M")), recipients=["a@example.com"],
                                     lang="en")
        saved_views.delete(conn, view.id)
    clock.moment = datetime.now(SEOUL)
    sender.tick()
    (mail,) = server.wait_for(1, 15)
    assert attachment(mail.message) is None
    assert "월간 충전" in mail.subject
    assert f"The saved view “월간 충전” (#{view.id}) was deleted" in text_body(mail.message)
    with app_state.connect(sender.path) as conn:
        assert [d["state"] for d in store.deliveries(conn, sub)] == ["sent"]


def test_relative_periods_are_pinned_to_the_send_day_and_typed_ranges_stay():
    from dashboard.questions import Filter, Question
    from dashboard.subscriptions.views import pin_periods

    q = Question(base="topups", period="last_month", filters=(Filter("cards.issued_at", "during", ("last_7_days",)),
                                                              Filter("topups.channel", "in", ("card",))))
    pinned = pin_periods(q, date(2026, 3, 10))
    assert pinned.period == "2026-02-01..2026-02-28"
    assert pinned.filters[0].values == ("2026-03-04..2026-03-10",) and pinned.filters[1] == q.filters[1]
    typed = Question(base="topups", period="2025-01-01..2025-01-31")
    assert pin_periods(typed, date(2026, 3, 10)).period == "2025-01-01..2025-01-31"


def test_explore_offers_the_mail_form_and_the_subscriptions_page_names_and_links_views(app_env):
    from tests.fixtures_app import run_page

    path = app_state.store_path(load_config(app_env.config, needs=("warehouse",)))
    at = run_page("pages/explore.py", {"base": "topups", "m": ["topups.amount", "topups.topups"],
                                       "time": "topups.created_at", "period": "last_7_days"})
    # Not saved yet: the form asks for the view's name; the period stays relative; the alert lists the measures.
    assert at.text_input(key="subview.name").label.startswith("보기 이름")
    assert any("최근 7일 — 보낼 때마다 다시 계산" in c.value for c in at.caption)
    assert at.selectbox(key="subview.measure").options == ["충전 금액(원)", "충전 건수"]
    assert at.button(key="subview.save").label == "구독 저장"

    now = datetime.now(SEOUL)
    kept = save_view(path, "주간 충전 경로별", BY_CHANNEL)
    gone = save_view(path, "지울 보기", BY_CHANNEL + "&top=3")
    with app_state.connect(path) as conn:
        for view in (kept, gone):
            store.add_subscription(conn, kind="view", ref=str(view.id), params={"name": view.name}, now=now,
                                   schedule=Schedule("weekly", "09:00", weekday=0), recipients=["a@example.com"])
        store.add_alert(conn, kind="view", ref=str(kept.id), params={"name": kept.name}, condition="above",
                        measure="topups.amount", threshold=1_000_000, recipients=["ops@example.com"], now=now)
        saved_views.delete(conn, gone.id)
    at = run_page("pages/subscriptions.py")
    subs_table, alerts_table = (d.value for d in at.dataframe)
    assert list(subs_table["보고서·보기"]) == ["보기: 주간 충전 경로별", "삭제된 보기: 지울 보기"]
    assert subs_table["열기"].iloc[0] == f"explore?saved={kept.id}" and pd.isna(subs_table["열기"].iloc[1])
    assert alerts_table["조건"].iloc[0] == "충전 금액(원) 합계가 1,000,000 초과"
    assert alerts_table["열기"].iloc[0] == f"explore?saved={kept.id}"

    # The same question, already saved: the form names the view instead of asking for a name.
    at = run_page("pages/explore.py", {"saved": str(kept.id)})
    assert not [x for x in at.text_input if x.key == "subview.name"]
    assert any("‘주간 충전 경로별’" in c.value for c in at.caption)


def test_a_previous_period_comparison_follows_the_send_day(app_env, smtp_server):
    server = smtp_server()
    day = datetime.now(SEOUL).date() - timedelta(days=20)
    start = datetime.combine(day, datetime.min.time(), SEOUL) + timedelta(hours=8)
    sender, clock, _ = make_sender(app_env, server.port, start=start)
    view = save_view(sender.path, "주간 충전 비교", "base=topups&m=topups.amount&time=topups.created_at"
                                                "&period=last_7_days&cmp=previous")
    with app_state.connect(sender.path) as conn:
        store.add_subscription(conn, kind="view", ref=str(view.id), params={"name": view.name}, now=start,
                               schedule=Schedule("daily", "09:00"), recipients=["a@example.com"], format="csv")
    clock.moment = start + timedelta(hours=1, minutes=1)
    sender.tick()
    (mail,) = server.wait_for(1, 15)
    header, (row,) = csv_rows(attachment(mail.message)[1])
    topups = app_env.live("topups").copy()
    topups["day"] = seoul_days(topups)

    def total(first: date, last: date) -> int:
        return int(topups.loc[(topups.day >= first) & (topups.day <= last), "amount_krw"].sum())

    current, previous = total(day - timedelta(days=6), day), total(day - timedelta(days=13), day - timedelta(days=7))
    assert header[:3] == ["충전 금액(원)", "충전 금액(원) (이전 기간)", "충전 금액(원) 증감"]
    assert [int(float(v)) for v in row[:3]] == [current, previous, current - previous]
