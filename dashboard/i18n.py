"""Korean (default) and English: every label, message and number format of the app.

Pages call `t("key", **values)`; the language lives in `st.session_state`
(the sidebar switch) and is Korean unless someone picks English. Stored data
stays in English codes (`bank_transfer`, `approved`); `value_label` turns them
into words for the screen, `column_label` picks the right half of a
"카드 / card" description from pipeline.toml.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

LANGS = ("ko", "en")
DEFAULT_LANG = "ko"
LANG_KEY = "lang"  # session_state key and query parameter
SEOUL = ZoneInfo("Asia/Seoul")

_TEXT: dict[str, tuple[str, str]] = {
    # app shell
    "app_title": ("데이터 데스크", "Data desk"),
    "page_overview": ("개요", "Overview"),
    "page_explore": ("데이터 탐색", "Explore"),
    "page_reports": ("보고서", "Reports"),
    "page_pipeline": ("파이프라인", "Pipeline"),
    "page_dictionary": ("데이터 사전", "Dictionary"),
    "language": ("언어 / Language", "언어 / Language"),
    "coming_soon": ("이 페이지는 준비 중입니다.", "This page is being built."),
    # freshness
    "fresh_as_of": ("데이터 기준: {ago}", "data as of {ago}"),
    "fresh_none": ("아직 적재된 데이터가 없습니다", "no data landed yet"),
    "fresh_amber": ("데이터가 평소보다 늦습니다 (적재 주기 {interval}).", "Data is later than usual (batch interval {interval})."),
    "fresh_red": ("데이터가 오래되었습니다 — 파이프라인 페이지를 확인하세요.", "Data is stale — check the Pipeline page."),
    "just_now": ("방금", "just now"),
    "seconds_ago": ("{n}초 전", "{n} s ago"),
    "minutes_ago": ("{n}분 전", "{n} min ago"),
    "hours_ago": ("{n}시간 전", "{n} h ago"),
    "days_ago": ("{n}일 전", "{n} days ago"),
    "n_seconds": ("{n}초", "{n} s"),
    "n_minutes": ("{n}분", "{n} min"),
    # empty / errors
    "no_data": (
        "아직 데이터가 없습니다 — `make run` 으로 파이프라인을 시작하고 첫 적재를 기다려 주세요.",
        "No data yet — start the pipeline with `make run` and wait for its first batch.",
    ),
    "config_error": ("설정 파일 문제: {msg}", "Configuration problem: {msg}"),
    "busy": ("데이터를 적재하는 중이라 잠시 기다렸지만 끝나지 않았습니다. 잠시 후 다시 시도해 주세요.",
             "The pipeline kept the data busy for too long; please try again in a moment."),
    "timeout": ("조회가 {s}초를 넘어 중단되었습니다 — 기간을 줄이거나 필터를 추가해 주세요.",
                "The query was stopped after {s} s — narrow the date range or add a filter."),
    "query_failed": ("조회하지 못했습니다: {msg}", "Could not run the query: {msg}"),
    # explore
    "table": ("테이블", "Table"),
    "rows_n": ("{n}행", "{n} rows"),
    "filters": ("필터", "Filters"),
    "date_column": ("기간 기준 열", "Date column"),
    "period": ("기간", "Period"),
    "no_date_filter": ("전체 기간", "All time"),
    "preset_today": ("오늘", "Today"),
    "preset_last_7_days": ("최근 7일", "Last 7 days"),
    "preset_last_30_days": ("최근 30일", "Last 30 days"),
    "preset_this_month": ("이번 달", "This month"),
    "preset_last_month": ("지난달", "Last month"),
    "preset_custom": ("직접 지정", "Custom range"),
    "date_range": ("시작일 – 종료일", "From – to"),
    "choose": ("전체 (골라서 거르기)", "all (pick to filter)"),
    "choose_columns": ("거를 열을 고르세요", "Pick columns to filter"),
    "more_filters": ("다른 열로 거르기", "Filter other columns"),
    "min": ("최소", "min"),
    "max": ("최대", "max"),
    "contains": ("포함하는 글자", "contains"),
    "row_count": ("조건에 맞는 행: **{n}** / 전체 {total}", "Matching rows: **{n}** of {total}"),
    "chart": ("차트", "Chart"),
    "chart_kind": ("차트 종류", "Chart type"),
    "x_axis": ("X축", "X axis"),
    "y_axis": ("값 (Y)", "Value (Y)"),
    "color": ("색 구분", "Colour by"),
    "aggregation": ("집계", "Aggregation"),
    "bucket": ("시간 단위", "Time bucket"),
    "none": ("(없음)", "(none)"),
    "kind_line": ("선", "Line"),
    "kind_bar": ("막대", "Bar"),
    "kind_stacked_bar": ("누적 막대", "Stacked bar"),
    "kind_area": ("영역", "Area"),
    "kind_pie": ("원형", "Pie"),
    "kind_histogram": ("히스토그램", "Histogram"),
    "kind_box": ("상자 그림", "Box plot"),
    "kind_heatmap": ("히트맵", "Heat map"),
    "agg_count": ("건수", "count"),
    "agg_sum": ("합계", "sum"),
    "agg_avg": ("평균", "average"),
    "agg_min": ("최솟값", "minimum"),
    "agg_max": ("최댓값", "maximum"),
    "agg_distinct": ("고유 개수", "distinct count"),
    "bucket_hour": ("시간", "hour"),
    "bucket_day": ("일", "day"),
    "bucket_week": ("주", "week"),
    "bucket_month": ("월", "month"),
    "chart_needs_y": ("이 집계에는 값(Y) 열이 필요합니다.", "This aggregation needs a value (Y) column."),
    "chart_needs_color": ("히트맵은 두 번째 축으로 '색 구분' 열이 필요합니다.", "A heat map needs a 'Colour by' column as its second axis."),
    "chart_needs_x": ("X축 열을 골라 주세요.", "Pick an X axis column."),
    "chart_empty": ("조건에 맞는 데이터가 없습니다.", "No data matches the filters."),
    "chart_truncated": ("그룹이 많아 처음 {n}개만 그렸습니다.", "Too many groups: only the first {n} are drawn."),
    "data": ("데이터", "Data"),
    "sort_by": ("정렬 기준", "Sort by"),
    "descending": ("내림차순", "Descending"),
    "shown_rows": ("화면에는 {shown}행 / 전체 {total}행 (다운로드로 전체를 받을 수 있습니다)",
                   "Showing {shown} of {total} rows (download to get them all)"),
    "summary": ("요약 통계", "Summary statistics"),
    "stat_column": ("열", "column"),
    "stat_count": ("값 개수", "values"),
    "stat_sum": ("합계", "sum"),
    "stat_avg": ("평균", "average"),
    "stat_min": ("최솟값", "min"),
    "stat_max": ("최댓값", "max"),
    "share_link": ("이 화면의 주소(URL)를 복사해 공유하면 같은 화면이 열립니다.",
                   "Copy this page's address (URL) to share exactly this view."),
    "bad_date": ("기간을 읽지 못했습니다 ({value}) — 시작일과 종료일을 다시 골라 주세요.",
                 "Could not read the date range ({value}) — pick a start and end date again."),
    "bad_range": ("{column}: 최소값이 최대값보다 큽니다 — 무시했습니다.", "{column}: min is above max — ignored."),
    "bad_number": ("{column}: 숫자가 아닙니다 ({value}) — 무시했습니다.", "{column}: not a number ({value}) — ignored."),
    "unknown_column": ("이 테이블에 없는 열 '{column}' 의 조건은 무시했습니다.", "Ignored a filter on '{column}': no such column in this table."),
    "unknown_table": ("테이블 '{table}' 이(가) 없습니다 — 목록에서 골라 주세요.", "There is no table '{table}' — pick one from the list."),
    "bad_value": ("'{value}' 은(는) {what} 값으로 쓸 수 없어 기본값을 사용합니다.", "'{value}' is not a valid {what}; using the default."),
    # downloads
    "download": ("다운로드", "Download"),
    "download_csv": ("CSV 받기", "Download CSV"),
    "download_xlsx": ("Excel 받기", "Download Excel"),
    "download_parquet": ("Parquet 받기", "Download Parquet"),
    "excel_too_many": (
        "{n}행은 Excel 한 시트의 한도(1,048,576행)를 넘습니다 — CSV 또는 Parquet 으로 받아 주세요.",
        "{n} rows exceed Excel's limit of 1,048,576 rows per sheet — use CSV or Parquet instead.",
    ),
    "download_capped": ("다운로드는 최대 {cap}행까지입니다 (조건에 맞는 행 {n}) — 필터로 범위를 줄여 주세요.",
                        "Downloads are capped at {cap} rows ({n} match) — narrow the filters to get them all."),
    "filters_in_force": ("적용된 조건", "Filters in force"),
    "no_filters": ("조건 없음 (전체)", "no filters (everything)"),
    "csv_note": ("CSV 파일에는 조건이 들어가지 않습니다. 적용된 조건: {filters}",
                 "The CSV file itself carries no filter note. Filters in force: {filters}"),
    "sheet_data": ("데이터", "data"),
    "sheet_filters": ("조건", "filters"),
    "generated_at": ("만든 시각", "generated at"),
    "source_table": ("테이블", "table"),
    # dictionary
    "dict_intro": ("웨어하우스의 모든 테이블과 열입니다. 값 예시는 표본에서 뽑았습니다.",
                   "Every table and column in the warehouse. Example values come from a sample."),
    "dict_column": ("열 이름", "column"),
    "dict_label": ("이름", "label"),
    "dict_description": ("설명", "description"),
    "dict_type": ("형식", "type"),
    "dict_null_share": ("빈 값 비율", "null share"),
    "dict_examples": ("값 예시", "example values"),
    "dict_absent": ("개인정보라 일부러 가져오지 않은 원본 열: {cols}", "Source columns deliberately left out (personal data): {cols}"),
    "dict_hashed": ("가명 처리(키 해시)된 열: {cols} — 서로 연결(조인)은 되지만 원래 값은 알 수 없습니다.",
                    "Pseudonymised (keyed hash) columns: {cols} — they still join, the original values cannot be recovered."),
    "dict_not_in_config": ("설정 파일에 설명이 없는 테이블입니다 (새 토픽).", "This table has no description in the config (a new topic)."),
    "sys_source_ts": ("원본에서 바뀐 시각", "changed at the source"),
    "sys_ingested_at": ("웨어하우스에 적재된 시각", "landed in the warehouse"),
    "true": ("예", "yes"),
    "false": ("아니오", "no"),
}

# Vocabulary codes stored in the warehouse → words on screen.
_VALUES: dict[str, tuple[str, str]] = {
    # product
    "standard": ("일반", "standard"),
    "transit": ("교통", "transit"),
    "gift": ("기프트", "gift"),
    "youth": ("청소년", "youth"),
    # card / member / payment status
    "active": ("사용 중", "active"),
    "suspended": ("정지", "suspended"),
    "closed": ("해지", "closed"),
    "dormant": ("휴면", "dormant"),
    "left": ("탈퇴", "left"),
    "approved": ("승인", "approved"),
    "cancelled": ("취소", "cancelled"),
    # top-up channel
    "bank_transfer": ("계좌이체", "bank transfer"),
    "card": ("신용·체크카드", "card"),
    "convenience_store": ("편의점", "convenience store"),
    "mobile": ("모바일", "mobile"),
    "auto_charge": ("자동충전", "auto charge"),
    # merchant category
    "convenience": ("편의점", "convenience"),
    "cafe": ("카페", "cafe"),
    "restaurant": ("음식점", "restaurant"),
    "transport": ("교통", "transport"),
    "online": ("온라인", "online"),
    "culture": ("문화", "culture"),
    "retail": ("소매", "retail"),
}
_VOCAB_COLUMNS = {"product", "status", "channel", "category"}
_REGIONS_EN = {
    "서울": "Seoul", "경기": "Gyeonggi", "인천": "Incheon", "부산": "Busan", "대구": "Daegu", "대전": "Daejeon",
    "광주": "Gwangju", "울산": "Ulsan", "세종": "Sejong", "강원": "Gangwon", "충북": "Chungbuk", "충남": "Chungnam",
    "전북": "Jeonbuk", "전남": "Jeonnam", "경북": "Gyeongbuk", "경남": "Gyeongnam", "제주": "Jeju",
}


_FORCED: ContextVar[str | None] = ContextVar("datadesk_lang", default=None)


def lang() -> str:
    forced = _FORCED.get()
    if forced:
        return forced
    value = st.session_state.get(LANG_KEY, DEFAULT_LANG)
    return value if value in LANGS else DEFAULT_LANG


@contextmanager
def language(code: str):
    """Fix the language for work done outside a page run (a download built on click)."""
    token = _FORCED.set(code if code in LANGS else DEFAULT_LANG)
    try:
        yield
    finally:
        _FORCED.reset(token)


def t(key: str, **values: Any) -> str:
    ko, en = _TEXT[key]
    text = en if lang() == "en" else ko
    return text.format(**values) if values else text


def pick(description: str, language: str | None = None) -> str:
    """The Korean or English half of a "카드 / card" description (whole text when there is no '/')."""
    language = language or lang()
    if " / " not in description:
        return description
    ko, en = description.split(" / ", 1)
    return (en if language == "en" else ko).strip()


def column_label(column: str, description: str = "") -> str:
    """What a column is called on screen: its description's half, else a system label, else its name."""
    if description:
        return pick(description)
    if column == "_source_ts":
        return t("sys_source_ts")
    if column == "_ingested_at":
        return t("sys_ingested_at")
    return column


def value_label(column: str, value: Any) -> str:
    """A stored value as words: vocabulary codes translated, regions romanised in English."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return t("true" if value else "false")
    if isinstance(value, str):
        if column in _VOCAB_COLUMNS and value in _VALUES:
            ko, en = _VALUES[value]
            return en if lang() == "en" else ko
        if column == "region" and lang() == "en":
            return _REGIONS_EN.get(value, value)
        return value
    if isinstance(value, (int, float)):
        return fmt_number(value)
    if isinstance(value, datetime):
        return fmt_datetime(value)
    if isinstance(value, date):
        return fmt_date(value)
    return str(value)


def has_value_labels(column: str) -> bool:
    return column in _VOCAB_COLUMNS or column == "region"


# ─────────────────────────────────────────────────────────── formatting ──


def fmt_number(value: float | int | None, decimals: int = 0) -> str:
    """Thousands separators; whole numbers without decimals (same in both languages)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if decimals == 0 and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{decimals or 2}f}"


def fmt_krw(value: float | int | None) -> str:
    """12,345원 / ₩12,345 — KRW has no minor unit, so never decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    n = f"{round(value):,}"
    return f"₩{n}" if lang() == "en" else f"{n}원"


def to_seoul(value: datetime) -> datetime:
    return value.astimezone(SEOUL) if value.tzinfo else value


def fmt_datetime(value: datetime) -> str:
    return to_seoul(value).strftime("%Y-%m-%d %H:%M")


def fmt_date(value: date) -> str:
    return value.strftime("%Y-%m-%d")


def fmt_ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 5:
        return t("just_now")
    if seconds < 60:
        return t("seconds_ago", n=int(seconds))
    if seconds < 3600:
        return t("minutes_ago", n=int(seconds // 60))
    if seconds < 86400:
        return t("hours_ago", n=int(seconds // 3600))
    return t("days_ago", n=int(seconds // 86400))


def fmt_duration(seconds: float) -> str:
    if seconds < 90:
        return t("n_seconds", n=int(seconds))
    return t("n_minutes", n=int(seconds // 60))
