"""Data alerts: a condition on a report's measure, evaluated on its result. Pure functions.

- above / below: the measure's total over the result's rows (sum of a
  numeric column; with the report's parameters, e.g. period = yesterday)
  compared with the threshold. An empty result totals 0.
- no_rows: no row of the result has its `time_column` within the last N
  hours (for reports with a time per row; a date column counts as its day's
  midnight, Asia/Seoul).

The scheduler checks an alert when the data version changed (a batch landed)
or `check_minutes` passed, and mails only when the answer changes
(store.record_check): one mail when it becomes true, one when it clears.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from dashboard import i18n
from dashboard.subscriptions.schedule import SEOUL
from dashboard.subscriptions.store import Alert


def evaluate(alert: Alert, result: pd.DataFrame, now: datetime) -> tuple[bool, float]:
    """(condition holds, the value it was judged on)."""
    if alert.condition == "no_rows":
        col = alert.time_column
        if col not in result.columns:
            raise ValueError(f"the report's result has no column {col!r} — pick its time column for this alert")
        since = now - timedelta(hours=alert.hours or 0)
        recent = sum(1 for v in result[col] if not i18n.is_missing(v) and _moment(v) >= since)
        return recent == 0, float(recent)
    if alert.measure not in result.columns or not pd.api.types.is_numeric_dtype(result[alert.measure]):
        raise ValueError(f"the report's result has no numeric column {alert.measure!r} — pick one of its measures")
    total = float(result[alert.measure].fillna(0).sum())
    if alert.condition == "above":
        return total > alert.threshold, total
    return total < alert.threshold, total


def _moment(value) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=SEOUL)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=SEOUL)
    raise ValueError(f"{value!r} is not a time")


def condition_text(alert: Alert, measure_label: str, lang: str) -> str:
    """"금액(원) 합계가 10,000,000 미만" in the subscriber's language."""
    with i18n.language(lang):
        if alert.condition == "no_rows":
            return i18n.t("alert_no_rows", hours=i18n.fmt_number(alert.hours))
        return i18n.t(f"alert_{alert.condition}", measure=measure_label, threshold=i18n.fmt_number(alert.threshold))


def needs_check(alert: Alert, data_version: str, now: datetime) -> bool:
    """A new batch landed since the last check, or the alert's own interval passed."""
    checked = alert.state.get("checked_at")
    if not checked or alert.state.get("data_version") != data_version:
        return True
    return now - datetime.fromisoformat(checked) >= timedelta(minutes=alert.check_minutes)
