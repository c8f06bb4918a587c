"""Charts as data: a `ChartSpec` becomes ONE aggregated, bound DuckDB query and a plotly figure.

The browser only ever receives the aggregated points (at most `MAX_POINTS`),
never the rows: a bar chart of 10M payments is a GROUP BY in DuckDB.

    spec = ChartSpec(kind="bar", x="created_at", bucket="day", y="amount_krw", agg="sum", color="channel")
    sql, params = chart_query(spec, table_info, where, where_params)
    fig = figure(warehouse.query(sql, params), spec, table_info, labels)

Kinds: line, bar, stacked_bar, area, pie, histogram, box, heatmap.
Aggregations: count, sum, avg, min, max, distinct (count of distinct values).
Time buckets for a time x axis: hour, day, week (Monday), month — in Asia/Seoul.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Mapping

import pandas as pd
import plotly.graph_objects as go

from dashboard import i18n
from dashboard.warehouse import TableInfo, quote

KINDS = ("bar", "stacked_bar", "line", "area", "pie", "histogram", "box", "heatmap")
AGGS = ("count", "sum", "avg", "min", "max", "distinct")
BUCKETS = ("hour", "day", "week", "month")
MAX_POINTS = 5000
HISTOGRAM_BINS = 30
_NEEDS_NUMBER = ("sum", "avg")


@dataclass(frozen=True)
class ChartSpec:
    kind: str = "bar"
    x: str | None = None
    y: str | None = None
    color: str | None = None
    agg: str = "count"
    bucket: str = "day"

    def as_params(self) -> dict[str, str]:
        out = {"chart": self.kind, "agg": self.agg}
        for k in ("x", "y", "color"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        out["bucket"] = self.bucket
        return out


def default_spec(info: TableInfo) -> ChartSpec:
    """Rows per day of the first time column (else counts of the first text column)."""
    times = info.columns_of("time")
    preferred = next((c.name for c in times if c.name in ("created_at", "joined_at", "issued_at")), None)
    x = preferred or (times[0].name if times else (info.columns[0].name if info.columns else None))
    return ChartSpec(kind="bar", x=x, agg="count", bucket="day")


def spec_from_params(params: Mapping[str, str], info: TableInfo) -> tuple[ChartSpec, list[str]]:
    """Query parameters → a ChartSpec valid for this table, plus messages about what was replaced."""
    problems: list[str] = []
    spec = default_spec(info)
    kind = params.get("chart")
    if kind:
        if kind in KINDS:
            spec = replace(spec, kind=kind)
        else:
            problems.append(i18n.t("bad_value", value=kind, what=i18n.t("chart_kind")))
    agg = params.get("agg")
    if agg:
        if agg in AGGS:
            spec = replace(spec, agg=agg)
        else:
            problems.append(i18n.t("bad_value", value=agg, what=i18n.t("aggregation")))
    bucket = params.get("bucket")
    if bucket:
        if bucket in BUCKETS:
            spec = replace(spec, bucket=bucket)
        else:
            problems.append(i18n.t("bad_value", value=bucket, what=i18n.t("bucket")))
    for axis in ("x", "y", "color"):
        name = params.get(axis)
        if name:
            if info.column(name) is not None:
                spec = replace(spec, **{axis: name})
            else:
                problems.append(i18n.t("unknown_column", column=name))
    return spec, problems


def needs_y(spec: ChartSpec) -> bool:
    return KIND[spec.kind].needs_y or spec.agg != "count"


# Asia/Seoul has kept UTC+9 without daylight saving since 1988, so hour/day/week
# buckets of a TIMESTAMPTZ are plain arithmetic on epoch microseconds — about 4×
# faster than ICU's date_trunc on 10M rows (bench/app.py). Months need the calendar.
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
_SEOUL_OFFSET_US = 9 * _HOUR_US
_EPOCH_BUCKETS = {
    "hour": "make_timestamptz((epoch_us({c}) // {h}) * {h})",
    "day": "make_timestamptz(((epoch_us({c}) + {o}) // {d}) * {d} - {o})",
    # 1970-01-01 was a Thursday: +3 days puts week starts on Mondays.
    "week": "make_timestamptz((((epoch_us({c}) + {o}) // {d} + 3) // 7 * 7 - 3) * {d} - {o})",
}


def _x_expr(spec: ChartSpec, info: TableInfo) -> str:
    col = info.column(spec.x)
    q = quote(spec.x)
    if col is None or col.kind != "time":
        return q
    if "TIME ZONE" in col.type.upper() and spec.bucket in _EPOCH_BUCKETS:
        return _EPOCH_BUCKETS[spec.bucket].format(c=q, h=_HOUR_US, d=_DAY_US, o=_SEOUL_OFFSET_US)
    return f"date_trunc('{spec.bucket}', {q})"  # bucket is one of BUCKETS, never free text


def _agg_expr(spec: ChartSpec) -> str:
    if spec.agg == "count" or not spec.y:
        return "count(*)"
    y = quote(spec.y)
    if spec.agg == "distinct":
        return f"count(DISTINCT {y})"
    if spec.agg in ("sum", "avg"):
        return f"{spec.agg}({y})::DOUBLE"  # not DECIMAL/HUGEINT: plain floats for pandas and plotly
    return f"{spec.agg}({y})"


def chart_query(spec: ChartSpec, info: TableInfo, where: str, params: list[Any]) -> tuple[str, list[Any]]:
    """The one aggregated query behind a chart. Raises ValueError (a message) when the spec cannot be drawn."""
    for name in (spec.x, spec.y, spec.color):
        if name is not None and info.column(name) is None:
            raise ValueError(i18n.t("unknown_column", column=name))
    if spec.x is None:
        raise ValueError(i18n.t("chart_needs_x"))
    if needs_y(spec) and not spec.y:
        raise ValueError(i18n.t("chart_needs_y"))
    if spec.agg in _NEEDS_NUMBER and info.column(spec.y).kind != "number":
        raise ValueError(i18n.t("chart_needs_y"))
    kind = KIND[spec.kind]
    if kind.needs_color and not spec.color:
        raise ValueError(i18n.t("chart_needs_color"))
    return kind.query(spec, info, where, MAX_POINTS + 1), list(params)


# ─────────────────────────────────────────────────────────────── figure ──

# Series colours (Streamlit's own categorical palette). A code always gets the
# same colour: its place in the column's vocabulary (dashboard/i18n.py) picks
# it, so 자동충전 and "Auto charge" are one colour on every chart, in both
# languages, whichever other series are present.
PALETTE = ("#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a", "#6d3fc0", "#d5dae5")
VALUES_AS_GIVEN = "none"  # ChartSpec.agg for frames whose values are already final (reports, pages)

# Date ticks by zoom level: numbers and Korean units in Korean (never "Nov"), English month names in English.
# The ranges do not touch: a tick step on a shared edge (one day, one month) would match two formats.
_HOURS, _DAYS, _MONTHS, _YEARS = (None, 86_399_999), (86_400_000, 2_419_200_000), ("M1", "M11"), ("M12", None)
_DATE_TICKS = {
    "ko": ((_HOURS, "%-m월 %-d일 %H:%M"), (_DAYS, "%-m월 %-d일"), (_MONTHS, "%Y년 %-m월"), (_YEARS, "%Y년")),
    "en": ((_HOURS, "%b %-d, %H:%M"), (_DAYS, "%b %-d"), (_MONTHS, "%b %Y"), (_YEARS, "%Y")),
}
_DATE_HOVER = {
    "ko": {"hour": "%Y년 %-m월 %-d일 %H시", "day": "%Y년 %-m월 %-d일", "week": "%Y년 %-m월 %-d일 주", "month": "%Y년 %-m월"},
    "en": {"hour": "%b %-d, %Y %H:00", "day": "%b %-d, %Y", "week": "week of %b %-d, %Y", "month": "%B %Y"},
}


def series_order(column: str | None, codes) -> list:
    """The series of a chart in a fixed order: the vocabulary's codes first (in its order), then the rest sorted."""
    present = list(dict.fromkeys(codes))
    known = [c for c in i18n.vocabulary_order(column or "") if c in present]
    rest = sorted((c for c in present if c not in known), key=lambda v: (v is None, str(v)))
    return known + rest


def series_colours(column: str | None, codes) -> dict:
    """code → colour, stable across languages and pages (see PALETTE)."""
    vocabulary = i18n.vocabulary_order(column or "")
    present = series_order(column, codes)
    unknown = [c for c in present if c not in vocabulary]
    out = {}
    for code in present:
        place = vocabulary.index(code) if code in vocabulary else len(vocabulary) + unknown.index(code)
        out[code] = PALETTE[place % len(PALETTE)]
    return out


def _labelled(values: pd.Series, name: str | None) -> pd.Series:
    if name and i18n.has_value_labels(name):
        return values.map(lambda v: i18n.value_label(name, v))
    return values


def _is_time(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    sample = values.dropna().head(5).tolist()
    return bool(sample) and all(isinstance(v, (date, datetime)) for v in sample)


def value_title(spec: ChartSpec, labels: Mapping[str, str]) -> str:
    """The value axis title: the column's name, plus the aggregation only where the chart aggregated."""
    if spec.kind == "histogram" or spec.agg == "count" or not spec.y:
        return i18n.t("agg_count")
    name = labels.get(spec.y, spec.y)
    if spec.agg == VALUES_AS_GIVEN:
        return name
    return f"{name} ({i18n.t('agg_' + spec.agg)})"


def figure(frame: pd.DataFrame, spec: ChartSpec, labels: Mapping[str, str]) -> go.Figure:
    """Plotly figure from the aggregated frame (columns x[, color], value …).

    Codes in x and color are drawn as words in the current language; series
    keep a fixed order and colour (`series_colours`); time axes speak the
    language too ("11월 1일" / "Nov 1").
    """
    frame = frame.head(MAX_POINTS)
    lang = i18n.lang()
    kind = KIND[spec.kind]
    y_title = value_title(spec, labels)
    fig = go.Figure()
    kind.draw(fig, frame, spec, labels, y_title)
    if kind.axes:
        fig.update_xaxes(title_text=labels.get(spec.x, spec.x or ""))
        fig.update_yaxes(title_text=kind.value_axis_title(spec, labels, y_title), separatethousands=True, tickformat=",")
        if kind.hover_values:
            fig.update_yaxes(hoverformat=",.4~f")
        if _is_time(frame["x"]):
            fig.update_xaxes(
                tickformatstops=[dict(dtickrange=list(r), value=f) for r, f in _DATE_TICKS[lang]],
                hoverformat=_DATE_HOVER[lang].get(spec.bucket, _DATE_HOVER[lang]["day"]),
            )
    fig.update_layout(margin=dict(l=10, r=10, t=30, b=10), legend_title_text=labels.get(spec.color, spec.color or ""),
                      separators=".,")
    return fig


# ───────────────────────────────────────────────────────────────── kinds ──
# One class per kind of chart: its query (what DuckDB aggregates) and its
# traces (what plotly draws). A new kind is one subclass here, added to KIND,
# plus its name in dashboard/i18n.py ("kind_<name>").


class ChartKind:
    name = ""
    needs_y = False  # a value column is needed even when counting (box: the column whose spread is drawn)
    needs_color = False  # a second category is needed (heatmap: its rows)
    axes = True  # x and value axes (a pie has none)
    hover_values = True  # the value axis's hover format (a heatmap's values are in its colour bar)

    def query(self, spec: ChartSpec, info: TableInfo, where: str, limit: int) -> str:
        """Default: the aggregate per x (and colour), in x order."""
        return self.grouped(spec, info, where, limit, _agg_expr(spec))

    @staticmethod
    def grouped(spec: ChartSpec, info: TableInfo, where: str, limit: int, agg: str) -> str:
        color = quote(spec.color) if spec.color else None
        group = f", {color} AS color" if color else ""
        order = "x, color" if color else "x"
        return (f"SELECT {_x_expr(spec, info)} AS x{group}, {agg} AS value FROM {info.qualified} {where} "
                f"GROUP BY ALL ORDER BY {order} LIMIT {limit}")

    def value_axis_title(self, spec: ChartSpec, labels: Mapping[str, str], y_title: str) -> str:
        return y_title

    def draw(self, fig: go.Figure, frame: pd.DataFrame, spec: ChartSpec, labels: Mapping[str, str],
             y_title: str) -> None:
        raise NotImplementedError


class _Series(ChartKind):
    """One trace per colour code (or one trace), in the vocabulary's order and colours."""

    barmode: str | None = None

    def draw(self, fig, frame, spec, labels, y_title) -> None:
        if "color" in frame.columns:
            codes = series_order(spec.color, [None if i18n.is_missing(v) else v for v in frame["color"]])
            colours = series_colours(spec.color, codes)
            groups = [(code, frame[frame["color"].isna()] if code is None else frame[frame["color"] == code])
                      for code in codes]
        else:
            groups, colours = [(None, frame)], {None: PALETTE[0]}
        for code, part in groups:
            name = i18n.value_label(spec.color, code) if spec.color else y_title
            fig.add_trace(self.trace(_labelled(part["x"], spec.x), part["value"], name, colours[code]))
        if self.barmode:
            fig.update_layout(barmode=self.barmode)

    def trace(self, x, y, name: str, colour: str):
        return go.Bar(x=x, y=y, name=name, marker_color=colour)


class Bar(_Series):
    name, barmode = "bar", "group"


class StackedBar(_Series):
    name, barmode = "stacked_bar", "stack"


class Line(_Series):
    name = "line"

    def trace(self, x, y, name, colour):
        return go.Scatter(x=x, y=y, name=name, mode="lines+markers", line=dict(color=colour), marker=dict(color=colour))


class Area(Line):
    name = "area"

    def trace(self, x, y, name, colour):
        return go.Scatter(x=x, y=y, name=name, mode="lines+markers", line=dict(color=colour), marker=dict(color=colour),
                          stackgroup="one")


class Histogram(_Series):
    """Counts per bin of a number (HISTOGRAM_BINS equal bins), or per time bucket of a time."""

    name = "histogram"

    def query(self, spec, info, where, limit) -> str:
        if info.column(spec.x).kind != "number":
            return self.grouped(spec, info, where, limit, "count(*)")
        x = quote(spec.x)
        color = quote(spec.color) if spec.color else None
        return (
            f"WITH f AS (SELECT {x}::DOUBLE AS v{', ' + color + ' AS color' if color else ''} FROM {info.qualified} {where}), "
            f"b AS (SELECT min(v) AS lo, (max(v) - min(v)) / {HISTOGRAM_BINS} AS w FROM f) "
            f"SELECT coalesce(lo + least(floor((v - lo) / nullif(w, 0)), {HISTOGRAM_BINS - 1}) * w, lo) AS x"
            f"{', color' if color else ''}, any_value(coalesce(w, 0)) AS width, count(*) AS value "
            f"FROM f, b WHERE v IS NOT NULL GROUP BY ALL ORDER BY ALL LIMIT {limit}"
        )

    def draw(self, fig, frame, spec, labels, y_title) -> None:
        super().draw(fig, frame, spec, labels, y_title)
        if spec.color:
            fig.update_layout(barmode="stack")
        fig.update_layout(bargap=0.02)


class Pie(ChartKind):
    name, axes = "pie", False

    def query(self, spec, info, where, limit) -> str:
        return (f"SELECT {_x_expr(spec, info)} AS x, {_agg_expr(spec)} AS value FROM {info.qualified} {where} "
                f"GROUP BY ALL ORDER BY value DESC NULLS LAST LIMIT {limit}")

    def draw(self, fig, frame, spec, labels, y_title) -> None:
        codes = [None if i18n.is_missing(v) else v for v in frame["x"]]
        colours = series_colours(spec.x, codes)
        fig.add_trace(go.Pie(labels=_labelled(frame["x"], spec.x), values=frame["value"], sort=False,
                             marker=dict(colors=[colours[c] for c in codes])))


class Box(ChartKind):
    """Quartiles, median and range of a number per x."""

    name, needs_y = "box", True

    def query(self, spec, info, where, limit) -> str:
        y = quote(spec.y)
        return (
            f"SELECT {_x_expr(spec, info)} AS x, min({y}) AS lo, quantile_cont({y}, 0.25) AS q1, "
            f"median({y}) AS median, quantile_cont({y}, 0.75) AS q3, max({y}) AS hi, count({y}) AS value "
            f"FROM {info.qualified} {where} GROUP BY ALL ORDER BY x LIMIT {limit}"
        )

    def draw(self, fig, frame, spec, labels, y_title) -> None:
        fig.add_trace(go.Box(x=_labelled(frame["x"], spec.x), q1=frame["q1"], median=frame["median"], q3=frame["q3"],
                             lowerfence=frame["lo"], upperfence=frame["hi"], name=labels.get(spec.y, spec.y),
                             marker_color=PALETTE[0]))


class Heatmap(ChartKind):
    """x across, the colour column down, the value as the cell's shade."""

    name, needs_color, hover_values = "heatmap", True, False

    def draw(self, fig, frame, spec, labels, y_title) -> None:
        pivot = frame.pivot_table(index="color", columns="x", values="value", aggfunc="sum", sort=True)
        fig.add_trace(go.Heatmap(
            z=pivot.values,
            x=[i18n.value_label(spec.x, v) if i18n.has_value_labels(spec.x or "") else v for v in pivot.columns],
            y=[i18n.value_label(spec.color, v) for v in pivot.index], colorscale="Blues",
            colorbar=dict(title=dict(text=y_title))))

    def value_axis_title(self, spec, labels, y_title) -> str:
        return labels.get(spec.color, spec.color or "")


KIND: dict[str, ChartKind] = {k.name: k for k in (Bar(), StackedBar(), Line(), Area(), Pie(), Histogram(), Box(), Heatmap())}
assert tuple(KIND) == KINDS, "KINDS lists the kinds in the order the chart menu offers them"
