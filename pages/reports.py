"""Reports: the curated sql/ files — search, parameters, table, chart, downloads, a shareable link.

Layout and widgets only. Parsing lives in dashboard/reports.py, binding and
running in dashboard/report_runner.py, the reading in dashboard/warehouse.py.
The URL is the state: `?report=<file name>&<param>=<value>…` reproduces a
report with its parameters. A broken file shows its name, line and problem
here, and every other report keeps working.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import streamlit as st

from dashboard import charts, downloads, i18n
from dashboard.i18n import pick, t
from dashboard.report_runner import (
    chart_frame,
    chart_problem,
    choice_options,
    column_labels,
    reports_dir,
    run_report,
    seoul_today,
    values_from_url,
    value_labeller,
    values_to_url,
)
from dashboard.reports import BrokenReport, Param, Report, ReportError, load_reports
from dashboard.page_guard import page_guard
from dashboard.warehouse import app_warehouse

wh = app_warehouse()
st.title(t("page_reports"))


def seed(key: str, value) -> None:
    """A widget's starting value from the URL, once (afterwards the widget owns it)."""
    if key not in st.session_state:
        st.session_state[key] = value


warehouse_call = page_guard(wh, catch_all=False)


folder = reports_dir(wh.config)
found = load_reports(folder)
good = [r for r in found if isinstance(r, Report)]
broken = [r for r in found if isinstance(r, BrokenReport)]
lang = i18n.lang()

if broken:
    with st.expander(pick(f"문제가 있는 보고서 {len(broken)}개 / {len(broken)} report file(s) with problems"), expanded=True):
        for b in broken:
            st.error(str(b.error), icon=":material/error:")
if not good:
    st.info(pick(f"보고서가 없습니다 — {folder} 폴더에 .sql 파일을 추가하세요. / No reports — add .sql files to {folder}."))
    st.stop()

# ── which report ───────────────────────────────────────────────────────────
url = {k: st.query_params.get_all(k)[-1] for k in st.query_params}
wanted = url.get("report")
by_slug = {r.slug: r for r in good}
if wanted and wanted not in by_slug:
    st.warning(pick(f"보고서 '{wanted}' 가 없습니다 — 목록에서 골라 주세요. / There is no report '{wanted}' — pick one from the list."))
search = st.text_input(pick("보고서 검색 (제목) / Search reports (title)"), key="r_search",
                       placeholder=pick("예: 충전, 가맹점, dormant / e.g. top-ups, merchant, 휴면"))
matching = [r for r in good if r.matches(search)]
if not matching:
    st.info(pick("검색어에 맞는 보고서가 없습니다. / No report matches the search."))
    st.stop()
slugs = [r.slug for r in matching]
if wanted in by_slug and st.session_state.get("r_slug") != wanted and st.session_state.get("r_url_slug") != wanted:
    st.session_state["r_slug"] = wanted  # a link to another report (e.g. from the Overview) wins once
st.session_state["r_url_slug"] = wanted
if st.session_state.get("r_slug") not in slugs:
    st.session_state["r_slug"] = slugs[0]
slug = st.selectbox(pick("보고서 / Report"), slugs, key="r_slug",
                    format_func=lambda s: f"{by_slug[s].title(lang)} — {by_slug[s].title('en' if lang == 'ko' else 'ko')}")
report = by_slug[slug]
st.subheader(report.title(lang))
if report.description:
    st.caption(pick(report.description))

# ── parameters ─────────────────────────────────────────────────────────────
today = seoul_today()
from_url, problems = values_from_url(report, url if url.get("report") == slug else {}, today)
for message in problems:
    st.warning(message)


def label_of(p: Param) -> str:
    if p.label_ko or p.label_en:
        return (p.label_en if lang == "en" else p.label_ko) or p.name
    return p.name


def option_label(name: str, value: str) -> str:
    if value == "":
        return pick("전체 / All")
    if name == "grain" and value in ("hour", "day", "week", "month"):
        return t("bucket_" + value)
    return i18n.value_label(name, value)


values: dict[str, object] = {}
k = f"r.{slug}."
if report.params:
    widths = [2 if p.kind == "daterange" else 1 for p in report.params]
    cols = st.columns(widths if sum(widths) <= 5 else min(4, len(report.params)))
    for i, p in enumerate(report.params):
        box = cols[i % len(cols)]
        key = k + p.name
        if p.kind == "date":
            seed(key, from_url[p.name])
            picked = box.date_input(label_of(p), key=key, format="YYYY-MM-DD")
            values[p.name] = picked if isinstance(picked, date) else from_url[p.name]
        elif p.kind == "daterange":
            seed(key, from_url[p.name])
            picked = box.date_input(label_of(p), key=key, format="YYYY-MM-DD")
            if isinstance(picked, (tuple, list)) and len(picked) == 2:
                values[p.name] = (min(picked), max(picked))
            else:
                box.caption(pick("종료일도 골라 주세요 / pick the end date too"))
                values[p.name] = from_url[p.name]
        elif p.kind == "number":
            cast = float if p.is_float else int
            seed(key, cast(from_url[p.name]))
            kw = {name: cast(v) for name, v in (("min_value", p.minimum), ("max_value", p.maximum), ("step", p.step)) if v is not None}
            values[p.name] = cast(box.number_input(label_of(p), key=key, **kw))
        elif p.kind == "text":
            seed(key, from_url[p.name])
            values[p.name] = box.text_input(label_of(p), key=key, max_chars=200)
        elif p.kind == "choice":
            try:
                options = warehouse_call(choice_options, p, wh.query)  # busy / time-out / no file: message + stop
            except Exception as exc:  # noqa: BLE001 - a bad from= query is the report's problem, shown with its line
                st.error(f"{report.path.rsplit('/', 1)[-1]}:{p.line}: {p.name} from= query failed: {str(exc).splitlines()[0]}")
                options = []
            current = from_url[p.name]
            if current is not None and current not in options:
                options.append(current)
            choices = options if p.required else ["", *options]
            seed(key, current if current is not None else (choices[0] if p.required else ""))
            if st.session_state[key] not in choices:
                st.session_state[key] = choices[0] if choices else ""
            picked = box.selectbox(label_of(p), choices, key=key,
                                   format_func=lambda v, n=p.name: option_label(n, v))
            values[p.name] = picked or None

# ── the URL follows the parameters ─────────────────────────────────────────
new_params = values_to_url(report, values)
if i18n.LANG_KEY in st.query_params:
    new_params[i18n.LANG_KEY] = st.query_params[i18n.LANG_KEY]
if {k2: st.query_params.get_all(k2)[-1] for k2 in st.query_params} != new_params:
    st.query_params.from_dict(new_params)
    st.session_state["r_url_slug"] = slug

# ── run ────────────────────────────────────────────────────────────────────
try:
    result = warehouse_call(run_report, report, values, wh.query)
except ReportError as err:
    st.error(str(err), icon=":material/error:")
    st.caption(pick("이 보고서 파일을 고치면 바로 반영됩니다. 다른 보고서는 그대로 쓸 수 있습니다. / "
                    "Fix the file and reload; the other reports keep working."))
    st.stop()

labels = column_labels(list(result.columns), pick)
st.caption(t("rows_n", n=i18n.fmt_number(len(result))))

if report.chart is not None and not result.empty:
    problem = chart_problem(report, result)
    if problem:
        st.warning(problem)
    else:
        named = result.copy()
        for name in named.columns:
            labeller = value_labeller(name, pick)
            if labeller:
                named[name] = named[name].map(labeller)
        spec, frame = chart_frame(report, named)
        try:
            fig = charts.figure(frame, spec, labels)
            if report.chart.kind == "heatmap":
                fig.update_yaxes(autorange="reversed")  # rows top-down in the report's order (Monday first)
            st.plotly_chart(fig, key=f"r_chart_{slug}", width="stretch")
        except Exception as exc:  # noqa: BLE001 - a chart that cannot be drawn must not hide the table
            st.warning(f"{report.path.rsplit('/', 1)[-1]}:{report.chart.line}: {str(exc).splitlines()[0]}")
elif result.empty:
    st.info(t("chart_empty"))

cap = wh.app.max_display_rows
shown = result.head(cap).copy()
for name in shown.columns:
    labeller = value_labeller(name, pick)
    if labeller:
        shown[name] = shown[name].map(labeller)
    elif i18n.has_value_labels(name):
        shown[name] = shown[name].map(lambda v, name=name: i18n.value_label(name, v))
config = {}
for name in shown.columns:
    if pd.api.types.is_numeric_dtype(shown[name]):
        config[name] = st.column_config.NumberColumn(labels[name], format="localized")
    elif pd.api.types.is_datetime64_any_dtype(shown[name]):
        is_day = (shown[name].dropna().dt.normalize() == shown[name].dropna()).all()
        config[name] = st.column_config.DatetimeColumn(labels[name], format="YYYY-MM-DD" if is_day else "YYYY-MM-DD HH:mm")
    else:
        config[name] = st.column_config.Column(labels[name])
st.dataframe(shown, column_config=config, hide_index=True, width="stretch", key=f"r_rows_{slug}")
if len(result) > cap:
    st.caption(t("shown_rows", shown=i18n.fmt_number(cap), total=i18n.fmt_number(len(result))))

# ── downloads ──────────────────────────────────────────────────────────────
described = []
for p in report.params:
    v = values[p.name]
    if p.kind == "daterange":
        text = f"{v[0].isoformat()} – {v[1].isoformat()}"
    elif v is None or v == "":
        text = pick("전체 / All")
    elif p.kind == "date":
        text = v.isoformat()
    else:
        text = i18n.value_label(p.name, v) if isinstance(v, str) else i18n.fmt_number(v)
    described.append(f"{label_of(p)}: {text}")
basename = "_".join([slug] + [new_params[p.name].replace("..", "_") for p in report.params if p.kind in ("date", "daterange")])
st.subheader(t("download"))
downloads.download_buttons(
    lambda: pa.Table.from_pandas(result.head(wh.app.max_download_rows), preserve_index=False),
    basename=basename,
    filters_text=described,
    total_rows=len(result),
    max_rows=wh.app.max_download_rows,
    key=f"dl_{slug}",
    title=report.title(lang),
)
st.caption(t("share_link"))
