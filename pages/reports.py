"""Reports: the curated sql/ files — search, parameters, totals, chart, table, downloads, a shareable link.

Layout and widgets only. Parsing lives in dashboard/reports.py, binding and
running in dashboard/report_runner.py, the reading in dashboard/warehouse.py;
periods use the app's one date control (dashboard/dates.py) and the table is
shown and saved through the same column views (dashboard/tables.py). The URL
is the state: `?report=<file name>&<param>=<value>…&sort=<column>&desc=1`
reproduces a report with its parameters and order. A broken file shows its
name, line and problem here, and every other report keeps working.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import streamlit as st

from dashboard import charts, dates, downloads, i18n, kpis, links, tables
from dashboard.i18n import pick, t
from dashboard.page_guard import page_guard
from dashboard.report_runner import (
    as_period,
    chart_frame,
    chart_problem,
    choice_options,
    reports_dir,
    run_report,
    seoul_today,
    totals_problem,
    values_from_url,
    values_to_url,
)
from dashboard.access.reports import missing_tables, needs, offered_reports
from dashboard.reports import BrokenReport, Param, Report, ReportError, load_reports
from dashboard.warehouse import app_warehouse

wh = app_warehouse()
st.title(t("page_reports"))
links.copy_link_button()


def seed(key: str, value) -> None:
    """A widget's starting value from the URL, once (afterwards the widget owns it)."""
    if key not in st.session_state:
        st.session_state[key] = value


warehouse_call = page_guard(wh, catch_all=False)


folder = reports_dir(wh.config)
found = load_reports(folder)
every = [r for r in found if isinstance(r, Report)]
good = offered_reports(wh, every)  # a report reading what the person's role may not see is not offered
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
url = {k: v[-1] for k, v in links.page_params().items()}
wanted = url.get("report")
by_slug = {r.slug: r for r in good}
if wanted and wanted not in by_slug and any(r.slug == wanted for r in every):
    st.warning(t("no_access_report"))
elif wanted and wanted not in by_slug:
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
reads_list = [f"{tb}.{c}" if c != "*" else tb for tb, c in needs(report, wh.raw_catalog())]
if reads_list:
    st.caption(t("report_reads", columns=", ".join(reads_list)))

# ── parameters ─────────────────────────────────────────────────────────────
today = seoul_today()
own_url = url if url.get("report") == slug else {}
from_url, problems = values_from_url(report, own_url, today)
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
blocked = False  # a period whose start is after its end: said under its control, nothing is run
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
            period = dates.period_picker(key, label_of(p), as_period(from_url[p.name]), today=today, container=box)
            values[p.name] = period
            blocked = blocked or period.reversed
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
            if p.options_sql:  # values from the data: in the order people read them (a header's options keep theirs)
                options = sorted(options, key=lambda v, n=p.name: option_label(n, v))
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

# ── the URL follows the parameters (and the table's order) ─────────────────
sort_key, desc_key = k + "sort", k + "desc"
seed(sort_key, own_url.get("sort", ""))
seed(desc_key, own_url.get("desc") in ("1", "true"))


def url_state() -> dict[str, str]:
    out = values_to_url(report, values)
    if st.session_state.get(sort_key):
        out["sort"] = st.session_state[sort_key]
        if st.session_state.get(desc_key):
            out["desc"] = "1"
    return out


new_params = url_state()
links.set_query(new_params)
st.session_state["r_url_slug"] = slug
if blocked:
    st.stop()

# ── the tables it reads, then run ──────────────────────────────────────────
catalog = wh.raw_catalog()
waiting = [] if catalog.missing else missing_tables(report, catalog)
if waiting:  # the pipeline's first load, or a table nobody exports: say which, not DuckDB's "does not exist"
    st.info(t("report_waits_for_tables", tables=", ".join(waiting)), icon=":material/hourglass_empty:")
    st.stop()
try:
    result = warehouse_call(run_report, report, values, wh.query)
except ReportError as err:
    st.error(str(err), icon=":material/error:")
    st.caption(pick("이 보고서 파일을 고치면 바로 반영됩니다. 다른 보고서는 그대로 쓸 수 있습니다. / "
                    "Fix the file and reload; the other reports keep working."))
    st.stop()

views = tables.views_for_frame(result)
labels = {v.name: v.label for v in views}

# ── summary: the row count and the report's totals, once, above the table ──
problem = totals_problem(report, result)
if problem:
    st.warning(problem)
totals = [c for c in report.totals if not problem]
tiles = [(t("summary_rows"), i18n.fmt_number(len(result)), None)]
across = min(kpis.TILES_PER_ROW, 1 + len(totals))  # rows of at most three: a total is never cut to "6,958…"
for name in totals:
    total = result[name].sum()
    shown, exact = kpis.tile_krw(total, lang, across) if name.endswith("_krw") else (i18n.fmt_number(total), None)
    tiles.append((t("summary_total", column=labels[name]), shown, exact))
for start in range(0, len(tiles), across):
    for box, (label, shown, exact) in zip(st.columns(across), tiles[start:start + across]):
        box.metric(label, shown, help=exact, border=True)

# ── chart ──────────────────────────────────────────────────────────────────
if report.chart is not None and not result.empty:
    problem = chart_problem(report, result)
    if problem:
        st.warning(problem)
    else:
        try:
            spec, frame = chart_frame(report, values, result, wh.query)
            fig = charts.figure(frame, spec, labels)
            if report.chart.kind == "heatmap":
                fig.update_yaxes(autorange="reversed")  # rows top-down in the report's order (Monday first)
            st.plotly_chart(fig, key=f"r_chart_{slug}", width="stretch")
        except ReportError as exc:  # already names the file and the chart's line
            st.warning(str(exc))
        except Exception as exc:  # noqa: BLE001 - a chart that cannot be drawn must not hide the table
            st.warning(f"{report.path.rsplit('/', 1)[-1]}:{report.chart.line}: {str(exc).splitlines()[0]}")
elif result.empty:
    st.info(t("chart_empty"))

# ── table, in the order the person chose ───────────────────────────────────
columns = [str(c) for c in result.columns]
if st.session_state[sort_key] not in ["", *columns]:
    st.session_state[sort_key] = ""
report_order = pick("보고서 순서 / Report order")
c1, c2 = st.columns([3, 1])
sort = c1.selectbox(t("sort_by"), ["", *columns], key=sort_key,
                    format_func=lambda v: labels.get(v, v) if v else report_order) or None
desc = c2.toggle(t("descending"), key=desc_key)
links.set_query(url_state())
ordered = tables.sort_frame(result, sort, desc, views)
cap = wh.app.max_display_rows
tables.show(ordered.head(cap), views, key=f"r_rows_{slug}")
if len(ordered) > cap:
    st.caption(t("shown_rows", shown=i18n.fmt_number(cap), total=i18n.fmt_number(len(ordered))))

# ── downloads ──────────────────────────────────────────────────────────────
described = []
for p in report.params:
    v = values[p.name]
    if p.kind == "daterange":
        text = as_period(v).describe()
    elif v is None or v == "":
        text = pick("전체 / All")
    elif p.kind == "date":
        text = v.isoformat()
    else:
        text = option_label(p.name, v) if isinstance(v, str) else i18n.fmt_number(v)
    described.append(f"{label_of(p)}: {text}")
dated = []
for p in report.params:
    if p.kind == "daterange":
        period = as_period(values[p.name])
        dated += [period.start.isoformat(), period.end.isoformat()]
    elif p.kind == "date":
        dated.append(values[p.name].isoformat())
st.subheader(t("download"))
downloads.download_buttons(
    lambda: pa.Table.from_pandas(ordered.head(wh.app.max_download_rows), preserve_index=False),
    views,
    basename="_".join([slug, *dated]),
    filters_text=described,
    total_rows=len(result),
    max_rows=wh.app.max_download_rows,
    key=f"dl_{slug}",
    title=report.title(lang),
    order_note=tables.sort_caption(sort, desc, views, report_order),
)

# ── send by e-mail: a subscription to this report with these parameters (dashboard/subscriptions/form.py) ──
from dashboard.subscriptions.form import send_by_email  # noqa: E402

send_by_email(report, values, wh.config)
