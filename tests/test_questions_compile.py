"""The query compiler on a real DuckDB warehouse; every expectation computed from the generated rows with pandas."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import pytest

from dashboard.dates import preset_range, today_seoul
from dashboard.questions import (Filter, MeasureFilter, Question, QuestionError, compile_lookup, compile_pivot,
                                 compile_rows, compile_summary)
from tests.questions_fixtures import SEOUL, business  # noqa: F401  (module fixture)


def _bounds(preset: str):
    start, end = preset_range(preset, today_seoul())
    return (datetime.combine(start, time(), SEOUL), datetime.combine(end + timedelta(days=1), time(), SEOUL),
            (end - start).days + 1)


def _in(frame: pd.DataFrame, lo, hi, column="created_at") -> pd.DataFrame:
    return frame[(frame[column] >= lo) & (frame[column] < hi)]


def _as_dict(frame: pd.DataFrame, key: str, value: str) -> dict:
    return {k: v for k, v in zip(frame[key], frame[value])}


def test_measure_split_by_a_dimension_of_a_related_table(business):
    q = Question("payments", ("payments.amount", "payments.payments"), ("merchants.category",),
                 period="last_30_days")
    got = business.query(compile_summary(business.model, q))
    lo, hi, _ = _bounds("last_30_days")
    pay = _in(business.live("payments"), lo, hi).merge(business.live("merchants")[["merchant_id", "category"]],
                                                        on="merchant_id", how="left")
    want = pay.groupby("category").agg(amount=("amount_krw", "sum"), n=("payment_id", "count")).reset_index()
    assert _as_dict(got, "merchants.category", "payments.amount") == _as_dict(want, "category", "amount")
    assert _as_dict(got, "merchants.category", "payments.payments") == _as_dict(want, "category", "n")
    assert list(got["payments.amount"]) == sorted(got["payments.amount"], reverse=True)


def test_dimension_two_joins_away(business):
    q = Question("payments", ("payments.payments",), ("members.region",))
    got = business.query(compile_summary(business.model, q))
    pay = business.live("payments").merge(business.live("cards")[["card_id", "member_id"]], on="card_id") \
        .merge(business.live("members")[["member_id", "region"]], on="member_id")
    assert _as_dict(got, "members.region", "payments.payments") == pay.groupby("region").size().to_dict()
    assert got["payments.payments"].sum() == len(business.live("payments"))  # nothing multiplied, nothing lost


def _refund_table(business) -> pd.DataFrame:
    pay, ref = business.live("payments"), business.live("refunds")
    per = pay.groupby("merchant_id").agg(payments=("payment_id", "count"))
    per["approved_krw"] = pay[pay.status == "approved"].groupby("merchant_id").amount_krw.sum()
    per["refunded_krw"] = ref.merge(pay[["payment_id", "merchant_id"]], on="payment_id",
                                    suffixes=("_r", "")).groupby("merchant_id").amount_krw.sum()
    per = per.fillna(0)
    per["rate"] = 100.0 * per.refunded_krw / per.approved_krw
    return per


def test_ratio_across_two_tables_with_a_floor_on_a_count_and_top_n(business):
    floor, n = 40, 10
    q = Question("payments", ("payments.refund_rate", "payments.payments"), ("payments.merchant_id",),
                 measure_filters=(MeasureFilter("payments.payments", "ge", floor),), sort="payments.refund_rate",
                 top=n)
    got = business.query(compile_summary(business.model, q))
    per = _refund_table(business)
    eligible = per[per.payments >= floor].sort_values(["rate"], ascending=False)
    top, rest = eligible.head(n), eligible.iloc[n:]
    shown = got[~got["others"]]
    assert [int(x) for x in shown["payments.merchant_id"]] == list(top.index)
    assert list(shown["payments.refund_rate"].round(6)) == list(top.rate.round(6))
    other = got[got["others"]].iloc[0]
    assert other["payments.payments"] == rest.payments.sum()
    assert other["payments.refund_rate"] == pytest.approx(100.0 * rest.refunded_krw.sum() / rest.approved_krw.sum())


def test_top_n_and_others_sum_to_the_total(business):
    q = Question("topups", ("topups.amount", "topups.topups", "topups.avg_amount"), ("cards.product", "topups.channel"),
                 top=5)
    got = business.query(compile_summary(business.model, q))
    top = business.live("topups")
    assert got["topups.amount"].sum() == top.amount_krw.sum()
    assert got["topups.topups"].sum() == len(top)
    assert len(got) == 6 and got["others"].sum() == 1
    merged = top.merge(business.live("cards")[["card_id", "product"]], on="card_id")
    sums = merged.groupby(["product", "channel"]).amount_krw.agg(["sum", "count"]).sort_values("sum", ascending=False)
    rest = sums.iloc[5:]
    other = got[got["others"]].iloc[0]
    assert other["topups.avg_amount"] == pytest.approx(rest["sum"].sum() / rest["count"].sum())


def test_comparison_with_the_previous_period_for_an_average_per_group(business):
    q = Question("payments", ("payments.avg_ticket",), ("members.region",), period="last_30_days",
                 compare="previous")
    compiled = compile_summary(business.model, q)
    assert [c.kind for c in compiled.columns] == ["dimension", "others", "measure", "previous", "delta", "delta_pct"]
    got = business.query(compiled).set_index("members.region")
    lo, hi, days = _bounds("last_30_days")
    pay = business.live("payments").merge(business.live("cards")[["card_id", "member_id"]], on="card_id") \
        .merge(business.live("members")[["member_id", "region"]], on="member_id")
    pay = pay[pay.status == "approved"]
    cur = _in(pay, lo, hi).groupby("region").amount_krw.mean()
    prev = _in(pay, lo - timedelta(days=days), lo).groupby("region").amount_krw.mean()
    for region in cur.index:
        row = got.loc[region]
        assert row["payments.avg_ticket"] == pytest.approx(cur[region])
        assert row["payments.avg_ticket__previous"] == pytest.approx(prev[region])
        assert row["payments.avg_ticket__delta"] == pytest.approx(cur[region] - prev[region])
        assert row["payments.avg_ticket__delta_pct"] == pytest.approx(100 * (cur[region] - prev[region]) / prev[region])


def test_time_series_with_comparison_lines_up_the_previous_period(business):
    q = Question("topups", ("topups.amount",), (), period="last_14_days", grain="day", compare="previous")
    got = business.query(compile_summary(business.model, q))
    lo, hi, days = _bounds("last_14_days")
    top = business.live("topups")
    top["day"] = top.created_at.dt.date
    cur = _in(top, lo, hi).groupby("day").amount_krw.sum()
    prev = _in(top, lo - timedelta(days=days), lo).groupby("day").amount_krw.sum()
    prev.index = [d + timedelta(days=days) for d in prev.index]
    series = got.set_index(got["time"].map(lambda v: pd.Timestamp(v).date()))
    for day, value in cur.items():
        assert series.loc[day, "topups.amount"] == value
        assert series.loc[day, "topups.amount__previous"] == prev.get(day, 0)


def test_pivot_totals_come_from_the_data(business):
    q = Question("payments", ("payments.payments", "payments.cards_used"), ())
    got = business.query(compile_pivot(business.model, q, ["merchants.category"], ["payments.status"]))
    pay = business.live("payments").merge(business.live("merchants")[["merchant_id", "category"]], on="merchant_id")
    cells = got[~got.all_rows & ~got.all_columns]
    want = pay.groupby(["category", "status"]).agg(n=("payment_id", "count"), cards=("card_id", "nunique"))
    for _, row in cells.iterrows():
        assert row["payments.payments"] == want.loc[(row["merchants.category"], row["payments.status"]), "n"]
        assert row["payments.cards_used"] == want.loc[(row["merchants.category"], row["payments.status"]), "cards"]
    row_totals = got[got.all_columns & ~got.all_rows]
    assert _as_dict(row_totals, "merchants.category", "payments.cards_used") == \
        pay.groupby("category").card_id.nunique().to_dict()
    col_totals = got[got.all_rows & ~got.all_columns]
    assert _as_dict(col_totals, "payments.status", "payments.payments") == pay.groupby("status").size().to_dict()
    grand = got[got.all_rows & got.all_columns].iloc[0]
    assert grand["payments.payments"] == len(pay) and grand["payments.cards_used"] == pay.card_id.nunique()


def test_lookup_timeline_is_the_union_of_the_cards_rows_in_time_order(business):
    card = 17
    lookup = compile_lookup(business.model, "cards", str(card))
    attributes = business.query(lookup.attributes)
    assert list(attributes["card_id"]) == [card]
    timeline = business.query(lookup.timeline)
    want = []
    for table, key in (("payments", "payment_id"), ("topups", "topup_id"), ("refunds", "refund_id")):
        rows = business.live(table)
        rows = rows[rows.card_id == card]
        want += [(at, table, str(k), float(a)) for at, k, a in zip(rows.created_at, rows[key], rows.amount_krw)]
    want.sort(key=lambda r: (r[0], r[1], r[2]))
    got = [(pd.Timestamp(a), s, i, x) for a, s, i, x in
           zip(timeline.happened_at, timeline.source, timeline.id, timeline.amount)]
    assert [(s, i, x) for _, s, i, x in got] == [(s, i, x) for _, s, i, x in want]
    assert [a for a, *_ in got] == [pd.Timestamp(a) for a, *_ in want]
    over = business.query(lookup.over_time)
    assert over.events.sum() == len(want)


def test_rows_view_lists_the_records_behind_a_number(business):
    q = Question("payments", ("payments.payments",), ("merchants.category",),
                 filters=(Filter("merchants.category", "in", ("cafe",)), Filter("payments.status", "eq", ("approved",))))
    summary = business.query(compile_summary(business.model, q))
    rows = business.query(compile_rows(business.model, q, 100000))
    assert len(rows) == summary["payments.payments"].sum() > 0
    assert set(rows["merchants.category"]) == {"cafe"} and set(rows["status"]) == {"approved"}
    assert list(rows.created_at) == sorted(rows.created_at, reverse=True)


HOSTILE = ["x' OR '1'='1", "'; DROP TABLE payments; --", "a\x00b", "é" * 100_000, '"; SELECT 1; --', "%_\\"]


@pytest.mark.parametrize("op", ["in", "eq", "contains", "not_in"])
def test_hostile_filter_values_never_reach_sql_text(business, op):
    def compiled(value: str):
        q = Question("payments", ("payments.payments",), ("merchants.category",),
                     filters=(Filter("merchants.merchant_name", op, (value,)),))
        return compile_summary(business.model, q)

    baseline = compiled("plain")
    for value in HOSTILE:
        c = compiled(value)
        assert c.sql == baseline.sql
        assert value in c.params or [value] in c.params
        result = business.query(c)
        if op == "not_in":
            assert result["payments.payments"].sum() == len(business.live("payments"))
        else:
            assert result["payments.payments"].sum() == 0


def test_a_filter_value_of_the_wrong_type_is_a_message_not_a_query(business):
    q = Question("payments", ("payments.payments",), (), filters=(Filter("payments.amount_krw", "gt", ("1; --",)),))
    with pytest.raises(QuestionError, match="not a number"):
        compile_summary(business.model, q)
