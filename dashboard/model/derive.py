"""The model of a table nobody modelled, read off the catalog: it stays explorable with no code change.

Every column is a dimension (labelled by its pipeline.toml description);
measures are the row count and, per numeric column that is not an
identifier, its sum and average. The same defaults fill in the columns a
model file does not mention.
"""

from __future__ import annotations

from typing import Mapping

from dashboard.i18n import VOCABULARY, is_identifier
from dashboard.model.types import Dimension, Label, Measure, TableModel
from dashboard.warehouse import ColumnInfo, TableInfo

_WEEKDAYS = (("월", "Mon"), ("화", "Tue"), ("수", "Wed"), ("목", "Thu"), ("금", "Fri"), ("토", "Sat"), ("일", "Sun"))
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TIME_PREFERENCE = ("created_at", "issued_at", "joined_at", "updated_at")


def derived_values(derive: str | None) -> dict[str, Label]:
    """Korean and English names of the codes a derivation produces (weekday 1 → 월/Mon, month 3 → 3월/Mar)."""
    if derive == "weekday":  # ISO: Monday = 1
        return {str(i + 1): Label(ko, en) for i, (ko, en) in enumerate(_WEEKDAYS)}
    if derive == "month_of_year":
        return {str(i + 1): Label(f"{i + 1}월", en) for i, en in enumerate(_MONTHS_EN)}
    if derive == "hour":
        return {str(h): Label(f"{h}시", f"{h:02d}h") for h in range(24)}
    return {}


def vocabulary_values(name: str) -> dict[str, Label] | None:
    """The value labels dashboard/i18n.py already has for a column name (None when it has none)."""
    words = VOCABULARY.get(name)
    if words is None:
        return None
    return {code: Label(ko, en) for code, (ko, en) in words.items()}


def column_label(table: str, column: str, descriptions: Mapping[str, str]) -> Label:
    return Label.parse(descriptions.get(column, ""), column)


def column_dimension(table: str, col: ColumnInfo, descriptions: Mapping[str, str]) -> Dimension:
    return Dimension(
        table=table, name=col.name, column=col.name, column_type=col.type,
        label=column_label(table, col.name, descriptions), kind=col.kind,
        values=vocabulary_values(col.name) or {},
    )


def default_time(info: TableInfo) -> str | None:
    times = [c.name for c in info.columns if c.kind == "time"]
    return next((c for c in TIME_PREFERENCE if c in times), times[0] if times else None)


def default_measures(info: TableInfo, table_label: Label, descriptions: Mapping[str, str]) -> dict[str, Measure]:
    measures = {"count": Measure(info.name, "count", Label(f"{table_label.ko} 건수", f"{table_label.en} (count)"),
                                 agg="count")}
    for col in info.columns:
        if col.kind != "number" or is_identifier(col.name):
            continue
        label = column_label(info.name, col.name, descriptions)
        fmt = "krw" if col.name.endswith("_krw") else "number"
        measures[f"sum_{col.name}"] = Measure(info.name, f"sum_{col.name}", Label(f"{label.ko} 합계", f"Total {label.en}"),
                                              format=fmt, agg="sum", column=col.name)
        measures[f"avg_{col.name}"] = Measure(info.name, f"avg_{col.name}", Label(f"{label.ko} 평균", f"Average {label.en}"),
                                              format=fmt if fmt == "krw" else "decimal", agg="avg", column=col.name)
    return measures


def catalog_model(info: TableInfo, description: str, descriptions: Mapping[str, str],
                  primary_key: tuple[str, ...]) -> TableModel:
    """The model of `info` from the catalog alone (plus pipeline.toml's descriptions and key, when it has them)."""
    label = Label.parse(description, info.name)
    return TableModel(
        name=info.name, label=label, primary_key=primary_key, time=default_time(info),
        amount=next((c.name for c in info.columns if c.name.endswith("_krw") and c.kind == "number"), None),
        search=(), relationships={},
        measures=default_measures(info, label, descriptions),
        dimensions={c.name: column_dimension(info.name, c, descriptions) for c in info.columns},
        source="catalog", columns=tuple((c.name, c.type) for c in info.columns),
    )
