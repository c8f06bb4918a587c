"""The report header parser and the parameter plumbing (pure: no warehouse, no Streamlit)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.report_runner import (
    bind_params,
    default_values,
    parse_value,
    query_error,
    run_report,
    values_from_url,
    values_to_url,
)
from dashboard.reports import (
    BrokenReport,
    ReportError,
    load_reports,
    param_tokens,
    parse_report,
    positional_sql,
    resolve_date,
)

TODAY = dt.date(2026, 11, 24)

GOOD = """\
-- title: 일별 충전 금액 / Daily top-ups
-- description: Top-up totals per day and channel.
-- description: Second line.
-- param: start date default=-30d label="시작일 / From"
-- param: end date default=today
-- param: period daterange default=month_start..today
-- param: channel choice label="경로 / Channel" from=SELECT DISTINCT channel FROM topups WHERE channel <> 'x'
-- param: grain choice options=day,week,month default=week required=true
-- param: min_amount number default=1000 min=0 max=100000 step=500
-- param: ratio number default=0.5
-- param: name text
-- chart: line x=day y=amount_krw color=channel
SELECT day, '$not_a_param' AS s, $start AS a, $end, $period_start, $period_end, -- $also_not
       $channel, $grain, $min_amount, $ratio, $name, $start AS again
/* $nor_this */
FROM topups
"""


def test_a_full_header_parses():
    r = parse_report(GOOD, "sql/daily_topups.sql")
    assert (r.slug, r.title_ko, r.title_en) == ("daily_topups", "일별 충전 금액", "Daily top-ups")
    assert r.description == "Top-up totals per day and channel. Second line."
    assert [(p.name, p.kind) for p in r.params] == [
        ("start", "date"), ("end", "date"), ("period", "daterange"), ("channel", "choice"),
        ("grain", "choice"), ("min_amount", "number"), ("ratio", "number"), ("name", "text")]
    start, channel, grain, amount = r.param("start"), r.param("channel"), r.param("grain"), r.param("min_amount")
    assert (start.default, start.label_ko, start.label_en, start.line) == ("-30d", "시작일", "From", 4)
    assert channel.options_sql == "SELECT DISTINCT channel FROM topups WHERE channel <> 'x'"
    assert (channel.label_en, channel.required) == ("Channel", False)
    assert (grain.options, grain.default, grain.required) == (("day", "week", "month"), "week", True)
    assert (amount.minimum, amount.maximum, amount.step, amount.is_float) == (0, 100000, 500, False)
    assert r.param("ratio").is_float
    assert (r.chart.kind, r.chart.x, r.chart.y, r.chart.color, r.chart.line) == ("line", "day", "amount_krw", "channel", 12)
    assert r.sql_line == 13 and r.sql.startswith("SELECT day")
    assert set(r.sql_names) == {"start", "end", "period_start", "period_end", "channel", "grain", "min_amount", "ratio", "name"}
    assert r.matches("충전") and r.matches("daily TOP") and r.matches("") and not r.matches("refund")


@pytest.mark.parametrize(
    "header, line, words",
    [
        ("-- description: no title\nSELECT 1", 1, "no '-- title:"),
        ("-- title: 한국어만\nSELECT 1", 1, "Korean and English"),
        ("-- title: 가 / A\n-- titel: 나 / B\nSELECT 1", 2, "did you mean 'title:'"),
        ("-- title: 가 / A\n-- param: start dat default=today\nSELECT $start", 2, "did you mean 'date'"),
        ("-- title: 가 / A\n-- param: start date default=yesterdayy\nSELECT $start", 2, "not understood"),
        ("-- title: 가 / A\n-- param: start date\nSELECT $end", 3, "$end is used in the query but not declared"),
        ("-- title: 가 / A\n-- param: start date\n-- param: end date\nSELECT $start", 3, "$end is never used"),
        ("-- title: 가 / A\n-- param: start date\n-- param: start date\nSELECT $start", 3, "declared twice"),
        ("-- title: 가 / A\n-- param: c choice\nSELECT $c", 2, "exactly one of options="),
        ("-- title: 가 / A\n-- param: c choice options=a,b default=z\nSELECT $c", 2, "not one of its options"),
        ("-- title: 가 / A\n-- param: n number default=abc\nSELECT $n", 2, "is not a number"),
        ("-- title: 가 / A\n-- param: n number defualt=3\nSELECT $n", 2, "did you mean default="),
        ("-- title: 가 / A\n-- param: report text\nSELECT $report", 2, "reserved"),
        ("-- title: 가 / A\n-- chart: pie3d x=a y=b\nSELECT 1", 2, "chart kind"),
        ("-- title: 가 / A\n-- chart: line x=day\nSELECT 1", 2, "needs y="),
        ("-- title: 가 / A\n-- param: p daterange default=someday\nSELECT $p_start, $p_end", 2, "<from>..<to>"),
        ("-- title: 가 / A\n-- param: p daterange default=last_0_days\nSELECT $p_start, $p_end", 2, "last_N_days"),
        ("-- title: 가 / A\n-- totals:\nSELECT 1", 2, "totals: topups"),
        ("-- title: 가 / A\n-- totals: a, b-c\nSELECT 1", 2, "'b-c' must be a result column"),
        ("-- title: 가 / A\n-- totals: a\n-- totals: b\nSELECT 1", 3, "a second 'totals:'"),
        ("-- title: 가 / A\n-- param: sort text\nSELECT $sort", 2, "reserved"),
        ("-- title: 가 / A\n\nSELECT $1", 3, "positional parameter"),
        ("-- title: 가 / A\n-- param: x date\n", 3, "not followed by a query"),
    ],
)
def test_header_problems_name_the_file_and_line(header, line, words):
    with pytest.raises(ReportError) as err:
        parse_report(header, "/somewhere/sql/broken.sql")
    assert err.value.file == "broken.sql"
    assert err.value.line == line
    assert words in err.value.problem
    assert str(err.value).startswith(f"broken.sql:{line}: ")


def test_free_comments_in_the_header_are_allowed():
    r = parse_report("-- title: 가 / A\n-- Why this report exists: people ask monthly.\n-- plain note\nSELECT 1", "x.sql")
    assert r.sql == "SELECT 1" and r.sql_line == 4


def test_load_reports_keeps_broken_files_beside_good_ones(tmp_path):
    (tmp_path / "a_good.sql").write_text("-- title: 가 / A\nSELECT 1 AS one\n", encoding="utf-8")
    (tmp_path / "b_broken.sql").write_text("-- title: 나 / B\n-- param: x datee\nSELECT $x\n", encoding="utf-8")
    (tmp_path / "c_binary.sql").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "notes.txt").write_text("not a report", encoding="utf-8")
    found = load_reports(tmp_path)
    assert [r.slug for r in found] == ["a_good", "b_broken", "c_binary"]
    assert not isinstance(found[0], BrokenReport)
    assert isinstance(found[1], BrokenReport) and found[1].error.line == 2 and "datee" in found[1].error.problem
    assert isinstance(found[2], BrokenReport) and "cannot be read" in found[2].error.problem


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("today", TODAY), ("yesterday", dt.date(2026, 11, 23)), ("-30d", dt.date(2026, 10, 25)),
        ("-2w", dt.date(2026, 11, 10)), ("-12m", dt.date(2025, 11, 24)), ("-1y", dt.date(2025, 11, 24)),
        ("month_start", dt.date(2026, 11, 1)), ("prev_month_start", dt.date(2026, 10, 1)),
        ("year_start", dt.date(2026, 1, 1)), ("2026-02-03", dt.date(2026, 2, 3)), ("+1d", dt.date(2026, 11, 25)),
    ],
)
def test_date_defaults(expr, expected):
    assert resolve_date(expr, TODAY) == expected


def test_month_arithmetic_clamps_to_the_month_end():
    assert resolve_date("-1m", dt.date(2026, 3, 31)) == dt.date(2026, 2, 28)
    assert resolve_date("prev_month_start", dt.date(2026, 1, 15)) == dt.date(2025, 12, 1)


def test_values_round_trip_through_the_url():
    r = parse_report(GOOD, "daily_topups.sql")
    values = default_values(r, TODAY)
    assert values["start"] == dt.date(2026, 10, 25) and tuple(values["period"]) == (dt.date(2026, 11, 1), TODAY)
    assert values["channel"] is None and values["grain"] == "week" and values["min_amount"] == 1000 and values["name"] == ""
    values.update(channel="mobile", grain="month", min_amount=2500, ratio=0.25, name="카페 '1'")
    url = values_to_url(r, values)
    assert url["report"] == "daily_topups" and url["period"] == "2026-11-01..2026-11-24"
    back, problems = values_from_url(r, url, TODAY)
    assert back == values and problems == []


def test_bad_url_values_fall_back_to_defaults_with_a_message():
    r = parse_report(GOOD, "daily_topups.sql")
    back, problems = values_from_url(
        r, {"start": "soon", "grain": "decade", "min_amount": "-5", "channel": "", "period": "2026-11-20..2026-11-02"}, TODAY)
    assert back["start"] == dt.date(2026, 10, 25) and back["grain"] == "week" and back["min_amount"] == 1000
    assert back["channel"] is None  # empty = all
    # A reversed range is kept as it was written — the page says the start is after the end (never swaps it silently).
    assert tuple(back["period"]) == (dt.date(2026, 11, 20), dt.date(2026, 11, 2)) and back["period"].reversed
    assert len(problems) == 3 and any("min_amount" in p and "minimum" in p for p in problems)
    with pytest.raises(ValueError):
        parse_value(r.param("grain"), "", TODAY)  # required choice has no "all"


def test_daterange_presets_stay_relative_in_the_url():
    text = ("-- title: 가 / A\n-- param: p daterange default=last_month\n-- totals: n, amount_krw\n"
            "SELECT $p_start AS s, $p_end AS e\n")
    r = parse_report(text, "p.sql")
    assert r.totals == ("n", "amount_krw")
    values = default_values(r, TODAY)  # 2026-11-24: last month is October
    assert tuple(values["p"]) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert values_to_url(r, values)["p"] == "last_month"  # a bookmark stays "last month"
    back, problems = values_from_url(r, {"p": "this_week"}, TODAY)  # a Tuesday: the week began Monday the 23rd
    assert tuple(back["p"]) == (dt.date(2026, 11, 23), TODAY) and problems == []
    back, problems = values_from_url(r, {"p": "last_45_days"}, TODAY)
    assert tuple(back["p"]) == (dt.date(2026, 10, 11), TODAY) and values_to_url(r, back)["p"] == "last_45_days"
    back, problems = values_from_url(r, {"p": "fortnight"}, TODAY)
    assert tuple(back["p"]) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31)) and "fortnight" in problems[0]
    assert bind_params(r, values) == {"p_start": dt.date(2026, 10, 1), "p_end": dt.date(2026, 10, 31)}


def test_binding_is_by_parameter_never_by_text():
    r = parse_report(GOOD, "daily_topups.sql")
    values = default_values(r, TODAY)
    values.update(name="x' OR '1'='1")
    bound = bind_params(r, values)
    assert bound["name"] == "x' OR '1'='1" and bound["period_start"] == dt.date(2026, 11, 1)
    sql = positional_sql(r)
    assert "x' OR" not in sql and "$name" not in sql and "$1" in sql
    assert "'$not_a_param'" in sql and "-- $also_not" in sql and "/* $nor_this */" in sql
    values["name"] = "   "
    assert bind_params(r, values)["name"] is None  # blank text = no filter


def test_positional_sql_runs_in_duckdb():
    text = (
        "-- title: 가 / A\n-- param: p daterange\n-- param: c choice options=a,b\n-- param: t text\n"
        "SELECT $p_start AS s, $p_end AS e, ($c IS NULL) AS all_c, coalesce($t, 'none') AS t, $p_start = $p_start AS same\n"
    )
    r = parse_report(text, "p.sql")
    con = duckdb.connect()
    values = {"p": (dt.date(2026, 1, 1), dt.date(2026, 1, 31)), "c": None, "t": "it's"}
    df = run_report(r, values, lambda sql, params: con.execute(sql, params).df())
    row = df.iloc[0]
    assert (row.s.date(), row.e.date(), bool(row.all_c), row.t, bool(row.same)) == (
        dt.date(2026, 1, 1), dt.date(2026, 1, 31), True, "it's", True)


def test_query_errors_point_at_the_file_line():
    text = "-- title: 가 / A\n-- param: d date\nSELECT $d AS d,\n       no_such_column\nFROM range(3)\n"
    r = parse_report(text, "/x/sql/bad_column.sql")
    con = duckdb.connect()
    with pytest.raises(ReportError) as err:
        run_report(r, {"d": TODAY}, lambda sql, params: con.execute(sql, params).df())
    assert err.value.file == "bad_column.sql" and err.value.line == 4
    assert "no_such_column" in err.value.problem
    assert query_error(r, RuntimeError("no line info")).line == r.sql_line


_piece = st.one_of(
    st.tuples(st.just("code"), st.sampled_from(["$a", "$b", " x ", "+", "\n", "$c1"])),
    st.tuples(st.just("string"), st.sampled_from(["'$s'", "'it''s $s'", "'--'", "'/*'"])),
    st.tuples(st.just("comment"), st.sampled_from(["-- $s\n", "/* $s\n$s */", "--'\n"])),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_piece, max_size=25))
def test_param_tokens_find_exactly_the_placeholders_in_code(pieces):
    text = "".join(t for _, t in pieces)
    expected = [t[1:] for kind, t in pieces if kind == "code" and t.startswith("$")]
    assert [name for name, _, _, _ in param_tokens(text)] == expected
    for name, start, end, line in param_tokens(text):
        assert text[start:end] == "$" + name and text[:start].count("\n") == line
