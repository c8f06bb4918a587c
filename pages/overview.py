"""Overview (the landing page): today's and this month's KPIs, a 30-day trend, the way into the reports.

Layout only: the numbers come from dashboard/kpis.py through the one reader
(dashboard/warehouse.py). Meant to be read in five seconds: four numbers per
row, each with its change against the same stretch of the period before.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from dashboard import charts, freshness, i18n, kpis
from dashboard.charts import ChartSpec
from dashboard.i18n import pick, t
from dashboard.report_runner import reports_dir, seoul_today
from dashboard.access.enforce import policy_now
from dashboard.access.reports import offered_reports
from dashboard.reports import load_reports
from dashboard.page_guard import page_guard
from dashboard.warehouse import app_warehouse

REPORTS_PAGE = str(Path(__file__).resolve().parent / "reports.py")
FEATURED = ("daily_topups", "top_merchants", "payments_by_category_region", "dormant_cards_with_balance",
            "active_cards_weekly", "balance_reconciliation_daily")

wh = app_warehouse()
st.title(pick("개요 / Overview"))


guarded = page_guard(wh)


catalog = guarded(wh.catalog)
if catalog.empty:
    st.info(t("no_data"))
    st.stop()

freshness.provisional_note()  # during a first load or a catch-up: these figures are partial, and say so
now = datetime.now(kpis.SEOUL)
available = {name: info.column_names for name, info in catalog.tables.items()}  # what the role sees
numbers = guarded(kpis.kpis, wh.query, available, now)
everything = policy_now(wh.config).everything

def money(value: float) -> str:
    return kpis.compact_krw(value, i18n.lang())


CARDS = [  # measure, label, formatter, count measure shown under it
    ("topups_krw", "충전 금액 / Top-ups", money, "topups"),
    ("payments_krw", "결제 금액 / Payments", money, "payments"),
    ("refunds_krw", "환불 금액 / Refunds", money, None),
    ("active_cards", "결제한 카드 / Active cards", i18n.fmt_number, None),
]
HEADINGS = {
    "today": ("오늘 (어제 같은 시각까지와 비교) / Today (vs yesterday to this time)", "어제 대비 / vs yesterday"),
    "month": ("이번 달 (지난달 같은 날짜까지와 비교) / This month (vs last month to the same day)", "지난달 대비 / vs last month"),
}
for period in ("today", "month"):
    heading, versus = HEADINGS[period]
    st.subheader(pick(heading))
    # A role that may not see a figure's table or columns does not get its card (not "—": that means "not landed yet")
    shown = CARDS if everything else [c for c in CARDS if c[0] in numbers[period]]
    if not shown:
        st.caption(i18n.EMPTY)
        continue
    cols = st.columns(len(CARDS))
    for col, (measure, label, fmt, count_measure) in zip(cols, shown):
        values = numbers[period].get(measure)
        if values is None:
            col.metric(pick(label), "—", help=pick("아직 이 테이블이 없습니다 / this table has not landed yet"))
            continue
        current, previous = values["current"], values["previous"]
        pct = kpis.change_pct(current, previous)
        delta = None if pct is None else f"{pct:+.1f}% {pick(versus)}"
        note = f"{pick(versus)}: {fmt(previous)}"
        if count_measure and count_measure in numbers[period]:
            note = t("n_items", n=i18n.fmt_number(numbers[period][count_measure]["current"])) + " · " + note
        exact = i18n.fmt_krw(current) if measure.endswith("_krw") else i18n.fmt_number(current)
        col.metric(pick(label), fmt(current), delta=delta, border=True, help=exact,
                   delta_color="inverse" if measure == "refunds_krw" else "normal")
        col.caption(note)

# ── trend ──────────────────────────────────────────────────────────────────
st.subheader(pick("최근 30일 일별 금액 / Daily amounts, last 30 days"))
trend_sql = kpis.trend_sql(available)
if trend_sql:
    trend = guarded(wh.query, trend_sql, [kpis.trend_start(seoul_today(now))])
    if trend.empty:
        st.info(t("chart_empty"))
    else:
        # Codes stay codes: the figure names them (충전 / Top-ups) and keeps each one's colour in both languages.
        frame = trend.rename(columns={"day": "x", "measure": "color", "amount_krw": "value"})
        spec = ChartSpec(kind="line", x="day", y="amount_krw", color="measure", agg=charts.VALUES_AS_GIVEN)
        labels = {"day": i18n.column_label("day"), "amount_krw": i18n.column_label("amount_krw"), "measure": ""}
        st.plotly_chart(charts.figure(frame, spec, labels), key="overview_trend", width="stretch")

# ── into the reports ───────────────────────────────────────────────────────
st.subheader(pick("자주 보는 보고서 / Popular reports"))
reports = offered_reports(wh, load_reports(reports_dir(wh.config)))
featured = [r for slug in FEATURED for r in reports if r.slug == slug] or reports[:6]
cols = st.columns(3)
for i, r in enumerate(featured):
    with cols[i % 3]:
        st.page_link(REPORTS_PAGE, label=r.title(i18n.lang()), icon=":material/description:",
                     query_params={"report": r.slug})
if len(reports) > len(featured):
    st.page_link(REPORTS_PAGE, label=pick(f"보고서 {len(reports)}개 모두 보기 / All {len(reports)} reports"),
                 icon=":material/list:")
