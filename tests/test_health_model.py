"""The one health model (`ingest/health.py`) as the watchdog uses it: exporter problems, hold-down, one rule for "down".

Pure checks: observations are built here, `decide` is driven check by check.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from dashboard import pipeline_health
from ingest.health import ExporterReport, Observation, exporter_problems, worker_verdict
from ingest.watchdog import Limits, WatchState, decide

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)
AFTER = timedelta(seconds=60)
LIMITS = Limits(alert_after=AFTER, max_lag_messages=1000, host="test-host", hold_down=timedelta(seconds=30))


def seen(at: datetime, status_age: float | None, state: str = "ok", stopped: dict | None = None,
         beat_age: float = 1.0, worker_state: str = "idle") -> Observation:
    exporters = () if status_age is None else (
        ExporterReport("exp-1", state, at - timedelta(seconds=status_age), message="cannot read",
                       stopped_tables=stopped or {}, errors=("ledger: access denied",) if state == "source_unreachable" else ()),)
    return Observation(at, heartbeat_at=at - timedelta(seconds=beat_age), worker_state=worker_state, worker_pid=1,
                       heartbeat_lag=0, dead_letters_by_topic=(), exporters=exporters)


def run(observations):
    state, sent = WatchState(), []
    for obs in observations:
        state, notices = decide(obs, state, LIMITS)
        sent += [(n.kind, n.problem) for n in notices]
    return state, sent


def test_a_silent_exporter_gives_one_alert_then_one_recovery_after_the_hold_down():
    checks = [T0 + timedelta(seconds=10 * i) for i in range(30)]
    # Status records stop at check 3 (the exporter was killed) and resume at check 15.
    last_status = {i: (checks[min(i, 3)] if i < 15 else checks[i]) for i in range(30)}
    obs = [seen(at, (at - last_status[i]).total_seconds()) for i, at in enumerate(checks)]
    state, sent = run(obs[:14])
    assert sent == [("alert", "exporter_silent:exp-1")]  # once, at the first check past 60 s; no repeats
    state, more = run(obs)
    assert more == [("alert", "exporter_silent:exp-1"), ("recovery", "exporter_silent:exp-1")]
    assert not state.open


def test_a_flapping_exporter_does_not_storm():
    """Silent, back for one check, silent again… every 10 s: one alert, and no recovery until it stays back."""
    checks = [T0 + timedelta(seconds=10 * i) for i in range(40)]
    obs = []
    for i, at in enumerate(checks):
        if i < 8:
            age = 10 * i  # silent from the start: past 60 s at check 7
        elif i < 24:
            age = 1 if i % 2 else 70  # flapping: back, gone, back…
        else:
            age = 1  # steady again
        obs.append(seen(at, age))
    _, sent = run(obs)
    assert sent == [("alert", "exporter_silent:exp-1"), ("recovery", "exporter_silent:exp-1")]
    # Negative control: without the hold-down the same flapping storms.
    state, storm = WatchState(), []
    no_hold = Limits(AFTER, 1000, "test-host", hold_down=timedelta(0))
    for o in obs:
        state, notices = decide(o, state, no_hold)
        storm += notices
    assert len(storm) > 10


def test_exporter_problems_are_not_judged_while_the_worker_is_down():
    at = T0 + timedelta(hours=1)
    obs = seen(at, status_age=600, beat_age=600)
    assert exporter_problems(obs, AFTER) is None
    _, notices = decide(obs, WatchState(), Limits(AFTER, 1000, "h", startup_grace=False))
    sent = [(n.kind, n.problem) for n in notices]
    assert sent == [("alert", "worker_down")], "a dead worker is the problem to name, not every exporter behind it"


def test_source_unreachable_and_a_stopped_table_are_named_with_what_to_do():
    at = T0
    problems = exporter_problems(seen(at, 2, state="source_unreachable"), AFTER)
    assert list(problems) == ["source_unreachable:exp-1"]
    assert "grants" in problems["source_unreachable:exp-1"].body
    problems = exporter_problems(seen(at, 2, state="degraded", stopped={"members": "PII guard: phone-like values in name"}),
                                 AFTER)
    assert list(problems) == ["table_stopped:members"]
    assert "pipeline.toml" in problems["table_stopped:members"].body and "no restart" in problems["table_stopped:members"].body
    assert exporter_problems(seen(at, 2), AFTER) == {}


def test_the_page_and_the_watchdog_call_the_worker_down_by_the_same_rule():
    now = T0
    for age, worker_state in [(1, "idle"), (40, "idle"), (61, "idle"), (5, "stopped"), (61, "stopped"), (5, "broker_unreachable")]:
        obs = Observation(now, heartbeat_at=now - timedelta(seconds=age), worker_state=worker_state)
        frame = pd.DataFrame([{"beat_at": obs.heartbeat_at, "state": worker_state, "pid": 1, "lag_messages": 0,
                               "message": None, "started_at": now, "host": "h", "last_batch_id": 1, "worker": None}])

        def query(sql, params, frame=frame):
            if "_meta.heartbeat" in sql:
                return frame
            if "information_schema" in sql:
                return pd.DataFrame({"n": [0]})
            return pd.DataFrame(columns=["a", "b", "c", "d", "e"])

        page = pipeline_health.heartbeat(query, now).verdict(AFTER.total_seconds())
        assert page == worker_verdict(obs, AFTER), (age, worker_state)
        # The watchdog mails "worker down" exactly when the page says down.
        _, sent = decide(obs, WatchState(), Limits(AFTER, 1000, "h", startup_grace=False))
        assert (("worker_down" in [n.problem for n in sent]) == (page == "down")), (age, worker_state)


def test_a_completeness_difference_alerts_only_after_n_checks_in_a_row_and_recovers_once():
    from ingest.health import DayCheck

    def checked(at, passes, source=100, warehouse=97):
        day = DayCheck("payments", "2026-11-23", T0, source, warehouse if passes else source, passes, at)
        return Observation(at, heartbeat_at=at, worker_state="idle", worker_pid=1, heartbeat_lag=0,
                           dead_letters_by_topic=(), completeness=(day,))

    limits = Limits(AFTER, 1000, "h", mismatch_passes=3, hold_down=timedelta(0))
    state, sent = WatchState(), []
    for i, passes in enumerate([1, 2, 3, 4, 0, 0]):
        state, notices = decide(checked(T0 + timedelta(minutes=10 * i), passes), state, limits)
        sent += [(n.kind, n.problem, n.subject) for n in notices]
    assert [(k, p) for k, p, _ in sent] == [("alert", "completeness:payments"), ("recovery", "completeness:payments")]
    assert "completeness mismatch: payments" in sent[0][2]
