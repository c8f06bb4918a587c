"""Overview, Reports and Pipeline pages through Streamlit's AppTest, on a real DuckDB warehouse in tmp_path.

The warehouse and alert history come from tests/reports_demo.py; what each
page should show is computed from those generated rows in plain Python.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import kpis
from tests.fixtures_app import run_page
from tests.reports_demo import (
    DEAD_LETTER_REASONS,
    LONG_RAW,
    META_BATCHES,
    SEOUL,
    build_warehouse,
    make_dataset,
    write_alert_history,
    write_app_config,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    today = dt.datetime.now(SEOUL).date()
    ds = make_dataset(today)
    base = tmp_path_factory.mktemp("pages")
    warehouse = build_warehouse(base / "warehouse.duckdb", ds)
    alerts = write_alert_history(base / "alerts.jsonl", ds.now)
    return ds, warehouse, alerts, base


@pytest.fixture
def env(built, tmp_path, monkeypatch):
    ds, warehouse, alerts, base = built
    config = write_app_config(tmp_path, warehouse, alerts_history=base / "alerts.jsonl")
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    return ds


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("error", "warning", "info", "success", "caption", "markdown", "subheader", "title"):
        parts += [e.value for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


# AppTest does not expose a dataframe's key: find each table by a column only it has.
_MARKERS = {"p_tables": ("삭제 표시", "Tombstones"), "p_parts": ("최고 수위", "High watermark"),
            "p_dead": ("크기(바이트)", "Bytes"), "p_alerts": ("제목", "Subject")}


def _by_key(at: AppTest, key: str) -> pd.DataFrame:
    frames = [d.value for d in at.dataframe]
    if key.startswith("r_rows_"):  # the Reports page shows one table: the result
        assert len(frames) == 1, [list(f.columns) for f in frames]
        return frames[0]
    for f in frames:
        if any(m in f.columns for m in _MARKERS[key]):
            return f
    raise AssertionError(f"no dataframe {key}: {[list(f.columns) for f in frames]}")


def day(ts: dt.datetime) -> dt.date:
    return ts.astimezone(SEOUL).date()


# ───────────────────────────────────────────────────────────── overview ──


def kpi_windows(now: dt.datetime):
    """(start, end, previous start, previous end) for today and this month, written here from the rule the page
    states — today so far vs yesterday to the same time; the month so far vs last month to the same offset (cut at
    the end of last month) — rather than read from the code under test."""
    now = now.astimezone(SEOUL)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight.replace(day=1)
    last_first = (first - dt.timedelta(days=1)).replace(day=1)
    today = (midnight, now, midnight - dt.timedelta(days=1), now - dt.timedelta(days=1))
    month = (first, now, last_first, min(last_first + (now - first), first))
    return today, month


def test_overview_kpis_match_the_rows(env):
    ds = env
    before = dt.datetime.now(SEOUL)
    at = run_page("pages/overview.py")
    today_p, month_p = kpi_windows(before)

    def measure(period, which):
        s, e = period[:2] if which == "current" else period[2:]
        inside = lambda r: s <= r["created_at"] < e  # noqa: E731
        paid = [p for p in ds.live("payments") if p["status"] == "approved" and inside(p)]
        return {
            "topups_krw": sum(t["amount_krw"] for t in ds.live("topups") if inside(t)),
            "payments_krw": sum(p["amount_krw"] for p in paid),
            "refunds_krw": sum(r["amount_krw"] for r in ds.live("refunds") if inside(r)),
            "active_cards": len({p["card_id"] for p in paid}),
        }

    metrics = at.metric
    assert len(metrics) == 8
    for i, period in enumerate((today_p, month_p)):
        cur, prev = measure(period, "current"), measure(period, "previous")
        shown = metrics[4 * i: 4 * i + 4]
        expected_exact = [f"{cur['topups_krw']:,}원", f"{cur['payments_krw']:,}원", f"{cur['refunds_krw']:,}원", f"{cur['active_cards']:,}"]
        assert [m.proto.help for m in shown] == expected_exact  # the exact amount, on hover
        for m, key in zip(shown[:3], ("topups_krw", "payments_krw", "refunds_krw")):
            v = cur[key]  # the tile: 만원 above 10,000 (rounded), 억원 above 100,000,000
            want = f"{v / 1e8:,.1f}억원" if v >= 1e8 else f"{round(v / 1e4):,}만원" if v >= 1e4 else f"{v:,}원"
            assert m.value == want
        assert shown[3].value == f"{cur['active_cards']:,}"
        for m, key in zip(shown, ("topups_krw", "payments_krw", "refunds_krw", "active_cards")):
            if prev[key]:
                assert m.delta.startswith(f"{100 * (cur[key] - prev[key]) / prev[key]:+.1f}%")
            else:
                assert not m.delta
    assert cur["topups_krw"] > 0 and cur["active_cards"] > 0  # the month has data; the test is not vacuous
    assert [m.label for m in metrics[:4]] == ["충전 금액", "결제 금액", "환불 금액", "결제한 카드"]
    trend = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert {tr["name"] for tr in trend} == {"충전", "결제", "환불"}
    links = [e.proto for e in at.get("page_link")]
    assert any("report=daily_topups" in (l.query_string or "") for l in links), [l.query_string for l in links]


def test_overview_in_english(env):
    at = run_page("pages/overview.py", lang="en")
    assert [m.label for m in at.metric[:4]] == ["Top-ups", "Payments", "Refunds", "Active cards"]
    assert at.metric[0].value.startswith("₩") and at.metric[0].proto.help.startswith("₩")


def test_overview_and_reports_without_a_warehouse_are_friendly(tmp_path, monkeypatch):
    config = write_app_config(tmp_path, tmp_path / "nothing_yet.duckdb")
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    at = run_page("pages/overview.py")
    assert "아직 데이터가 없습니다" in texts(at)
    assert not at.metric
    for slug in ("daily_topups", "card_balance_mismatches"):  # with and without a from= choice
        at = run_page("pages/reports.py", {"report": slug})
        assert "아직 데이터가 없습니다" in texts(at) and not at.dataframe


# ────────────────────────────────────────────────────────────── reports ──


def test_a_report_link_reproduces_the_report(env):
    ds = env
    start, end = ds.today - dt.timedelta(days=20), ds.today - dt.timedelta(days=5)
    params = {"report": "daily_topups", "period": f"{start}..{end}", "channel": "mobile"}
    at = run_page("pages/reports.py", params)
    expected = Counter()
    for t in ds.live("topups"):
        if t["channel"] == "mobile" and start <= day(t["created_at"]) <= end:
            expected[day(t["created_at"])] += t["amount_krw"]
    df = _by_key(at, "r_rows_daily_topups")
    assert {pd.Timestamp(d).date(): v for d, v in zip(df["일자"], df["금액(원)"])} == dict(expected)
    assert set(df["충전 경로"]) == {"모바일"}  # codes shown as words, under the screen's headers
    assert {k: at.query_params[k] for k in params} == params
    assert at.selectbox(key="r.daily_topups.channel").value == "mobile"
    assert at.selectbox(key="r.daily_topups.period.preset").value == "custom"
    assert at.date_input(key="r.daily_topups.period.start").value == start
    assert at.date_input(key="r.daily_topups.period.end").value == end
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert sum(sum(_ys(tr)) for tr in chart) == sum(expected.values())
    amount = next(m for m in at.metric if m.label.startswith("금액"))  # exact, as it fits beside two other tiles
    assert amount.value == f"{sum(expected.values()):,}원" and not amount.proto.help


def _ys(trace):
    import base64

    import numpy as np

    y = trace["y"]
    if isinstance(y, dict) and "bdata" in y:
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"])).tolist()
    return list(y)


def test_changing_a_parameter_reruns_and_updates_the_url(env):
    ds = env
    at = run_page("pages/reports.py", {"report": "top_merchants"})
    assert len(_by_key(at, "r_rows_top_merchants")) == 20
    at.number_input(key="r.top_merchants.top_n").set_value(3).run()
    at.selectbox(key="r.top_merchants.category").set_value("cafe").run()
    assert not at.exception
    df = _by_key(at, "r_rows_top_merchants")
    start, end = ds.today - dt.timedelta(days=29), ds.today  # the default period: the last 30 days
    merchants = {m["merchant_id"]: m for m in ds.live("merchants") if m["category"] == "cafe"}
    amount = Counter()
    for p in ds.live("payments"):
        if p["status"] == "approved" and p["merchant_id"] in merchants and start <= day(p["created_at"]) <= end:
            amount[p["merchant_id"]] += p["amount_krw"]
    assert list(df["가맹점 번호"]) == [m for m, _ in amount.most_common(3)]
    assert at.query_params["top_n"] == "3" and at.query_params["category"] == "cafe"
    assert at.query_params["period"] == "last_30_days"  # a preset stays relative in a bookmark


def test_search_finds_reports_by_korean_and_english_title(env):
    at = run_page("pages/reports.py")
    everything = at.selectbox(key="r_slug").options
    assert len(everything) >= 12
    at.text_input(key="r_search").set_value("휴면").run()
    assert [o for o in at.selectbox(key="r_slug").options] == [o for o in everything if "휴면" in o]
    assert len(at.selectbox(key="r_slug").options) == 1
    at.text_input(key="r_search").set_value("merchant").run()
    assert 2 <= len(at.selectbox(key="r_slug").options) < len(everything)
    assert all("가맹점" in o or "merchant" in o.lower() for o in at.selectbox(key="r_slug").options)


def test_bad_url_values_become_messages(env):
    at = run_page("pages/reports.py", {"report": "top_merchants", "top_n": "many", "period": "yesterdayish"})
    assert "top_n" in texts(at) and "period" in texts(at)
    assert len(_by_key(at, "r_rows_top_merchants")) == 20
    at = run_page("pages/reports.py", {"report": "no_such_report"})
    assert "no_such_report" in texts(at)


def test_a_report_whose_table_has_not_landed_yet_says_which_and_waits(built, tmp_path, monkeypatch):
    """The pipeline's first minutes: refunds not landed yet. Not DuckDB's "Table … does not exist!"."""
    import duckdb

    _, warehouse, _, _ = built
    early = tmp_path / "early.duckdb"
    shutil.copy(warehouse, early)
    with duckdb.connect(str(early)) as con:
        con.execute("DROP VIEW live.refunds")
        con.execute("DROP TABLE main.refunds")
    monkeypatch.setenv("PIPELINE_CONFIG", str(write_app_config(tmp_path, early)))
    at = run_page("pages/reports.py", {"report": "top_merchants"})
    assert not at.exception and not at.error
    assert any("refunds" in i.value and "아직 창고에 없습니다" in i.value for i in at.info), [i.value for i in at.info]
    assert not at.dataframe
    at = run_page("pages/reports.py", {"report": "daily_topups"})  # a report with all its tables runs as before
    assert not at.error and at.dataframe


def test_broken_reports_show_file_line_and_problem_and_the_rest_works(built, tmp_path, monkeypatch):
    ds, warehouse, _, base = built
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(ROOT / "sql" / "daily_topups.sql", reports / "daily_topups.sql")
    (reports / "bad_header.sql").write_text(
        "-- title: 고장 / Broken header\n-- param: start dat default=today\nSELECT $start\n", encoding="utf-8")
    (reports / "bad_query.sql").write_text(
        "-- title: 실패 / Failing query\n-- description: refers to a column that is not there\n"
        "SELECT channel,\n       no_such_column\nFROM topups\n", encoding="utf-8")
    config = write_app_config(tmp_path, warehouse, reports_dir=reports)
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))

    at = run_page("pages/reports.py")
    errors = [e.value for e in at.error]
    assert any(e.startswith("bad_header.sql:2:") and "date" in e for e in errors), errors
    assert len(at.selectbox(key="r_slug").options) == 2
    at = run_page("pages/reports.py", {"report": "bad_query"})
    errors = [e.value for e in at.error]
    assert any(e.startswith("bad_query.sql:4:") and "no_such_column" in e for e in errors), errors
    at = run_page("pages/reports.py", {"report": "daily_topups"})
    assert len(_by_key(at, "r_rows_daily_topups")) > 0


def test_report_downloads_hold_the_table(env, captured_downloads):
    ds = env
    at = run_page("pages/reports.py", {"report": "card_balance_mismatches"})
    names = set(captured_downloads)
    csv_name = next(n for n in names if n.endswith(".csv"))
    assert {n.rsplit(".", 1)[1] for n in names if n.startswith("card_balance_mismatches")} == {"csv", "xlsx", "parquet"}
    csv = pd.read_csv(io.BytesIO(captured_downloads[csv_name]()), encoding="utf-8-sig")
    assert dict(zip(csv["카드 번호"], csv["차이(원)"])) == ds.mismatched_cards
    parquet = pd.read_parquet(io.BytesIO(captured_downloads[csv_name.replace(".csv", ".parquet")]()))
    assert sorted(parquet["카드 번호"]) == sorted(ds.mismatched_cards)


def test_heatmap_keeps_weekday_order(env):
    at = run_page("pages/reports.py", {"report": "payments_heatmap_weekday_hour"}, lang="en")
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert heat["type"] == "heatmap" and heat["y"] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    at = run_page("pages/reports.py", {"report": "payments_heatmap_weekday_hour"})
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["y"] == ["월", "화", "수", "목", "금", "토", "일"]


# ───────────────────────────────────────────────────────────── pipeline ──


def _fresh_heartbeat(warehouse: Path) -> None:
    """The module's warehouse was built minutes ago: beat again, as the running worker would (and bump the version)."""
    import duckdb

    con = duckdb.connect(str(warehouse))
    con.execute("UPDATE _meta.heartbeat SET beat_at = now() - INTERVAL 4 SECOND")
    con.close()
    version = warehouse.with_name(warehouse.name + ".version")
    version.write_text(str(int(version.read_text()) + 1), encoding="utf-8")


def test_pipeline_page_shows_health(env, built, captured_downloads):
    ds = env
    _fresh_heartbeat(built[1])
    at = run_page("pages/pipeline.py")
    assert any("워커" in s.value for s in at.success), texts(at)
    tables = _by_key(at, "p_tables")
    rows = dict(zip(tables.iloc[:, 0], tables.iloc[:, 1]))
    tombs = dict(zip(tables.iloc[:, 0], tables.iloc[:, 2]))
    assert rows == {t: len(ds.live(t)) for t in ds.rows}
    assert tombs == {t: len(ds.tombstones.get(t, [])) for t in ds.rows}
    errors = "\n".join(e.value for e in at.error)
    assert "prepaid.refunds #2" in errors and "beyond the broker's end" in errors
    parts = _by_key(at, "p_parts")
    assert len(parts) == 18 and parts.iloc[0, 0] == "prepaid.refunds"  # the stopped partition first
    assert len(at.get("plotly_chart")) == 2
    assert f"최근 배치 {META_BATCHES}개" in texts(at)
    dead = _by_key(at, "p_dead")
    assert set(dead["사유"]) == set(DEAD_LETTER_REASONS)
    assert set(dead["상태"]) == {"남음"}  # none replayed yet
    previews = list(dead["내용 (앞부분)"])
    assert any(p.endswith("…") and len(p) <= 120 for p in previews)
    assert any("\\xff\\xfe" in p for p in previews)  # undecodable bytes shown, not lost
    csv_name = next(n for n in captured_downloads if n.startswith("dead_letters") and n.endswith(".csv"))
    full = pd.read_csv(io.BytesIO(captured_downloads[csv_name]()), encoding="utf-8-sig")
    assert LONG_RAW.decode() in set(full["내용"])  # the full payload, under the screen's header
    alerts = _by_key(at, "p_alerts")
    assert len(alerts) == 3  # the torn line is skipped
    assert list(alerts.iloc[:, 3]) == [e["subject"] for e in reversed(built[2])]  # newest first


def test_pipeline_page_without_a_warehouse_still_shows_alerts(built, tmp_path, monkeypatch):
    _, _, _, base = built
    config = write_app_config(tmp_path, tmp_path / "gone.duckdb", alerts_history=base / "alerts.jsonl")
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    at = run_page("pages/pipeline.py", lang="en")
    assert "No data yet" in texts(at)
    assert len(_by_key(at, "p_alerts")) == 3


def test_stale_heartbeat_is_shown_as_down(built, tmp_path, monkeypatch):
    import duckdb

    ds, warehouse, _, base = built
    copy = tmp_path / "stale.duckdb"
    shutil.copy(warehouse, copy)
    con = duckdb.connect(str(copy))
    con.execute("UPDATE _meta.heartbeat SET beat_at = now() - INTERVAL 10 MINUTE, state = 'running'")
    con.close()
    config = write_app_config(tmp_path, copy)
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    at = run_page("pages/pipeline.py", lang="en")
    assert any("Worker" in e.value and "10 min ago" in e.value for e in at.error), texts(at)


def test_report_words_follow_the_language(env):
    at = run_page("pages/reports.py", {"report": "new_vs_returning_cards", "grain": "month"})
    df = _by_key(at, "r_rows_new_vs_returning_cards")
    assert set(df["구분"]) == {"신규", "재방문"}
    assert {tr["name"] for tr in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]} == {"신규", "재방문"}
    assert any(c.value.startswith("일·주·월") for c in at.caption)  # the Korean half of the description
    assert at.selectbox(key="r.new_vs_returning_cards.grain").value == "month"
    at = run_page("pages/reports.py", {"report": "new_vs_returning_cards"}, lang="en")
    assert set(_by_key(at, "r_rows_new_vs_returning_cards")["Segment"]) == {"New", "Returning"}
    assert any(c.value.startswith("Cards with an approved payment") for c in at.caption)
