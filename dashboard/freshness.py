"""How old is the data people are looking at? ("데이터 기준: 3분 전 / data as of 3 min ago")

The age is the time since the last landed batch (`_meta.batches.committed_at`).
It is amber past 2 × the batch interval and red past 10 ×, where the batch
interval is how often new data can arrive: the exporter's interval (the
worker's `max_batch_seconds` when that is longer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import streamlit as st

from dashboard import i18n
from dashboard.warehouse import Warehouse, WarehouseBusy

AMBER_FACTOR = 2
RED_FACTOR = 10


@dataclass(frozen=True)
class Freshness:
    last_batch_at: datetime | None
    age_seconds: float | None
    interval_seconds: float
    level: str  # ok | amber | red | none

    @property
    def text(self) -> str:
        if self.age_seconds is None:
            return i18n.t("fresh_none")
        return i18n.t("fresh_as_of", ago=i18n.fmt_ago(self.age_seconds))


def batch_interval(wh: Warehouse) -> float:
    cfg = wh.config
    exporter = cfg.exporter.interval_seconds if cfg.exporter else 0.0
    worker = cfg.worker.max_batch_seconds if cfg.worker else 0.0
    return max(exporter, worker, 1.0)


def level_for(age_seconds: float | None, interval: float) -> str:
    if age_seconds is None:
        return "none"
    if age_seconds > RED_FACTOR * interval:
        return "red"
    if age_seconds > AMBER_FACTOR * interval:
        return "amber"
    return "ok"


def freshness(wh: Warehouse, now: datetime | None = None) -> Freshness:
    interval = batch_interval(wh)
    last = None
    if wh.path.exists() and wh.has_meta("batches"):
        last = wh.scalar("SELECT max(committed_at) FROM _meta.batches")
    if last is None or last != last:  # None or NaT
        return Freshness(None, None, interval, "none")
    last = last.to_pydatetime() if hasattr(last, "to_pydatetime") else last
    now = now or datetime.now(timezone.utc)
    age = (now - last).total_seconds()
    return Freshness(last, age, interval, level_for(age, interval))


def show_sidebar(wh: Warehouse) -> None:
    """The freshness line in the sidebar, coloured by level."""
    try:
        f = freshness(wh)
    except WarehouseBusy:
        st.sidebar.caption(i18n.t("busy"))
        return
    if f.level == "none":
        st.sidebar.caption(f.text)
    elif f.level == "ok":
        st.sidebar.markdown(f":green[● {f.text}]")
    elif f.level == "amber":
        st.sidebar.markdown(f":orange[● {f.text}]")
        st.sidebar.caption(i18n.t("fresh_amber", interval=i18n.fmt_duration(f.interval_seconds)))
    else:
        st.sidebar.markdown(f":red[● {f.text}]")
        st.sidebar.caption(i18n.t("fresh_red"))
    if f.last_batch_at is not None:
        st.sidebar.caption(i18n.fmt_datetime(f.last_batch_at) + " (KST)")
