"""The shared behaviour behind the screens and the files, without a browser.

dashboard/tables.py (labels, words, ids, order, file tables), dashboard/dates.py
(period tokens), dashboard/charts.py (titles, series colours), the language in
the URL (dashboard/links.py, through AppTest) and a lint over sql/: every
result column of every report has a name in both languages. Expected words are
written here, not read from dashboard/i18n.py.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import charts, dates, downloads, i18n, tables
from dashboard.charts import ChartSpec
from dashboard.report_runner import default_values, run_report
from dashboard.reports import Report, load_reports

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")


def topups_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "topup_id": [10, 1000, 7, 10004],
        "channel": ["mobile", "auto_charge", None, "bank_transfer"],
        "amount_krw": [5000, 120000, 3000, 45000],
        "card_id": [7056.0, None, 12.0, 3.0],  # a NULL makes pandas hold ids as floats
        "day": [dt.date(2026, 11, 1), dt.date(2026, 11, 2), None, dt.date(2026, 11, 3)],
    })


# ───────────────────────────────────────────────────────────── tables ──


@pytest.mark.parametrize("lang,headers,words", [
    ("ko", ["topup_id", "충전 경로", "금액(원)", "카드 번호", "일자"], ["모바일", "자동충전", None, "계좌이체"]),
    ("en", ["topup_id", "Channel", "Amount (KRW)", "Card id", "Day"], ["Mobile", "Auto charge", None, "Bank transfer"]),
])
def test_screen_frame_has_labels_words_and_ids_as_integers(lang, headers, words):
    frame = topups_frame()
    with i18n.language(lang):
        views = tables.views_for_frame(frame)
        shown = tables.screen_frame(frame, views)
    assert list(shown.columns) == headers
    assert [None if pd.isna(v) else v for v in shown.iloc[:, 1]] == words
    assert str(shown.iloc[:, 3].dtype) == "Int64" and shown.iloc[0, 3] == 7056  # shown as 7056, sorted as a number
    kinds = {v.name: v.kind for v in views}
    assert kinds == {"topup_id": "id", "channel": "text", "amount_krw": "number", "card_id": "id", "day": "date"}


def test_duplicate_labels_get_their_column_names():
    frame = pd.DataFrame({"amount_krw": [1], "payments_krw": [2], "x": [3]})
    with i18n.language("ko"):
        views = tables.views(((c, "number", False) for c in frame.columns), {"x": "금액(원) / Amount (KRW)"})
    assert [v.label for v in views] == ["금액(원)", "결제(원)", "금액(원) (x)"]


def test_file_table_labelled_and_raw():
    frame = topups_frame()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with i18n.language("en"):
        views = tables.views_for_frame(frame)
        labelled = tables.file_table(table, views)
        raw = tables.file_table(table, views, raw=True)
    assert labelled.column_names == ["topup_id", "Channel", "Amount (KRW)", "Card id", "Day"]
    assert labelled.column("Channel").to_pylist() == ["Mobile", "Auto charge", None, "Bank transfer"]
    assert labelled.column("Card id").type == pa.int64() and labelled.column("Card id").to_pylist() == [7056, None, 12, 3]
    assert raw.column_names == list(frame.columns)
    assert raw.column("channel").to_pylist() == ["mobile", "auto_charge", None, "bank_transfer"]
    # Excel: the id column without separators, amounts with them; the header as on screen.
    with i18n.language("en"):
        data = downloads.file_bytes("xlsx", table, views)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    assert [c.value for c in sheet[1]] == ["topup_id", "Channel", "Amount (KRW)", "Card id", "Day"]
    assert sheet["D2"].value == 7056 and sheet["D2"].number_format == "0"
    assert sheet["A3"].number_format == "0" and sheet["C3"].number_format == "#,##0"
    assert isinstance(sheet["E2"].value, dt.datetime) and sheet["E2"].number_format == "yyyy-mm-dd"
    with i18n.language("ko"):
        views = tables.views_for_frame(frame)  # labels are the language's at the time the screen is drawn
        csv = downloads.file_bytes("csv", table, views).decode("utf-8-sig").splitlines()
    assert csv[0] == '"topup_id","충전 경로","금액(원)","카드 번호","일자"'
    assert csv[1] == '10,"모바일",5000,7056,2026-11-01' and csv[3] == "7,,3000,12,"  # nothing stays empty


def test_a_million_coded_rows_are_labelled_through_the_dictionary():
    n = 1_000_000
    table = pa.table({"channel": pa.array(["mobile", "card", "auto_charge", None] * (n // 4))})
    views = [tables.ColumnView("channel", "충전 경로", "text", coded=True)]
    with i18n.language("ko"):
        out = tables.file_table(table, views)
    assert out.column("충전 경로").to_pylist()[:4] == ["모바일", "신용·체크카드", "자동충전", None]


def test_sorting_a_coded_column_follows_the_words_on_screen():
    frame = topups_frame()
    views = tables.views_for_frame(frame)
    with i18n.language("ko"):
        got = tables.sort_frame(frame, "channel", False, views)["channel"].fillna("—").tolist()
    assert got == ["bank_transfer", "mobile", "auto_charge", "—"]  # 계좌이체, 모바일, 자동충전, then nothing
    with i18n.language("en"):
        got = tables.sort_frame(frame, "channel", True, views)["channel"].fillna("—").tolist()
    assert got == ["mobile", "bank_transfer", "auto_charge", "—"]  # Mobile, Bank transfer, Auto charge


# ─────────────────────────────────────────────────────────────── dates ──


def test_period_tokens():
    today = dt.date(2026, 11, 24)
    assert dates.parse_period("last_month", today) == dates.Period(dt.date(2026, 10, 1), dt.date(2026, 10, 31), "last_month")
    p = dates.parse_period("2026-11-20..2026-11-02", today)
    assert p.reversed and p.token == "2026-11-20..2026-11-02" and p.preset is None  # kept as written
    assert dates.parse_period("last_3660_days", today).start == today - dt.timedelta(days=3659)
    for bad in ("last_0_days", "last_9999_days", "someday", "2026-11-31..2026-12-01", ""):
        with pytest.raises(ValueError):
            dates.parse_period(bad, today)
    with i18n.language("ko"):
        assert dates.preset_label("last_45_days") == "최근 45일" and dates.preset_label("this_week") == "이번 주"
        assert p.describe() == "2026-11-20 – 2026-11-02"


# ─────────────────────────────────────────────────────────────── charts ──


def test_value_titles_name_the_aggregation_only_where_the_chart_aggregated():
    labels = {"avg_ticket_krw": "객단가(원)", "amount_krw": "금액(원)"}
    with i18n.language("ko"):
        assert charts.value_title(ChartSpec(kind="bar", y="avg_ticket_krw", agg=charts.VALUES_AS_GIVEN), labels) == "객단가(원)"
        assert charts.value_title(ChartSpec(kind="bar", y="amount_krw", agg="avg"), labels) == "금액(원) (평균)"
        assert charts.value_title(ChartSpec(kind="bar", agg="count"), labels) == "건수"


def test_series_colours_are_fixed_per_code():
    all_channels = ["bank_transfer", "card", "convenience_store", "mobile", "auto_charge"]
    full = charts.series_colours("channel", all_channels)
    assert len(set(full.values())) == 5
    assert charts.series_colours("channel", ["auto_charge", "mobile"]) == {c: full[c] for c in ("auto_charge", "mobile")}
    frame = pd.DataFrame({"x": ["2026-11-01"] * 2, "color": ["mobile", "auto_charge"], "value": [1, 2]})
    spec = ChartSpec(kind="line", x="day", y="amount_krw", color="channel", agg=charts.VALUES_AS_GIVEN)
    traces = {}
    for lang in ("ko", "en"):
        with i18n.language(lang):
            fig = charts.figure(frame, spec, {})
        traces[lang] = [(t.name, t.line.color) for t in fig.data]
    assert [n for n, _ in traces["ko"]] == ["모바일", "자동충전"] and [n for n, _ in traces["en"]] == ["Mobile", "Auto charge"]
    assert [c for _, c in traces["ko"]] == [c for _, c in traces["en"]] == [full["mobile"], full["auto_charge"]]


# ─────────────────────────────────────────── every report column is named ──


def test_every_report_column_has_a_name_in_both_languages(tmp_path):
    from tests.reports_demo import build_warehouse, make_dataset
    from ingest.warehouse_file import open_reader

    ds = make_dataset(dt.date.today())
    path = build_warehouse(tmp_path / "warehouse.duckdb", ds)

    def query(sql, params):
        with open_reader(path, timeout=10, setup=("SET search_path = 'live,main'", "SET TimeZone = 'Asia/Seoul'")) as con:
            return con.execute(sql, list(params)).df()

    unnamed = []
    for report in (r for r in load_reports(ROOT / "sql") if isinstance(r, Report)):
        result = run_report(report, default_values(report, ds.today), query)
        for lang in ("ko", "en"):
            with i18n.language(lang):
                for view in tables.views_for_frame(result):
                    if view.label == view.name or (lang == "en" and view.label[:1].islower()):
                        unnamed.append((report.slug, lang, view.name))
        for total in report.totals:
            assert total in result.columns, (report.slug, total)
    assert not unnamed, unnamed


# ──────────────────────────────────────────── the language in the address ──


def test_pages_keep_the_language_in_the_url(app_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["lang"] = "en"
    at.query_params["table"] = "topups"
    at.switch_page("pages/explore.py")
    at.run()
    assert not at.exception
    assert at.query_params["lang"] == "en" and at.query_params["table"] == "topups"  # the page's own write kept it
    assert any(m.value.startswith("Matching rows") for m in at.markdown)
    assert all(d.proto.placeholder == "—" for d in at.dataframe)  # a missing value is "—" in every table
    # Korean, the default, leaves no lang in the URL; picking English in the sidebar writes it.
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["table"] = "payments"
    at.switch_page("pages/explore.py")
    at.run()
    assert "lang" not in at.query_params
    at.sidebar.radio(key="lang").set_value("en").run()
    assert at.query_params["lang"] == "en" and at.query_params["table"] == "payments"


@pytest.mark.parametrize("grain,start,end,finer", [
    ("month", "2026-02-01", "2026-02-28", "day"),
    ("month", "2024-02-01", "2024-02-29", "day"),  # a leap year's February
    ("month", "2026-12-01", "2026-12-31", "day"),  # the month that crosses the year
    ("quarter", "2026-10-01", "2026-12-31", "month"),
    ("year", "2026-01-01", "2026-12-31", "month"),
    ("week", "2026-11-23", "2026-11-29", "day"),
    ("day", "2026-11-29", "2026-11-29", "hour"),
    ("hour", "2026-11-29", "2026-11-29", "hour"),
])
def test_zooming_into_a_time_bucket_covers_its_days_at_a_finer_grain(grain, start, end, finer):
    days = dates.bucket(grain, dt.date.fromisoformat(start))
    assert (days.start.isoformat(), days.end.isoformat()) == (start, end)
    assert dates.FINER[grain] == finer


def test_a_total_tile_shows_the_exact_amount_when_it_fits_and_a_short_one_with_the_exact_in_its_tooltip():
    from dashboard.kpis import tile_krw

    assert tile_krw(17_279_900, "ko", 2) == ("17,279,900원", None)
    assert tile_krw(451_785_000, "ko", 3) == ("451,785,000원", None)  # 13 digit widths (원 is two): fits a third
    assert tile_krw(2_598_600_000, "ko", 3) == ("26.0억원", "2,598,600,000원")  # cut as "2,598,600,00…" before
    assert tile_krw(69_584_300, "ko", 5) == ("6,958만원", "69,584,300원")
    assert tile_krw(2_598_600_000, "en", 3) == ("₩2.6B", "₩2,598,600,000")
