"""Explore page through Streamlit's AppTest, against a real DuckDB warehouse file in tmp_path.

Expectations come from the rows the fixture generated (pandas) or from a
separate plain DuckDB connection — never from the app's own modules.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures_app import SEOUL, run_page

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")


def explore(params=None, lang=None) -> AppTest:
    return run_page("pages/explore.py", params, lang)


def matching_rows(at: AppTest) -> int:
    """The live row count the page shows ("… **1,234** …")."""
    for md in at.markdown:
        if md.value.startswith(("조건에 맞는 행", "Matching rows")):
            return int(md.value.split("**")[1].replace(",", ""))
    raise AssertionError("no row count on the page: " + repr([m.value for m in at.markdown]))


def seoul_today() -> date:
    return datetime.now(SEOUL).date()


def last_month(today: date) -> tuple[date, date]:
    first_this = today.replace(day=1)
    end = first_this - timedelta(days=1)
    return end.replace(day=1), end


def in_dates(ts: pd.Series, start: date, end: date) -> pd.Series:
    local = ts.dt.tz_convert(SEOUL).dt.date
    return (local >= start) & (local <= end)


def duckdb_count(env, sql: str, params=()) -> int:
    """Independent oracle: a plain read-only DuckDB connection, the app's code not involved."""
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        con.execute("SET TimeZone = 'Asia/Seoul'")
        return con.execute(sql, list(params)).fetchone()[0]
    finally:
        con.close()


# ────────────────────────────────────────────────────────── row counts ──


def test_whole_table_count_hides_tombstones(app_env):
    at = explore({"table": "topups"})
    expected = len(app_env.live("topups"))
    assert expected < len(app_env.rows["topups"])  # the fixture planted tombstones
    assert matching_rows(at) == expected
    shown = at.dataframe[0].value
    assert len(shown) == 500  # [app] max_display_rows in the test config
    assert any("500" in c.value and f"{expected:,}" in c.value for c in at.caption)


def test_filters_from_the_url_change_the_row_count(app_env):
    today = seoul_today()
    start, end = today - timedelta(days=20), today - timedelta(days=5)
    params = {"table": "topups", "period.created_at": f"{start}..{end}",
              "in.channel": ["mobile", "card"], "range.amount_krw": "10000..50000"}
    at = explore(params)
    frame = app_env.live("topups")
    mask = in_dates(frame["created_at"], start, end) & frame["channel"].isin(["mobile", "card"]) \
        & frame["amount_krw"].between(10000, 50000)
    expected = int(mask.sum())
    assert 0 < expected < len(frame)
    assert matching_rows(at) == expected
    # the same count from DuckDB directly, written independently
    assert duckdb_count(
        app_env,
        "SELECT count(*) FROM main.topups WHERE NOT _deleted AND created_at >= ?::TIMESTAMPTZ "
        "AND created_at < ?::TIMESTAMPTZ AND channel IN ('mobile', 'card') AND amount_krw BETWEEN 10000 AND 50000",
        [f"{start} 00:00:00+09", f"{end + timedelta(days=1)} 00:00:00+09"],
    ) == expected
    # the displayed rows obey the filters too
    shown = at.dataframe[0].value  # the screen's frame: labelled headers
    assert len(shown) == min(expected, 500)
    assert shown["충전 금액(원)"].between(10000, 50000).all()


def test_widgets_change_the_count_and_the_url(app_env):
    at = explore({"table": "topups"})
    total = matching_rows(at)
    at.multiselect(key="x.topups.in.channel").set_value(["mobile"]).run()
    frame = app_env.live("topups")
    assert matching_rows(at) == int((frame["channel"] == "mobile").sum()) < total
    at.selectbox(key="x.topups.period.preset").set_value("last_month").run()
    start, end = last_month(seoul_today())
    expected = int(((frame["channel"] == "mobile") & in_dates(frame["created_at"], start, end)).sum())
    assert matching_rows(at) == expected
    assert at.query_params["in.channel"] == "mobile"
    assert at.query_params["period.created_at"] == "last_month"
    # a contains search on a high-cardinality text column
    at2 = explore({"table": "merchants"})
    at2.multiselect(key="x.merchants.more").set_value(["merchant_name"]).run()
    at2.text_input(key="x.merchants.has.merchant_name").input("카페").run()
    merchants = app_env.live("merchants")
    assert matching_rows(at2) == int(merchants["merchant_name"].str.contains("카페").sum())
    assert at2.query_params["has.merchant_name"] == "카페"


def test_shared_url_reproduces_the_view(app_env):
    """What one session writes into the URL, a fresh session turns back into the same view."""
    at = explore({"table": "payments"})
    at.multiselect(key="x.payments.in.status").set_value(["cancelled"]).run()
    at.selectbox(key="x.payments.kind").set_value("line").run()
    at.selectbox(key="x.payments.sort").set_value("amount_krw").run()
    at.toggle(key="x.payments.desc").set_value(True).run()
    url = dict(at.query_params)
    fresh = explore(url)
    assert dict(fresh.query_params) == url
    assert matching_rows(fresh) == matching_rows(at) == int((app_env.live("payments")["status"] == "cancelled").sum())
    assert fresh.selectbox(key="x.payments.kind").value == "line"
    assert fresh.dataframe[0].value["결제 금액(원)"].tolist() == at.dataframe[0].value["결제 금액(원)"].tolist()
    amounts = fresh.dataframe[0].value["결제 금액(원)"].tolist()
    assert amounts == sorted(amounts, reverse=True)


def test_bad_input_gives_messages_not_tracebacks(app_env):
    at = explore({"table": "topups", "period.created_at": "2026-13-45..yesterday",
                  "range.amount_krw": "lots..more", "in.no_such_column": "x",
                  "sort": "amount_krw; DROP TABLE topups", "chart": "spaceship"})
    warnings = " ".join(w.value for w in at.warning)
    assert "2026-13-45" in warnings and "no_such_column" in warnings and "spaceship" in warnings
    assert "DROP TABLE" in warnings  # named as an unknown column, never executed
    assert matching_rows(at) == len(app_env.live("topups"))  # the bad filters were ignored
    at = explore({"table": "nope"})
    assert any("nope" in w.value for w in at.warning)
    at = explore({"table": "topups", "range.amount_krw": "90000..10"})
    assert any("amount" in w.value or "금액" in w.value for w in at.warning)


# ─────────────────────────────────────────────────────────────── chart ──


def _decode(values):
    """Plotly ≥ 6 ships numeric arrays as {"dtype", "bdata"} (base64)."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return list(values)


def chart_traces(at: AppTest) -> list[dict]:
    charts = at.get("plotly_chart")
    assert charts, "no chart on the page"
    return json.loads(charts[0].proto.spec)["data"]


def test_bar_chart_gets_the_aggregated_data(app_env):
    start, end = last_month(seoul_today())
    at = explore({"table": "topups", "period.created_at": "last_month", "chart": "stacked_bar",
                  "x": "created_at", "bucket": "day", "agg": "sum", "y": "amount_krw", "color": "channel"})
    got = {}
    for trace in chart_traces(at):
        for x, y in zip(trace["x"], _decode(trace["y"])):
            got[(x[:10], trace["name"])] = y
    frame = app_env.live("topups")
    frame = frame[in_dates(frame["created_at"], start, end)]
    frame = frame.assign(day=frame["created_at"].dt.tz_convert(SEOUL).dt.strftime("%Y-%m-%d"))
    labels = {"bank_transfer": "계좌이체", "card": "신용·체크카드", "convenience_store": "편의점",
              "mobile": "모바일", "auto_charge": "자동충전"}  # the Korean screen names the channels
    expected = {(d, labels[c]): v for (d, c), v in frame.groupby(["day", "channel"])["amount_krw"].sum().items()}
    assert got == expected


def test_other_chart_kinds_render(app_env):
    frame = app_env.live("topups")
    at = explore({"table": "topups", "chart": "pie", "x": "channel", "agg": "count"})
    pie = chart_traces(at)[0]
    assert dict(zip(pie["labels"], _decode(pie["values"]))) == {
        {"bank_transfer": "계좌이체", "card": "신용·체크카드", "convenience_store": "편의점",
         "mobile": "모바일", "auto_charge": "자동충전"}[k]: v for k, v in frame["channel"].value_counts().items()}
    at = explore({"table": "topups", "chart": "histogram", "x": "amount_krw"}, lang="en")
    assert sum(sum(_decode(tr["y"])) for tr in chart_traces(at)) == len(frame)
    at = explore({"table": "payments", "chart": "box", "x": "status", "y": "amount_krw", "agg": "avg"}, lang="en")
    box = chart_traces(at)[0]
    pay = app_env.live("payments")
    medians = dict(zip(box["x"], _decode(box["median"])))
    assert medians["Approved"] == pytest.approx(pay[pay.status == "approved"]["amount_krw"].median())
    for kind in ("line", "area", "heatmap", "bar"):
        at = explore({"table": "payments", "chart": kind, "x": "created_at", "bucket": "week",
                      "color": "status", "agg": "distinct", "y": "card_id"})
        assert chart_traces(at)
    # week buckets start on Monday 00:00 in Seoul, and hold the right distinct counts
    weeks = {}
    for trace in chart_traces(at):
        for x, y in zip(trace["x"], _decode(trace["y"])):
            stamp = datetime.fromisoformat(x)  # plotly writes the Seoul wall clock, without offset
            stamp = stamp.astimezone(SEOUL) if stamp.tzinfo else stamp
            assert stamp.weekday() == 0 and (stamp.hour, stamp.minute) == (0, 0), x
            weeks[(stamp.date(), trace["name"])] = y
    local = pay["created_at"].dt.tz_convert(SEOUL)
    monday = (local.dt.normalize() - pd.to_timedelta(local.dt.day_of_week, unit="D")).dt.date
    expected = pay.assign(week=monday, label=pay["status"].map({"approved": "승인", "cancelled": "취소"})) \
        .groupby(["week", "label"])["card_id"].nunique().to_dict()
    assert weeks == expected
    at = explore({"table": "topups", "chart": "bar", "agg": "sum"})  # sum without a value column
    assert any("값(Y)" in i.value for i in at.info)


# ─────────────────────────────────────────────────────────── downloads ──


TOPUP_HEADERS_KO = ["충전 번호", "카드", "충전 경로", "충전 금액(원)", "충전 시각", "변경 시각", "원본에서 바뀐 시각",
                    "웨어하우스에 적재된 시각"]  # pipeline.toml's descriptions, as the screen shows them
TOPUP_COLUMNS = ["topup_id", "card_id", "channel", "amount_krw", "created_at", "updated_at", "_source_ts", "_ingested_at"]


def test_downloads_contain_exactly_the_filtered_rows(app_env, captured_downloads):
    start, end = last_month(seoul_today())
    at = explore({"table": "topups", "period.created_at": "last_month", "in.channel": ["mobile", "convenience_store"]})
    frame = app_env.live("topups")
    frame = frame[in_dates(frame["created_at"], start, end) & frame["channel"].isin(["mobile", "convenience_store"])]
    expected_ids = sorted(frame["topup_id"])  # no sort chosen: the table's key order, on screen and in files
    assert expected_ids and matching_rows(at) == len(expected_ids)
    base = f"topups_{start}_{end}"
    assert set(captured_downloads) == {f"{base}.csv", f"{base}.xlsx", f"{base}.parquet"}
    screen = at.dataframe[0].value
    assert list(screen.columns) == TOPUP_HEADERS_KO
    assert list(screen["충전 번호"]) == expected_ids[:500]

    raw = captured_downloads[f"{base}.csv"]()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel on Windows reads the Korean right
    csv = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
    assert list(csv.columns) == TOPUP_HEADERS_KO  # the screen's headers…
    assert list(csv["충전 번호"]) == expected_ids  # …its rows, in its order…
    by_id = frame.set_index("topup_id")
    words = {"mobile": "모바일", "convenience_store": "편의점"}
    assert list(csv["충전 경로"]) == [words[by_id.loc[i, "channel"]] for i in expected_ids]  # …and its words
    first = csv.iloc[0]
    local = by_id.loc[first["충전 번호"], "created_at"].tz_convert(SEOUL).strftime("%Y-%m-%d %H:%M:%S")
    assert first["충전 시각"].startswith(local)  # Seoul wall clock

    book = openpyxl.load_workbook(io.BytesIO(captured_downloads[f"{base}.xlsx"]()))
    data, notes = book.worksheets
    header = [c.value for c in data[1]]
    assert header == TOPUP_HEADERS_KO
    rows = list(data.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == expected_ids
    assert {r[2] for r in rows} == {"모바일", "편의점"}
    assert all(isinstance(r[4], datetime) for r in rows)  # real dates, not text
    r0 = rows[0]
    assert r0[4] == by_id.loc[r0[0], "created_at"].tz_convert(SEOUL).tz_localize(None).to_pydatetime()
    assert data["A2"].number_format == "0" and data["B2"].number_format == "0"  # ids: 7056, never 7,056
    assert data["D2"].number_format == "#,##0"  # amounts keep their separators
    assert data.column_dimensions["A"].width and data.column_dimensions["A"].width > 5
    note_text = "\n".join(str(c.value) for c in notes["A"] if c.value)
    assert f"{start} – {end}" in note_text and "모바일" in note_text and "편의점" in note_text

    table = pq.read_table(io.BytesIO(captured_downloads[f"{base}.parquet"]()))
    assert table.column("충전 번호").to_pylist() == expected_ids
    assert set(table.column("충전 경로").to_pylist()) == {"모바일", "편의점"}


def test_downloads_for_analysts_keep_codes_names_and_the_chosen_order(app_env, captured_downloads):
    at = explore({"table": "topups", "in.channel": ["auto_charge", "card"], "sort": "amount_krw", "desc": "1"}, lang="en")
    frame = app_env.live("topups")
    frame = frame[frame["channel"].isin(["auto_charge", "card"])]
    english = pd.read_csv(io.BytesIO(captured_downloads[f"topups_{seoul_today()}.csv"]()), encoding="utf-8-sig")
    assert list(english.columns)[:4] == ["Top-up id", "Card", "Channel", "Amount (KRW)"]
    assert set(english["Channel"]) == {"Auto charge", "Card"}
    amounts = list(english["Amount (KRW)"])
    assert amounts == sorted(frame["amount_krw"], reverse=True)  # the order chosen on screen
    assert list(at.dataframe[0].value["Amount (KRW)"]) == amounts[:500]

    # (AppTest calls format functions outside the page run, in the default language: switch in a Korean session.)
    at = explore({"table": "topups", "in.channel": ["auto_charge", "card"], "sort": "amount_krw", "desc": "1"})
    at.toggle(key="dl_raw").set_value(True).run()
    name = f"topups_{seoul_today()}_raw"
    assert {f"{name}.csv", f"{name}.xlsx", f"{name}.parquet"} <= set(captured_downloads)
    csv = pd.read_csv(io.BytesIO(captured_downloads[f"{name}.csv"]()), encoding="utf-8-sig")
    assert list(csv.columns) == TOPUP_COLUMNS
    assert set(csv["channel"]) == {"auto_charge", "card"}
    assert list(csv["amount_krw"]) == amounts
    book = openpyxl.load_workbook(io.BytesIO(captured_downloads[f"{name}.xlsx"]()))
    assert [c.value for c in book.worksheets[0][1]] == TOPUP_COLUMNS
    assert {r[2] for r in book.worksheets[0].iter_rows(min_row=2, values_only=True)} == {"auto_charge", "card"}


def test_excel_row_limit_is_explained(app_env):
    from dashboard import downloads

    import pyarrow as pa

    big = pa.table({"n": pa.array(np.arange(downloads.EXCEL_MAX_ROWS + 1))})
    with pytest.raises(ValueError, match="1,048,576"):
        downloads.xlsx_bytes(big)


# ─────────────────────────────────────────────── languages, empty, new table ──


def test_korean_default_and_english(app_env):
    ko = explore({"table": "topups"})
    assert any(m.value.startswith("조건에 맞는 행") for m in ko.markdown)
    assert ko.multiselect(key="x.topups.in.channel").label == "충전 경로"
    assert any(o.startswith("topups — 충전 (") for o in ko.selectbox(key="x_table").options)
    assert any(o.startswith("계좌이체 (") for o in ko.multiselect(key="x.topups.in.channel").options)
    en = explore({"table": "topups"}, lang="en")
    assert any(m.value.startswith("Matching rows") for m in en.markdown)
    assert en.multiselect(key="x.topups.in.channel").label == "Channel"  # capitalised like a label, not "channel"
    assert any(o.startswith("Bank transfer (") for o in en.multiselect(key="x.topups.in.channel").options)
    assert any(o.startswith("topups — top-ups (") for o in en.selectbox(key="x_table").options)
    assert "Download Excel" in [b.proto.label for b in en.get("download_button")]
    # The sidebar (entry script): page links translated, freshness line, the language switch.
    # (AppTest resets Streamlit to its legacy multipage path before every run, like a fresh
    # server; dashboard/warehouse.py leaves it and reruns through the entry script.)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["table"] = "topups"
    at.switch_page("pages/explore.py")
    at.run()
    assert [p.proto.label for p in at.sidebar.get("page_link")] == ["개요", "데이터 탐색", "찾아보기", "보고서", "파이프라인", "데이터 사전", "메일 구독", "관리"]  # open mode: everyone is an admin
    assert any("데이터 기준" in m.value for m in at.sidebar.markdown)
    at.sidebar.radio(key="lang").set_value("en").run()
    assert [p.proto.label for p in at.sidebar.get("page_link")] == ["Overview", "Explore", "Look up", "Reports", "Pipeline", "Dictionary", "Subscriptions", "Admin"]
    assert any("Data as of" in m.value for m in at.sidebar.markdown)
    assert any(m.value.startswith("Matching rows") for m in at.markdown)


@pytest.mark.parametrize("lang,text", [("ko", "아직 데이터가 없습니다"), ("en", "No data yet")])
def test_empty_warehouse_message(empty_app_env, lang, text):
    for page in ("pages/explore.py", "pages/dictionary.py"):
        at = run_page(page, lang=lang)
        assert any(text in i.value and "make run" in i.value for i in at.info), page
    # a file that exists but holds no tables yet (the worker created _meta only)
    con = duckdb.connect(str(empty_app_env.warehouse))
    con.execute((ROOT / "ingest" / "sql" / "meta.sql").read_text())
    con.close()
    at = run_page("pages/explore.py", lang=lang)
    assert any(text in i.value for i in at.info)


def test_a_table_never_seen_before_just_works(app_env):
    con = duckdb.connect(str(app_env.warehouse))
    con.execute("CREATE TABLE main.vouchers (code VARCHAR, value_krw BIGINT, issued_on DATE, _source_ts TIMESTAMPTZ, "
                "_ingested_at TIMESTAMPTZ, _deleted BOOLEAN, _kafka_partition INTEGER, _kafka_offset BIGINT)")
    con.execute("INSERT INTO main.vouchers SELECT 'V' || i, i * 1000, DATE '2026-10-01' + (i % 40)::INTEGER, now(), now(), "
                "i % 10 = 0, 0, i FROM range(1, 101) t(i)")
    con.execute("CREATE VIEW live.vouchers AS SELECT * EXCLUDE (_deleted, _kafka_partition, _kafka_offset) "
                "FROM main.vouchers WHERE NOT _deleted")
    con.close()
    app_env.warehouse.with_name("warehouse.duckdb.version").write_text("2")
    at = explore({"table": "vouchers", "period.issued_on": "2026-10-01..2026-10-10", "chart": "bar", "x": "issued_on"})
    # i in 1..100, not i % 10 == 0, and issued_on = 2026-10-01 + (i % 40) within the first 10 days
    expected = sum(1 for i in range(1, 101) if i % 10 and (i % 40) <= 9)
    assert matching_rows(at) == expected
    assert sum(_decode(chart_traces(at)[0]["y"])) == expected
    d = run_page("pages/dictionary.py")
    assert any(e.label.startswith("vouchers") for e in d.expander)


def test_new_batch_refreshes_cached_results(app_env):
    at = explore({"table": "topups"})
    before = matching_rows(at)
    con = duckdb.connect(str(app_env.warehouse))
    con.execute("INSERT INTO main.topups SELECT 100000 + i, 1, 'mobile', 1000, now(), now(), now(), now(), false, 0, i "
                "FROM range(7) t(i)")
    con.close()
    at.run()
    assert matching_rows(at) == before  # same data version: the cached answer stays
    app_env.warehouse.with_name("warehouse.duckdb.version").write_text("2")
    at.run()
    assert matching_rows(at) == before + 7  # a new batch: people see it
