"""Several workers on one lake (a PostgreSQL catalog, as on several machines; the random kill also on SQLite):
they split the partitions by leases, and when one dies (SIGKILL at a random
moment, or at a named failpoint) the other takes its partitions over from the offsets stored with the rows —
nothing lost, nothing landed twice. A worker frozen past its lease cannot commit the batch it holds; the
planted bug that skips that check (tests/faults/no_lease_check.py) makes the same oracle fail."""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from ingest.leases import Lease, fair_share, plan
from tests.ingest_helpers import (
    ROOT,
    assert_matches_scenario,
    dead_letter_count,
    messages_landed,
    read_only,
    scenario_config_tables,
    start_worker,
    stop_process,
    wait_for,
    worker_env,
)
from tests.test_lake import lake_config, postgres_catalog  # noqa: F401 (fixtures)

LEASE_SECONDS = 8.0  # several times the slowest batch commit on this loaded 2-core machine (~2-3 s with conflicts)
NOW = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
PARTS = [("t.a", p) for p in range(5)]


# ─────────────────────────────────────────────────────────── the plan ──


def test_two_live_workers_take_half_each_and_the_first_one_gives_up_its_excess():
    later = NOW + timedelta(seconds=10)
    all_mine = [Lease(t, p, "a", later) for t, p in PARTS]

    assert fair_share(5, 2) == 3
    assert plan("a", all_mine, PARTS, live={"a", "b"}, now=NOW).release == (("t.a", 3), ("t.a", 4))
    freed = [Lease(t, p, "a" if p < 3 else None, later if p < 3 else None) for t, p in PARTS]
    assert plan("b", freed, PARTS, live={"a", "b"}, now=NOW).claim == (("t.a", 3), ("t.a", 4))


def test_a_dead_workers_partitions_are_taken_over_only_once_its_leases_ran_out():
    b_until = NOW + timedelta(seconds=10)
    leases = [Lease(t, p, "a", NOW + timedelta(seconds=1)) for t, p in PARTS[:3]]
    leases += [Lease(t, p, "b", b_until) for t, p in PARTS[3:]]

    assert plan("b", leases, PARTS, live={"b"}, now=NOW).claim == ()  # a's leases still run
    after = NOW + timedelta(seconds=2)
    assert plan("b", leases, PARTS, live={"b"}, now=after).claim == tuple(PARTS[:3])


# ─────────────────────────────────────────────────────── two processes ──


def _start(config, worker_id, log, env=None, script=None):
    if script is None:
        return start_worker(config, "--worker-id", worker_id, env=env, log=log)
    import subprocess

    return subprocess.Popen([sys.executable, str(script), "worker", "--config", str(config), "--worker-id", worker_id],
                            env=worker_env(env), stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=config.parent)


def _owners(lake) -> dict[str, int]:
    try:
        with read_only(lake) as con:
            return dict(con.execute("SELECT owner, count(DISTINCT (topic, \"partition\")) FROM _meta.leases "
                                    "WHERE owner IS NOT NULL GROUP BY owner").fetchall())
    except Exception:  # noqa: BLE001 - not created yet
        return {}


def assert_each_message_landed_once(lake, scenario) -> None:
    """Exactly once, from the batch records: per partition the landed offset ranges tile [0, end) with no overlap,
    and they cover every message produced (counted here, from what the test sent)."""
    with read_only(lake) as con:
        rows = con.execute("SELECT offsets FROM _meta.batches WHERE kind = 'kafka'").fetchall()
    ranges: dict[str, list[tuple[int, int]]] = {}
    for (offsets,) in rows:
        for part, (first, nxt) in json.loads(offsets).items():
            ranges.setdefault(part, []).append((first, nxt))
    sent: dict[str, int] = {}
    for topic, _key, _value in scenario.messages:
        sent[topic] = sent.get(topic, 0) + 1
    landed: dict[str, int] = {}
    for part, spans in ranges.items():
        spans.sort()
        for (a0, a1), (b0, _b1) in zip(spans, spans[1:]):
            assert b0 >= a1, f"{part}: offsets {b0}…{a1 - 1} landed twice (batches {a0}-{a1} and from {b0})"
        topic = part.rsplit("/", 1)[0]
        if topic in sent:
            landed[topic] = landed.get(topic, 0) + sum(b - a for a, b in spans)
    assert landed == sent, f"messages landed per topic {landed} != produced {sent}"


def _finish(procs, lake, scenario, timeout=240):
    wait_for(lambda: messages_landed(lake) >= len(scenario.messages), timeout, "every message to land")
    for proc in procs:
        assert stop_process(proc) == 0
    assert_matches_scenario(lake, scenario)
    assert messages_landed(lake) == len(scenario.messages)
    assert dead_letter_count(lake) == len(scenario.poison)
    assert_each_message_landed_once(lake, scenario)


@pytest.mark.slow
@pytest.mark.parametrize("catalog_kind", ["sqlite", "postgres"])
def test_two_workers_split_the_partitions_and_one_killed_at_random_is_taken_over(catalog_kind, produced, lake_config,
                                                                                 tmp_path, request):
    scenario = produced(40_000)
    catalog = request.getfixturevalue("postgres_catalog") if catalog_kind == "postgres" else None
    config, lake = lake_config(catalog=catalog, tables=scenario_config_tables(),
                               worker={"max_batch_rows": 2000, "max_batch_seconds": 0.3, "lease_seconds": LEASE_SECONDS})
    log = tmp_path / "workers.log"
    a = _start(config, "a", log)
    b = _start(config, "b", log)
    try:
        wait_for(lambda: len(_owners(lake)) == 2, 60, "both workers to own partitions")
        wait_for(lambda: messages_landed(lake) > 0, 60, "a batch to land")
        time.sleep(random.Random(5).uniform(0.2, 1.5))
        a.kill()  # SIGKILL: its leases stay until they run out
        a.wait()
        assert 0 < messages_landed(lake) < len(scenario.messages), "the kill came too late to prove a takeover"
        wait_for(lambda: _owners(lake) == {"b": _total_partitions(lake)}, 60, "b to take a's partitions over")
        _finish([b], lake, scenario)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _total_partitions(lake) -> int:
    with read_only(lake) as con:
        return con.execute('SELECT count(DISTINCT (topic, "partition")) FROM _meta.leases').fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("step", ["before_transaction", "mid_merge", "after_commit", "during_checkpoint"])
def test_a_worker_killed_at_a_named_step_is_taken_over_by_the_other(step, produced, lake_config, postgres_catalog,
                                                                    tmp_path):
    scenario = produced(15_000)
    config, lake = lake_config(catalog=postgres_catalog, tables=scenario_config_tables(),
                               worker={"max_batch_rows": 1500, "max_batch_seconds": 0.3, "lease_seconds": LEASE_SECONDS})
    log = tmp_path / "workers.log"
    a = _start(config, "a", log, env={"INGEST_FAILPOINT": f"{step}:2"})
    b = None
    try:
        # b joins once a owns partitions: started together, b could claim all nine and land nearly everything before
        # handing a its share, and a would never reach its second visit of the step (seen once in CI).
        wait_for(lambda: _owners(lake).get("a"), 120, "worker a to claim its partitions")
        b = _start(config, "b", log)
        assert a.wait(timeout=120) == -9, "the failpoint did not kill worker a"
        _finish([b], lake, scenario)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _frozen_worker_comes_back(produced, lake_config, catalog, tmp_path, script=None):
    """Worker a stops inside a batch's transaction (a hold failpoint: a long pause, a frozen VM) for longer than
    its lease; b takes everything over and lands it; then a resumes and tries to commit the batch it holds."""
    scenario = produced(15_000)
    config, lake = lake_config(catalog=catalog, tables=scenario_config_tables(),
                               worker={"max_batch_rows": 1500, "max_batch_seconds": 0.3, "lease_seconds": LEASE_SECONDS})
    log = tmp_path / "workers.log"
    hold = tmp_path / "hold"
    hold.mkdir()
    a = _start(config, "a", log, env={"INGEST_FAILPOINT": f"mid_merge:2:hold:{hold}"}, script=script)
    b = None
    try:
        wait_for(lambda: (hold / "held").exists(), 120, "worker a to stop inside a batch")
        b = _start(config, "b", log)
        wait_for(lambda: messages_landed(lake) >= len(scenario.messages), 240, "b to land everything")
        (hold / "release").touch()
        wait_for(lambda: (hold / "resumed").exists(), 30, "worker a to resume")
        time.sleep(LEASE_SECONDS * 2)  # a commits (or is refused), re-claims its share, catches up
        wait_for(lambda: messages_landed(lake) >= len(scenario.messages), 120, "the workers to settle")
        time.sleep(2)
        for proc in (a, b):
            assert stop_process(proc) == 0
        return lake, scenario, log
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_a_frozen_worker_cannot_commit_a_batch_whose_partitions_were_taken_over(produced, lake_config, postgres_catalog,
                                                                               tmp_path):
    lake, scenario, log = _frozen_worker_comes_back(produced, lake_config, postgres_catalog, tmp_path)

    assert "worker a: batch dropped, nothing of it committed" in log.read_text(encoding="utf-8")
    assert_matches_scenario(lake, scenario)
    assert messages_landed(lake) == len(scenario.messages)
    assert_each_message_landed_once(lake, scenario)


@pytest.mark.slow
def test_negative_control_without_the_lease_check_the_frozen_worker_lands_twice(produced, lake_config, postgres_catalog,
                                                                               tmp_path):
    """Same freeze, same oracle, planted bug: the in-transaction lease check is skipped — the oracle must fail."""
    lake, scenario, _log = _frozen_worker_comes_back(produced, lake_config, postgres_catalog, tmp_path,
                                                     script=ROOT / "tests/faults/no_lease_check.py")

    with pytest.raises(AssertionError, match="landed twice|!= produced"):
        assert_each_message_landed_once(lake, scenario)


@pytest.mark.slow
def test_the_hostile_stream_lands_exactly_once_with_two_workers_on_a_lake(broker, topic_prefix, lake_config,
                                                                        postgres_catalog, tmp_path):
    from tests.test_worker_hostile_stream import MARKER, check, run_stream

    def write(**kwargs):
        kwargs["worker"] = {**kwargs.get("worker", {}), "max_batch_rows": 500, "max_batch_seconds": 0.3,
                            "lease_seconds": LEASE_SECONDS}
        return lake_config(catalog=postgres_catalog, **kwargs)[0]

    log = tmp_path / "workers.log"

    def two_workers(config, total):
        from ingest.config import load_config

        lake = load_config(config).warehouse
        env = {"INGEST_POISON_MARKER": MARKER}
        procs = [_start(config, "a", log, env=env), _start(config, "b", log, env=env)]
        try:
            wait_for(lambda: messages_landed(lake) >= total, 240, "every message to land")
            time.sleep(1.0)  # a batch the other worker might still (wrongly) commit would show now
        finally:
            codes = [stop_process(p) for p in procs]
        assert codes == [0, 0], log.read_text(encoding="utf-8")[-3000:]
        return lake

    scenario, hostile, total, lake = run_stream(broker, topic_prefix, write, tmp_path, {}, run=two_workers)

    check(tmp_path, scenario, hostile, total, None, warehouse=lake)
    text = log.read_text(encoding="utf-8")
    assert "narrowing it down" in text
    with read_only(lake) as con:
        beats = dict(con.execute("SELECT worker, state FROM _meta.heartbeat").fetchall())
    assert beats == {"a": "stopped", "b": "stopped"}


def test_two_workers_with_the_same_id_refuse_but_different_ids_may_share_a_lake(lake_config, tmp_path):
    from ingest.config import load_config
    from ingest.worker import Worker, WorkerAlreadyRunning, WorkerLock

    config, _lake = lake_config(tables=scenario_config_tables())
    cfg = load_config(config)
    held = WorkerLock(Worker(cfg, False, False, False, "a")._lock_path())
    held.acquire()
    try:
        with pytest.raises(WorkerAlreadyRunning, match="already landing"):
            WorkerLock(Worker(cfg, False, False, False, "a")._lock_path()).acquire()
        other = WorkerLock(Worker(cfg, False, False, False, "b")._lock_path())
        other.acquire()
        other.release()
    finally:
        held.release()


# ──────────────────────────────────────────────── health with N workers ──


def _observe(beats: dict[str, float], owners: dict[str, str | None]):
    """health.read over a real `_meta`: beats = worker → age in seconds, owners = partition name → owner."""
    import duckdb

    from ingest import health
    from ingest.landing import ensure_meta

    con = duckdb.connect()
    ensure_meta(con)
    now = datetime.now(timezone.utc)
    for worker, age in beats.items():
        con.execute("INSERT INTO _meta.heartbeat (worker, beat_at, started_at, state, host, pid) "
                    "VALUES (?, ?, ?, 'running', ?, 4242)",
                    [worker, now - timedelta(seconds=age), now - timedelta(hours=1), f"machine-{worker}"])
    for i, (_name, owner) in enumerate(owners.items()):
        con.execute("INSERT INTO _meta.leases VALUES ('t.a', ?, ?, ?)", [i, owner, now])
    obs = health.read(lambda sql: con.execute(sql).fetchall(), now)
    con.close()
    return obs


def _verdict(beats: dict[str, float], owners: dict[str, str | None]) -> str:
    from ingest import health

    return health.worker_verdict(_observe(beats, owners), timedelta(seconds=60))


def test_a_dead_worker_is_down_until_its_partitions_are_taken_over():
    assert _verdict({"a": 300, "b": 1}, {"p0": "a", "p1": "b"}) == "down"
    assert _verdict({"a": 300, "b": 1}, {"p0": "b", "p1": "b"}) == "ok"  # taken over: b carries on
    assert _verdict({"a": 1, "b": 2}, {"p0": "a", "p1": "b"}) == "ok"
    assert _verdict({"worker": 300}, {}) == "down"  # the single file: its one worker, as before
    assert _verdict({"a": 1}, {}) == "ok"  # a lake worker that owns nothing yet still beats


def test_the_alert_names_the_worker_that_is_down_and_where_it_ran():
    from ingest.watchdog import Limits, WatchState, decide

    limits = Limits(alert_after=timedelta(seconds=60), max_lag_messages=1000, host="watch-host", startup_grace=False)
    obs = _observe({"a": 300, "b": 1}, {"p0": "a", "p1": "b"})
    assert obs.worker_id == "a"
    state, [alert] = decide(obs, WatchState(), limits)
    assert "worker 'a' down" in alert.subject
    assert "The last heartbeat of the ingest worker 'a' is" in alert.body and "(host machine-a, pid 4242)" in alert.body
    assert _observe({"worker": 300}, {}).worker_id is None  # one worker on a single file: no name to give

    # b took a's partitions over: the recovery does not call b "back", it says every holder beats again.
    _, [recovery] = decide(_observe({"a": 300, "b": 1}, {"p0": "b", "p1": "b"}), state, limits)
    assert recovery.kind == "recovery"
    assert "Every worker holding partitions is writing heartbeats again" in recovery.body
    assert "is from worker 'b' (state 'running', host machine-b, pid 4242)" in recovery.body


def test_worker_id_and_lease_come_from_the_config_and_a_bad_id_says_what_is_expected(tmp_path):
    from ingest.config import ConfigError, load_config

    path = tmp_path / "p.toml"
    path.write_text('[worker]\nid = "ingest-2"\nlease_seconds = 20\n', encoding="utf-8")
    worker = load_config(path, needs=("worker",)).worker
    assert (worker.id, worker.lease_seconds) == ("ingest-2", 20.0)
    path.write_text('[worker]\nid = "a b/c"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[worker\] id = 'a b/c' — expected 1 to 64 letters"):
        load_config(path, needs=("worker",))
