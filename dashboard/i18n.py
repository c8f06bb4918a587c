"""Korean (default) and English: every label, message and number format of the app.

Pages call `t("key", **values)`; the language lives in `st.session_state`
(the sidebar switch, kept in the URL by dashboard/links.py) and is Korean
unless someone picks English. Stored data stays in codes (`bank_transfer`,
`approved`): `VOCABULARY` names them per column, in both languages, and
`code_label` / `value_label` turn them into words; `column_label` names a
column (the right half of a "카드 / card" description from pipeline.toml, else
`COLUMN_NAMES`). Screens and downloads take their words from here through
dashboard/tables.py, so both say the same thing.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

LANGS = ("ko", "en")
DEFAULT_LANG = "ko"
LANG_KEY = "lang"  # session_state key and query parameter
SEOUL = ZoneInfo("Asia/Seoul")
EMPTY = "—"  # how a missing value looks on screen (files leave the cell empty)

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
    "fresh_as_of": ("데이터 기준: {ago}", "Data as of {ago}"),
    "fresh_none": ("아직 적재된 데이터가 없습니다", "No data landed yet"),
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
    # access rules (dashboard/access)
    "no_access": ("권한이 없습니다 — 이 내용은 내 역할로 볼 수 없습니다. 필요하면 관리자에게 요청하세요.",
                  "No access — your role cannot see this. Ask an admin if you need it."),
    "report_waits_for_tables": ("이 보고서가 읽는 표가 아직 창고에 없습니다: {tables}. 파이프라인이 처음 불러오는 중이면 "
                                "곧 생깁니다(파이프라인 페이지에서 진행 상황을 볼 수 있습니다). 계속 없으면 그 표를 내보내도록 "
                                "설정되어 있는지 관리자에게 확인하세요.",
                                "This report reads {tables}, which the warehouse does not have yet. During the "
                                "pipeline's first load it appears shortly (the Pipeline page shows progress); if it "
                                "never does, ask an admin whether that table is exported."),
    "no_access_report": ("이 보고서는 내 역할로 볼 수 없는 데이터를 읽습니다 (권한 없음). 목록의 다른 보고서를 고르세요.",
                         "No access — this report reads data your role cannot see. Pick another report from the list."),
    "no_access_table": ("'{table}' 은(는) 내 역할로 볼 수 없습니다 (권한 없음).",
                        "No access — your role cannot see '{table}'."),
    "report_reads": ("읽는 데이터: {columns}", "Reads: {columns}"),
    # explore
    "table": ("테이블", "Table"),
    "rows_n": ("{n}행", "{n} rows"),
    "filters": ("필터", "Filters"),
    "date_column": ("기간 기준 열", "Date column"),
    "period": ("기간", "Period"),
    "no_date_filter": ("전체 기간", "All time"),
    "preset_today": ("오늘", "Today"),
    "preset_yesterday": ("어제", "Yesterday"),
    "preset_this_week": ("이번 주", "This week"),
    "preset_last_week": ("지난주", "Last week"),
    "preset_this_month": ("이번 달", "This month"),
    "preset_last_month": ("지난달", "Last month"),
    "preset_this_year": ("올해", "This year"),
    "preset_last_year": ("작년", "Last year"),
    "preset_last_n_days": ("최근 {n}일", "Last {n} days"),
    "preset_custom": ("직접 지정", "Custom range"),
    "date_start": ("시작일", "From"),
    "date_end": ("종료일", "To"),
    "period_reversed": ("시작일({start})이 종료일({end})보다 늦습니다 — 날짜를 바로잡아 주세요.",
                        "The start date ({start}) is after the end date ({end}) — correct one of them."),
    "bad_period": ("기간 '{value}' 을(를) 읽지 못했습니다 — 목록에서 고르거나 2026-11-01..2026-11-30 처럼 적어 주세요.",
                   "Could not read the period '{value}' — pick one from the list or write it like 2026-11-01..2026-11-30."),
    "choose": ("전체 (골라서 거르기)", "All (pick to filter)"),
    "choose_columns": ("거를 열을 고르세요", "Pick columns to filter"),
    "more_filters": ("다른 열로 거르기", "Filter other columns"),
    "min": ("최소", "Min"),
    "max": ("최대", "Max"),
    "contains": ("포함하는 글자", "Contains"),
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
    "agg_count": ("건수", "Count"),
    "agg_sum": ("합계", "Sum"),
    "agg_avg": ("평균", "Average"),
    "agg_min": ("최솟값", "Minimum"),
    "agg_max": ("최댓값", "Maximum"),
    "agg_distinct": ("고유 개수", "Distinct count"),
    "bucket_hour": ("시간", "Hour"),
    "bucket_day": ("일", "Day"),
    "bucket_week": ("주", "Week"),
    "bucket_month": ("월", "Month"),
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
    "stat_column": ("열", "Column"),
    "stat_count": ("값 개수", "Values"),
    "stat_sum": ("합계", "Sum"),
    "stat_avg": ("평균", "Average"),
    "stat_min": ("최솟값", "Min"),
    "stat_max": ("최댓값", "Max"),
    "copy_link": ("링크 복사", "Copy link"),
    "link_copied": ("링크를 복사했습니다 — 붙여 넣으면 같은 화면(언어 포함)이 열립니다.",
                    "Link copied — whoever opens it sees this view, in this language."),
    "link_not_copied": ("이 브라우저가 복사를 막았습니다 — 아래 주소를 복사해 주세요.",
                        "This browser blocked copying — copy the address below."),
    "sort_default": ("기본 순서 ({column})", "Default order ({column})"),
    "table_order": ("테이블 순서", "Table order"),
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
    "download_raw_on": ("파일: {name}.csv / .xlsx / .parquet — 저장된 코드와 열 이름",
                        "Files: {name}.csv / .xlsx / .parquet — stored codes and column names"),
    "download_raw": ("분석용: 원래 코드와 열 이름으로 받기", "For analysts: raw codes and column names"),
    "download_raw_help": ("켜면 파일에 화면의 이름(예: 자동충전, 충전 경로) 대신 저장된 코드(auto_charge, channel)가 들어갑니다.",
                          "On: files hold the stored codes and column names (auto_charge, channel) instead of the words on screen."),
    "download_sorted": ("파일은 화면과 같은 순서입니다: {sort}", "Files keep the order on screen: {sort}"),
    "sheet_data": ("데이터", "Data"),
    "sheet_filters": ("조건", "Filters"),
    "generated_at": ("만든 시각", "Generated at"),
    "source_table": ("테이블", "Table"),
    "n_items": ("{n}건", "{n} items"),
    "summary_rows": ("행 수", "Rows"),
    "summary_total": ("{column} 합계", "Total {column}"),
    # dictionary
    "dict_intro": ("웨어하우스의 모든 테이블과 열입니다. 값 예시는 표본에서 뽑았습니다.",
                   "Every table and column in the warehouse. Example values come from a sample."),
    "dict_column": ("열 이름", "Column"),
    "dict_label": ("이름", "Label"),
    "dict_description": ("설명", "Description"),
    "dict_type": ("형식", "Type"),
    "dict_null_share": ("빈 값 비율", "Empty share"),
    "dict_examples": ("값 예시", "Example values"),
    "dict_absent": ("개인정보라 일부러 가져오지 않은 원본 열: {cols}", "Source columns deliberately left out (personal data): {cols}"),
    "dict_hashed": ("가명 처리(키 해시)된 열: {cols} — 서로 연결(조인)은 되지만 원래 값은 알 수 없습니다.",
                    "Pseudonymised (keyed hash) columns: {cols} — they still join, the original values cannot be recovered."),
    "dict_not_in_config": ("설정 파일에 설명이 없는 테이블입니다 (새 토픽).", "This table has no description in the config (a new topic)."),
    "sys_source_ts": ("원본에서 바뀐 시각", "Changed at the source"),
    "sys_ingested_at": ("웨어하우스에 적재된 시각", "Landed in the warehouse"),
    "true": ("예", "Yes"),
    "false": ("아니오", "No"),
    # subscriptions
    "page_subscriptions": ("메일 구독", "Subscriptions"),
    "mail_brand": ("데이터 데스크", "Data desk"),
    "mail_subject": ("[{brand}] {title} — {slot}", "[{brand}] {title} — {slot}"),
    "mail_subject_late": ("[{brand}] (지연) {title} — {slot}", "[{brand}] (late) {title} — {slot}"),
    "mail_intro": ("구독하신 보고서 「{title}」 입니다.", "Your subscribed report “{title}”."),
    "mail_late": ("예약 시각 {slot} 에 보내지 못해 늦게 보냅니다 (발송기가 멈춰 있었거나 메일 서버가 응답하지 않았습니다).",
                  "Sent late: it was due at {slot} (the scheduler was stopped or the mail server did not answer)."),
    "mail_params": ("조건", "Parameters"),
    "mail_rows": ("결과 {n}행", "{n} rows"),
    "mail_first_rows": ("처음 {shown}행 (전체 {n}행)", "First {shown} of {n} rows"),
    "mail_empty": ("이번 결과는 비어 있습니다 (행 없음).", "This time the result is empty (no rows)."),
    "mail_attached": ("전체 결과는 첨부 파일 {name} 에 있습니다.", "The whole result is in the attached file {name}."),
    "mail_too_big": ("결과 파일({size})이 메일 첨부 한도({limit})를 넘어 첨부하지 않았습니다. 앱에서 받으세요: {url}",
                     "The result file ({size}) is above the mail attachment limit ({limit}), so it is not attached. Download it in the app: {url}"),
    "mail_open_report": ("앱에서 보기: {url}", "Open in the app: {url}"),
    "mail_settings": ("이 구독 설정 (일시 중지·수정·삭제): {url}", "This subscription's settings (pause, edit, delete): {url}"),
    "mail_param_problem": ("저장된 조건 하나를 쓸 수 없어 기본값으로 보냈습니다: {problem}",
                           "A saved parameter could not be used; its default was used instead: {problem}"),
    "mail_no_access": ("이 구독을 만든 사람({owner})의 역할로는 이 보고서를 볼 수 없어 데이터를 보내지 않았습니다. 관리자에게 문의하세요.",
                       "Not sent: the person who set up this subscription ({owner}) may no longer see this report. Ask an admin."),
    "mail_report_missing": ("보고서 파일 {ref} 를 찾을 수 없습니다 — 보고서가 삭제되었거나 이름이 바뀌었습니다. 구독을 수정하거나 삭제하세요.",
                            "The report file {ref} is gone (deleted or renamed) — edit or delete this subscription."),
    "mail_report_failed": ("보고서를 실행하지 못했습니다: {error}", "The report could not be run: {error}"),
    "alert_subject_fired": ("[{brand}] 알림: {title} — {condition}", "[{brand}] Alert: {title} — {condition}"),
    "alert_subject_cleared": ("[{brand}] 해제: {title} — {condition}", "[{brand}] Cleared: {title} — {condition}"),
    "alert_fired": ("조건이 참이 되었습니다: {condition}. 현재 값: {value} ({at}).",
                    "The condition became true: {condition}. Current value: {value} ({at})."),
    "alert_cleared": ("조건이 해제되었습니다: {condition}. 현재 값: {value} ({at}).",
                      "The condition cleared: {condition}. Current value: {value} ({at})."),
    "alert_subject_broken": ("[{brand}] 알림 확인 불가: {title}", "[{brand}] Alert cannot be checked: {title}"),
    "alert_broken": ("이 알림({condition})을 더 이상 확인할 수 없습니다: {reason} 다시 확인할 수 있게 될 때까지 이 알림으로는 "
                     "메일이 가지 않습니다. 알림 설정에서 지우거나, 새로 만드세요.",
                     "This alert ({condition}) can no longer be checked: {reason} Until it can, it sends no mail. "
                     "Delete it in its settings, or set up a new one."),
    "alert_reason_view_missing": ("저장된 보기 ‘{title}’이(가) 삭제되었습니다.", "the saved view “{title}” was deleted."),
    "alert_reason_report_missing": ("보고서 파일 {ref}.sql 이 보고서 폴더에 없습니다(삭제되었거나 이름이 바뀜).",
                                    "the report file {ref}.sql is not in the reports folder (deleted or renamed)."),
    "alert_reason_no_access": ("알림을 만든 사람({owner})의 역할로는 이 데이터를 볼 수 없습니다. 관리자에게 문의하세요.",
                               "the person who set it up ({owner}) may no longer see this data; ask an admin."),
    "alert_broken_state": ("확인 불가", "Cannot be checked"),
    "alert_above": ("{measure} 합계가 {threshold} 초과", "{measure} total above {threshold}"),
    "alert_below": ("{measure} 합계가 {threshold} 미만", "{measure} total below {threshold}"),
    "alert_no_rows": ("최근 {hours}시간 동안 행 없음", "no rows for {hours} hours"),
    "alert_settings": ("이 알림 설정: {url}", "This alert's settings: {url}"),
    "sub_button": ("메일로 받기", "Send by e-mail"),
    "sub_form_intro": ("이 보고서를 정해진 시각에 메일로 받습니다 (한국 시간).", "Get this report by e-mail on a schedule (Korean time)."),
    "sub_frequency": ("주기", "Schedule"),
    "freq_daily": ("매일", "Daily"),
    "freq_business_days": ("평일 (월–금, 공휴일 제외)", "Business days (Mon–Fri, not holidays)"),
    "freq_weekly": ("매주", "Weekly"),
    "freq_monthly": ("매월", "Monthly"),
    "sub_weekday": ("요일", "Weekday"),
    "sub_weekdays": ("월요일,화요일,수요일,목요일,금요일,토요일,일요일", "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday"),
    "sub_month_day": ("날짜 (31 = 말일)", "Day of the month (31 = last day)"),
    "sub_time": ("보낼 시각", "Time"),
    "sub_relative": ("{preset} — 보낼 때마다 다시 계산", "{preset} — recalculated at each send"),
    "sub_fixed": ("고정: {range}", "Fixed: {range}"),
    "sub_fixed_params": ("함께 고정되는 조건: {params}", "Other parameters, fixed: {params}"),
    "sub_recipients": ("받는 사람 (쉼표로 구분)", "Recipients (comma-separated)"),
    "sub_format": ("첨부 형식", "Attachment"),
    "sub_skip_empty": ("결과가 없으면 보내지 않기", "Skip when the result is empty"),
    "sub_save": ("구독 저장", "Save subscription"),
    "sub_saved": ("구독을 저장했습니다 (#{id}). 첫 발송: {next}. ‘메일 구독’ 페이지에서 관리합니다.",
                  "Subscription saved (#{id}). First mail: {next}. Manage it on the Subscriptions page."),
    "sub_problem": ("저장하지 못했습니다: {msg}", "Not saved: {msg}"),
    "subs_intro": ("메일은 발송기(`python -m ingest scheduler`, `make run` 이 함께 시작)가 보냅니다. 한 예약 시각에 한 통씩 보냅니다.",
                   "Mails are sent by the scheduler (`python -m ingest scheduler`, started by `make run`), one per scheduled time."),
    "subs_reports": ("정기 메일", "Scheduled mails"),
    "subs_alerts": ("데이터 알림", "Data alerts"),
    "subs_none": ("아직 구독이 없습니다 — 보고서 페이지나 탐색 페이지에서 ‘메일로 받기’를 누르세요.",
                  "No subscriptions yet — press “Send by e-mail” on the Reports page or in Explore."),
    "subs_no_alerts": ("아직 알림이 없습니다 — 아래에서 보고서에, 탐색 페이지의 ‘메일로 받기’에서 질문에 만들 수 있습니다.",
                       "No alerts yet — make one on a report below, or on a question from “Send by e-mail” in Explore."),
    "subs_col_id": ("번호", "No."),
    "subs_col_report": ("보고서·보기", "Report or view"),
    "subs_col_schedule": ("주기", "Schedule"),
    "subs_col_recipients": ("받는 사람", "Recipients"),
    "subs_col_next": ("다음 발송", "Next run"),
    "subs_col_last": ("마지막 발송", "Last delivery"),
    "subs_col_rows": ("행 수", "Rows"),
    "subs_col_status": ("상태", "Status"),
    "subs_col_condition": ("조건", "Condition"),
    "subs_col_state": ("현재", "Now"),
    "subs_col_checked": ("마지막 확인", "Last check"),
    "change_fired": ("알림", "Alert"),
    "change_cleared": ("해제", "Cleared"),
    "change_broken": ("확인 불가 안내", "Cannot-be-checked notice"),
    "subs_paused": ("일시 중지됨", "Paused"),
    "status_sent": ("보냄", "Sent"),
    "status_skipped": ("건너뜀 (결과 없음)", "Skipped (empty)"),
    "status_failed": ("실패", "Failed"),
    "status_due": ("대기 (재시도 예정)", "Waiting (retry due)"),
    "status_sending": ("보내는 중", "Sending"),
    "status_late": ("늦게 보냄", "Sent late"),
    "subs_pick": ("구독 선택", "Subscription"),
    "subs_pause": ("일시 중지", "Pause"),
    "subs_resume": ("다시 시작", "Resume"),
    "subs_send_now": ("지금 보내기", "Send now"),
    "subs_send_now_done": ("다음 확인 때 (몇 초 안에) 보냅니다.", "It goes out at the scheduler's next round (within seconds)."),
    "subs_delete": ("삭제", "Delete"),
    "subs_deleted": ("삭제했습니다.", "Deleted."),
    "subs_edit": ("수정", "Edit"),
    "subs_updated": ("수정했습니다.", "Saved."),
    "alert_new": ("새 데이터 알림", "New data alert"),
    "alert_report": ("보고서", "Report"),
    "alert_measure": ("측정값 (합계)", "Measure (total)"),
    "alert_condition": ("조건", "Condition"),
    "cond_above": ("초과", "Above"),
    "cond_below": ("미만", "Below"),
    "cond_no_rows": ("N시간 동안 행 없음", "No rows for N hours"),
    "alert_threshold": ("기준값", "Threshold"),
    "alert_hours": ("시간", "Hours"),
    "alert_period": ("기간", "Period"),
    "alert_save": ("알림 저장", "Save alert"),
    "alert_saved": ("알림을 저장했습니다 (#{id}). 새 데이터가 들어오거나 한 시간마다 확인합니다.",
                    "Alert saved (#{id}). Checked when new data lands, and at least hourly."),
    "alert_no_measure": ("이 보고서에는 합계를 내는 측정값(totals)이 없습니다.", "This report has no measures (totals) to watch."),
    "alert_on": ("조건 충족", "Condition true"),
    "alert_off": ("정상", "Normal"),
    # question builder
    "page_lookup": ("찾아보기", "Look up"),
    "view_name_empty": ("보기 이름을 적어 주세요.", "Give the view a name."),
    "view_name_long": ("보기 이름은 {n}자까지입니다 — 줄여 주세요.", "A view name has at most {n} characters — shorten it."),
    "view_name_taken": ("'{name}' 이라는 보기가 이미 있습니다 — 다른 이름을 쓰거나 기존 보기를 지우세요.",
                        "A view named '{name}' already exists — pick another name or delete the old one."),
    "view_missing": ("저장된 보기 {id} 이(가) 없습니다 (지워졌을 수 있습니다) — 목록에서 골라 주세요.",
                     "There is no saved view {id} (it may have been deleted) — pick one from the list."),
    "saved_views": ("저장된 보기", "Saved views"),
    "save_view": ("이 보기 저장", "Save this view"),
    "view_name": ("보기 이름", "View name"),
    "view_saved": ("'{name}' 을(를) 저장했습니다.", "Saved '{name}'."),
    "view_search": ("이름으로 찾기", "Search by name"),
    "view_none": ("저장된 보기가 없습니다.", "No saved views yet."),
    "view_open": ("열기", "Open"),
    "view_delete": ("삭제", "Delete"),
    "view_rename": ("이름 바꾸기", "Rename"),
    "view_edit": ("고치기", "Edit"),
    "view_new_name": ("새 이름", "New name"),
    "view_renamed": ("이름을 '{name}' (으)로 바꿨습니다.", "Renamed to '{name}'."),
    "view_replace": ("지금 화면으로 바꾸기", "Replace with this screen"),
    "view_replace_help": ("이름과 링크는 그대로 두고, 저장된 질문을 지금 화면의 질문으로 바꿉니다.",
                          "Keeps the name and the link; the saved question becomes the one on screen now."),
    "view_updated": ("'{name}' 을(를) 지금 화면으로 바꿨습니다.", "'{name}' now holds the question on screen."),
    "view_opened": ("저장된 보기 '{name}' 을(를) 열었습니다.", "Opened the saved view '{name}'."),
    "store_failed": ("저장소를 열지 못했습니다: {msg}", "Could not open the app's store: {msg}"),
    "q_mode": ("보기 방식", "Mode"),
    "mode_question": ("질문 만들기", "Ask a question"),
    "mode_table": ("표 그대로 보기", "Browse a table"),
    "q_base": ("무엇을 셀까요", "Count from"),
    "q_measures": ("값 (세거나 더할 것)", "Values (count or sum)"),
    "q_measures_pick": ("값을 하나 이상 고르세요", "Pick at least one value"),
    "q_dimensions": ("나누는 기준", "Split by"),
    "q_dimensions_pick": ("나누지 않음 (전체 합계)", "No split (one total)"),
    "q_grain": ("시간 단위", "Time grain"),
    "grain_none": ("시간으로 나누지 않음", "No time series"),
    "q_compare": ("비교", "Compare with"),
    "cmp_none": ("비교 안 함", "No comparison"),
    "cmp_previous": ("직전 같은 기간과 비교", "Previous period"),
    "cmp_year": ("작년 같은 기간과 비교", "Same period last year"),
    "q_path": ("조건", "Filters"),
    "q_path_all": ("전체 (조건 없음)", "Everything (no filters)"),
    "q_crumb_remove": ("이 조건 빼기", "Remove this filter"),
    "q_add_filter": ("조건 추가", "Add a filter"),
    "q_filter_dim": ("조건을 걸 항목", "Filter on"),
    "q_filter_op": ("방법", "How"),
    "q_filter_values": ("값 (여러 개 가능)", "Values (one or more)"),
    "q_filter_value": ("값", "Value"),
    "q_filter_add": ("조건 추가", "Add filter"),
    "q_filter_bad": ("{what}: {why} — 값을 고쳐 다시 추가해 주세요.", "{what}: {why} — correct the value and add it again."),
    "q_measure_filter": ("값 조건 (그룹별)", "Keep groups where"),
    "q_measure_filter_op": ("조건", "Condition"),
    "q_measure_filter_value": ("기준 값", "Value"),
    "mf_none": ("(없음)", "(none)"),
    "mf_ge": ("이상", "at least"), "mf_gt": ("초과", "more than"), "mf_le": ("이하", "at most"), "mf_lt": ("미만", "less than"),
    "q_sort_default": ("첫 번째 값 기준", "By the first value"),
    "q_top": ("상위 N (0 = 전부)", "Top N (0 = all)"),
    "q_top_help": ("상위 N개 그룹만 보이고 나머지는 '기타' 한 줄로 합칩니다.", "Shows the top N groups; the rest becomes one 'Others' row."),
    "q_view": ("보기", "View"),
    "view_summary": ("요약", "Summary"), "view_pivot": ("피벗", "Pivot"), "view_rows": ("원본 행", "Rows"),
    "q_cannot": ("이 질문에는 답할 수 없습니다: {msg}", "This question cannot be answered: {msg}"),
    "q_zoom_hint": ("점을 누르면 그 기간을 {finer} 단위로 자세히 봅니다 (선을 누르면 그 항목만).",
                    "Click a point to zoom into that period by {finer} (on a line: that line only)."),
    "q_drill_hint": ("막대나 표의 행을 누르면 그 값으로 좁혀 봅니다.", "Click a bar or a table row to narrow down to that value."),
    "q_result_rows": ("결과 {n}줄", "{n} result rows"),
    "q_rows_shown": ("숫자 뒤의 원본 행 {n}개 (최근 순)", "{n} records behind the numbers (newest first)"),
    "pivot_rows": ("행", "Rows"), "pivot_columns": ("열", "Columns"),
    "q_measure": ("값", "Value"),
    "q_model_problems": ("데이터 모델 파일 문제 {n}건 (나머지는 정상 동작)", "{n} problems in the model files (the rest works)"),
    "others_row": ("기타", "Others"),
    "current_period": ("이번 기간", "This period"),
    "previous_period": ("비교 기간", "Previous period"),
    "total": ("합계", "Total"),
    # look-up page
    "lookup_intro": ("카드 번호, 가맹점 번호 또는 가맹점명으로 한 건의 모든 것을 봅니다.",
                     "Everything about one card or merchant: type its id or the merchant's name."),
    "lookup_kind": ("무엇을 찾을까요", "Look up"),
    "lookup_card": ("카드", "Card"),
    "lookup_merchant": ("가맹점", "Merchant"),
    "lookup_query": ("번호 또는 이름", "Id or name"),
    "lookup_card_query": ("카드 번호", "Card id"),
    "lookup_merchant_query": ("가맹점 번호 또는 가맹점명", "Merchant id or name"),
    "lookup_not_found": ("'{value}' 에 해당하는 {what} 을(를) 찾지 못했습니다 — 번호를 확인해 주세요.",
                         "No {what} matches '{value}' — check the id."),
    "lookup_bad_id": ("'{value}' 은(는) 번호가 아닙니다 — 숫자만 적어 주세요.", "'{value}' is not an id — type digits only."),
    "lookup_many": ("{n}곳이 이름에 맞습니다 — 하나를 고르세요.", "{n} match the name — pick one."),
    "lookup_pick": ("가맹점 고르기", "Pick a merchant"),
    "lookup_attributes": ("정보", "Attributes"),
    "lookup_over_time": ("월별 추이", "Month by month"),
    "lookup_timeline": ("전체 이력 (시간순)", "Timeline (in time order)"),
    "lookup_timeline_n": ("이력 {n}건", "{n} events"),
    "lookup_no_table": ("웨어하우스에 '{table}' 테이블이 없어 이 찾아보기를 할 수 없습니다.",
                        "The warehouse has no '{table}' table, so this look-up is not available."),
    "lookup_events": ("건수", "Events"),
    "lookup_empty": ("관련된 이력이 없습니다.", "Nothing related yet."),
    # health
    "complete_match": ("원본과 일치 ({at} 기준)", "Matches the source as of {at}"),
    "complete_more_source": ("{table} {day}: 원본에 {n}행 더 있음", "{table} {day}: the source has {n} more rows"),
    "complete_more_wh": ("{table} {day}: 웨어하우스에 {n}행 더 있음 (원본에서 삭제됨)",
                         "{table} {day}: the warehouse has {n} more rows (deleted at the source)"),
    "complete_none": ("원본과의 대조 기록이 아직 없습니다", "Not yet checked against the source"),
    "catching_up": ("불러오는 중: 원본 행의 {pct}% — 지금 보이는 수치는 잠정치입니다",
                    "Loading: {pct}% of the source's rows — the figures shown are provisional"),
    "catching_up_short": ("불러오는 중 ({pct}%)", "Loading ({pct}%)"),
    "provisional": ("잠정치", "provisional"),
    "exporter_line": ("원본 내보내기 '{name}': {state} · 마지막 보고 {ago}", "Exporter '{name}': {state} · last report {ago}"),
    "exporter_state_ok": ("정상", "running"),
    "exporter_state_degraded": ("일부 테이블 중지·실패", "some tables stopped or failing"),
    "exporter_state_source_unreachable": ("원본 DB에 연결 안 됨", "cannot read the source"),
    "exporter_state_stopping": ("중지됨", "stopped"),
    "exporter_state_catching_up": ("따라잡는 중", "catching up"),
    "all_arrived": ("모든 데이터가 도착했습니다 · {ago}", "All data arrived · {ago}"),
    "pipeline_problems": ("지금 확인할 문제", "Problems to look at now"),
    "completeness_title": ("원본과 대조 (날짜별)", "Checked against the source (per day)"),
    # audit trail and the admin page (dashboard/audit.py, pages/admin.py)
    "page_admin": ("관리", "Admin"),
    "audit_failed": ("감사 기록을 남길 수 없어 이 작업을 하지 않았습니다 ({msg}) — 관리자에게 알려 주세요.",
                     "The audit trail could not be written, so this was not done ({msg}) — tell the administrator."),
    "audit_downloads_off": ("감사 기록을 남길 수 없어 지금은 내려받기를 할 수 없습니다: {msg}",
                            "Downloads are off because the audit trail cannot be written: {msg}"),
    "admin_no_access": ("이 페이지는 관리자만 볼 수 있습니다 — 권한이 필요하면 관리자에게 요청하세요.",
                        "Only administrators can see this page — ask an administrator if you need access."),
    "admin_intro": ("누가 언제 로그인하고, 무엇을 몇 행 내려받고, 저장된 보기·구독·알림을 어떻게 바꿨는지의 기록입니다. "
                    "고객 데이터는 남기지 않고 요청한 내용(페이지, 필터, 형식)과 행 수만 남깁니다.",
                    "Who signed in, downloaded what (and how many rows) and changed which saved view, subscription or alert. "
                    "It keeps only what was asked for (page, filters, format) and row counts — never customer data."),
    "admin_rule_problem": ("접근 규칙을 고쳐 주세요 (pipeline.toml): {problem}", "Fix this access rule (pipeline.toml): {problem}"),
    "admin_rules_unchecked": ("접근 규칙을 데이터 모델과 대조하지 못했습니다: {msg}",
                              "Could not check the access rules against the data model: {msg}"),
    "admin_trail": ("감사 기록", "Audit trail"),
    "admin_people": ("사람별 요약", "By person"),
    "admin_who": ("사람", "Person"),
    "admin_action": ("작업", "Action"),
    "admin_dates": ("기간", "Dates"),
    "admin_search": ("대상에서 찾기", "Search in target"),
    "admin_all": ("전체", "All"),
    "admin_total": ("기록", "Entries"),
    "admin_count": ("조건에 맞는 기록 {n}건", "{n} entries match"),
    "admin_shown": ("최근 {shown}건을 보여 줍니다 (전체 {n}건) — 기간이나 조건을 좁혀 보세요.",
                    "Showing the latest {shown} of {n} — narrow the dates or filters to see the rest."),
    "admin_empty": ("조건에 맞는 기록이 없습니다.", "No entries match."),
    "admin_export": ("보이는 기록 내려받기", "Download what is shown"),
    "admin_col_at": ("시각", "When"),
    "admin_col_who": ("사람", "Person"),
    "admin_col_role": ("역할", "Role"),
    "admin_col_action": ("작업", "Action"),
    "admin_col_target": ("대상", "Target"),
    "admin_col_detail": ("내용", "Details"),
    "admin_col_rows": ("행 수", "Rows"),
    "admin_col_last_sign_in": ("마지막 로그인", "Last sign-in"),
    "admin_col_downloads": ("내려받기 횟수", "Downloads"),
    "admin_col_downloaded_rows": ("내려받은 행", "Rows downloaded"),
    "admin_col_last_seen": ("마지막 활동", "Last activity"),
    "action_sign_in": ("로그인", "Sign-in"),
    "action_download": ("내려받기", "Download"),
    "action_saved_view_save": ("보기 저장", "Saved view: save"),
    "action_saved_view_rename": ("보기 이름 바꾸기", "Saved view: rename"),
    "action_saved_view_update": ("보기 바꾸기", "Saved view: update"),
    "action_saved_view_delete": ("보기 삭제", "Saved view: delete"),
    "action_subscription_create": ("구독 만들기", "Subscription: create"),
    "action_subscription_update": ("구독 바꾸기", "Subscription: update"),
    "action_subscription_pause": ("구독 멈춤", "Subscription: pause"),
    "action_subscription_resume": ("구독 다시 시작", "Subscription: resume"),
    "action_subscription_delete": ("구독 삭제", "Subscription: delete"),
    "action_subscription_send_now": ("구독 지금 보내기", "Subscription: send now"),
    "action_alert_create": ("알림 만들기", "Alert: create"),
    "action_alert_update": ("알림 바꾸기", "Alert: update"),
    "action_alert_pause": ("알림 멈춤", "Alert: pause"),
    "action_alert_resume": ("알림 다시 시작", "Alert: resume"),
    "action_alert_delete": ("알림 삭제", "Alert: delete"),
}

# ─────────────────────────────────────────────────────────── vocabulary ──
# Codes stored in the warehouse (and codes the reports make) → words on screen
# and in downloads, per column name. The data keeps the codes; a download
# "for analysts" keeps them too. The order of each mapping is the order a
# chart gives its series colours, so a series keeps its colour in both
# languages and on every page.

_PRODUCT = {"standard": ("일반", "Standard"), "transit": ("교통", "Transit"), "gift": ("기프트", "Gift"),
            "youth": ("청소년", "Youth")}
_STATUS = {  # cards, members, payments share the column name
    "active": ("사용 중", "Active"), "suspended": ("정지", "Suspended"), "closed": ("해지", "Closed"),
    "dormant": ("휴면", "Dormant"), "left": ("탈퇴", "Left"),
    "approved": ("승인", "Approved"), "cancelled": ("취소", "Cancelled"),
}
_CHANNEL = {"bank_transfer": ("계좌이체", "Bank transfer"), "card": ("신용·체크카드", "Card"),
            "convenience_store": ("편의점", "Convenience store"), "mobile": ("모바일", "Mobile"),
            "auto_charge": ("자동충전", "Auto charge")}
_CATEGORY = {"convenience": ("편의점", "Convenience store"), "cafe": ("카페", "Cafe"),
             "restaurant": ("음식점", "Restaurant"), "transport": ("교통", "Transport"), "online": ("온라인", "Online"),
             "culture": ("문화", "Culture"), "retail": ("소매", "Retail")}
_REASON = {"customer_request": ("고객 요청", "Customer request"), "defective": ("불량", "Defective"),
           "duplicate_charge": ("중복 결제", "Duplicate charge"), "partial_return": ("부분 반품", "Partial return")}
_REGION = {  # stored in Korean; romanised in English
    "서울": "Seoul", "경기": "Gyeonggi", "인천": "Incheon", "부산": "Busan", "대구": "Daegu", "대전": "Daejeon",
    "광주": "Gwangju", "울산": "Ulsan", "세종": "Sejong", "강원": "Gangwon", "충북": "Chungbuk", "충남": "Chungnam",
    "전북": "Jeonbuk", "전남": "Jeonnam", "경북": "Gyeongbuk", "경남": "Gyeongnam", "제주": "Jeju",
}
# Values the bundled reports and pages compute themselves.
_SEGMENT = {"new": ("신규", "New"), "returning": ("재방문", "Returning")}
_AGE_BAND = {"~19": ("19세 이하", "19 and under"), "20-29": ("20대", "20–29"), "30-39": ("30대", "30–39"),
             "40-49": ("40대", "40–49"), "50-59": ("50대", "50–59"), "60+": ("60세 이상", "60 and over"),
             "unknown": ("알 수 없음", "Unknown")}
_WEEKDAY = {"Mon": ("월", "Mon"), "Tue": ("화", "Tue"), "Wed": ("수", "Wed"), "Thu": ("목", "Thu"),
            "Fri": ("금", "Fri"), "Sat": ("토", "Sat"), "Sun": ("일", "Sun")}
_MEASURE = {"topups": ("충전", "Top-ups"), "payments": ("결제", "Payments"), "refunds": ("환불", "Refunds")}

VOCABULARY: dict[str, dict[str, tuple[str, str]]] = {
    "product": _PRODUCT, "status": _STATUS, "channel": _CHANNEL, "category": _CATEGORY, "reason": _REASON,
    "region": {code: (code, en) for code, en in _REGION.items()},
    "segment": _SEGMENT, "age_band": _AGE_BAND, "weekday": _WEEKDAY, "measure": _MEASURE,
}

# model: words for the ranking choice of the refund report (sql/merchant_refund_cancel_rates.sql)
VOCABULARY["rank_by"] = {"refund_rate": ("환불률", "Refund rate"), "cancel_rate": ("취소율", "Cancellation rate")}

# model: messages of the question builder (dashboard/questions): a link that no longer fits, a question
# that cannot be answered as asked — each says what happened and what to do.
_TEXT.update({
    "q_no_table": ("테이블을 고르지 않았습니다 — 목록에서 하나 골라 주세요.", "No table chosen — pick one from the list."),
    "q_unknown_table": ("테이블 '{table}' 이(가) 없습니다 — 목록에서 골라 주세요 ({tables}).",
                        "There is no table '{table}' — pick one from the list ({tables})."),
    "q_unknown_measure": ("측정값 '{id}' 이(가) 없어 뺐습니다 — 목록에서 다시 골라 주세요.",
                          "Measure '{id}' does not exist and was dropped — pick one from the list."),
    "q_unknown_dimension": ("기준 '{id}' 이(가) 없어 뺐습니다 — 목록에서 다시 골라 주세요.",
                            "Dimension '{id}' does not exist and was dropped — pick one from the list."),
    "q_unreachable": ("'{id}' 은(는) {base} 에서 연결되지 않아 뺐습니다 ({reason}).",
                      "'{id}' cannot be reached from {base} and was dropped ({reason})."),
    "q_bad_filter": ("조건 '{token}' 을(를) 읽지 못해 뺐습니다 — 기준~연산~값 형식이어야 합니다.",
                     "Could not read the filter '{token}', so it was dropped — it must be dimension~op~value."),
    "q_bad_filter_values": ("'{id}' 조건의 값 개수가 맞지 않아 뺐습니다 ({op}: {problem}).",
                            "The filter on '{id}' has the wrong number of values and was dropped ({op}: {problem})."),
    "q_bad_measure_filter": ("측정값 조건 '{token}' 을(를) 읽지 못해 뺐습니다 — 예: payments.payments~ge~50.",
                             "Could not read the measure filter '{token}', so it was dropped — e.g. payments.payments~ge~50."),
    "q_bad_time": ("기간 기준 열 '{id}' 은(는) 쓸 수 없어 뺐습니다 — 날짜·시각 열을 골라 주세요.",
                   "The time column '{id}' cannot be used and was dropped — pick a date or time column."),
    "q_bad_period": ("기간 '{value}' 을(를) 읽지 못해 뺐습니다 — 목록에서 고르거나 2026-11-01..2026-11-30 처럼 적어 주세요.",
                     "Could not read the period '{value}', so it was dropped — pick one or write it like 2026-11-01..2026-11-30."),
    "q_bad_choice": ("'{value}' 은(는) {what} 값으로 쓸 수 없어 기본값을 씁니다.", "'{value}' is not a valid {what}; using the default."),
    "q_bad_sort": ("정렬 기준 '{id}' 은(는) 고른 측정값·기준이 아니어서 뺐습니다.",
                   "Sort by '{id}' is not a chosen measure or dimension, so it was dropped."),
    "q_bad_top": ("상위 N '{value}' 은(는) 1~{max} 사이의 수가 아니어서 뺐습니다.",
                  "Top N '{value}' is not a number from 1 to {max}, so it was dropped."),
    "q_need_measure": ("무엇을 셀지(측정값)를 하나 이상 골라 주세요.", "Pick at least one measure (what to count or sum)."),
    "q_need_period": ("비교하려면 기간이 필요합니다 — 기간을 골라 주세요 (예: 최근 30일).",
                      "A comparison needs a period — pick one (e.g. last 30 days)."),
    "q_bad_value": ("'{dimension}' 조건: {problem} — 값을 고쳐 주세요.", "Filter on '{dimension}': {problem} — correct the value."),
    "q_op_not_for": ("'{op}' 연산은 '{dimension}' 에 쓸 수 없습니다 — 다른 연산을 골라 주세요.",
                     "The operation '{op}' does not fit '{dimension}' — pick another operation."),
    "q_cannot_reach": ("{what}: {reason}", "{what}: {reason}"),
    "q_not_additive": ("'{measure}' 은(는) 시간 흐름 전체로 더할 수 없어(고유 개수) 순위를 매길 수 없습니다 — 시간 단위를 빼거나 다른 측정값으로 순위를 매겨 주세요.",
                       "'{measure}' cannot be totalled over a time series (distinct counts do not add up) — remove the time grain or rank by another measure."),
    "q_no_time": ("{table} 에는 날짜·시각 열이 없어 기간으로 거를 수 없습니다 — 기간을 빼거나 그 테이블의 측정값을 빼 주세요.",
                  "{table} has no date or time column, so it cannot be limited to a period — remove the period or that table's measures."),
    "q_pivot_needs_dimension": ("피벗에는 행이나 열 기준이 하나 이상 필요합니다.", "A pivot needs a dimension on rows or on columns."),
    "q_no_timeline": ("{table} 을(를) 가리키는 테이블이 없어 이력이 없습니다 — 다른 대상을 찾아 주세요.",
                      "No table points at {table}, so it has no timeline — look up another kind of thing."),
    "q_bad_key": ("'{value}' 은(는) {table} 번호로 쓸 수 없습니다 — 데이터에 보이는 번호를 그대로 적어 주세요.",
                  "'{value}' is not a {table} id — type the id as shown in the data."),
    "q_others": ("기타", "Others"),
    # filter operations (dashboard/questions/filters.py) and comparisons
    "op_in": ("다음 중 하나", "is one of"), "op_not_in": ("다음이 아님", "is none of"), "op_eq": ("=", "="),
    "op_ne": ("≠", "≠"), "op_lt": ("<", "<"), "op_le": ("≤", "≤"), "op_gt": (">", ">"), "op_ge": ("≥", "≥"),
    "op_between": ("사이 (양끝 포함)", "between (inclusive)"), "op_contains": ("포함", "contains"),
    "op_empty": ("비어 있음", "is empty"), "op_not_empty": ("비어 있지 않음", "is not empty"),
    "op_during": ("기간", "during"),
    "compare_none": ("비교 안 함", "No comparison"), "compare_previous": ("직전 같은 기간", "Previous period"),
    "compare_year": ("작년 같은 기간", "Same period last year"),
    "grain_hour": ("시간", "Hour"), "grain_day": ("일", "Day"), "grain_week": ("주", "Week"), "grain_month": ("월", "Month"),
    "grain_quarter": ("분기", "Quarter"), "grain_year": ("연", "Year"),
})

# Names of the result columns the bundled reports and pages use ("한국어 / English"); a
# warehouse column is named by its description in pipeline.toml first.
COLUMN_NAMES = {
    "day": "일자 / Day", "week": "주 (월요일 시작) / Week (from Monday)", "month": "월 / Month", "bucket": "기간 / Period",
    "channel": "충전 경로 / Channel", "category": "업종 / Category", "region": "지역 / Region",
    "product": "상품 / Product", "status": "상태 / Status", "segment": "구분 / Segment",
    "topups": "충전 건수 / Top-ups", "payments": "결제 건수 / Payments", "cards": "카드 수 / Cards",
    "amount_krw": "금액(원) / Amount (KRW)", "avg_ticket_krw": "객단가(원) / Average ticket (KRW)",
    "merchant_id": "가맹점 번호 / Merchant id", "merchant_name": "가맹점명 / Merchant",
    "cancelled": "취소 건수 / Cancelled", "cancel_rate_pct": "취소율(%) / Cancellation rate (%)",
    "approved_krw": "승인 금액(원) / Approved (KRW)", "refunded_krw": "환불 금액(원) / Refunded (KRW)",
    "refunded_payments": "환불된 결제 / Refunded payments", "refund_rate_pct": "환불률(%) / Refund rate (%)",
    "active_30d": "30일 활성 카드 / Active cards (30 days)", "used_in_week": "해당 주 사용 카드 / Used in the week",
    "card_id": "카드 번호 / Card id", "balance_krw": "잔액(원) / Balance (KRW)", "issued_on": "발급일 / Issued on",
    "last_payment_on": "최근 결제일 / Last payment", "idle_days": "미사용 일수 / Days idle",
    "rank": "순위 / Rank", "refunds_krw": "환불(원) / Refunds (KRW)", "net_krw": "순액(원) / Net (KRW)",
    "age_band": "연령대 / Age band", "active_cards": "이용 카드 수 / Cards used",
    "tx_per_active_card": "카드당 결제 수 / Payments per card", "weekday_no": "요일 번호 / Weekday no.",
    "weekday": "요일 / Weekday", "hour": "시 / Hour", "prev_amount_krw": "전월 금액(원) / Previous month (KRW)",
    "growth_pct": "전월 대비(%) / Growth (%)", "topups_krw": "충전(원) / Top-ups (KRW)",
    "payments_krw": "결제(원) / Payments (KRW)", "movement_balance_krw": "거래 기준 잔액(원) / Balance from movements (KRW)",
    "balances_on_file_krw": "보유 잔액 합계(원) / Balances on file (KRW)", "difference_krw": "차이(원) / Difference (KRW)",
    "expected_balance_krw": "기대 잔액(원) / Expected balance (KRW)", "share_pct": "비중(%) / Share (%)",
    "measure": "구분 / Measure",
}

_FORCED: ContextVar[str | None] = ContextVar("datadesk_lang", default=None)


def lang() -> str:
    forced = _FORCED.get()
    if forced:
        return forced
    value = st.session_state.get(LANG_KEY, DEFAULT_LANG)
    return value if value in LANGS else DEFAULT_LANG


# sign-in (dashboard/access/login.py)
_TEXT.update({
    "signin_intro": ("이 데이터 데스크는 로그인한 사람만 볼 수 있습니다. 회사 계정으로 로그인해 주세요.",
                     "This data desk is for signed-in people only. Sign in with your company account."),
    "signin_button": ("로그인", "Sign in"),
    "signin_no_secrets": ("로그인 설정(비밀값)이 없어 로그인할 수 없습니다 — 운영자에게 알려 주세요: OIDC_CLIENT_ID, "
                          "OIDC_CLIENT_SECRET, OIDC_METADATA_URL, AUTH_COOKIE_SECRET 을 설정하거나 .streamlit/secrets.toml 에 "
                          "[auth] 를 적어야 합니다 (docs/operations.md, \"Sign-in\").",
                          "Sign-in is not set up (its secrets are missing), so nobody can sign in — tell the operator: set "
                          "OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_METADATA_URL and AUTH_COOKIE_SECRET, or write an [auth] "
                          "section into .streamlit/secrets.toml (docs/operations.md, \"Sign-in\")."),
    "signin_no_access": ("{email} 계정에는 이 데이터 데스크의 권한이 없습니다. 관리자에게 권한을 요청하거나, 다른 계정으로 "
                         "로그인하려면 로그아웃하세요.",
                         "The account {email} has no access to this data desk. Ask an admin for access, or sign out to "
                         "use another account."),
    "signout_button": ("로그아웃", "Sign out"),
    "signed_in_as": ("**{who}** 님으로 로그인", "Signed in as **{who}**"),
    "signed_in_role": ("역할: {role}", "Role: {role}"),
    "access_open_note": ("공개 모드: 로그인 없이 누구나 모든 데이터를 봅니다.",
                         "Open: no sign-in, everyone sees everything."),
})


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


def _sentence_case(text: str) -> str:
    """English labels start with a capital ("issued at" → "Issued at"); the rest is kept ("amount (KRW)")."""
    return text[:1].upper() + text[1:] if lang() == "en" else text


def column_label(column: str, description: str = "") -> str:
    """What a column is called on screen and in a labelled download.

    Its description's half in the current language (pipeline.toml), else the
    name the bundled reports give it, else a system label, else its name.
    """
    if description:
        return _sentence_case(pick(description))
    if column in COLUMN_NAMES:
        return pick(COLUMN_NAMES[column])
    if column == "_source_ts":
        return t("sys_source_ts")
    if column == "_ingested_at":
        return t("sys_ingested_at")
    return column


def is_identifier(column: str) -> bool:
    """Numbers that name something (ids, years): shown as written, never as "7,056" or "10004.00"."""
    return column in ("id", "year") or column.endswith(("_id", "_year"))


def has_value_labels(column: str) -> bool:
    return column in VOCABULARY


def vocabulary_order(column: str) -> list[str]:
    """The known codes of a column in their fixed order (empty when the column has no vocabulary)."""
    return list(VOCABULARY.get(column, ()))


def code_label(column: str, code: str) -> str:
    """A vocabulary code as a word in the current language (an unknown code stays as it is)."""
    words = VOCABULARY.get(column, {}).get(code)
    if words is None:
        return code
    return words[1] if lang() == "en" else words[0]


def is_missing(value: Any) -> bool:
    """None, NaN, NaT and pandas' NA: a value the data does not have."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def value_label(column: str, value: Any) -> str:
    """A stored value as text: vocabulary codes as words, ids as written, numbers with separators, "—" for nothing."""
    if is_missing(value):
        return EMPTY
    if isinstance(value, bool):
        return t("true" if value else "false")
    if isinstance(value, str):
        return code_label(column, value) if column in VOCABULARY else value
    if isinstance(value, (int, float)) and is_identifier(column):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, (int, float)):
        return fmt_number(value)
    if isinstance(value, datetime):
        return fmt_datetime(value)
    if isinstance(value, date):
        return fmt_date(value)
    return str(value)


# ─────────────────────────────────────────────────────────── formatting ──


def fmt_number(value: float | int | None, decimals: int = 0) -> str:
    """Thousands separators; whole numbers without decimals (same in both languages)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if decimals == 0 and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{decimals or 2}f}"


def fmt_krw(value: float | int | None, language: str | None = None) -> str:
    """12,345원 / ₩12,345 — KRW has no minor unit, so never decimals (the page's language unless given)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    n = f"{round(value):,}"
    return f"₩{n}" if (language or lang()) == "en" else f"{n}원"


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


# subscriptions and data alerts on saved views (dashboard/subscriptions/views.py, view_form.py)
_TEXT.update({
    "mail_view_missing": ("저장된 보기 ‘{name}’(#{id})이(가) 삭제되어 보낼 결과가 없습니다. 이 구독을 삭제하거나, "
                          "질문을 다시 보기로 저장한 뒤 새로 구독하세요.",
                          "The saved view “{name}” (#{id}) was deleted, so there is no result to send. Delete this "
                          "subscription, or save the question as a view again and subscribe to that."),
    "mail_view_failed": ("저장된 보기를 실행하지 못했습니다: {error} — 탐색에서 보기를 열어 고친 뒤 다시 저장하세요.",
                         "The saved view could not be run: {error} — open it in Explore, fix it and save it again."),
    "mail_intro_view": ("구독하신 저장된 보기 「{title}」 입니다.", "Your subscribed saved view “{title}”."),
    "subv_intro": ("이 질문을 정해진 시각에 메일로 받습니다 (한국 시간). 보낼 때마다 저장된 보기를 다시 실행합니다.",
                   "Get this question by e-mail on a schedule (Korean time). Each mail runs the saved view again."),
    "subv_tab_mail": ("정기 메일", "Scheduled mail"),
    "subv_tab_alert": ("데이터 알림", "Data alert"),
    "subv_view": ("저장된 보기 ‘{name}’ 에 대한 구독입니다. 보기를 고치면 메일도 따라갑니다.",
                  "For the saved view “{name}”. When the view changes, the mails follow."),
    "subv_name": ("보기 이름 — 구독하려면 이 질문을 먼저 보기로 저장합니다", "View name — the question is saved as a view first"),
    "subv_period_relative": ("기간: {preset} — 보낼 때마다 다시 계산", "Period: {preset} — recalculated at each send"),
    "subv_period_fixed": ("기간: {range} (고정)", "Period: {range} (fixed)"),
    "subv_saved": ("보기 ‘{name}’ 구독을 저장했습니다 (#{id}). 첫 발송: {next}. ‘메일 구독’ 페이지에서 관리합니다.",
                   "Subscription to the view “{name}” saved (#{id}). First mail: {next}. Manage it on the Subscriptions page."),
    "subv_alert_intro": ("측정값을 이 질문의 기간과 필터 전체(모든 그룹 합계)로 계산해, 선을 넘을 때 한 번, 돌아올 때 한 번 메일을 보냅니다.",
                         "The measure over this question's whole period and filters (all groups together); one mail when "
                         "it crosses the line, one when it comes back."),
    "subv_alert_save": ("알림 저장", "Save alert"),
    "subv_alert_saved": ("보기 ‘{name}’ 알림을 저장했습니다 (#{id}). ‘메일 구독’ 페이지에서 관리합니다.",
                         "Alert on the view “{name}” saved (#{id}). Manage it on the Subscriptions page."),
    "subv_need_measure": ("측정값을 하나 이상 고르면 알림을 만들 수 있습니다.", "Pick at least one measure to set an alert."),
    "subs_col_target": ("보고서 또는 보기", "Report or view"),
    "subs_col_open": ("열기", "Open"),
    "subs_view_label": ("보기: {name}", "View: {name}"),
    "subs_view_gone": ("삭제된 보기: {name}", "Deleted view: {name}"),
})
