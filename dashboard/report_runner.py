"""Running a curated report: parameter values ↔ URL, binding, execution, error positions.

Values flow one way: URL (`st.query_params`) or header defaults → typed values
→ DuckDB `$name` parameters. Nothing a user typed is ever pasted into SQL; the
only SQL that runs is the report file's own text and its `from=` option queries.

`query` is any callable `(sql, params: list) -> pandas.DataFrame`; the app
passes `Warehouse.query` (dashboard/warehouse.py, the only reader, cached by
data version), tests may pass their own. That reader binds a list, so the
report's `$name` placeholders are respelled `$1, $2, …` (`positional_sql`)
and the values passed in the same order — still bound, never pasted.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

import pandas as pd

from dashboard import dates
from dashboard.dates import Period
from dashboard.reports import Param, Report, ReportError, positional_sql, resolve_date

SEOUL = ZoneInfo("Asia/Seoul")
QueryFn = Callable[[str, list], pd.DataFrame]
BUNDLED_REPORTS_DIR = Path(__file__).resolve().parent.parent / "sql"
_LINE = re.compile(r"LINE (\d+):")


def seoul_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Asia/Seoul, the business's calendar (whatever the server's zone)."""
    return (now or dt.datetime.now(SEOUL)).astimezone(SEOUL).date()


def reports_dir(cfg: Any = None) -> Path:
    """The folder of report files: `[app] reports_dir` when set, else the project's sql/."""
    configured = getattr(getattr(cfg, "app", None), "reports_dir", None)
    return Path(configured) if configured else BUNDLED_REPORTS_DIR


# ─────────────────────────────────────────────────────────────── values ──


def default_value(param: Param, today: dt.date) -> Any:
    if param.kind == "date":
        return resolve_date(param.default or "today", today)
    if param.kind == "daterange":
        return parse_value(param, param.default or "last_30_days", today)
    if param.kind == "number":
        return _number(param, param.default or "0")
    if param.kind == "text":
        return param.default or ""
    if param.kind == "choice":
        return param.default or None
    raise AssertionError(param.kind)


def default_values(report: Report, today: dt.date) -> dict[str, Any]:
    return {p.name: default_value(p, today) for p in report.params}


def values_from_url(report: Report, url: Mapping[str, Any], today: dt.date) -> tuple[dict[str, Any], list[str]]:
    """Typed values from URL query arguments; a bad or missing one falls back to its default.

    Returns (values, problems) — problems are sentences for the page ("end:
    'yesterdayy' is not a date; using today").
    """
    values = default_values(report, today)
    problems: list[str] = []
    for p in report.params:
        if p.name not in url:
            continue
        raw = url[p.name]
        if isinstance(raw, (list, tuple)):
            raw = raw[-1] if raw else ""
        raw = str(raw)
        try:
            values[p.name] = parse_value(p, raw, today)
        except ValueError as exc:
            problems.append(f"{p.name}: {exc}; using the default")
    return values, problems


def parse_value(param: Param, raw: str, today: dt.date) -> Any:
    """One URL/text value → typed value. Raises ValueError with a readable reason."""
    if param.kind == "date":
        return resolve_date(raw, today)
    if param.kind == "daterange":
        # A preset (last_month) or two dates; a start after the end is kept: the page says so.
        if dates.is_preset(raw.strip()):
            return dates.preset_period(raw.strip(), today)
        a, sep, b = raw.partition("..")
        if not sep:
            raise ValueError(f"{raw!r} is not a period — pick one from the list or write it like 2026-11-01..2026-11-24")
        return Period(resolve_date(a, today), resolve_date(b, today))
    if param.kind == "number":
        value = _number(param, raw)
        if param.minimum is not None and value < param.minimum:
            raise ValueError(f"{raw} is below the minimum {param.minimum:g}")
        if param.maximum is not None and value > param.maximum:
            raise ValueError(f"{raw} is above the maximum {param.maximum:g}")
        return value
    if param.kind == "text":
        return raw
    if param.kind == "choice":
        if raw == "":
            if param.required:
                raise ValueError("a value is required")
            return None
        if param.options and raw not in param.options:
            raise ValueError(f"{raw!r} is not one of {', '.join(param.options)}")
        return raw
    raise AssertionError(param.kind)


def as_period(value: Any) -> Period:
    """A daterange value: a Period, or a (start, end) pair (scripts and tests may pass one)."""
    if isinstance(value, Period):
        return value
    start, end = value
    return Period(start, end)


def _number(param: Param, raw: str) -> int | float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if param.is_float:
        return value
    if value != int(value):
        raise ValueError(f"{raw!r} is not a whole number")
    return int(value)


def values_to_url(report: Report, values: Mapping[str, Any]) -> dict[str, str]:
    """The URL query arguments that reproduce these values (plus `report=<slug>`)."""
    out = {"report": report.slug}
    for p in report.params:
        v = values.get(p.name)
        if p.kind == "daterange":
            out[p.name] = as_period(v).token
        elif p.kind == "date":
            out[p.name] = v.isoformat()
        elif p.kind == "number":
            out[p.name] = f"{v:g}" if isinstance(v, float) else str(v)
        else:
            out[p.name] = "" if v is None else str(v)
    return out


# ─────────────────────────────────────────────────────────────── running ──


def bind_params(report: Report, values: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values → the `$name` parameters the SQL uses (daterange → _start/_end; empty text → NULL)."""
    bound: dict[str, Any] = {}
    for p in report.params:
        v = values[p.name]
        if p.kind == "daterange":
            period = as_period(v)
            bound[f"{p.name}_start"], bound[f"{p.name}_end"] = period.start, period.end
        elif p.kind == "text":
            bound[p.name] = v if (v or "").strip() else None
        else:
            bound[p.name] = v
    return {k: v for k, v in bound.items() if k in report.sql_names}


def choice_options(param: Param, query: QueryFn) -> list[str]:
    """The options of a choice parameter: fixed, or the first column of its `from=` query (sorted, no NULLs)."""
    if param.options:
        return list(param.options)
    if not param.options_sql:
        return []
    df = query(param.options_sql, [])
    if df.shape[1] == 0:
        return []
    return sorted({str(v) for v in df.iloc[:, 0].tolist() if v is not None and not (isinstance(v, float) and pd.isna(v))})


def run_report(report: Report, values: Mapping[str, Any], query: QueryFn) -> pd.DataFrame:
    """Run the report with bound parameters. A failing query raises ReportError at the file's line."""
    import duckdb

    bound = bind_params(report, values)
    try:
        return query(positional_sql(report), [bound[name] for name in report.sql_names])
    except duckdb.Error as exc:
        raise query_error(report, exc) from exc


def query_error(report: Report, exc: BaseException) -> ReportError:
    """Translate a DuckDB error ("LINE 3: ...") to the report file's own line numbers."""
    m = _LINE.search(str(exc))
    line = report.sql_line + int(m.group(1)) - 1 if m else report.sql_line
    return ReportError(Path(report.path).name, line, f"the query failed: {_message(exc)}")


def _message(exc: BaseException) -> str:
    """DuckDB's message without its "LINE n:" excerpt of the statement (our line numbers say where instead)."""
    return str(exc).split("\n\nLINE")[0].strip()


def chart_problem(report: Report, df: pd.DataFrame) -> str | None:
    """None when every column the chart names is in the result, else what is missing (with the header line)."""
    if report.chart is None:
        return None
    missing = [f"{role}={col}" for role, col in report.chart.columns().items() if col not in df.columns]
    if missing:
        return (
            f"{Path(report.path).name}:{report.chart.line}: the chart names {', '.join(missing)}, "
            f"but the result has only {', '.join(map(str, df.columns))}"
        )
    return None


# ─────────────────────────────────────────────────────────────── display ──

def totals_problem(report: Report, df: pd.DataFrame) -> str | None:
    """None when every `totals:` column is a numeric result column, else what is wrong (with the file)."""
    wrong = [c for c in report.totals if c not in df.columns or not pd.api.types.is_numeric_dtype(df[c])]
    if wrong:
        return f"{Path(report.path).name}: totals names {', '.join(wrong)}, which the result has no numbers for"
    return None


def additive(column: str) -> bool:
    """Whether values of this column may be added up (amounts, counts) — not rates, shares or averages."""
    return not (column.endswith("_pct") or column.startswith("avg_") or "_per_" in column or "_rate" in column)


_TIME_GRAINS = {"hour": "hour", "day": "day", "week": "week", "month": "month"}
REPORT_RELATION = "__report"  # how the chart's compiled statement names the report's result
CHART_TOP = 20  # category bars drawn at most; the rest is one "others" bar, as in Explore


def result_types(df: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type family) of a report's result, from the frame DuckDB gave (what kind of axis each is)."""
    types = pd.api.types

    def family(series: pd.Series) -> str:
        if types.is_bool_dtype(series):
            return "BOOLEAN"
        if types.is_datetime64_any_dtype(series):
            return "TIMESTAMP WITH TIME ZONE" if getattr(series.dtype, "tz", None) else "TIMESTAMP"
        if types.is_integer_dtype(series):
            return "BIGINT"
        if types.is_numeric_dtype(series):
            return "DOUBLE"
        first = series.dropna().head(1).tolist()
        return "DATE" if first and isinstance(first[0], dt.date) else "VARCHAR"

    return tuple((str(c), family(df[c])) for c in df.columns)


def report_relation(report: Report, values: Mapping[str, Any], df: pd.DataFrame):
    """The report's SQL and bound values as a relation the query compiler can question."""
    from dashboard.questions.relation import Relation

    bound = bind_params(report, values)
    return Relation(REPORT_RELATION, lambda offset: positional_sql(report, offset),
                    tuple(bound[name] for name in report.sql_names), result_types(df))


def chart_question(report: Report, types: Mapping[str, str]):
    """The report's chart as a question of its result, and the model it is asked of.

    Value = the chart's value column, summed per group (averaged for rates and
    averages, which do not add up); groups = x (and colour, or a heat map's
    rows), in the order the report lists them. One category axis (bars, pie)
    keeps its first CHART_TOP groups and folds the rest into "others"; time
    and number axes, and split charts, are drawn whole.
    """
    from dashboard.model import Label, Measure
    from dashboard.questions.relation import FIRST_POSITION
    from dashboard.questions.spec import Question
    from dashboard.warehouse import column_kind

    chart = report.chart
    assert chart is not None
    value = chart.z if chart.kind == "heatmap" else chart.y
    keys = [chart.x, chart.y] if chart.kind == "heatmap" else [chart.x] + ([chart.color] if chart.color else [])
    rel = REPORT_RELATION
    measure = Measure(rel, "value", Label(value, value), agg="sum" if additive(value) else "avg", column=value)
    single_category = len(keys) == 1 and column_kind(types.get(chart.x, "VARCHAR")) == "text"
    question = Question(base=rel, measures=(measure.id, f"{rel}.{FIRST_POSITION}"),
                        dimensions=tuple(f"{rel}.{k}" for k in keys), sort=f"{rel}.{FIRST_POSITION}",
                        descending=False, top=CHART_TOP if single_category and chart.kind in ("bar", "pie") else None)
    return question, {"value": measure}


def chart_frame(report: Report, values: Mapping[str, Any], df: pd.DataFrame, query: QueryFn):
    """The report's chart as (charts.ChartSpec, frame with x[, color], value) for `charts.figure`.

    The frame comes from ONE compiled statement (dashboard/questions/relation.py):
    the report's SQL as a CTE, grouped by the query compiler like an Explore
    chart, through the same reader, cache and access guard as the report.
    The frame keeps the stored codes: the figure names them in the current
    language and gives each the same colour in both languages; heat-map rows
    and columns keep the report's order (weekdays Monday first).
    """
    import duckdb

    from dashboard.charts import VALUES_AS_GIVEN, ChartSpec
    from dashboard.i18n import t
    from dashboard.questions.relation import compile_over, relation_model

    chart = report.chart
    assert chart is not None
    rel = report_relation(report, values, df)
    question, measures = chart_question(report, dict(rel.columns))
    compiled = compile_over(rel, relation_model(rel, measures), question)
    try:
        result = query(compiled.sql, list(compiled.params))
    except duckdb.Error as exc:  # the report itself ran: the chart line is what to look at
        raise ReportError(Path(report.path).name, chart.line, f"the chart could not be drawn: {_message(exc)}") from exc
    roles = dict(zip(("x", "color"), question.dimensions))
    frame = pd.DataFrame({role: result[dim].to_numpy() for role, dim in roles.items()})
    frame["value"] = result[question.measures[0]].to_numpy()
    others = result["others"].fillna(False).astype(bool).to_numpy() if "others" in result else None
    if others is not None and others.any():
        frame["x"] = frame["x"].astype(object)
        frame.loc[others, "x"] = t("others_row")
    if chart.kind == "heatmap":  # the pivot sorts its axes: by the report's order, not alphabetically
        for k in ("x", "color"):
            frame[k] = pd.Categorical(frame[k], categories=list(dict.fromkeys(frame[k].tolist())), ordered=True)
    spec = ChartSpec(kind=chart.kind, x=chart.x, y=measures["value"].column,
                     color=chart.y if chart.kind == "heatmap" else chart.color,
                     agg=VALUES_AS_GIVEN, bucket=_TIME_GRAINS.get(chart.x, "day"))
    return spec, frame
