"""Pure rules behind the completeness re-send, the back-off and the loading percentage (no services needed)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from dashboard.freshness import chain_state_from
from ingest.export import grown_settled_days
from ingest.governor import Governor
from ingest.health import ExporterReport, Observation

KST = timezone(timedelta(hours=9))


def test_only_a_settled_day_that_grew_is_re_sent():
    as_of = datetime(2026, 11, 24, 10, 0, tzinfo=KST)
    before = {"2026-11-22": 10, "2026-11-23": 20, "2026-11-24": 5}
    now = {"2026-11-22": 10, "2026-11-23": 23, "2026-11-24": 9}
    # 11-23 ended before the previous watermark minus the overlap: it grew behind the exporter's back.
    # 11-24 is today: it grows by the normal flow.
    assert grown_settled_days((as_of, before), now, overlap_seconds=5) == ["2026-11-23"]
    # A day that ended inside the overlap window is not settled yet.
    early = datetime(2026, 11, 24, 0, 0, 3, tzinfo=KST)
    assert grown_settled_days((early, before), now, overlap_seconds=5) == []
    # Shrinking (an update moved a row to a later day) is not a reason to re-send; no baseline, nothing to compare.
    assert grown_settled_days((as_of, before), {**now, "2026-11-23": 19}, 5) == []
    assert grown_settled_days(None, now, 5) == []


def test_back_off_doubles_on_slow_reads_and_halves_back_to_zero():
    g = Governor(slow_read_seconds=1.0, max_backoff_seconds=4.0)
    pauses = []
    for seconds in (2.0, 2.0, 2.0, 2.0, 0.1, 0.1, 0.1, 0.1):
        g.after_read(10, seconds)
        pauses.append(g.pause_seconds)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 2.0, 1.0, 0.5, 0.0]


def test_the_ceiling_spaces_reads_by_the_rows_they_returned():
    g = Governor(max_rows_per_second=1000.0)
    g.begin()
    stop = threading.Event()
    t0 = time.monotonic()
    for _ in range(3):
        assert g.before_read(stop)
        g.after_read(200, 0.0)
    assert g.before_read(stop)  # 600 rows at 1,000 rows/s: this read may start at 0.6 s
    assert 0.55 <= time.monotonic() - t0 < 1.0


def test_loading_percentage_counts_what_the_exporters_and_kafka_still_hold():
    now = datetime(2026, 11, 24, 1, tzinfo=timezone.utc)
    behind = Observation(now, heartbeat_at=now, worker_state="running", heartbeat_lag=1_000,
                         exporters=(ExporterReport("e", "catching_up", now, rows_behind=29_000),))
    assert chain_state_from(behind, landed=10_000).loading_percent == 25  # 10k of 40k
    done = Observation(now, heartbeat_at=now, worker_state="idle", heartbeat_lag=20,
                       exporters=(ExporterReport("e", "ok", now, rows_behind=0),))
    assert chain_state_from(done, landed=40_000).loading_percent is None
    lagging = Observation(now, heartbeat_at=now, worker_state="running", heartbeat_lag=90_000,
                          exporters=(ExporterReport("e", "ok", now, rows_behind=0),))
    assert chain_state_from(lagging, landed=10_000).loading_percent == 10  # Kafka holds most of it
