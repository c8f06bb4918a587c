"""Every curated report in sql/ against numbers computed independently from the demo rows.

The warehouse is a real DuckDB file laid out like the worker's (tests/reports_demo.py);
expectations come from the Python rows that were written into it, never from
running the report SQL. The connection runs in UTC on purpose: a report that
bucketed by the server's zone instead of Asia/Seoul days would fail here.
Tombstones in `main` carry rows that would change every answer if a report
read them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pytest

from dashboard.report_runner import default_values, run_report, seoul_today
from dashboard.reports import BrokenReport, Report, load_reports, parse_report
from ingest.warehouse_file import open_reader
from tests.reports_demo import SEOUL, build_warehouse, make_dataset

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    today = seoul_today()
    ds = make_dataset(today)
    path = build_warehouse(tmp_path_factory.mktemp("reports") / "warehouse.duckdb", ds)
    return ds, path


def make_query(path: Path, zone: str = "UTC"):
    def query(sql, params):
        setup = ("SET search_path = 'live,main'", f"SET TimeZone = '{zone}'")
        with open_reader(path, timeout=10, setup=setup) as con:
            return con.execute(sql, list(params)).df()

    return query


def report(slug: str) -> Report:
    return parse_report((SQL_DIR / f"{slug}.sql").read_text(encoding="utf-8"), SQL_DIR / f"{slug}.sql")


def run(demo, slug: str, zone: str = "UTC", **overrides) -> pd.DataFrame:
    ds, path = demo
    r = report(slug)
    values = default_values(r, ds.today)
    values.update(overrides)
    return run_report(r, values, make_query(path, zone))


def local(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(SEOUL).replace(tzinfo=None)


def day(ts: dt.datetime) -> dt.date:
    return ts.astimezone(SEOUL).date()


def in_period(ts: dt.datetime, start: dt.date, end: dt.date) -> bool:
    return start <= day(ts) <= end


def as_date(v) -> dt.date:
    return pd.Timestamp(v).date()


def week_of(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def month_of(d: dt.date) -> dt.date:
    return d.replace(day=1)


def approved(ds):
    return [p for p in ds.live("payments") if p["status"] == "approved"]


# ────────────────────────────────────────────────────────────── the lint ──


def test_every_report_parses_and_runs_with_its_defaults(demo):
    reports = load_reports(SQL_DIR)
    broken = [r.error for r in reports if isinstance(r, BrokenReport)]
    assert not broken, broken
    assert len(reports) >= 12
    ds, path = demo
    for zone in ("UTC", "Asia/Seoul"):
        q = make_query(path, zone)
        for r in reports:
            df = run_report(r, default_values(r, ds.today), q)
            assert len(df.columns) > 0, r.slug
            if r.chart:
                missing = [c for c in r.chart.columns().values() if c not in df.columns]
                assert not missing, f"{r.slug}: chart names {missing}, result has {list(df.columns)}"
            for p in r.params:
                if p.options_sql:
                    opts = q(p.options_sql, {})
                    assert len(opts) > 0, f"{r.slug}: {p.name} has no options"
    for r in reports:  # reports read the live views; main.<table> still holds the tombstones
        assert "main." not in r.sql.lower() and "_deleted" not in r.sql, r.slug
    titles = [(r.title_ko, r.title_en) for r in reports]
    assert len(set(titles)) == len(titles), "two reports share a title"


def test_results_do_not_depend_on_the_connection_time_zone(demo):
    for slug in ("daily_topups", "payments_heatmap_weekday_hour", "new_vs_returning_cards"):
        utc = run(demo, slug, zone="UTC")
        la = run(demo, slug, zone="America/Los_Angeles")
        pd.testing.assert_frame_equal(utc, la)


# ─────────────────────────────────────────────────────────── each report ──


def test_daily_topups_by_channel(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=29), ds.today  # the default: the last 30 days, today included
    expected = defaultdict(lambda: [0, 0])
    for t in ds.live("topups"):
        if in_period(t["created_at"], start, end):
            e = expected[(day(t["created_at"]), t["channel"])]
            e[0] += 1
            e[1] += t["amount_krw"]
    df = run(demo, "daily_topups")
    got = {(as_date(r.day), r.channel): [r.topups, r.amount_krw] for r in df.itertuples()}
    assert got == dict(expected)
    assert len(got) > 50

    mobile = run(demo, "daily_topups", channel="mobile")
    assert set(mobile.channel) == {"mobile"}
    assert int(mobile.amount_krw.sum()) == sum(v[1] for k, v in expected.items() if k[1] == "mobile")


def test_payments_by_category_and_region(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=60), ds.today - dt.timedelta(days=10)
    merchants = {m["merchant_id"]: m for m in ds.live("merchants")}
    expected = defaultdict(lambda: [0, 0])
    for p in approved(ds):
        m = merchants.get(p["merchant_id"])
        if m and in_period(p["created_at"], start, end):
            e = expected[(m["category"], m["region"])]
            e[0] += 1
            e[1] += p["amount_krw"]
    df = run(demo, "payments_by_category_region", period=(start, end))
    got = {(r.category, r.region): [r.payments, r.amount_krw] for r in df.itertuples()}
    assert got == dict(expected)
    for r in df.itertuples():
        assert abs(r.avg_ticket_krw - r.amount_krw / r.payments) <= 0.5 + 1e-9
    assert list(df.amount_krw) == sorted(df.amount_krw, reverse=True)
    cafe = run(demo, "payments_by_category_region", period=(start, end), category="cafe")
    assert set(cafe.category) == {"cafe"} and len(cafe) == sum(1 for k in expected if k[0] == "cafe")


def test_refund_and_cancellation_rates_by_merchant(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=90), ds.today
    merchants = {m["merchant_id"]: m for m in ds.live("merchants")}
    refunded_by_payment = defaultdict(int)
    for r in ds.live("refunds"):
        refunded_by_payment[r["payment_id"]] += r["amount_krw"]
    stats = defaultdict(lambda: {"payments": 0, "cancelled": 0, "approved": 0, "refunded": 0, "refunded_payments": 0})
    for p in ds.live("payments"):
        if p["merchant_id"] in merchants and in_period(p["created_at"], start, end):
            s = stats[p["merchant_id"]]
            s["payments"] += 1
            if p["status"] == "cancelled":
                s["cancelled"] += 1
            else:
                s["approved"] += p["amount_krw"]
                if p["payment_id"] in refunded_by_payment:
                    s["refunded"] += refunded_by_payment[p["payment_id"]]
                    s["refunded_payments"] += 1
    min_payments = 60
    expected = {k: v for k, v in stats.items() if v["payments"] >= min_payments}
    df = run(demo, "merchant_refund_cancel_rates", period=(start, end), min_payments=min_payments,
             rank_by="cancel_rate", top=1000)
    assert set(df.merchant_id) == set(expected) and 0 < len(expected) < len(stats)
    for r in df.itertuples():
        e = expected[r.merchant_id]
        assert (r.payments, r.cancelled, r.approved_krw, r.refunded_krw, r.refunded_payments) == (
            e["payments"], e["cancelled"], e["approved"], e["refunded"], e["refunded_payments"])
        assert r.cancel_rate_pct == pytest.approx(100 * e["cancelled"] / e["payments"], abs=0.051)
        assert r.refund_rate_pct == pytest.approx(100 * e["refunded"] / e["approved"], abs=0.051)
    assert list(df.cancel_rate_pct) == sorted(df.cancel_rate_pct, reverse=True)
    assert sum(e["refunded"] for e in expected.values()) > 0
    # By default: ranked by the refund rate (the title's first rate), top N only.
    top = run(demo, "merchant_refund_cancel_rates", period=(start, end), min_payments=min_payments, top=3)
    rates = sorted(((100 * e["refunded"] / e["approved"] if e["approved"] else float("-inf")), k)
                   for k, e in expected.items())
    assert list(top.refund_rate_pct) == sorted(top.refund_rate_pct, reverse=True) and len(top) == 3
    assert set(top.merchant_id) == {k for _, k in rates[-3:]}


def test_cards_issued_per_month_by_product(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=365), ds.today
    expected = Counter(
        (month_of(day(c["issued_at"])), c["product"]) for c in ds.live("cards") if in_period(c["issued_at"], start, end)
    )
    df = run(demo, "cards_issued_monthly")
    assert {(as_date(r.month), r.product): r.cards for r in df.itertuples()} == dict(expected)
    gift = run(demo, "cards_issued_monthly", product="gift")
    assert int(gift.cards.sum()) == sum(v for k, v in expected.items() if k[1] == "gift") > 0


def test_active_cards_per_week(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=84), ds.today
    uses = [(p["card_id"], local(p["created_at"])) for p in approved(ds)]
    expected = {}
    w = week_of(start)
    while w <= week_of(end):
        window_end = dt.datetime.combine(w + dt.timedelta(days=7), dt.time())
        window_start = window_end - dt.timedelta(days=30)
        week_start = dt.datetime.combine(w, dt.time())
        active = {c for c, t in uses if window_start <= t < window_end}
        used = {c for c, t in uses if week_start <= t < window_end}
        expected[w] = (len(active), len(used))
        w += dt.timedelta(days=7)
    df = run(demo, "active_cards_weekly", period=(start, end))
    assert {as_date(r.week): (r.active_30d, r.used_in_week) for r in df.itertuples()} == expected
    assert len(expected) >= 12


def test_dormant_cards_with_balance(demo):
    ds, _ = demo
    last_payment = {}
    for p in approved(ds):
        last_payment[p["card_id"]] = max(last_payment.get(p["card_id"], p["created_at"]), p["created_at"])
    for idle_days, min_balance in ((90, 10000), (30, 0)):
        expected = {}
        for c in ds.live("cards"):
            if c["status"] == "closed":
                continue
            since = day(last_payment.get(c["card_id"], c["issued_at"]))
            if (ds.today - since).days >= idle_days and c["balance_krw"] >= min_balance:
                expected[c["card_id"]] = c["balance_krw"]
        df = run(demo, "dormant_cards_with_balance", idle_days=idle_days, min_balance=min_balance)
        assert dict(zip(df.card_id, df.balance_krw)) == expected
        assert len(expected) >= 5
        # The count and the total are a summary above the table (totals: balance_krw), not columns on every row.
        assert not {"dormant_cards", "total_dormant_balance_krw"} & set(df.columns)
        assert report("dormant_cards_with_balance").totals == ("balance_krw",)
        assert int(df.balance_krw.sum()) == sum(expected.values())
    # the planted dormant cards (1..15, not closed) are all in the 90-day list when they hold 10,000 or more
    planted = {c["card_id"] for c in ds.live("cards") if c["card_id"] <= 15 and c["status"] != "closed" and c["balance_krw"] >= 10000}
    assert planted <= set(run(demo, "dormant_cards_with_balance").card_id)


def test_top_merchants_by_amount(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=29), ds.today  # the default: the last 30 days
    merchants = {m["merchant_id"]: m for m in ds.live("merchants")}
    amount, count, refunds = Counter(), Counter(), Counter()
    for p in approved(ds):
        if in_period(p["created_at"], start, end):
            amount[p["merchant_id"]] += p["amount_krw"]
            count[p["merchant_id"]] += 1
    for r in ds.live("refunds"):
        if in_period(r["created_at"], start, end):
            refunds[r["merchant_id"]] += r["amount_krw"]
    ranked = sorted((m for m in amount if m in merchants), key=lambda m: -amount[m])
    df = run(demo, "top_merchants", top_n=5)
    assert list(df.merchant_id) == ranked[:5]
    assert list(df["rank"]) == [1, 2, 3, 4, 5]
    for r in df.itertuples():
        assert (r.payments, r.amount_krw, r.refunds_krw, r.net_krw) == (
            count[r.merchant_id], amount[r.merchant_id], refunds[r.merchant_id], amount[r.merchant_id] - refunds[r.merchant_id])
    # text filter (bound, case-insensitive) and category filter narrow the ranking
    cafes = run(demo, "top_merchants", top_n=100, category="cafe", name_contains="바다")
    want = [m for m in ranked if merchants[m]["category"] == "cafe" and "바다" in merchants[m]["merchant_name"]]
    assert list(cafes.merchant_id) == want and want
    quote = run(demo, "top_merchants", name_contains="' OR 1=1 --")
    assert len(quote) == 0


def test_average_ticket_and_tx_per_card_by_age_band(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=45), ds.today
    cards = {c["card_id"]: c for c in ds.live("cards")}
    members = {m["member_id"]: m for m in ds.live("members")}

    def band(card_id):
        card = cards.get(card_id)
        member = members.get(card["member_id"]) if card else None
        if member is None:
            return "unknown"
        age = end.year - member["birth_year"]
        if age < 20:
            return "~19"
        if age >= 60:
            return "60+"
        lo = age // 10 * 10
        return f"{lo}-{lo + 9}"

    per = defaultdict(lambda: {"cards": set(), "n": 0, "amount": 0})
    for p in approved(ds):
        if in_period(p["created_at"], start, end):
            b = per[band(p["card_id"])]
            b["cards"].add(p["card_id"])
            b["n"] += 1
            b["amount"] += p["amount_krw"]
    df = run(demo, "ticket_by_age_band", period=(start, end))
    got = {r.age_band: r for r in df.itertuples()}
    assert set(got) == set(per) and "unknown" in per
    for name, e in per.items():
        r = got[name]
        assert (r.active_cards, r.payments, r.amount_krw) == (len(e["cards"]), e["n"], e["amount"])
        assert abs(r.avg_ticket_krw - e["amount"] / e["n"]) <= 0.5 + 1e-9
        assert r.tx_per_active_card == pytest.approx(e["n"] / len(e["cards"]), abs=0.0051)
    assert list(df.age_band)[-1] == "unknown"


def test_hourly_heat_map_by_weekday(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=27), ds.today  # the default: the last 28 days (four of each weekday)
    expected = Counter()
    for p in approved(ds):
        if in_period(p["created_at"], start, end):
            t = local(p["created_at"])
            expected[(t.isoweekday(), t.hour)] += 1
    df = run(demo, "payments_heatmap_weekday_hour")
    assert len(df) == 7 * 24
    got = {(r.weekday_no, r.hour): r.payments for r in df.itertuples()}
    assert {k: v for k, v in got.items() if v} == dict(expected)
    assert sum(got.values()) == sum(expected.values()) > 500
    assert list(df.weekday.drop_duplicates()) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def test_month_over_month_growth_by_product(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=120), ds.today
    cards = {c["card_id"]: c for c in ds.live("cards")}
    amount, count = Counter(), Counter()
    for p in approved(ds):
        if p["card_id"] in cards:
            key = (month_of(day(p["created_at"])), cards[p["card_id"]]["product"])
            amount[key] += p["amount_krw"]
            count[key] += 1
    products = {c["product"] for c in cards.values()}
    months = []
    m = month_of(start)
    while m <= month_of(end):
        months.append(m)
        m = (m + dt.timedelta(days=32)).replace(day=1)
    df = run(demo, "product_mom_growth", period=(start, end))
    assert len(df) == len(months) * len(products)
    for r in df.itertuples():
        mo = as_date(r.month)
        prev = (mo - dt.timedelta(days=1)).replace(day=1)
        assert (r.payments, r.amount_krw, r.prev_amount_krw) == (count[(mo, r.product)], amount[(mo, r.product)], amount[(prev, r.product)])
        if amount[(prev, r.product)]:
            assert r.growth_pct == pytest.approx(100 * (amount[(mo, r.product)] / amount[(prev, r.product)] - 1), abs=0.051)
        else:
            assert pd.isna(r.growth_pct)


def test_daily_balance_reconciliation(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=20), ds.today
    on_file = {c["card_id"] for c in ds.live("cards")}
    daily = defaultdict(lambda: [0, 0, 0])
    for t in ds.live("topups"):
        if t["card_id"] in on_file:
            daily[day(t["created_at"])][0] += t["amount_krw"]
    for p in approved(ds):
        if p["card_id"] in on_file:
            daily[day(p["created_at"])][1] += p["amount_krw"]
    for r in ds.live("refunds"):
        if r["card_id"] in on_file:
            daily[day(r["created_at"])][2] += r["amount_krw"]
    df = run(demo, "balance_reconciliation_daily", period=(start, end))
    assert [as_date(d) for d in df.day] == [start + dt.timedelta(days=i) for i in range(21)]
    for r in df.itertuples():
        d = as_date(r.day)
        t, p, f = daily.get(d, [0, 0, 0])
        assert (r.topups_krw, r.payments_krw, r.refunds_krw, r.net_krw) == (t, p, f, t - p + f)
        implied = sum(v[0] - v[1] + v[2] for k, v in daily.items() if k <= d)
        assert r.movement_balance_krw == implied
    last = df.iloc[-1]
    balances = sum(c["balance_krw"] for c in ds.live("cards"))
    assert last.balances_on_file_krw == balances
    # the only gap is the one planted in three cards' balances
    assert last.difference_krw == sum(ds.mismatched_cards.values()) != 0
    assert df.difference_krw.iloc[:-1].isna().all()


def test_new_vs_returning_cards(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=84), ds.today
    first = {}
    for p in approved(ds):
        t = local(p["created_at"])
        first[p["card_id"]] = min(first.get(p["card_id"], t), t)
    for grain, bucket in (("week", week_of), ("month", month_of), ("day", lambda d: d)):
        seen = set()
        for p in approved(ds):
            if in_period(p["created_at"], start, end):
                b = bucket(day(p["created_at"]))
                seen.add((b, p["card_id"]))
        expected = Counter((b, "new" if bucket(first[c].date()) == b else "returning") for b, c in seen)
        df = run(demo, "new_vs_returning_cards", period=(start, end), grain=grain)
        assert {(as_date(r.bucket), r.segment): r.cards for r in df.itertuples()} == dict(expected)
        assert expected[max(b for b, _ in expected), "returning"] > 0


def test_cards_whose_balance_does_not_match(demo):
    ds, _ = demo
    expected_balance = Counter()
    for t in ds.live("topups"):
        expected_balance[t["card_id"]] += t["amount_krw"]
    for p in approved(ds):
        expected_balance[p["card_id"]] -= p["amount_krw"]
    for r in ds.live("refunds"):
        expected_balance[r["card_id"]] += r["amount_krw"]
    gaps = {c["card_id"]: c["balance_krw"] - expected_balance[c["card_id"]] for c in ds.live("cards")}
    expected = {k: v for k, v in gaps.items() if v}
    df = run(demo, "card_balance_mismatches")
    assert dict(zip(df.card_id, df.difference_krw)) == expected == ds.mismatched_cards
    big = run(demo, "card_balance_mismatches", min_difference=1000)
    assert set(big.card_id) == {21, 42}


def test_topup_channel_mix_per_month(demo):
    ds, _ = demo
    start, end = ds.today - dt.timedelta(days=100), ds.today
    amount = Counter()
    for t in ds.live("topups"):
        if in_period(t["created_at"], start, end):
            amount[(month_of(day(t["created_at"])), t["channel"])] += t["amount_krw"]
    month_total = Counter()
    for (m, _), v in amount.items():
        month_total[m] += v
    df = run(demo, "topup_channel_mix_monthly", period=(start, end))
    assert {(as_date(r.month), r.channel): r.amount_krw for r in df.itertuples()} == dict(amount)
    for r in df.itertuples():
        assert r.share_pct == pytest.approx(100 * r.amount_krw / month_total[as_date(r.month)], abs=0.051)
    for m, total in df.groupby("month").share_pct.sum().items():
        assert total == pytest.approx(100, abs=0.5)


def test_tombstones_would_change_the_answers(demo):
    """Negative control: the tombstoned rows are big enough that reading main instead of live fails the oracles."""
    ds, path = demo
    r = report("card_balance_mismatches")
    leaky = Report(**{**r.__dict__, "sql": r.sql.replace("FROM payments", "FROM main.payments").replace("FROM topups", "FROM main.topups")})
    df = run_report(leaky, default_values(leaky, ds.today), make_query(path))
    assert dict(zip(df.card_id, df.difference_krw)) != ds.mismatched_cards
