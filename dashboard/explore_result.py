"""How a compiled question's result looks: labelled tables, charts that read well, a pivot with totals.

The query compiler (dashboard/questions/compile.py) returns, with every
statement, the `Column`s of its result: what each is (dimension, time,
measure, previous, Δ, Δ%), its label in both languages, its format and its
value labels (`auto_charge` → 자동충전). This module turns a result frame and
those columns into what the page shows and the files carry — the same
headers and words in both, like dashboard/tables.py does for plain tables.

Charts follow two rules: a time grain gives a time series, otherwise bars
of the top groups (+ "others"); the value axis is titled with the measure's
own label ("환불률(%)"). Bars carry the group's stored value as customdata,
so a click can become a filter (drill-down); points of a time series carry
their bucket (and line's value), so a click zooms into that bucket.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import streamlit as st

from dashboard import i18n
from dashboard.charts import PALETTE, _DATE_HOVER, _DATE_TICKS  # the app's one date-tick style
from dashboard.i18n import EMPTY, t
from dashboard.tables import ColumnView

CHART_TOP = 20  # bars drawn at most (the rest is one "others" bar)
MEASURE_KINDS = ("measure", "previous", "delta", "delta_pct")


def label_text(label, lang: str) -> str:
    """A model label in the language; English starts with a capital like every other header ("Merchant name")."""
    text = label.text(lang)
    return text[:1].upper() + text[1:] if lang == "en" else text


def title(column, lang: str) -> str:
    return label_text(column.label, lang)


def visible(columns: Sequence) -> list:
    """The columns a person sees: not the internal "others" flag nor pivot flags."""
    return [c for c in columns if c.kind not in ("others", "flag")]


def display_value(column, value, lang: str):
    """A cell as shown: value labels for codes, "others" for the rolled-up row, the number itself otherwise."""
    if i18n.is_missing(value):
        return None
    words = column.value_label(value, lang)
    if words is not None:
        return words
    return value


def screen_frame(frame: pd.DataFrame, columns: Sequence, lang: str | None = None) -> pd.DataFrame:
    """The result as shown and saved: labelled headers, words for codes, "기타/Others" on the rolled-up row."""
    lang = lang or i18n.lang()
    others = frame["others"].fillna(False).astype(bool) if "others" in frame.columns else pd.Series(False, index=frame.index)
    out = {}
    first_dimension = True
    for c in visible(columns):
        s = frame[c.id]
        if c.kind in ("dimension", "column") and c.values:
            s = s.map(lambda v, c=c: display_value(c, v, lang))
        if c.kind == "dimension":
            if first_dimension:
                s = s.where(~others, t("others_row"))
            first_dimension = False
        out[title(c, lang)] = s.reset_index(drop=True)
    return pd.DataFrame(out)


def _kind(c, series: pd.Series) -> str:
    if c.kind in MEASURE_KINDS:
        return "number"
    if c.kind == "time":
        return "date" if c.format in ("day", "week", "month", "quarter", "year") else "time"
    if c.kind == "column" and pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "time"
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        name = (c.source or c.id).rsplit(".", 1)[-1]
        return "id" if i18n.is_identifier(name) else "number"
    return "text"


def column_views(frame: pd.DataFrame, columns: Sequence, lang: str | None = None) -> list[ColumnView]:
    """dashboard.tables views of the *screen* frame (labelled headers), for downloads."""
    lang = lang or i18n.lang()
    return [ColumnView(title(c, lang), title(c, lang), _kind(c, frame[c.id])) for c in visible(columns)]


def column_config(frame: pd.DataFrame, columns: Sequence, lang: str | None = None) -> dict:
    """st.dataframe settings: money and counts with separators, rates and Δ% with one decimal, ids as written."""
    lang = lang or i18n.lang()
    config = {}
    for c in visible(columns):
        header = title(c, lang)
        kind = _kind(c, frame[c.id])
        if kind == "number":
            fmt = "%.1f" if c.format in ("pct", "decimal") or c.kind == "delta_pct" else "localized"
            config[header] = st.column_config.NumberColumn(header, format=fmt)
        elif kind == "id":
            config[header] = st.column_config.NumberColumn(header, format="%d")
        elif kind == "date":
            config[header] = st.column_config.DateColumn(header, format="YYYY-MM-DD")
        elif kind == "time":
            config[header] = st.column_config.DatetimeColumn(header, format="YYYY-MM-DD HH:mm")
        else:
            config[header] = st.column_config.TextColumn(header)
    return config


def _rounded(frame: pd.DataFrame, columns: Sequence) -> pd.DataFrame:
    """Money and counts as whole numbers, rates with one decimal: what the screen shows is what a file holds."""
    out = frame.copy()
    for c in columns:
        if c.kind in MEASURE_KINDS and c.id in out:
            out[c.id] = out[c.id].round(1 if c.format in ("pct", "decimal") or c.kind == "delta_pct" else 0)
    return out


def shown(frame: pd.DataFrame, columns: Sequence, lang: str | None = None) -> pd.DataFrame:
    """`screen_frame` of the rounded result: the one frame both the table and the downloads use."""
    return screen_frame(_rounded(frame, columns), columns, lang)


def raw_names(columns: Sequence) -> dict[str, str]:
    """Column id → the plain name an analyst's file uses: `category`, `payments_previous`, `day`.

    The stored column or measure name (the time column is named by its grain);
    where two would share a name (`payments.status`, `cards.status`), the
    table goes in front: `payments_status`, `cards_status`.
    """
    def short(c) -> str:
        if c.kind == "time":
            return c.format or "time"
        return c.id.rsplit(".", 1)[-1].replace("__", "_")

    cols = visible(columns)
    taken = [short(c) for c in cols]
    return {c.id: (name if taken.count(name) == 1 else c.id.replace(".", "_").replace("__", "_"))
            for c, name in zip(cols, taken)}


def raw_file(frame: pd.DataFrame, columns: Sequence) -> tuple[pa.Table, list[ColumnView]]:
    """The analysts' file of a result: stored codes and plain names, the screen's numbers (same rounding).

    The rolled-up "others" row keeps an empty dimension and says so in an
    `others` column (true/false), since a stored code cannot say "others".
    """
    rounded = _rounded(frame, columns)
    names = raw_names(columns)
    data = {names[c.id]: rounded[c.id].reset_index(drop=True) for c in visible(columns)}
    views = [ColumnView(names[c.id], names[c.id], _kind(c, rounded[c.id])) for c in visible(columns)]
    if "others" in rounded.columns and rounded["others"].fillna(False).astype(bool).any():
        data["others"] = rounded["others"].fillna(False).astype(bool).reset_index(drop=True)
        views.append(ColumnView("others", "others", "bool"))
    return pa.Table.from_pandas(pd.DataFrame(data), preserve_index=False), views


# ─────────────────────────────────────────────────────────────── charts ──


def _series_values(frame: pd.DataFrame, c, lang: str, others: pd.Series) -> list:
    values = [display_value(c, v, lang) for v in frame[c.id]]
    return [t("others_row") if o else (EMPTY if v is None else v) for v, o in zip(values, others)]


def figure(frame: pd.DataFrame, columns: Sequence, measure: str, lang: str | None = None,
           grain: str | None = None) -> go.Figure | None:
    """The default chart of a summary: a time series with a time grain, else bars of the top groups.

    With a comparison the previous period is drawn beside (bars) or under
    (a dashed line) the current one. Returns None when there is nothing to
    draw (no dimension and no time grain: a single number is shown as a metric).
    """
    lang = lang or i18n.lang()
    by_id = {c.id: c for c in columns}
    m = by_id[measure]
    prev = by_id.get(f"{measure}__previous")
    dims = [c for c in columns if c.kind == "dimension"]
    others = frame["others"].fillna(False).astype(bool) if "others" in frame else pd.Series(False, index=frame.index)
    y_title = title(m, lang)
    fig = go.Figure()
    current_name = t("current_period") if prev is not None else y_title
    if grain and "time" in frame:
        groups = [(None, frame, others)]
        if dims:
            d = dims[0]
            keys = _series_values(frame, d, lang, others)
            groups = [(k, frame[[x == k for x in keys]], others[[x == k for x in keys]]) for k in dict.fromkeys(keys)]
        for i, (key, part, part_others) in enumerate(groups):
            colour = PALETTE[i % len(PALETTE)]
            name = str(key) if key is not None else current_name
            # A point carries its bucket and its line's stored value: a click zooms into that bucket (and that line).
            codes = [None if (not dims or o or i18n.is_missing(v)) else str(v)
                     for v, o in zip(part[dims[0].id] if dims else [None] * len(part), part_others)]
            buckets = [pd.Timestamp(x).date().isoformat() for x in part["time"]]
            fig.add_trace(go.Scatter(x=part["time"], y=part[measure], name=name, mode="lines+markers",
                                     line=dict(color=colour), customdata=list(zip(buckets, codes))))
            if prev is not None:
                fig.add_trace(go.Scatter(x=part["time"], y=part[prev.id],
                                         name=f"{name} · {t('previous_period')}" if key is not None else t("previous_period"),
                                         mode="lines", line=dict(color=colour, dash="dot")))
        fig.update_xaxes(title_text=t("period"),
                         tickformatstops=[dict(dtickrange=list(r), value=f) for r, f in _DATE_TICKS[lang]],
                         hoverformat=_DATE_HOVER[lang].get(grain, _DATE_HOVER[lang]["day"]))
        step = {"month": "M1", "quarter": "M3", "year": "M12"}.get(grain)
        if step and frame["time"].nunique() <= 24:  # a few months: one tick per bucket, never "Aug 30" for September
            fig.update_xaxes(dtick=step, tick0=min(frame["time"]))
    elif dims:
        d = dims[0]
        part = frame.head(CHART_TOP + 1)
        labels = _series_values(part, d, lang, others.head(CHART_TOP + 1))
        for extra in dims[1:]:  # two dimensions: one bar per combination, "업종 · 지역"
            more = _series_values(part, extra, lang, others.head(CHART_TOP + 1))
            labels = [f"{a} · {b}" if not o else a for a, b, o in zip(labels, more, others.head(CHART_TOP + 1))]
        codes = [None if o else (None if i18n.is_missing(v) else str(v)) for v, o in zip(part[d.id], others.head(CHART_TOP + 1))]
        fig.add_trace(go.Bar(x=[str(x) for x in labels], y=part[measure], name=current_name, marker_color=PALETTE[0],
                             customdata=codes))
        if prev is not None:
            fig.add_trace(go.Bar(x=[str(x) for x in labels], y=part[prev.id], name=t("previous_period"),
                                 marker_color=PALETTE[1], customdata=codes))
            fig.update_layout(barmode="group")
        fig.update_xaxes(title_text=" · ".join(title(c, lang) for c in dims), type="category")
    else:
        return None
    fig.update_yaxes(title_text=y_title, separatethousands=True, tickformat=",", hoverformat=",.4~f")
    fig.update_layout(margin=dict(l=10, r=10, t=30, b=10), separators=".,", showlegend=len(fig.data) > 1,
                      clickmode="event+select")
    return fig


# ──────────────────────────────────────────────────────────────── pivot ──


def pivot_table(frame: pd.DataFrame, columns: Sequence, measure: str, row_dims: Sequence[str],
                col_dims: Sequence[str], lang: str | None = None) -> pd.DataFrame:
    """The long pivot result (cells + totals) as the grid a person reads: rows × columns, totals last.

    Totals come from the compiler's own rows (aggregated from the data), never
    summed here: a distinct count or a rate does not add up.
    """
    lang = lang or i18n.lang()
    by_id = {c.id: c for c in columns}
    total = t("total")

    def label(dim_id: str, value) -> str:
        if i18n.is_missing(value):
            return EMPTY
        words = by_id[dim_id].value_label(value, lang)
        return str(words if words is not None else (int(value) if isinstance(value, float) and value.is_integer() else value))

    def key(row, dims, rolled) -> str:
        return total if rolled else " · ".join(label(d, row[d]) for d in dims)

    cells, row_order, col_order = {}, [], []
    for _, row in frame.iterrows():
        r = key(row, row_dims, bool(row["all_rows"])) if row_dims else total
        c = key(row, col_dims, bool(row["all_columns"])) if col_dims else total
        if not row_dims and not bool(row["all_rows"]):
            continue
        if not col_dims and not bool(row["all_columns"]):
            continue
        cells[(r, c)] = row[measure]
        if r not in row_order:
            row_order.append(r)
        if c not in col_order:
            col_order.append(c)
    rows_sorted = [r for r in row_order if r != total] + ([total] if total in row_order else [])
    cols_sorted = [c for c in col_order if c != total] + ([total] if total in col_order else [])
    head = " · ".join(title(by_id[d], lang) for d in row_dims) or title(by_id[measure], lang)
    out = pd.DataFrame({head: rows_sorted})
    for c in cols_sorted:
        out[c] = [cells.get((r, c)) for r in rows_sorted]
    return out
