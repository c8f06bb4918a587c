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
    text = str(exc)
    m = _LINE.search(text)
    line = report.sql_line + int(m.group(1)) - 1 if m else report.sql_line
    first = text.split("\n\nLINE")[0].strip()
    return ReportError(Path(report.path).name, line, f"the query failed: {first}")


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


def chart_frame(report: Report, df: pd.DataFrame):
    """The report's chart as (charts.ChartSpec, frame with x[, color], value) for `charts.figure`.

    Rows that share x (and colour) are summed (averaged for rates and
    averages, which do not add up); heat-map rows keep the report's order
    (categories), so weekdays stay Monday-first. The frame keeps the stored
    codes: the figure names them in the current language and gives each the
    same colour in both languages.
    """
    from dashboard.charts import VALUES_AS_GIVEN, ChartSpec

    chart = report.chart
    assert chart is not None
    if chart.kind == "heatmap":
        roles = {"x": chart.x, "color": chart.y, "value": chart.z}
    else:
        roles = {"x": chart.x, "value": chart.y}
        if chart.color:
            roles["color"] = chart.color
    frame = pd.DataFrame({role: df[col].to_numpy() for role, col in roles.items()})
    keys = [k for k in ("x", "color") if k in frame.columns]
    for k in keys:
        if chart.kind == "heatmap" or frame[k].dtype == object:
            order = list(dict.fromkeys(frame[k].tolist()))
            frame[k] = pd.Categorical(frame[k], categories=order, ordered=True)
    y = chart.z if chart.kind == "heatmap" else chart.y
    grouped = frame.groupby(keys, sort=False, observed=True, dropna=False)["value"]
    frame = (grouped.sum() if additive(y) else grouped.mean()).reset_index()
    for k in keys:
        if isinstance(frame[k].dtype, pd.CategoricalDtype) and chart.kind != "heatmap":
            frame[k] = frame[k].astype(object)
    spec = ChartSpec(kind=chart.kind, x=chart.x, y=y, color=chart.y if chart.kind == "heatmap" else chart.color,
                     agg=VALUES_AS_GIVEN, bucket=_TIME_GRAINS.get(chart.x, "day"))
    return spec, frame
