"""A curated report's chart is compiled by the query compiler, not grouped in pandas.

The chart of every bundled report is one bound statement (the report's SQL
as a CTE, grouped by `compile_summary`), run through the same reader; its
numbers are checked here against pandas over the report's own result: per
x (and colour) the sum, or the mean for rates and averages, in the order the
report lists them. Real DuckDB files built from generated demo rows.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.access.enforce import acting_as
from dashboard.i18n import t
from dashboard.report_runner import BUNDLED_REPORTS_DIR, additive, chart_frame, default_values, run_report
from dashboard.reports import Report, load_reports
from tests.questions_fixtures import business_rows
from tests.reports_demo import build_warehouse, make_dataset
from tests.test_access_rules import ACCESS, BUSAN, _warehouse
from tests.test_reports_sql import make_query, report

CHARTED = [r for r in load_reports(BUNDLED_REPORTS_DIR) if isinstance(r, Report) and r.chart is not None]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from dashboard.report_runner import seoul_today

    ds = make_dataset(seoul_today())
    path = build_warehouse(tmp_path_factory.mktemp("charts") / "warehouse.duckdb", ds)
    return ds, make_query(path, "Asia/Seoul")


class Recorder:
    """The reader, remembering every statement it was given."""

    def __init__(self, query):
        self.query, self.calls = query, []

    def __call__(self, sql, params):
        self.calls.append((sql, list(params)))
        return self.query(sql, params)


def expected_chart(r: Report, result: pd.DataFrame) -> pd.DataFrame:
    """The chart's points with pandas: x (and colour) in the report's order, summed or averaged."""
    chart = r.chart
    keys = [chart.x, chart.y] if chart.kind == "heatmap" else [chart.x] + ([chart.color] if chart.color else [])
    value = chart.z if chart.kind == "heatmap" else chart.y
    grouped = result.groupby(keys, sort=False, dropna=False)[value]
    out = (grouped.sum() if additive(value) else grouped.mean()).reset_index()
    return out.rename(columns=dict(zip(keys + [value], ["x", "color", "value"][:len(keys)] + ["value"])))


def points(frame: pd.DataFrame) -> list[tuple]:
    keys = [c for c in ("x", "color") if c in frame.columns]
    return [tuple(str(pd.Timestamp(v).date()) if hasattr(v, "isoformat") else v for v in row[:-1])
            + (round(float(row[-1]), 6),)
            for row in frame[keys + ["value"]].itertuples(index=False)]


@pytest.mark.parametrize("r", CHARTED, ids=lambda r: r.slug)
def test_every_report_chart_is_one_compiled_statement_with_the_numbers_pandas_gets(demo, r):
    ds, query = demo
    values = default_values(r, ds.today)
    result = run_report(r, values, query)
    assert not result.empty, f"{r.slug}: the demo data should give this report rows"
    reader = Recorder(query)
    spec, frame = chart_frame(r, values, result, reader)
    assert len(reader.calls) == 1, "one statement per chart"
    sql, params = reader.calls[0]
    assert "__report" in sql and "GROUP BY" in sql, "the report's result grouped by the compiler in DuckDB"
    for value in params:  # every value bound, none pasted into the statement
        if isinstance(value, str) and value:
            assert f"'{value}'" not in sql
    expected = expected_chart(r, result)
    if len(expected) > 20 and spec.kind in ("bar", "pie") and not spec.color and expected["x"].dtype == object:
        pytest.skip("folded into top 20 + others: checked by its own test")
    assert points(frame) == points(expected)


def test_a_category_chart_keeps_the_reports_first_20_and_folds_the_rest_into_others(demo):
    ds, query = demo
    r = report("top_merchants")
    values = default_values(r, ds.today)
    values["top_n"] = 1000
    result = run_report(r, values, query)
    assert len(result) > 22, "the demo has enough merchants to fold"
    spec, frame = chart_frame(r, values, result, query)
    assert len(frame) == 21
    assert frame["x"].tolist()[:20] == result["merchant_name"].tolist()[:20], "the report's ranking, kept"
    assert frame["x"].iloc[-1] == t("others_row")
    assert frame["value"].iloc[-1] == pytest.approx(result["amount_krw"].iloc[20:].sum())
    assert frame["value"].sum() == pytest.approx(result["amount_krw"].sum()), "nothing lost in the fold"


def test_a_rate_is_averaged_per_bar_never_summed(demo):
    ds, query = demo
    r = report("topup_channel_mix_monthly")  # share_pct per month and channel
    values = default_values(r, ds.today)
    result = run_report(r, values, query)
    doubled = pd.concat([result, result], ignore_index=True)  # two rows per (month, channel)
    spec, frame = chart_frame(r, values, doubled, query)
    assert not additive("share_pct")
    assert points(frame) == points(expected_chart(r, result)), "the compiled chart reads the report, not the frame"
    assert frame["value"].max() <= 100.0 + 1e-9


def test_the_chart_runs_behind_the_same_access_rules_as_the_report(tmp_path):
    warehouse = _warehouse(tmp_path, business_rows(), ACCESS)
    r = report("payments_by_category_region")
    with acting_as(BUSAN):  # busan sees only 부산's merchants
        values = default_values(r, pd.Timestamp.now(tz="Asia/Seoul").date())
        result = run_report(r, values, warehouse.query)
        assert not result.empty and set(result["region"]) == {"부산"}
        spec, frame = chart_frame(r, values, result, warehouse.query)
    assert set(frame["x"]) == {"부산"}
    assert points(frame) == points(expected_chart(r, result))


def test_a_chart_that_cannot_be_drawn_names_the_files_chart_line(demo, tmp_path):
    from dashboard.reports import ReportError, parse_report

    ds, query = demo
    path = tmp_path / "words.sql"
    path.write_text("-- title: 경로 / Channels\n-- chart: bar x=channel y=channel\n"
                    "SELECT channel, count(*) AS topups FROM topups GROUP BY channel\n", encoding="utf-8")
    r = parse_report(path.read_text(encoding="utf-8"), path)
    values = default_values(r, ds.today)
    result = run_report(r, values, query)  # the report itself runs
    with pytest.raises(ReportError) as err:
        chart_frame(r, values, result, query)  # a sum of words does not
    assert str(err.value).startswith("words.sql:2: the chart could not be drawn")
