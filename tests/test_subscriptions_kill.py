"""The scheduler as a real process, SIGKILLed at random moments and at named failpoints.

The side chosen (docs/subscriptions.md): at-least-once. Oracle: every slot
reaches the SMTP server; a slot that arrives twice carries the same
Message-ID and is marked `resent` in the log — the only duplicate allowed —
and the named failpoints show where each case comes from.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import holidays
import pytest

from dashboard import app_state
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL, Schedule
from ingest.config import load_config
from tests.fixtures_app import ROOT, app_env  # noqa: F401  (fixture)
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)
from tests.subscriptions_helpers import subscription_config

pytestmark = pytest.mark.slow
KR_HOLIDAYS = holidays.country_holidays("KR")


class Scheduler:
    """`python -m ingest scheduler` with a clock file; started and killed by PID."""

    def __init__(self, config: Path, clock: Path, log: Path):
        self.config, self.clock, self.log = config, clock, log
        self.proc: subprocess.Popen | None = None

    def start(self, failpoint: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "INGEST_FAILPOINT"}
        if failpoint:
            env["INGEST_FAILPOINT"] = failpoint
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingest", "scheduler", "--config", str(self.config), "--clock-file", str(self.clock)],
                cwd=ROOT, env=env, stdout=out, stderr=out)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def set_time(self, moment: datetime) -> None:
        tmp = self.clock.with_suffix(".tmp")
        tmp.write_text(moment.isoformat(), encoding="utf-8")
        os.replace(tmp, self.clock)


def settled(state_path: Path, expected: set[tuple[int, str]]) -> bool:
    """Every expected slot is in the log and finished (read with plain sqlite3, not the app's code)."""
    con = sqlite3.connect(state_path, timeout=5)
    try:
        rows = con.execute("SELECT subscription_id, slot, state FROM deliveries").fetchall()
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()
    done = {(s, k) for s, k, st in rows if st == "sent"}
    return expected <= done


def wait_settled(sched: Scheduler, state_path: Path, expected, timeout=40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if settled(state_path, expected):
            return
        if sched.proc.poll() is not None:  # died at a failpoint: a fresh one without it
            sched.start()
        time.sleep(0.05)
    raise AssertionError(f"slots not all sent within {timeout} s; log: {sched.log.read_text()[-3000:]}")


@pytest.fixture
def setup(app_env, smtp_server):
    server = smtp_server()
    config = subscription_config(app_env.tmp, app_env.warehouse, server.port)
    cfg = load_config(config, needs=("warehouse",))
    start = datetime.now(SEOUL).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
    subs = {}
    with app_state.connect(app_state.store_path(cfg)) as conn:
        for name, schedule in (("daily9", Schedule("daily", "09:00")), ("daily9b", Schedule("daily", "09:00")),
                               ("daily13", Schedule("daily", "13:00")), ("business", Schedule("business_days", "08:30"))):
            subs[name] = store.add_subscription(conn, ref="daily_topups", params={"period": "yesterday"}, now=start,
                                                schedule=schedule, recipients=[f"{name}@example.com"], format="csv")
    sched = Scheduler(config, app_env.tmp / "clock", app_env.tmp / "scheduler.log")
    sched.set_time(start)
    yield server, sched, app_state.store_path(cfg), start, subs
    sched.kill()


def slots_until(start: datetime, now: datetime, subs: dict) -> set[tuple[int, str]]:
    """The slots each subscription should have had by `now` (written out here, independently of schedule.py)."""
    out = set()
    day = start.date()
    while day <= now.date():
        for name, sub_id in subs.items():
            hh, mm = {"daily9": (9, 0), "daily9b": (9, 0), "daily13": (13, 0), "business": (8, 30)}[name]
            if name == "business" and (day.weekday() >= 5 or day in KR_HOLIDAYS):
                continue
            slot = datetime(day.year, day.month, day.day, hh, mm, tzinfo=SEOUL)
            if start < slot <= now:
                out.add((sub_id, slot.isoformat(timespec="minutes")))
        day += timedelta(days=1)
    return out


def received(server) -> Counter:
    return Counter(str(m.message["Message-ID"]) for m in server.messages)


def log_rows(state_path: Path) -> dict[str, sqlite3.Row]:
    con = sqlite3.connect(state_path)
    con.row_factory = sqlite3.Row
    try:
        return {r["message_id"]: r for r in con.execute("SELECT * FROM deliveries")}
    finally:
        con.close()


def test_sigkill_at_random_moments_loses_no_slot(setup):
    server, sched, state_path, start, subs = setup
    rnd = random.Random(15)
    sched.start()
    kills = 0
    moment = start
    end = start + timedelta(days=4)
    while moment < end:
        moment += timedelta(hours=2)
        sched.set_time(moment)
        if rnd.random() < 0.5:  # die somewhere in planning, rendering, sending or logging
            time.sleep(rnd.uniform(0.0, 0.15))  # a tick every 0.1 s: most kills land mid-round
            sched.kill()
            kills += 1
            sched.start()
        wait_settled(sched, state_path, slots_until(start, moment, subs))
    expected = slots_until(start, end, subs)
    got = received(server)
    rows = log_rows(state_path)
    assert kills >= 5
    print(f"\nrandom kills: {kills}, slots: {len(expected)}, mails: {sum(got.values())}, "
          f"re-sent after a crash: {sum(1 for r in rows.values() if r['resent'])}, duplicates: {sum(n - 1 for n in got.values())}")
    assert {(r["subscription_id"], r["slot"]) for r in rows.values() if r["state"] == "sent"} == expected
    assert set(got) == set(rows), "a mail arrived that the log does not know, or a logged slot never arrived"
    twice = {mid for mid, n in got.items() if n > 1}
    assert all(rows[mid]["resent"] >= 1 for mid in twice), "a duplicate that the log does not explain"
    assert all(n <= 1 + rows[mid]["resent"] for mid, n in got.items())


@pytest.mark.parametrize("failpoint, duplicates", [
    ("before_send:2", 0),  # marked sending, nothing sent: re-sent once after the restart, arrives once
    ("after_send:2", 1),   # the server had it, the log did not: re-sent with the same Message-ID (the documented case)
    ("after_log:2", 0),    # the log said sent: nothing is repeated
])
def test_sigkill_at_named_failpoints(setup, failpoint, duplicates):
    server, sched, state_path, start, subs = setup
    sched.start(failpoint)
    moment = start + timedelta(hours=9, minutes=5)  # daily9, daily9b (and business on a weekday) are due at once
    sched.set_time(moment)
    deadline = time.monotonic() + 30
    while sched.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sched.proc.returncode == -signal.SIGKILL, "the failpoint was not reached"
    sched.start()
    wait_settled(sched, state_path, slots_until(start, moment, subs))
    got = received(server)
    rows = log_rows(state_path)
    assert set(got) == set(rows)
    assert sum(n - 1 for n in got.values()) == duplicates
    resent = [r for r in rows.values() if r["resent"]]
    assert len(resent) == (0 if failpoint.startswith("after_log") else 1)
    if duplicates:
        (dup,) = [mid for mid, n in got.items() if n > 1]
        assert rows[dup]["resent"] == 1


def test_negative_control_the_oracle_catches_a_lost_mail(setup):
    """Plant the other side's fault: after a kill mid-send the log is made to say "sent" (what marking
    before sending would leave). The oracle used above must then see a slot that never arrived."""
    server, sched, state_path, start, subs = setup
    sched.start("before_send:1")
    moment = start + timedelta(hours=9, minutes=5)
    sched.set_time(moment)
    deadline = time.monotonic() + 30
    while sched.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sched.proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(state_path)
    with con:
        assert con.execute("UPDATE deliveries SET state = 'sent' WHERE state = 'sending'").rowcount == 1
    con.close()
    sched.start()
    wait_settled(sched, state_path, slots_until(start, moment, subs))
    time.sleep(0.5)
    got, rows = received(server), log_rows(state_path)
    lost = set(rows) - set(got)
    assert len(lost) == 1, "the planted loss went unnoticed"
