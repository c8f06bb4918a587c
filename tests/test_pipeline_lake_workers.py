"""The Pipeline page lists every worker of a lake: the partitions each holds, its last beat, its lease, and
its state by the watchdog's rule — on a real DuckLake (SQLite catalog) whose leases and heartbeats were
written by the workers' own code (ingest/leases.py lease rounds carrying ingest/landing.py heartbeats)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from dashboard import pipeline_health as ph
from dashboard.warehouse import Warehouse
from ingest import warehouse_lake, warehouse_target
from ingest.config import load_config
from ingest.landing import Heartbeat, ensure_meta, heartbeat_in_transaction
from ingest.leases import Leases
from tests.fixtures_app import run_page, write_app_config
from tests.test_lake import lake_section

TOPIC = "prepaid.payments"
PARTITIONS = [(TOPIC, p) for p in range(4)]
LEASE_SECONDS = 600.0  # nothing expires by itself while the test runs; expiry is planted


def _beat(worker: str, state: str = "running") -> Heartbeat:
    return Heartbeat(worker=worker, started_at=datetime.now(timezone.utc), state=state, pid=os.getpid(),
                     host=f"host-{worker}", lag=None)


def _round(con, worker: str) -> set:
    leases = Leases(worker, LEASE_SECONDS)
    leases.register(con, PARTITIONS)
    _plan, owned = leases.round(con, PARTITIONS, also=lambda c: heartbeat_in_transaction(c, _beat(worker)))
    return owned


@pytest.fixture
def lake_of_three_workers(tmp_path, monkeypatch):
    """Workers a and b split four partitions as they would (a takes all, b arrives, a gives up its excess, b
    claims it); then b freezes: its beat is 90 s old and its leases ran out 75 s ago, nobody took over yet.
    Worker c stopped cleanly earlier and holds nothing."""
    config = write_app_config(tmp_path, tmp_path / "warehouse.duckdb")
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[warehouse]\n", "[warehouse]\n" + lake_section(tmp_path), 1), encoding="utf-8")
    cfg = load_config(config, needs=("warehouse",)).warehouse
    warehouse_target.create(cfg, ensure_meta)
    with warehouse_lake.open_lake(cfg) as con:
        assert _round(con, "a") == set(PARTITIONS)
        _round(con, "b")
        assert _round(con, "a") == set(PARTITIONS[:2])
        assert _round(con, "b") == set(PARTITIONS[2:])
        con.execute("BEGIN TRANSACTION")
        heartbeat_in_transaction(con, _beat("c", state="stopped"))
        con.execute("COMMIT")
        # b froze (planted): no beat for 90 s, its leases ran out 75 s ago.
        con.execute("UPDATE _meta.heartbeat SET beat_at = now() - INTERVAL 90 SECOND WHERE worker = 'b'")
        con.execute("UPDATE _meta.leases SET lease_until = now() - INTERVAL 75 SECOND WHERE owner = 'b'")
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    return config


def test_each_worker_with_its_partitions_and_the_watchdogs_verdict(lake_of_three_workers):
    wh = Warehouse(load_config(lake_of_three_workers, needs=("warehouse",)))
    workers = {w.worker: (w, verdict) for w, verdict in ph.lake_workers(wh.query, datetime.now(timezone.utc), 120.0)}

    assert set(workers) == {"a", "b", "c"}
    assert workers["a"][0].partitions == (f"{TOPIC}:0", f"{TOPIC}:1")
    assert workers["b"][0].partitions == (f"{TOPIC}:2", f"{TOPIC}:3")
    assert workers["c"][0].partitions == () and workers["c"][0].lease_until is None
    # ok: a fresh beat; late: older than half of alert_after (120 s); c holds nothing, so nothing to judge.
    assert {w: v for w, (_, v) in workers.items()} == {"a": "ok", "b": "late", "c": "holds_none"}
    assert workers["b"][0].lease_until < datetime.now(timezone.utc) - timedelta(seconds=60)


def test_the_pipeline_page_shows_both_workers_in_korean(lake_of_three_workers):
    at = run_page("pages/pipeline.py", lang="ko")

    table = next(d.value for d in at.dataframe if "맡은 파티션" in d.value.columns)
    rows = {r["워커"]: r for r in table.to_dict("records")}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"]["맡은 파티션"] == f"{TOPIC}:0, {TOPIC}:1" and rows["a"]["파티션 수"] == 2
    assert rows["b"]["맡은 파티션"] == f"{TOPIC}:2, {TOPIC}:3" and rows["b"]["파티션 수"] == 2
    assert (rows["a"]["상태"], rows["b"]["상태"]) == ("정상", "늦음")
    assert rows["c"]["상태"].startswith("파티션 없음") and rows["c"]["파티션 수"] == 0
    assert rows["a"]["임대 만료"].endswith("남음") and rows["b"]["임대 만료"].startswith("만료됨")
    assert rows["c"]["임대 만료"] == "—"  # no lease at all, not an expired one
    assert "1분 전" in rows["b"]["마지막 신호"]
    assert rows["a"]["호스트"].startswith("host-a pid ")
    # The line above the table judges the worker the watchdog judges, b (the oldest beat holding partitions), by name.
    assert [w.value.split(" · ")[0] for w in at.warning if w.value.startswith("워커")] == ["워커 b: 적재 중"]


def test_a_single_file_warehouse_shows_no_workers_table(app_env):
    at = run_page("pages/pipeline.py", lang="ko")

    assert any(e.value.startswith("워커:") for e in [*at.success, *at.warning, *at.error])  # the one worker's line
    assert not any("맡은 파티션" in d.value.columns for d in at.dataframe)
    assert not any(s.value == "워커" for s in at.subheader)
