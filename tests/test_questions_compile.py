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
    # Negative control: joining refunds to payments before counting (the fan-out the compiler avoids)
    # repeats refunded payments, and this oracle would notice.
    pay, ref = business.live("payments"), business.live("refunds")
    naive = pay.merge(ref[["payment_id"]], on="payment_id", how="left").groupby("merchant_id").size()
    assert (naive != per.payments).any()


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


def test_values_read_in_the_chosen_language(business):
    from dashboard.questions.display import format_value

    q = Question("payments", ("payments.amount", "payments.cancel_rate"), ("payments.weekday",), top=3)
    compiled = compile_summary(business.model, q)
    got = business.query(compiled)
    cols = {c.id: c for c in compiled.columns}
    weekday = got["payments.weekday"].dropna().iloc[0]
    names = {1: ("월", "Mon"), 2: ("화", "Tue"), 3: ("수", "Wed"), 4: ("목", "Thu"), 5: ("금", "Fri"),
             6: ("토", "Sat"), 7: ("일", "Sun")}
    assert format_value(cols["payments.weekday"], weekday, "ko") == names[int(weekday)][0]
    assert format_value(cols["payments.weekday"], weekday, "en") == names[int(weekday)][1]
    assert format_value(cols["payments.amount"], 1234.0, "ko") == "1,234원"
    assert format_value(cols["others"], True, "ko") == "기타"
    assert cols["payments.cancel_rate"].title("ko") == cols["payments.cancel_rate"].label("ko") == "취소율(%)"
    assert cols["payments.cancel_rate"].label("en") == "Cancellation rate (%)"


def test_filters_on_derived_and_time_dimensions(business):
    pay = business.live("payments")
    local = pay.created_at.dt.tz_convert(SEOUL)
    lo, hi, _ = _bounds("last_month")
    cases = [
        (Filter("payments.weekday", "in", ("6", "7")), local.dt.day_of_week >= 5),
        (Filter("payments.amount_band", "in", ("5000", "-inf")), pay.amount_krw < 10000),
        (Filter("payments.hour", "between", ("9", "17")), local.dt.hour.between(9, 17)),
        (Filter("payments.created_at", "during", ("last_month",)), (pay.created_at >= lo) & (pay.created_at < hi)),
        (Filter("payments.day", "ge", (lo.date().isoformat(),)), pay.created_at >= lo),
        (Filter("payments.cancelled_at", "empty", ()), pay.cancelled_at.isna()),
        (Filter("payments.status", "ne", ("approved",)), pay.status != "approved"),
    ]
    for f, mask in cases:
        q = Question("payments", ("payments.payments",), (), filters=(f,))
        got = business.query(compile_summary(business.model, q))
        assert got["payments.payments"].iloc[0] == mask.sum(), f


def test_compiled_queries_run_through_the_warehouse_cache(business):
    q = Question("payments", ("payments.payments",), ("merchants.category",),
                 filters=(Filter("merchants.category", "in", ("cafe", "online")),))
    compiled = compile_summary(business.model, q)
    first = compiled.run(business.warehouse)
    assert set(first["merchants.category"]) == {"cafe", "online"}
    assert compiled.run(business.warehouse).equals(first)


def test_comparison_windows():
    from datetime import date

    from dashboard.questions.periods import windows

    w = windows("2026-11-01..2026-11-30", "previous")
    assert (w.previous.start.date(), w.previous.end.date(), w.shift_days) == (date(2026, 10, 2), date(2026, 11, 1), 30)
    w = windows("2024-02-01..2024-02-29", "year")
    assert (w.previous.start.date(), w.previous.end.date(), w.shift_years) == (date(2023, 2, 1), date(2023, 3, 1), 1)
    assert windows("last_month", "none").previous is None


def test_every_filter_operation_and_comparison_has_words_in_both_languages():
    from dashboard import i18n
    from dashboard.questions.filters import OPS, op_label
    from dashboard.questions.spec import COMPARES, GRAINS

    for lang in i18n.LANGS:
        with i18n.language(lang):
            assert all(op_label(op) for op in OPS)
            assert all(i18n.t("compare_" + c) for c in COMPARES) and all(i18n.t("grain_" + g) for g in GRAINS)


def test_lookup_search_finds_a_merchant_by_name_or_id(business):
    from dashboard.questions import compile_lookup_search

    merchants = business.live("merchants")
    name = merchants.merchant_name.iloc[3]
    found = business.query(compile_lookup_search(business.model, "merchants", name.split()[0]))
    assert set(found.merchant_id) == set(merchants[merchants.merchant_name.str.contains(name.split()[0])].merchant_id[:20])
    by_id = business.query(compile_lookup_search(business.model, "merchants", str(merchants.merchant_id.iloc[3])))
    assert merchants.merchant_id.iloc[3] in set(by_id.merchant_id)


def test_a_period_places_refunds_by_their_payments_time(business):
    q = Question("payments", ("payments.refund_rate",), (), period="last_30_days")
    got = business.query(compile_summary(business.model, q))["payments.refund_rate"].iloc[0]
    lo, hi, _ = _bounds("last_30_days")
    pay = _in(business.live("payments"), lo, hi)
    refunds = business.live("refunds")
    refunded = refunds[refunds.payment_id.isin(pay.payment_id)].amount_krw.sum()
    assert got == pytest.approx(100.0 * refunded / pay[pay.status == "approved"].amount_krw.sum())
    # topups cannot reach payments: placed by their own time
    q = Question("payments", ("payments.amount", "topups.amount"), (), period="last_30_days")
    got = business.query(compile_summary(business.model, q)).iloc[0]
    assert got["topups.amount"] == _in(business.live("topups"), lo, hi).amount_krw.sum()
    assert got["payments.amount"] == pay.amount_krw.sum()


def test_any_text_in_a_filter_or_link_stays_a_parameter(business):
    """Fuzz: whatever text arrives (widget or URL), the SQL text is the one compiled for a plain value."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    def compiled(value: str):
        q = Question("payments", ("payments.payments",), ("merchants.category",),
                     filters=(Filter("merchants.merchant_name", "contains", (value,)),
                              Filter("merchants.category", "in", (value, "cafe"))))
        return compile_summary(business.model, q)

    baseline = compiled("plain").sql

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.text(max_size=300))
    def check(value):
        c = compiled(value)
        assert c.sql == baseline
        again, problems = Question.from_params(
            Question("payments", ("payments.payments",), ("merchants.category",),
                     filters=(Filter("merchants.merchant_name", "contains", (value,)),)).to_params(), business.model)
        assert problems == [] and again.filters[0].values == (value,)

    check()


def test_breadcrumbs_read_like_a_sentence(business):
    from dashboard.questions.display import describe_filter, describe_measure_filter
    from dashboard.questions.spec import default_question

    f = Filter("merchants.category", "in", ("cafe", "online"))
    assert describe_filter(business.model, f, "ko") == "업종 다음 중 하나 카페, 온라인"
    assert describe_filter(business.model, f, "en") == "Category is one of Cafe, Online"
    assert describe_measure_filter(business.model, MeasureFilter("payments.payments", "ge", 50), "ko") == "결제 건수 ≥ 50"
    q = default_question(business.model, "payments")
    got = business.query(compile_summary(business.model, q))
    lo, hi, _ = _bounds("last_30_days")
    assert got["payments.payments"].sum() == len(_in(business.live("payments"), lo, hi))


def test_same_period_last_year_on_data_that_starts_this_year(business):
    q = Question("payments", ("payments.amount",), ("payments.status",), period="last_30_days", compare="year",
                 grain="week")
    got = business.query(compile_summary(business.model, q))
    lo, hi, _ = _bounds("last_30_days")
    pay = _in(business.live("payments"), lo, hi)
    assert got["payments.amount"].sum() == pay.amount_krw.sum()
    assert (got["payments.amount__previous"] == 0).all() and got["payments.amount__delta_pct"].isna().all()


def test_a_question_built_in_code_with_bad_parts_is_a_question_error(business):
    bad = [Question("payments", ("payments.nope",)),
           Question("payments", ("payments.amount",), ("payments.nope",)),
           Question("payments", ("payments.amount",), grain="fortnight"),
           Question("payments", ("payments.amount",), period="last_30_days", compare="decade"),
           Question("payments", ("payments.amount",), ("payments.status",),
                    measure_filters=(MeasureFilter("payments.amount", "like", 1),)),
           Question("merchants", ("merchants.merchants",), ("payments.status",))]
    for q in bad:
        with pytest.raises(QuestionError):
            compile_summary(business.model, q)
    with pytest.raises(QuestionError):
        compile_lookup(business.model, "nowhere", "1")
