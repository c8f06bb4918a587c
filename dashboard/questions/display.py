"""How a compiled column's values read on screen: formats and value labels in the current language.

The compiler says what each output column is (`Column.format`, `.values`);
this turns one value into text the way the rest of the app does
(dashboard/i18n.py), so pages and downloads agree.
"""

from __future__ import annotations

import math
from typing import Any

from dashboard import i18n
from dashboard.questions.compile import OTHERS, Column


def format_value(column: Column, value: Any, lang: str | None = None) -> str:
    lang = lang or i18n.lang()
    if i18n.is_missing(value):
        return i18n.EMPTY
    label = column.value_label(value, lang)
    if label is not None:
        return label
    if column.format == "krw":
        with i18n.language(lang):
            return i18n.fmt_krw(value)
    if column.format == "pct":
        return f"{value:,.1f}%" if isinstance(value, (int, float)) and math.isfinite(value) else str(value)
    if column.format == "decimal":
        return f"{value:,.2f}"
    if column.format == "number" and isinstance(value, (int, float)):
        return i18n.fmt_number(value)
    if column.kind == "others":
        return OTHERS.text(lang) if value else ""
    return i18n.value_label(column.source.split(".")[-1] if column.source else column.id, value)


def others_label(lang: str | None = None) -> str:
    """What the "others" row shows in place of its dimension values."""
    return OTHERS.text(lang or i18n.lang())


def describe_filter(model, f, lang: str | None = None) -> str:
    """A filter as a person reads it — `업종 다음 중 하나 카페, 온라인` — for breadcrumbs and file notes."""
    from dashboard.dates import parse_period, today_seoul
    from dashboard.questions.filters import op_label

    lang = lang or i18n.lang()
    dim = model.dimension(f.dimension)
    with i18n.language(lang):
        if f.op == "during":
            try:
                words = parse_period(f.values[0], today_seoul()).describe()
            except ValueError:
                words = f.values[0]
        else:
            words = ", ".join(dim.value_label(v, lang) or v for v in f.values)
        return " ".join(part for part in (dim.label.text(lang), op_label(f.op), words) if part)


def describe_measure_filter(model, f, lang: str | None = None) -> str:
    """`결제 건수 ≥ 50`."""
    from dashboard.questions.filters import op_label

    lang = lang or i18n.lang()
    with i18n.language(lang):
        return f"{model.measure(f.measure).label.text(lang)} {op_label(f.op)} {i18n.fmt_number(f.value)}"
