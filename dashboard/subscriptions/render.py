"""A report's result as a mail carries it: the attachment and a short table, in the subscriber's language.

The same words as the screen and the download buttons: columns are described
by dashboard/tables.py (`views_for_frame`) and files are built by
dashboard/downloads.py (`file_bytes`), both inside `i18n.language(lang)`,
so the Excel headers say 금액(원) and the channel says 자동충전 for a Korean
subscriber, "Amount (KRW)" and "Auto charge" for an English one.

Parameters are stored as the report page's URL tokens ("last_week",
"2026-11-01..2026-11-30", "card") and resolved here, on the day of the
send (`today`), by the report page's own parser (report_runner.values_from_url).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping
from urllib.parse import urlencode

import pandas as pd
import pyarrow as pa

from dashboard import downloads, i18n, tables
from dashboard.report_runner import QueryFn, as_period, run_report, values_from_url, values_to_url
from dashboard.reports import Param, Report

MIME = {"xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"), "csv": ("text", "csv")}
_UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


@dataclass
class Rendered:
    title: str
    rows: int
    filters_text: list[str]
    file_name: str
    file_bytes: bytes
    mime: tuple[str, str]
    text_table: str
    html_table: str
    report_url: str
    shown: int = 0  # rows in the body's table
    problems: list[str] = field(default_factory=list)


def param_label(p: Param, lang: str) -> str:
    if p.label_ko or p.label_en:
        return (p.label_en if lang == "en" else p.label_ko) or p.name
    return p.name


def describe_values(report: Report, values: Mapping[str, Any], lang: str) -> list[str]:
    """"기간: 2026-11-23 – 2026-11-29 (지난주)" lines, as the page writes them beside its downloads."""
    out = []
    with i18n.language(lang):
        for p in report.params:
            v = values[p.name]
            if p.kind == "daterange":
                text = as_period(v).describe()
            elif v is None or v == "":
                text = i18n.pick("전체 / All", lang)
            elif p.kind == "date":
                text = v.isoformat()
            else:
                text = i18n.value_label(p.name, v) if isinstance(v, str) else i18n.fmt_number(v)
            out.append(f"{param_label(p, lang)}: {text}")
    return out


def file_name(title: str, report: Report, values: Mapping[str, Any], fmt: str) -> str:
    """`일별 충전 금액_2026-11-23_2026-11-29.xlsx`: the title in the subscriber's language and the dates used."""
    dated = []
    for p in report.params:
        if p.kind == "daterange":
            period = as_period(values[p.name])
            dated += [period.start.isoformat(), period.end.isoformat()]
        elif p.kind == "date":
            dated.append(values[p.name].isoformat())
    stem = _UNSAFE_IN_NAME.sub("_", "_".join([title, *dated])).strip(" ._") or report.slug
    return f"{stem}.{fmt}"


def report_url(public_url: str, report: Report, tokens: Mapping[str, str], lang: str) -> str:
    """The report page with the subscription's own tokens (so "last_week" stays relative when opened later)."""
    args = {"report": report.slug, **{k: v for k, v in tokens.items() if k in {p.name for p in report.params}}, "lang": lang}
    return f"{public_url}/reports?{urlencode(args)}"


def render(report: Report, tokens: Mapping[str, str], *, lang: str, fmt: str, today: date, query: QueryFn,
           body_rows: int, public_url: str) -> Rendered:
    """Run the report with the tokens resolved for `today` and build what the mail carries."""
    values, problems = values_from_url(report, tokens, today)
    result = run_report(report, values, query)
    with i18n.language(lang):
        title = report.title(lang)
        views = tables.views_for_frame(result)
        filters = describe_values(report, values, lang)
        arrow = pa.Table.from_pandas(result, preserve_index=False)
        data = downloads.file_bytes(fmt, arrow, views, False, filters, title)
        text, html_table = body_tables(result, views, body_rows)
    return Rendered(
        title=title, rows=len(result), filters_text=filters, file_name=file_name(title, report, values, fmt),
        file_bytes=data, mime=MIME[fmt], text_table=text, html_table=html_table,
        report_url=report_url(public_url, report, {**values_to_url(report, values), **tokens}, lang),
        shown=min(len(result), body_rows), problems=problems,
    )


def _cell(view: tables.ColumnView, value: Any) -> str:
    if i18n.is_missing(value):
        return i18n.EMPTY
    if view.name.endswith("_krw") and isinstance(value, (int, float)):
        return i18n.fmt_krw(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return i18n.value_label(view.name, value)


def body_tables(frame: pd.DataFrame, views: list[tables.ColumnView], limit: int) -> tuple[str, str]:
    """The first `limit` rows as aligned text and as an HTML table, with the screen's headers and words."""
    head = frame.head(limit)
    headers = [v.label for v in views]
    cells = [[_cell(v, row[v.name]) for v in views] for _, row in head.iterrows()]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths)).rstrip()

    text = "\n".join([line(headers), line(["-" * w for w in widths]), *[line(r) for r in cells]]) if cells else ""
    th = "".join(f'<th style="text-align:left;padding:2px 8px;border-bottom:1px solid #999">{html.escape(h)}</th>' for h in headers)
    rows = "".join(
        "<tr>" + "".join(f'<td style="padding:2px 8px">{html.escape(c)}</td>' for c in r) + "</tr>" for r in cells)
    html_table = f'<table style="border-collapse:collapse;font-size:13px"><tr>{th}</tr>{rows}</table>' if cells else ""
    return text, html_table


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x1100 else 1 for ch in text)  # Hangul takes two columns in a fixed font
