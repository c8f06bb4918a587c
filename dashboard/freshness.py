"""How old is the data people are looking at? ("데이터 기준: 3분 전 / data as of 3 min ago")

And is it whole? While the chain is behind (a first load, after an outage, a
re-export) the block says "loading: 62% of the source's rows" instead of an
age, and pages mark their figures provisional (`catching_up`); "just now"
appears only once caught up. Below the age, the completeness proof: "matches
the source as of 10:05", or the days that differ. Both are read and judged by
`ingest/health.py`, the watchdog's code.

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
from dashboard.access.enforce import as_system
from dashboard.warehouse import Warehouse, WarehouseBusy
from ingest import health

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
    if wh.exists() and wh.has_meta("batches"):
        last = wh.scalar("SELECT max(committed_at) FROM _meta.batches")
    if last is None or last != last:  # None or NaT
        return Freshness(None, None, interval, "none")
    last = last.to_pydatetime() if hasattr(last, "to_pydatetime") else last
    now = now or datetime.now(timezone.utc)
    age = (now - last).total_seconds()
    return Freshness(last, age, interval, level_for(age, interval))


@dataclass(frozen=True)
class ChainState:
    """What the sidebar and the pages say about completeness: catching up (with progress) and the per-day proof."""

    loading_percent: int | None  # None: caught up (or nothing known); else how much of the source has landed
    checked_as_of: datetime | None  # when the oldest of the tables' latest completeness checks ran, if any
    differences: tuple[health.DayCheck, ...] = ()

    @property
    def catching_up(self) -> bool:
        return self.loading_percent is not None

    def lines(self) -> list[str]:
        """The completeness lines: one "matches" line, or one line per day that differs."""
        if self.checked_as_of is None:
            return [i18n.t("complete_none")]
        if not self.differences:
            return [i18n.t("complete_match", at=i18n.fmt_datetime(self.checked_as_of))]
        out = []
        for d in self.differences:
            key = "complete_more_source" if d.difference > 0 else "complete_more_wh"
            out.append(i18n.t(key, table=d.table, day=d.day, n=i18n.fmt_number(abs(d.difference))))
        return out


_CHAIN_STATES: dict[tuple[str, str], ChainState] = {}


def chain_state(wh: Warehouse, now: datetime | None = None) -> ChainState:
    """Read `_meta` through `health.read` (the watchdog's statements) and say whether the data is whole.

    The verdict depends on the landed data only (lag, rows still to send,
    completeness), so every page run of every person shares one per data
    version: the sidebar asks on each run.
    """
    key = (str(wh.path), wh.data_version())
    if now is None and key in _CHAIN_STATES:
        return _CHAIN_STATES[key]
    # The chain's status is the same for everyone and its statements are fixed: read beyond a role's rules.
    with as_system():
        if not (wh.exists() and wh.has_meta("heartbeat")):
            return ChainState(None, None)
        obs = health.read(lambda sql: list(wh.query(sql, []).itertuples(index=False, name=None)),
                          now or datetime.now(timezone.utc))
        state = chain_state_from(obs, landed_rows(wh))
    if now is None:
        if len(_CHAIN_STATES) > 16:
            _CHAIN_STATES.clear()
        _CHAIN_STATES[key] = state
    return state


def chain_state_from(obs: health.Observation, landed: int) -> ChainState:
    """Pure: the sidebar's verdict from one observation and the rows the warehouse holds."""
    percent = None
    if not health.caught_up(obs):
        behind = health.rows_behind(obs) or 0
        total = landed + behind
        percent = int(100 * landed / total) if total else 0
        percent = min(percent, 99)  # "100%" while behind would read as done
    checks = obs.completeness
    # The check's time, not its watermark: a table that has not changed for a year (merchants) has an old
    # watermark, yet at the check its counts covered everything the source had — "as of 2025-09-30" misleads.
    as_of = min((c.checked_at for c in checks), default=None)
    return ChainState(percent, as_of, tuple(c for c in checks if c.difference))


def landed_rows(wh: Warehouse) -> int:
    """Rows in the warehouse's tables (DuckDB's own estimate: free, exact enough for a percentage)."""
    value = wh.scalar("SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() WHERE schema_name = 'main'")
    return int(value or 0)


def provisional_note() -> None:
    """On a page showing figures: say they are provisional while the chain catches up (nothing when caught up)."""
    try:
        state = chain_state(_warehouse())
    except WarehouseBusy:
        return
    if state.catching_up:
        st.warning(i18n.t("catching_up", pct=state.loading_percent), icon=":material/hourglass_top:")


def _warehouse() -> Warehouse:
    from dashboard.warehouse import app_warehouse

    return app_warehouse()


def show_sidebar(wh: Warehouse) -> None:
    """The freshness block in the sidebar: age (or loading progress) coloured by level, then the completeness proof."""
    try:
        f = freshness(wh)
        chain = chain_state(wh)
    except WarehouseBusy:
        st.sidebar.caption(i18n.t("busy"))
        return
    if chain.catching_up:
        st.sidebar.markdown(f":orange[● {i18n.t('catching_up_short', pct=chain.loading_percent)}]")
        st.sidebar.caption(i18n.t("catching_up", pct=chain.loading_percent))
    elif f.level == "none":
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
    lines = chain.lines()
    if chain.differences:
        st.sidebar.markdown(f":red[● {lines[0]}]")
        for line in lines[1:6]:
            st.sidebar.caption(line)
    else:
        st.sidebar.caption(lines[0])
