"""The watchdog: its decisions (pure), and the loop against a real DuckDB file and a real SMTP server."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from ingest.config import load_config
from ingest.watchdog import (
    AlertHistory,
    Limits,
    Observation,
    PartitionStatus,
    WatchState,
    decide,
    load_state,
    observe,
    run_watchdog,
)
from ingest.warehouse_file import open_writer
from tests.conftest import free_port
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)

META_SQL = Path(__file__).resolve().parent.parent / "ingest" / "sql" / "meta.sql"
T0 = datetime(2026, 11, 24, 1, 0, 0, tzinfo=timezone.utc)
LIMITS = Limits(alert_after=timedelta(seconds=120), max_lag_messages=1000, host="test-host")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def beat(now_s: float, age_s: float, **kw) -> Observation:
    kw.setdefault("worker_state", "running")
    kw.setdefault("worker_pid", 4242)
    kw.setdefault("dead_letters_by_topic", ())
    return Observation(at(now_s), heartbeat_at=at(now_s - age_s), **kw)


def run(observations, state=None):
    """Feed observations in order; return the final state and every notice as (kind, problem)."""
    state = state or WatchState()
    sent = []
    for obs in observations:
        state, notices = decide(obs, state, LIMITS)
        sent.extend(notices)
    return state, sent


def kinds(notices):
    return [(n.kind, n.problem) for n in notices]


# ────────────────────────────────────────────────────────── decisions ──


def test_a_stale_heartbeat_sends_one_alert_and_one_recovery_no_storm():
    obs = [beat(0, 5), beat(15, 20)]  # healthy
    obs += [beat(t, t - 10) for t in range(135, 600, 15)]  # last beat at 10 s: stale from 130 s on, for minutes
    obs += [beat(615, 2), beat(630, 3), beat(645, 1)]  # back
    state, notices = run(obs)
    assert kinds(notices) == [("alert", "worker_down"), ("recovery", "worker_down")]
    alert, recovery = notices
    assert "ALERT" in alert.subject and "worker down" in alert.subject
    assert "2 min 5 s old (limit 2 min)" in alert.body and "pid 4242" in alert.body
    assert "RECOVERED" in recovery.subject and "lasted 8 min" in recovery.body
    assert state.open == {}


def test_the_age_decides_even_if_the_worker_says_running():
    # A SIGSTOPped worker's last row still says 'running' with a live PID; only its age gives it away.
    _, notices = run([beat(0, 1), beat(200, 121, worker_state="running")])
    assert kinds(notices) == [("alert", "worker_down")]


def test_after_a_reboot_the_worker_gets_time_to_beat_before_it_is_called_down():
    # Both processes start together; the heartbeat on disk is from before the reboot (3 h old).
    _, notices = run([beat(0, 3 * 3600), beat(15, 3 * 3600 + 15), beat(30, 2)])
    assert notices == []  # no alert-then-recovery pair on every reboot
    _, notices = run([beat(t, 3 * 3600 + t) for t in range(0, 150, 15)])
    assert kinds(notices) == [("alert", "worker_down")]  # it did not come back: one alert after alert_after
    once = Limits(LIMITS.alert_after, LIMITS.max_lag_messages, startup_grace=False)
    _, notices = decide(beat(0, 3 * 3600), WatchState(), once)
    assert kinds(notices) == [("alert", "worker_down")]  # `watchdog --once` judges the state as it is


def test_no_warehouse_file_counts_from_the_watchdogs_start():
    missing = [Observation(at(t), unreadable="missing") for t in (0, 60, 119, 121, 150)]
    state, notices = run(missing)
    assert kinds(notices) == [("alert", "worker_down")]
    assert "does not exist" in notices[0].body
    _, notices = run([beat(160, 1)], state)
    assert kinds(notices) == [("recovery", "worker_down")]


def test_a_file_locked_by_a_frozen_writer_counts_from_the_last_beat_seen():
    obs = [beat(0, 0)] + [Observation(at(t), unreadable="busy") for t in (30, 100, 115)]
    _, notices = run(obs)
    assert notices == []  # 115 s since the last beat: not yet
    _, notices = run(obs + [Observation(at(125), unreadable="busy")])
    assert kinds(notices) == [("alert", "worker_down")] and "locked" in notices[0].body


def test_lag_alerts_only_after_two_consecutive_checks_above_the_limit():
    _, notices = run([beat(0, 1, heartbeat_lag=5000), beat(15, 1, heartbeat_lag=10)])
    assert notices == []  # one spike is not a problem
    obs = [beat(t, 1, heartbeat_lag=5000) for t in (0, 15, 30, 45)] + [beat(60, 1, heartbeat_lag=999)]
    _, notices = run(obs)
    assert kinds(notices) == [("alert", "lag"), ("recovery", "lag")]
    assert "5,000 Kafka messages behind" in notices[0].body


def test_lag_falls_back_to_the_sum_over_partitions():
    parts = (PartitionStatus("p.cards", 0, 700, "ok", None), PartitionStatus("p.cards", 1, 400, "ok", None))
    _, notices = run([beat(0, 1, partitions=parts), beat(15, 1, partitions=parts)])
    assert kinds(notices) == [("alert", "lag")] and "1,100" in notices[0].subject
    assert "p.cards/0: 700" in notices[0].body


def test_dead_letters_alert_when_they_grow_and_recover_when_they_stop():
    def dl(t, n):
        return beat(t, 1, dead_letters_by_topic=(("p.payments", n),))

    obs = [dl(0, 0), dl(15, 3), dl(30, 5), dl(45, 5), dl(149, 5)]
    state, notices = run(obs)
    assert kinds(notices) == [("alert", "dead_letters")]  # growth at 30 s is the same open problem
    assert "3 Kafka message(s)" in notices[0].body and "p.payments: 3" in notices[0].body
    state, notices = run([dl(151, 5)], state)  # 121 s without growth since 30 s
    assert kinds(notices) == [("recovery", "dead_letters")]
    state, notices = run([dl(200, 0), dl(215, 0)], state)  # warehouse rebuilt: fewer, not news
    assert notices == [] and state.dead_letters_seen == 0


def test_each_stopped_partition_is_its_own_problem():
    stopped = PartitionStatus("p.topups", 2, None, "stopped", "stored offset 500 is beyond the end 0")
    ok = PartitionStatus("p.topups", 2, 0, "ok", None)
    _, notices = run([beat(0, 1, partitions=(stopped,)), beat(15, 1, partitions=(stopped,)), beat(30, 1, partitions=(ok,))])
    assert kinds(notices) == [("alert", "partition_stopped:p.topups/2"), ("recovery", "partition_stopped:p.topups/2")]
    assert "beyond the end 0" in notices[0].body


def test_broker_unreachable_alerts_only_when_it_lasts():
    obs = [beat(t, 1, worker_state="broker_unreachable") for t in (0, 60, 121)]
    _, notices = run(obs + [beat(130, 1, worker_state="running")])
    assert kinds(notices) == [("alert", "broker_unreachable"), ("recovery", "broker_unreachable")]


def test_open_problems_survive_a_restart_through_the_state_json():
    state, notices = run([beat(0, 1), beat(200, 150)])
    assert kinds(notices) == [("alert", "worker_down")]
    restored = WatchState.from_json(json.loads(json.dumps(state.to_json(at(200)))))
    _, notices = run([beat(215, 165), beat(230, 180)], restored)
    assert notices == []  # still down: the restarted watchdog does not repeat itself
    _, notices = run([beat(245, 2)], restored)
    assert kinds(notices) == [("recovery", "worker_down")]


# ─────────────────────────────────────────────── real file, real SMTP ──


def make_warehouse(path: Path) -> None:
    with open_writer(path) as con:
        con.execute(META_SQL.read_text())


def set_heartbeat(path: Path, beat_at: datetime, state: str = "running", lag: int | None = 0) -> None:
    with open_writer(path) as con:
        con.execute("DELETE FROM _meta.heartbeat")
        con.execute(
            "INSERT INTO _meta.heartbeat VALUES ('worker', ?, ?, ?, 4242, 'h', 1, ?, NULL)",
            [beat_at, beat_at - timedelta(hours=1), state, lag],
        )


def add_dead_letter(path: Path, raw: bytes, reason: str) -> None:
    with open_writer(path) as con:
        con.execute(
            "INSERT INTO _meta.dead_letters (batch_id, topic, \"partition\", \"offset\", key, raw, raw_sha256, reason, received_at) VALUES (1, 'prepaid.members', 0, 7, NULL, ?, 'x', ?, now())", [raw, reason]
        )


def write_config(tmp_path: Path, smtp_port: int | None, check: float = 0.2, alert_after: float = 3) -> Path:
    smtp = f'smtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\nstarttls = false\n' if smtp_port else ""
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f"""
[warehouse]
path = "{tmp_path / 'warehouse.duckdb'}"
[alerts]
check_seconds = {check}
alert_after_seconds = {alert_after}
max_lag_messages = 1000
recipients = ["data-team@example.com"]
sender = "datadesk@example.com"
state_path = "{tmp_path / 'watchdog_state.json'}"
history_path = "{tmp_path / 'alerts.jsonl'}"
{smtp}""",
        encoding="utf-8",
    )
    return path


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_observe_reads_heartbeat_partitions_and_dead_letters(tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    assert observe(wh, now()).unreadable == "missing"
    make_warehouse(wh)
    assert observe(wh, now()).unreadable == "no_heartbeat"
    beat_at = now() - timedelta(seconds=42)
    set_heartbeat(wh, beat_at, lag=17)
    add_dead_letter(wh, b"garbage", "not JSON")
    with open_writer(wh) as con:
        con.execute("INSERT INTO _meta.partitions VALUES ('prepaid.cards', 1, 5, 9, 4, 'stopped', 'gone', now())")
    obs = observe(wh, now())
    assert abs((obs.at - obs.heartbeat_at).total_seconds() - 42) < 2
    assert obs.lag_messages == 17 and obs.dead_letters == 1
    assert obs.partitions == (PartitionStatus("prepaid.cards", 1, 4, "stopped", "gone"),)


def test_one_alert_mail_then_silence_then_one_recovery_mail(tmp_path, smtp_server):
    server = smtp_server()
    cfg = load_config(write_config(tmp_path, server.port), needs=("warehouse", "alerts"))
    wh = cfg.warehouse.path
    make_warehouse(wh)
    set_heartbeat(wh, now() - timedelta(seconds=600))
    # Personal data planted where a careless alert could pick it up: a dead letter's payload and reason.
    add_dead_letter(wh, '{"name": "홍길동", "phone": "010-1234-5678"}'.encode(), "unknown field name=홍길동")

    assert run_watchdog(cfg, once=True) == 0
    got = server.wait_for(2, 5)
    subjects = sorted(m.subject for m in got)
    assert len(got) == 2 and any("worker down" in s for s in subjects) and any("dead letter" in s for s in subjects)
    for m in got:
        assert m.rcpt_tos == ["data-team@example.com"]
        assert "홍길동" not in m.body and "010-1234-5678" not in m.body
    down = next(m for m in got if "worker down" in m.subject)
    assert "600 s" in down.subject or "10 min" in down.subject

    run_watchdog(cfg, once=True)  # still down, same dead letters
    time.sleep(0.3)
    assert len(server.messages) == 2

    set_heartbeat(wh, now())
    run_watchdog(cfg, once=True)
    got = server.wait_for(3, 5)
    assert len(got) == 3 and got[2].subject.startswith("[datadesk] RECOVERED worker down")

    history = AlertHistory(cfg.alerts.history_path).read()
    assert sorted((h["kind"], h["problem"]) for h in history) == [
        ("alert", "dead_letters"), ("alert", "worker_down"), ("recovery", "worker_down")]
    assert all(h["delivered"] for h in history)
    assert set(history[0]) >= {"at", "kind", "problem", "subject", "body", "delivered"}
    assert load_state(cfg.alerts.state_path).open.keys() == {"dead_letters"}


def test_a_down_smtp_server_never_stalls_checks_and_the_outbox_survives_a_restart(tmp_path, smtp_server):
    port = free_port()  # the SMTP server is down
    cfg = load_config(write_config(tmp_path, port, check=0.2, alert_after=1), needs=("warehouse", "alerts"))
    wh = cfg.warehouse.path
    make_warehouse(wh)
    set_heartbeat(wh, now() - timedelta(seconds=60))
    stop = threading.Event()
    thread = threading.Thread(target=run_watchdog, args=(cfg,), kwargs={"stop": stop})
    thread.start()
    checks = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            checks.add(json.loads(cfg.alerts.state_path.read_text())["checked_at"])
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    # ~15 checks in 3 s although every delivery attempt fails (connection refused, then back-off).
    assert len(checks) >= 8
    history = AlertHistory(cfg.alerts.history_path).read()
    assert [(h["problem"], h["delivered"]) for h in history] == [("worker_down", False)]

    server = smtp_server(port=port)  # SMTP is back; the watchdog restarts
    run_watchdog(cfg, once=True)
    got = server.wait_for(1, 5)
    assert [m.subject.split(":")[0] for m in got] == ["[datadesk] ALERT worker down"]
    history = AlertHistory(cfg.alerts.history_path).read()
    assert [(h["problem"], h["delivered"]) for h in history] == [("worker_down", True)]  # same record, now delivered


def test_without_smtp_the_history_still_records_every_alert(tmp_path):
    cfg = load_config(write_config(tmp_path, None, alert_after=1), needs=("warehouse", "alerts"))
    make_warehouse(cfg.warehouse.path)
    set_heartbeat(cfg.warehouse.path, now() - timedelta(seconds=30))
    run_watchdog(cfg, once=True)
    (h,) = AlertHistory(cfg.alerts.history_path).read()
    assert (h["kind"], h["problem"], h["channel"], h["delivered"]) == ("alert", "worker_down", "log", False)


def test_the_watchdog_only_reads_the_warehouse(tmp_path):
    cfg = load_config(write_config(tmp_path, None), needs=("warehouse", "alerts"))
    make_warehouse(cfg.warehouse.path)
    set_heartbeat(cfg.warehouse.path, now())
    before = cfg.warehouse.path.stat().st_mtime_ns
    run_watchdog(cfg, once=True)
    assert cfg.warehouse.path.stat().st_mtime_ns == before
    with duckdb.connect(str(cfg.warehouse.path)) as con:  # and it left no lock behind
        assert con.execute("SELECT count(*) FROM _meta.heartbeat").fetchone()[0] == 1
