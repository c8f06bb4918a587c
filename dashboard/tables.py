"""What a result table looks like — on screen and in the files people take away, the same way.

Every table the app shows (Explore's rows, a report's result, the Pipeline
page's lists) is described by a list of `ColumnView`s: the column's name in
the data, its label in the current language and its kind. The same list
drives

- the screen (`show`): labelled headers, vocabulary codes as words
  (`auto_charge` → 자동충전 / Auto charge), ids as written (7056, sorted as
  numbers), money with separators, "—" for a missing value;
- the downloads (`file_table`, used by dashboard/downloads.py): the same
  headers and words — or, for analysts who ask, the stored codes and column
  names.

So what someone sees is what they download, in the language they chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import streamlit as st

from dashboard import i18n
from dashboard.i18n import EMPTY, t

KINDS = ("id", "number", "date", "time", "text", "bool")


@dataclass(frozen=True)
class ColumnView:
    name: str  # the column in the data (what scripts and analysts use)
    label: str  # its header on screen and in labelled files, in the current language
    kind: str  # one of KINDS
    coded: bool = False  # values are vocabulary codes, shown as words


# ───────────────────────────────────────────────────────────── describing ──


def kind_of(name: str, base: str, is_date: bool = False) -> str:
    """A column's display kind from its data kind (time | number | bool | text) and name."""
    if base == "number":
        return "id" if i18n.is_identifier(name) else "number"
    if base == "time":
        return "date" if is_date else "time"
    return base if base in ("bool", "text") else "text"


def _frame_base(series: pd.Series) -> tuple[str, bool]:
    if pd.api.types.is_bool_dtype(series.dtype):
        return "bool", False
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "number", False
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series.dropna()
        whole_days = getattr(series.dt, "tz", None) is None and bool((values == values.dt.normalize()).all())
        return "time", whole_days
    values = series.dropna()
    if len(values) and all(isinstance(v, (date, datetime)) for v in values.head(50)):  # DuckDB DATE via Arrow
        return "time", not any(isinstance(v, datetime) for v in values.head(50))
    return "text", False


def views(columns: Iterable[tuple[str, str, bool]], descriptions: Mapping[str, str] | None = None) -> list[ColumnView]:
    """Views for (name, data kind, is_date) triples; labels from `descriptions` (pipeline.toml) or i18n.

    Two columns that would share a label get their names added, so no header is ambiguous.
    """
    descriptions = descriptions or {}
    out: list[ColumnView] = []
    seen: set[str] = set()
    for name, base, is_date in columns:
        kind = kind_of(name, base, is_date)
        label = i18n.column_label(name, descriptions.get(name, ""))
        if label in seen:
            label = f"{label} ({name})"
        seen.add(label)
        out.append(ColumnView(name, label, kind, coded=kind == "text" and i18n.has_value_labels(name)))
    return out


def views_for_frame(frame: pd.DataFrame, descriptions: Mapping[str, str] | None = None) -> list[ColumnView]:
    """Views for a result frame (a report's result, a page's own list)."""
    return views(((str(c), *_frame_base(frame[c])) for c in frame.columns), descriptions)


def views_for_table(info, descriptions: Mapping[str, str] | None = None) -> list[ColumnView]:
    """Views for a warehouse table (dashboard.warehouse.TableInfo), labelled from its descriptions."""
    return views(((c.name, c.kind, c.is_date) for c in info.columns), descriptions)


def by_name(columns: Sequence[ColumnView]) -> dict[str, ColumnView]:
    return {c.name: c for c in columns}


# ───────────────────────────────────────────────────────────────── screen ──


def _as_ids(series: pd.Series) -> pd.Series:
    """Whole numbers as nullable integers (so 7056.0 with a NULL beside it shows 7056, sorts as a number)."""
    if pd.api.types.is_integer_dtype(series.dtype):
        return series
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.dropna()
        if (values == values.round()).all():
            return series.astype("Int64")
    return series


def screen_frame(frame: pd.DataFrame, columns: Sequence[ColumnView]) -> pd.DataFrame:
    """The frame as shown: labelled headers, codes as words, ids as integers, yes/no as words."""
    out = {}
    for c in columns:
        s = frame[c.name]
        if c.coded:  # each code looked up once, not once per row (a lookup reads the session's language)
            words = {v: i18n.code_label(c.name, v) for v in s.dropna().unique() if isinstance(v, str)}
            s = s.map(lambda v, words=words: words.get(v, v) if isinstance(v, str) else v)
        elif c.kind == "bool":
            s = s.map(lambda v: t("true" if v else "false") if isinstance(v, (bool, np.bool_)) else v)
        elif c.kind == "id":
            s = _as_ids(s)
        out[c.label] = s.reset_index(drop=True)
    return pd.DataFrame(out)


def column_config(columns: Sequence[ColumnView]) -> dict:
    """st.dataframe column settings keyed by label; the header's tooltip names the stored column."""
    config = {}
    for c in columns:
        help_text = f"`{c.name}`" if c.label != c.name else None
        if c.kind == "id":
            config[c.label] = st.column_config.NumberColumn(c.label, format="%d", help=help_text)
        elif c.kind == "number":
            config[c.label] = st.column_config.NumberColumn(c.label, format="localized", help=help_text)
        elif c.kind == "date":
            config[c.label] = st.column_config.DateColumn(c.label, format="YYYY-MM-DD", help=help_text)
        elif c.kind == "time":
            config[c.label] = st.column_config.DatetimeColumn(c.label, format="YYYY-MM-DD HH:mm:ss", help=help_text)
        else:
            config[c.label] = st.column_config.TextColumn(c.label, help=help_text)
    return config


def show(frame: pd.DataFrame, columns: Sequence[ColumnView], key: str, **kwargs) -> None:
    """st.dataframe of the labelled frame; a missing value shows as "—", never as "None".

    The table sits in a container keyed `key` (class `st-key-<key>` in the page), so a
    browser test can find this table among others.
    """
    with st.container(key=key):
        st.dataframe(screen_frame(frame, columns), column_config=column_config(columns), hide_index=True,
                     width="stretch", key=f"{key}_grid", placeholder=EMPTY, **kwargs)


def sort_frame(frame: pd.DataFrame, by: str | None, desc: bool, columns: Sequence[ColumnView]) -> pd.DataFrame:
    """Rows in the order the page chose: coded columns by their words in the current language, missing last."""
    if not by or by not in frame.columns:
        return frame
    view = by_name(columns).get(by)
    key = None
    if view is not None and view.coded:
        key = lambda s: s.map(lambda v: i18n.code_label(by, v) if isinstance(v, str) else v)  # noqa: E731
    return frame.sort_values(by, ascending=not desc, na_position="last", kind="stable", key=key).reset_index(drop=True)


def sort_caption(by: str | None, desc: bool, columns: Sequence[ColumnView], default: str) -> str:
    """"금액(원) ↓" — how the table is ordered, for the note beside the downloads."""
    view = by_name(columns).get(by) if by else None
    if view is None:
        return default
    return f"{view.label} {'↓' if desc else '↑'}"


# ────────────────────────────────────────────────────────────────── files ──


def _words(column: pa.ChunkedArray | pa.Array, name: str) -> pa.Array:
    """Codes → words through the column's dictionary: each distinct code is looked up once (fast on millions of rows)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    codes = array.dictionary.to_pylist()
    words = pa.array([i18n.code_label(name, c) if isinstance(c, str) else c for c in codes], pa.string())
    return pa.DictionaryArray.from_arrays(array.indices, words).cast(pa.string())


def file_table(table: pa.Table, columns: Sequence[ColumnView], raw: bool = False) -> pa.Table:
    """The rows as a file holds them: screen headers and words, or (`raw`) stored names and codes.

    Columns not described by `columns` are left out, so a file never carries
    more than the screen offers. Numbers stay numbers and times stay times in
    both forms; ids that arrived as floats (a NULL among them) become integers.
    """
    arrays, names = [], []
    for c in columns:
        if c.name not in table.column_names:
            continue
        col = table.column(c.name)
        if c.kind == "id" and pa.types.is_floating(col.type):
            try:
                col = col.cast(pa.int64())  # safe cast: fails (and is kept) if any id has a fraction
            except pa.ArrowInvalid:
                pass
        if c.kind == "date" and pa.types.is_timestamp(col.type):
            col = col.cast(pa.date32())  # a calendar day, not "2026-11-01 00:00:00"
        if not raw:
            if c.coded and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type)):
                col = _words(col, c.name)
            elif c.kind == "bool" and pa.types.is_boolean(col.type):
                col = pc.if_else(col, t("true"), t("false"))
        arrays.append(col)
        names.append(c.name if raw else c.label)
    return pa.table(arrays, names=names)


def file_kinds(columns: Sequence[ColumnView], raw: bool = False) -> dict[str, str]:
    """File header → display kind (Excel formats ids without separators)."""
    return {(c.name if raw else c.label): c.kind for c in columns}
