"""Explore's question builder through AppTest, on a real DuckDB file holding the six demo tables.

Every expected number is computed here with pandas from the dataset's live
rows (tests/reports_demo.py), never by the app's compiler: a measure split by
a related table's dimension, a ratio across two tables with a floor on a
count, an average compared with the previous period, pivot totals, a filter
removed from the breadcrumbs, a saved view reopened, hostile filter values.
"""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tests.reports_demo import ROOT, SEOUL, build_warehouse, make_dataset, write_app_config

APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("question")
    ds = make_dataset(dt.datetime.now(SEOUL).date())
    warehouse = build_warehouse(tmp / "warehouse.duckdb", ds)
    config = write_app_config(tmp, warehouse)
    config.write_text(config.read_text(encoding="utf-8").replace(
        'state_path = "data/app_state.sqlite"', f'state_path = "{tmp / "app_state.sqlite"}"'), encoding="utf-8")
    before = os.environ.get("PIPELINE_CONFIG")
    os.environ["PIPELINE_CONFIG"] = str(config)
    yield ds
    if before is None:
        os.environ.pop("PIPELINE_CONFIG", None)
    else:
        os.environ["PIPELINE_CONFIG"] = before


def ask(params: dict, lang: str = "en") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("pages/explore.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, index: int = 0) -> pd.DataFrame:
    return at.dataframe[index].value


def frame(ds, name: str) -> pd.DataFrame:
    f = pd.DataFrame(ds.rows[name])
    if "created_at" in f:
        f["day"] = pd.to_datetime(f["created_at"], utc=True).dt.tz_convert("Asia/Seoul").dt.date
    return f


def close(a, b, decimals: int) -> bool:
    return abs(float(a) - float(b)) <= 0.5 * 10 ** -decimals + 1e-9


def test_a_measure_split_by_a_dimension_of_a_related_table(demo):
    ds = demo
    today = dt.datetime.now(SEOUL).date()
    at = ask({"base": "payments", "m": "payments.amount", "d": "merchants.category", "period": "last_30_days"})
    pay = frame(ds, "payments")
    pay = pay[(pay["day"] >= today - dt.timedelta(days=29)) & (pay["day"] <= today)]
    merchants = frame(ds, "merchants")[["merchant_id", "category"]]
    want = pay.merge(merchants, on="merchant_id", how="left").groupby("category")["amount_krw"].sum()
    words = {"convenience": "Convenience store", "cafe": "Cafe", "restaurant": "Restaurant", "transport": "Transport",
             "online": "Online", "culture": "Culture", "retail": "Retail"}
    got = table(at).set_index("Category")["Amount (KRW)"]
    for code, amount in want.items():
        assert got[words[code]] == amount, code
    assert got.drop(labels=[w for w in got.index if w not in words.values()]).sum() == want.sum()
    assert at.query_params["d"] == "merchants.category"


def test_a_ratio_across_two_tables_with_a_floor_on_a_count(demo):
    ds = demo
    at = ask({"base": "payments", "m": "payments.refund_rate", "d": "merchants.merchant_name",
              "mf": "payments.payments~ge~100", "top": "5"})
    pay = frame(ds, "payments")
    refunds = frame(ds, "refunds")
    names = frame(ds, "merchants").set_index("merchant_id")["merchant_name"]
    counts = pay.groupby("merchant_id").size()
    approved = pay[pay["status"] == "approved"].groupby("merchant_id")["amount_krw"].sum()
    refunded = refunds.groupby("merchant_id")["amount_krw"].sum()
    rate = (100.0 * refunded.reindex(approved.index).fillna(0) / approved)
    kept = rate[counts.reindex(rate.index) >= 100].sort_values(ascending=False)
    assert len(kept) > 5, "the floor must leave more merchants than the top N for this test to mean something"
    got = table(at)
    top = got[got["Merchant name"] != "Others"]
    assert top["Merchant name"].to_list() == [names[i] for i in kept.index[:5]]
    for shown, expected in zip(top["Refund rate (%)"], kept.iloc[:5]):
        assert close(shown, expected, 1)
    # "others" is the rest of the kept merchants, computed from their parts (not an average of rates)
    rest = kept.index[5:]
    others = 100.0 * refunded.reindex(rest).fillna(0).sum() / approved.reindex(rest).sum()
    assert close(got[got["Merchant name"] == "Others"]["Refund rate (%)"].iloc[0], others, 1)


def test_comparison_with_the_previous_period_for_an_average_per_group(demo):
    ds = demo
    today = dt.datetime.now(SEOUL).date()
    at = ask({"base": "payments", "m": "payments.avg_ticket", "d": "merchants.region", "period": "last_30_days",
              "cmp": "previous"}, lang="ko")
    pay = frame(ds, "payments").merge(frame(ds, "merchants")[["merchant_id", "region"]], on="merchant_id", how="left")
    pay = pay[pay["status"] == "approved"]

    def avg(start, end):
        part = pay[(pay["day"] >= start) & (pay["day"] <= end)]
        return part.groupby("region")["amount_krw"].mean()

    cur = avg(today - dt.timedelta(days=29), today)
    prev = avg(today - dt.timedelta(days=59), today - dt.timedelta(days=30))
    got = table(at).set_index("가맹점 지역")
    assert list(got.columns[:4]) == ["객단가(원)", "객단가(원) (이전 기간)", "객단가(원) 증감", "객단가(원) 증감률(%)"]
    for region in cur.index.dropna():
        row = got.loc[region]
        assert close(row["객단가(원)"], cur[region], 0)
        assert close(row["객단가(원) (이전 기간)"], prev[region], 0)
        assert abs(row["객단가(원) 증감"] - (cur[region] - prev[region])) <= 1
        assert close(row["객단가(원) 증감률(%)"], 100 * (cur[region] - prev[region]) / abs(prev[region]), 1)


def test_pivot_cells_and_totals(demo):
    ds = demo
    at = ask({"base": "payments", "m": "payments.payments", "view": "pivot", "pr": "merchants.region",
              "pc": "payments.status"}, lang="ko")
    pay = frame(ds, "payments").merge(frame(ds, "merchants")[["merchant_id", "region"]], on="merchant_id", how="left")
    want = pd.crosstab(pay["region"], pay["status"])
    got = table(at).set_index("가맹점 지역")
    for region in want.index:  # regions are stored in Korean
        assert got.loc[region, "승인"] == want.loc[region, "approved"]
        assert got.loc[region, "취소"] == want.loc[region, "cancelled"]
        assert got.loc[region, "합계"] == want.loc[region].sum()
    assert got.loc["합계", "승인"] == (pay["status"] == "approved").sum()
    assert got.loc["합계", "합계"] == len(pay)
    assert [b.proto.label for b in at.get("download_button")] == ["Excel 받기"]


def test_removing_a_breadcrumb_removes_its_filter(demo):
    ds = demo
    at = ask({"base": "payments", "m": "payments.payments", "f": ["merchants.category~in~cafe", "payments.status~in~approved"]},
             lang="ko")  # AppTest formats options outside the run, in the default language
    pay = frame(ds, "payments").merge(frame(ds, "merchants")[["merchant_id", "category"]], on="merchant_id", how="left")
    assert at.metric[0].value == f"{((pay['category'] == 'cafe') & (pay['status'] == 'approved')).sum():,}"
    at.button(key="q_crumb_0").click().run()
    assert not at.exception
    assert at.metric[0].value == f"{(pay['status'] == 'approved').sum():,}"
    assert at.query_params["f"] == "payments.status~in~approved"


@pytest.mark.parametrize("hostile", ["'; DROP TABLE payments; --", "a\x00b", "%_\\", "x" * 5000, "카페' OR '1'='1"])
def test_hostile_filter_values_are_values(demo, hostile):
    at = ask({"base": "payments", "m": "payments.payments", "f": f"merchants.merchant_name~contains~{hostile}"})
    assert at.metric[0].value == "0"  # no merchant name contains it, and nothing broke
    at = ask({"base": "payments", "m": "payments.payments", "f": f"payments.amount_krw~gt~{hostile}"})
    assert at.warning and "not a number" in at.warning[0].value  # a message, never a traceback


def test_a_saved_view_reopens_the_same_numbers(demo):
    params = {"base": "payments", "m": ["payments.payments", "payments.amount"], "d": "payments.status",
              "period": "last_90_days"}
    at = ask(params, lang="ko")
    before = table(at)
    at.text_input(key="x_sv_name").input("상태별 90일").run()
    at.button(key="x_sv_save").click().run()
    assert any("저장했습니다" in s.value for s in at.success)
    link = next(m.value for m in at.markdown if "dd-saved-view" in m.value)
    saved_id = link.split("saved=")[1].split('"')[0]
    again = ask({"saved": saved_id}, lang="ko")
    pd.testing.assert_frame_equal(table(again), before)
    assert again.query_params["m"] == ["payments.payments", "payments.amount"]
    missing = ask({"saved": "999999"}, lang="ko")
    assert any("저장된 보기 999999" in w.value for w in missing.warning)


def test_a_saved_view_is_renamed_and_replaced_with_the_screen_keeping_its_link(demo):
    at = ask({"base": "payments", "m": "payments.payments", "d": "payments.status", "period": "last_30_days"}, lang="ko")
    at.text_input(key="x_sv_name").input("Payments by status").run()
    at.button(key="x_sv_save").click().run()
    link = next(m.value for m in at.markdown if "dd-saved-view" in m.value and "Payments by status" in m.value)
    saved_id = link.split("saved=")[1].split('"')[0]

    at.text_input(key=f"x_sv_rename_{saved_id}").input("Payments, 30 days").run()
    at.button(key=f"x_sv_ren_{saved_id}").click().run()
    assert any("이름을 'Payments, 30 days' (으)로 바꿨습니다" in s.value for s in at.success)
    assert any("Payments, 30 days" in m.value and f"saved={saved_id}" in m.value for m in at.markdown)

    # Now a 90-day question on screen replaces the saved one; the same link opens it.
    wider = ask({"base": "payments", "m": "payments.payments", "d": "payments.status", "period": "last_90_days"}, lang="ko")
    wider.button(key=f"x_sv_rep_{saved_id}").click().run()
    assert any("지금 화면으로 바꿨습니다" in s.value for s in wider.success)
    again = ask({"saved": saved_id}, lang="ko")
    assert again.query_params["period"] == "last_90_days"
    pd.testing.assert_frame_equal(table(again), table(wider))

    # A name another view of the same owner has is refused, and the view keeps its name.
    wider.text_input(key="x_sv_name").input("Other").run()
    wider.button(key="x_sv_save").click().run()
    wider.text_input(key=f"x_sv_rename_{saved_id}").input("other").run()
    wider.button(key=f"x_sv_ren_{saved_id}").click().run()
    assert any("이미 있습니다" in w.value for w in wider.warning)
    assert any("Payments, 30 days" in m.value and f"saved={saved_id}" in m.value for m in wider.markdown)


def test_the_analysts_file_of_a_question_holds_stored_codes_and_plain_names(demo):
    """The raw-codes switch on a question: `cafe`, not 카페; `payments_previous`, not "결제 건수 (이전)"; same numbers."""
    from dashboard import downloads, explore_result
    from dashboard.model import model_for
    from dashboard.questions import Question, compile_summary
    from dashboard.warehouse import get_warehouse
    from tests.browser_page import read_csv

    ds = demo
    today = dt.datetime.now(SEOUL).date()
    wh = get_warehouse()
    model = model_for(wh)
    q, problems = Question.from_params({"base": "payments", "m": ["payments.payments", "payments.amount"],
                                        "d": "merchants.category", "period": "last_30_days", "cmp": "previous",
                                        "top": "3"}, model)
    assert problems == []
    compiled = compile_summary(model, q)
    result = wh.query(compiled.sql, compiled.params)

    table, views = explore_result.raw_file(result, compiled.columns)
    raw = read_csv(downloads.file_bytes("csv", table, views, raw=True))
    assert list(raw.columns) == ["category", "payments", "payments_previous", "payments_delta", "payments_delta_pct",
                                 "amount", "amount_previous", "amount_delta", "amount_delta_pct", "others"]
    pay = frame(ds, "payments")
    pay = pay[(pay["day"] >= today - dt.timedelta(days=29)) & (pay["day"] <= today)]
    merchants = frame(ds, "merchants")[["merchant_id", "category"]]
    want = (pay.merge(merchants, on="merchant_id", how="left").groupby("category", dropna=False).size()
            .sort_values(ascending=False))  # payments of an unknown merchant are counted too, among the others
    top = raw[raw["others"] == "false"]
    assert dict(zip(top["category"], top["payments"].astype(int))) == want.iloc[:3].to_dict()
    rest = raw[raw["others"] == "true"]
    assert rest["category"].to_list() == [""] and int(rest["payments"].iloc[0]) == want.iloc[3:].sum()

    labelled = read_csv(downloads.file_bytes("csv", pa.Table.from_pandas(explore_result.shown(result, compiled.columns, "ko")),
                                             explore_result.column_views(result, compiled.columns, "ko")))
    assert labelled.iloc[:, 1:].to_numpy().tolist() == raw.iloc[:, 1:-1].to_numpy().tolist()  # the screen's numbers
    assert labelled.iloc[:, 0].to_list()[-1] == "기타" and "cafe" not in labelled.iloc[:, 0].to_list()


def test_old_table_links_open_the_table_view(demo):
    at = ask({"table": "topups", "in.channel": "mobile"})
    assert at.session_state["x_mode"] == "table"
    assert at.selectbox(key="x_table").value == "topups"


@pytest.mark.parametrize("typed", ["'; DROP TABLE merchants; --", "a\x00b", "%' OR 1=1 --", "가" * 400])
def test_text_typed_into_the_filter_widget_is_a_value(demo, typed):
    ds = demo
    at = ask({"base": "payments", "m": "payments.payments"}, lang="ko")
    at.selectbox(key="q.payments.fdim").set_value("merchants.merchant_name").run()
    at.selectbox(key="q.payments.fop.merchants.merchant_name").set_value("contains").run()
    at.text_input(key="q.payments.fval.merchants.merchant_name.contains").input(typed).run()
    at.button(key="q.payments.fadd").click().run()
    assert not at.exception
    assert at.metric[0].value == "0"  # no name contains it; the text was a bound value
    assert at.button(key="q_crumb_0")  # the filter is on the path, removable
    # the same widget with a real part of a name counts what pandas counts
    at.button(key="q_crumb_0").click().run()
    at.text_input(key="q.payments.fval.merchants.merchant_name.contains").input("cafe").run()
    at.button(key="q.payments.fadd").click().run()
    pay = frame(ds, "payments").merge(frame(ds, "merchants")[["merchant_id", "merchant_name"]], on="merchant_id")
    assert at.metric[0].value == f"{pay['merchant_name'].str.lower().str.contains('cafe').sum():,}"


def test_weekdays_read_monday_to_sunday_in_korean(demo):
    ds = demo
    at = ask({"base": "payments", "m": "payments.payments", "d": "payments.weekday"}, lang="ko")
    got = table(at)
    assert got["요일"].to_list() == ["월", "화", "수", "목", "금", "토", "일"]
    pay = frame(ds, "payments")
    weekday = pd.to_datetime(pay["created_at"], utc=True).dt.tz_convert("Asia/Seoul").dt.day_of_week
    assert got["결제 건수"].to_list() == weekday.value_counts().sort_index().to_list()
