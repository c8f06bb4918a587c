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
        a, _, b = (param.default or "-30d..today").partition("..")
        return (resolve_date(a, today), resolve_date(b, today))
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
        a, sep, b = raw.partition("..")
        if not sep:
            raise ValueError(f"{raw!r} is not a range like 2026-11-01..2026-11-24")
        start, end = resolve_date(a, today), resolve_date(b, today)
        return (start, end) if start <= end else (end, start)
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
            out[p.name] = f"{v[0].isoformat()}..{v[1].isoformat()}"
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
            bound[f"{p.name}_start"], bound[f"{p.name}_end"] = v
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

# Bilingual names for the result columns the bundled reports use ("한국어 / English").
COLUMN_LABELS = {
    "day": "일자 / Day", "week": "주 (월요일) / Week (Monday)", "month": "월 / Month", "bucket": "기간 / Period",
    "channel": "충전 경로 / Channel", "category": "업종 / Category", "region": "지역 / Region",
    "product": "상품 / Product", "status": "상태 / Status", "segment": "구분 / Segment",
    "topups": "충전 건수 / Top-ups", "payments": "결제 건수 / Payments", "cards": "카드 수 / Cards",
    "amount_krw": "금액(원) / Amount (KRW)", "avg_ticket_krw": "객단가(원) / Average ticket (KRW)",
    "merchant_id": "가맹점 번호 / Merchant id", "merchant_name": "가맹점명 / Merchant",
    "cancelled": "취소 건수 / Cancelled", "cancel_rate_pct": "취소율(%) / Cancellation rate (%)",
    "approved_krw": "승인 금액(원) / Approved (KRW)", "refunded_krw": "환불 금액(원) / Refunded (KRW)",
    "refunded_payments": "환불된 결제 / Refunded payments", "refund_rate_pct": "환불률(%) / Refund rate (%)",
    "active_30d": "30일 활성 카드 / Active cards (30 days)", "used_in_week": "해당 주 사용 카드 / Used in the week",
    "card_id": "카드 번호 / Card id", "balance_krw": "잔액(원) / Balance (KRW)", "issued_on": "발급일 / Issued on",
    "last_payment_on": "최근 결제일 / Last payment", "idle_days": "미사용 일수 / Days idle",
    "dormant_cards": "휴면 카드 수 / Dormant cards", "total_dormant_balance_krw": "휴면 잔액 합계(원) / Total dormant balance (KRW)",
    "rank": "순위 / Rank", "refunds_krw": "환불(원) / Refunds (KRW)", "net_krw": "순액(원) / Net (KRW)",
    "age_band": "연령대 / Age band", "active_cards": "이용 카드 수 / Cards used",
    "tx_per_active_card": "카드당 결제 수 / Payments per card", "weekday_no": "요일 번호 / Weekday no.",
    "weekday": "요일 / Weekday", "hour": "시 / Hour", "prev_amount_krw": "전월 금액(원) / Previous month (KRW)",
    "growth_pct": "전월 대비(%) / Growth (%)", "topups_krw": "충전(원) / Top-ups (KRW)",
    "payments_krw": "결제(원) / Payments (KRW)", "movement_balance_krw": "거래 기준 잔액(원) / Balance from movements (KRW)",
    "balances_on_file_krw": "보유 잔액 합계(원) / Balances on file (KRW)", "difference_krw": "차이(원) / Difference (KRW)",
    "expected_balance_krw": "기대 잔액(원) / Expected balance (KRW)", "share_pct": "비중(%) / Share (%)",
}


# Values some reports produce themselves (not warehouse vocabulary), per result column.
VALUE_LABELS = {
    "segment": {"new": "신규 / new", "returning": "재방문 / returning"},
    "age_band": {"unknown": "알 수 없음 / unknown", "~19": "19세 이하 / 19 and under", "60+": "60세 이상 / 60 and over"},
    "weekday": {"Mon": "월 / Mon", "Tue": "화 / Tue", "Wed": "수 / Wed", "Thu": "목 / Thu", "Fri": "금 / Fri",
                "Sat": "토 / Sat", "Sun": "일 / Sun"},
}


def value_labeller(column: str, pick: Callable[[str], str]) -> Callable[[Any], Any] | None:
    """A function that names this column's report-made values in the current language, or None."""
    table = VALUE_LABELS.get(column)
    if table is None:
        return None
    return lambda v: pick(table[v]) if v in table else v


def column_labels(columns: list[str], pick: Callable[[str], str]) -> dict[str, str]:
    """column → its label in the current language (`pick` = i18n.pick); unknown columns keep their name."""
    return {c: pick(COLUMN_LABELS[c]) if c in COLUMN_LABELS else c for c in columns}


def chart_frame(report: Report, df: pd.DataFrame):
    """The report's chart as (charts.ChartSpec, frame with x[, color], value) for `charts.figure`.

    Rows that share x (and colour) are summed; heat-map rows keep the report's
    order (categories), so weekdays stay Monday-first.
    """
    from dashboard.charts import ChartSpec

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
    frame = frame.groupby(keys, sort=False, observed=True, dropna=False)["value"].sum().reset_index()
    for k in keys:
        if isinstance(frame[k].dtype, pd.CategoricalDtype) and chart.kind != "heatmap":
            frame[k] = frame[k].astype(object)
    spec = ChartSpec(kind=chart.kind, x=chart.x, y=chart.z if chart.kind == "heatmap" else chart.y,
                     color=chart.y if chart.kind == "heatmap" else chart.color, agg="sum")
    return spec, frame
