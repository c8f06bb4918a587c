"""`python -m ingest run` (what `make run` calls): everything starts, today's data reaches the app, Ctrl-C stops it all.

The demo config is copied into tmp_path (its data/ paths are relative to the
config file), so this never touches the repository's data/ folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, time as dtime, timedelta as dtime_delta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest.config import load_config
from ingest.warehouse_file import WarehouseBusy, WarehouseMissing, open_reader
from tests.conftest import CHROMIUM_ARGS, free_port

ROOT = Path(__file__).resolve().parent.parent
SEOUL = ZoneInfo("Asia/Seoul")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc (independent of what the supervisor says it started)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def lock_is_free(path: Path) -> bool:
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def todays_topups(warehouse: Path) -> int:
    midnight = datetime.combine(datetime.now(SEOUL).date(), dtime(0), tzinfo=SEOUL)
    try:
        with open_reader(warehouse, timeout=5) as con:
            return con.execute("SELECT count(*) FROM live.topups WHERE created_at >= ?", [midnight]).fetchone()[0]
    except (WarehouseMissing, WarehouseBusy):
        return 0
    except Exception as exc:  # table not landed yet
        if "does not exist" in str(exc):
            return 0
        raise


def health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.browser
def test_make_run_starts_everything_shows_today_and_stops_cleanly(tmp_path, chromium_path):
    shutil.copy(ROOT / "pipeline.toml", tmp_path / "pipeline.toml")
    config = tmp_path / "pipeline.toml"
    cfg = load_config(config, needs=("warehouse",))
    repo_data_before = sorted((p.name, p.stat().st_mtime_ns) for p in (ROOT / "data").glob("*")) if (ROOT / "data").exists() else []
    app_port, broker_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PII_HASH_KEY", "PIPELINE_CONFIG", "KAFKA_BOOTSTRAP_SERVERS")}
    log = open(tmp_path / "run.log", "wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "ingest", "run", "--config", str(config), "--port", str(app_port), "--broker-port", str(broker_port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    started: set[int] = set()
    try:
        # ── everything comes up and today's rows land ──
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert run.poll() is None, f"`ingest run` exited early:\n{(tmp_path / 'run.log').read_text()[-3000:]}"
            started |= descendants(run.pid)
            died = re.search(r"\w+ \(pid \d+\) exited with code -?\d+", (tmp_path / "run.log").read_text())
            assert not died, f"{died.group(0)}:\n{(tmp_path / 'run.log').read_text()[-4000:]}"
            if health(app_port) and todays_topups(cfg.warehouse.path) > 0:
                break
            time.sleep(1)
        else:
            pytest.fail(f"no data for today within 240 s:\n{(tmp_path / 'run.log').read_text()[-3000:]}")
        started |= descendants(run.pid)
        out = (tmp_path / "run.log").read_text()
        assert f"open http://localhost:{app_port}" in out
        for name in ("broker", "seed", "simulate", "export", "worker", "watchdog", "scheduler", "app"):
            assert re.search(rf"started {name} \(pid \d+\)", out), f"{name} was not started"
        assert not lock_is_free(cfg.warehouse.worker_lock_path)  # negative control: a running worker holds it
        key = tmp_path / "data" / "demo_pii_hash_key"
        assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"

        # ── the Overview page shows today's numbers ──
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                today_topups = None
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    page.goto(f"http://127.0.0.1:{app_port}/?lang=en")
                    page.get_by_text("Today (vs yesterday to this time)").wait_for(timeout=60_000)
                    values = page.locator('[data-testid="stMetricValue"]')
                    values.first.wait_for(timeout=30_000)
                    today_topups = values.first.inner_text()
                    if re.match(r"₩\s*[1-9]", today_topups.strip()):
                        break
                    time.sleep(3)
                assert today_topups and re.match(r"₩\s*[1-9]", today_topups.strip()), today_topups
                page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
            finally:
                browser.close()

        # ── Ctrl-C stops every process, no orphans, no stale lock ──
        started |= descendants(run.pid)
        assert len(started) >= 7  # 6 children + the Tansu binary under the broker launcher
        t0 = time.monotonic()
        run.send_signal(signal.SIGINT)
        code = run.wait(60)
        took = time.monotonic() - t0
        print(f"\nstopped {len(started)} processes in {took:.1f} s, exit code {code}")
        assert code == 0, (tmp_path / "run.log").read_text()[-3000:]
        time.sleep(0.5)
        left = sorted(p for p in started if alive(p))
        assert left == [], f"processes left running: {left}"
        assert lock_is_free(cfg.warehouse.worker_lock_path)
        assert "all 8 processes stopped" in (tmp_path / "run.log").read_text()
        repo_data_after = sorted((p.name, p.stat().st_mtime_ns) for p in (ROOT / "data").glob("*")) if (ROOT / "data").exists() else []
        assert repo_data_after == repo_data_before, "the test touched the repository's data/ folder"
    finally:
        stop_all([run], started)
        log.close()


def stop_all(runs, pids) -> None:
    """After a test, pass or fail: Ctrl-C every run still going (killed if it has not stopped in 60 s), then kill
    what is left of the PIDs the test saw under its own runs — never anything it did not start."""
    for run in runs:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            try:
                run.wait(60)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def started_pids(log: Path) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"started (\w+) \(pid (\d+)\)", log.read_text())}


def wait_for_text(log: Path, pattern: str, timeout: float) -> re.Match | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text())
        if m:
            return m
        time.sleep(0.3)
    return None


@pytest.mark.slow
def test_a_dead_child_is_reported_not_restarted_and_a_dead_broker_stops_everything(tmp_path):
    shutil.copy(ROOT / "pipeline.toml", tmp_path / "pipeline.toml")
    config = tmp_path / "pipeline.toml"
    app_port, broker_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PII_HASH_KEY", "PIPELINE_CONFIG", "KAFKA_BOOTSTRAP_SERVERS")}
    log_path = tmp_path / "run.log"
    log = open(log_path, "wb")
    run = subprocess.Popen(
        [sys.executable, "-m", "ingest", "run", "--config", str(config), "--port", str(app_port), "--broker-port", str(broker_port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    seen: set[int] = set()
    try:
        assert wait_for_text(log_path, r"the data desk is running", 180), log_path.read_text()[-3000:]
        pids = started_pids(log_path)
        seen |= descendants(run.pid)

        # A non-essential child dies: said loudly, not restarted, the rest keeps running.
        os.kill(pids["worker"], signal.SIGKILL)
        assert wait_for_text(log_path, rf"worker \(pid {pids['worker']}\) exited with code -9: not restarted", 10)
        time.sleep(2)
        assert run.poll() is None and health(app_port)
        assert len(re.findall(r"started worker", log_path.read_text())) == 1

        # The broker dies (its launcher, by SIGKILL: the Tansu binary under it is orphaned):
        # everything stops, exit code 1, and the orphan is found by its process group.
        seen |= descendants(run.pid)
        os.kill(pids["broker"], signal.SIGKILL)
        code = run.wait(60)
        assert code == 1
        assert "broker (pid" in log_path.read_text() and "stops the demo" in log_path.read_text()
        time.sleep(0.5)
        assert sorted(p for p in seen if alive(p)) == []
    finally:
        stop_all([run], seen)
        log.close()


def run_cli(config: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PII_HASH_KEY", "PIPELINE_CONFIG")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "ingest", "run", "--config", str(config), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_demo_refuses_to_simulate_into_a_real_database(tmp_path):
    text = (ROOT / "pipeline.toml").read_text().replace(
        'url = "sqlite:///data/demo_source.sqlite"', 'url = "mysql+pymysql://reader@db.example:3306/prepaid"')
    (tmp_path / "pipeline.toml").write_text(text)
    r = run_cli(tmp_path / "pipeline.toml", "--port", str(free_port()), "--broker-port", str(free_port()))
    assert r.returncode == 2 and "not a SQLite file" in r.stderr
    assert "started" not in r.stdout and not (tmp_path / "data").exists()


def test_an_inherited_source_url_is_ignored_and_busy_ports_are_named(tmp_path):
    import socket

    shutil.copy(ROOT / "pipeline.toml", tmp_path / "pipeline.toml")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # SOURCE_URL would point the simulator at a real database: the demo ignores it and gets as far as the ports.
        r = run_cli(tmp_path / "pipeline.toml", "--port", str(port), "--broker-port", str(free_port()),
                    env_extra={"SOURCE_URL": "mysql+pymysql://reader@db.example:3306/prepaid"})
        assert r.returncode == 2 and f"port {port} for the app is in use" in r.stderr and "--port" in r.stderr
        r = run_cli(tmp_path / "pipeline.toml", "--port", str(free_port()), "--broker-port", str(port))
        assert r.returncode == 2 and f"port {port} for the broker is in use" in r.stderr and "--broker-port" in r.stderr
    assert "started" not in r.stdout


def time_wait_on(port: int) -> int:
    """Sockets in TIME_WAIT whose local end is 127.0.0.1:port (/proc/net/tcp: address little-endian hex, state 06)."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1] == local and line.split()[3] == "06")


def plain_bind_refused(port: int) -> bool:
    """What the old port check did: bind without SO_REUSEADDR."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d [a-z]+ *\| ")
SECOND_STAMP = re.compile(r"\| .*\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\b(?![.\d]*\+09:00)")


@pytest.mark.slow
def test_stop_and_start_again_at_once_on_the_same_ports(tmp_path):
    """Ctrl-C, then `make run` again right away on the same ports: it comes up, and each stop takes under ten seconds.

    A browser tab's connection is open while the demo stops, so the app's port
    is left in TIME_WAIT — what made the second start say "port … is in use"
    while nothing listened (the old check bound without SO_REUSEADDR).
    """
    import http.client

    shutil.copy(ROOT / "pipeline.toml", tmp_path / "pipeline.toml")
    config = tmp_path / "pipeline.toml"
    app_port, broker_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PII_HASH_KEY", "PIPELINE_CONFIG", "KAFKA_BOOTSTRAP_SERVERS")}
    seen: set[int] = set()
    runs: list[subprocess.Popen] = []

    def start(n: int) -> tuple[subprocess.Popen, Path]:
        log_path = tmp_path / f"run{n}.log"
        with open(log_path, "wb") as log:
            run = subprocess.Popen(
                [sys.executable, "-m", "ingest", "run", "--config", str(config), "--port", str(app_port),
                 "--broker-port", str(broker_port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        runs.append(run)
        return run, log_path

    def stop(run: subprocess.Popen, log_path: Path) -> float:
        seen.update(descendants(run.pid))
        t0 = time.monotonic()
        run.send_signal(signal.SIGINT)
        code = run.wait(30)
        took = time.monotonic() - t0
        assert code == 0, log_path.read_text()[-3000:]
        assert re.search(r"all \d+ processes stopped", log_path.read_text()), log_path.read_text()[-3000:]
        return took

    try:
        run, log1 = start(1)  # the first start seeds the demo source (13 months of history)
        assert wait_for_text(log1, r"the data desk is running", 300), log1.read_text()[-3000:]
        assert run.poll() is None
        tab = http.client.HTTPConnection("127.0.0.1", app_port, timeout=10)  # like a browser tab left open
        tab.request("GET", "/_stcore/health")
        assert tab.getresponse().read() == b"ok"
        first_stop = stop(run, log1)
        tab.close()
        assert time_wait_on(app_port) > 0, "the test needs the app's port in TIME_WAIT, as a browser tab leaves it"
        assert plain_bind_refused(app_port), "negative control: the old check would have refused this port"

        run, log2 = start(2)  # at once, same ports
        assert wait_for_text(log2, r"the data desk is running|exited with code", 180), log2.read_text()[-3000:]
        text = log2.read_text()
        assert "the data desk is running" in text and not re.search(r"port \d+ for the \w+ is in use", text), text[-3000:]
        assert run.poll() is None and health(app_port)
        second_stop = stop(run, log2)
        print(f"\nstops took {first_stop:.1f} s and {second_stop:.1f} s")
        assert first_stop < 10 and second_stop < 10
        time.sleep(0.5)
        assert sorted(p for p in seen if alive(p)) == []

        # One line format, one time zone: "HH:MM:SS name | message", the time Seoul's whatever the machine's zone.
        for log_path in (log1, log2):
            lines = [line for line in log_path.read_text().splitlines() if line.strip()]
            assert [line for line in lines if not LOG_LINE.match(line)] == []
            assert [line for line in lines if SECOND_STAMP.search(line)] == []
        first_stamp = datetime.strptime(log2.read_text()[:8], "%H:%M:%S").time()
        seoul_now = datetime.now(SEOUL)
        drift = abs((seoul_now.hour * 60 + seoul_now.minute) - (first_stamp.hour * 60 + first_stamp.minute)) % (24 * 60)
        assert min(drift, 24 * 60 - drift) <= 5, (first_stamp, seoul_now)
    finally:
        stop_all(runs, seen)


def test_a_port_left_in_time_wait_is_free_and_a_listening_port_is_busy():
    """The check `make run` makes before starting: busy only while something listens."""
    import socket

    from ingest.supervisor import port_in_use

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and Tansu bind
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_in_use(port)
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first and keeps the port in TIME_WAIT, as after Ctrl-C
        client.recv(1)
        client.close()
    deadline = time.monotonic() + 5
    while time_wait_on(port) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert time_wait_on(port) > 0
    assert plain_bind_refused(port)  # negative control: what the old check saw as "in use"
    assert not port_in_use(port)


def test_log_lines_carry_seoul_time_whatever_the_machines_zone(tmp_path):
    """Alone, a process stamps its lines in Asia/Seoul with the offset; under `ingest run` (INGEST_LOG_PREFIXED=1)
    it leaves time and name to the supervisor's prefix and names the level only from WARNING up."""
    import sqlalchemy as sa

    from ingest.simulate import create_demo_schema, seed_history

    source = tmp_path / "demo.sqlite"
    engine = sa.create_engine(f"sqlite:///{source}")
    create_demo_schema(engine)
    seed_history(engine, members_count=200, days=5, seed=1, end=datetime.now(SEOUL) - dtime_delta(hours=3))
    engine.dispose()
    stopped = shutil.copy(source, tmp_path / "stopped.sqlite")
    text = (ROOT / "pipeline.toml").read_text().replace('url = "sqlite:///data/demo_source.sqlite"', f'url = "sqlite:///{source}"')
    (tmp_path / "pipeline.toml").write_text(text, encoding="utf-8")
    env = {**os.environ, "TZ": "America/New_York"}
    env.pop("INGEST_LOG_PREFIXED", None)
    cmd = [sys.executable, "-m", "ingest", "simulate", "--config", str(tmp_path / "pipeline.toml"), "--once"]
    alone = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0, alone.stderr
    line = next(x for x in alone.stderr.splitlines() if "lived through" in x)
    m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\+09:00 simulate INFO lived through the 3\.0 hours", line)
    assert m, line
    stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SEOUL)
    assert abs((datetime.now(SEOUL) - stamp).total_seconds()) < 120  # Seoul's clock, not New York's

    shutil.copy(stopped, source)  # stopped three hours ago again
    under_run = subprocess.run(cmd, cwd=ROOT, env={**env, "INGEST_LOG_PREFIXED": "1"}, capture_output=True, text=True,
                               timeout=120)
    assert under_run.returncode == 0, under_run.stderr
    assert [x for x in under_run.stderr.splitlines() if x.startswith("lived through the 3.0 hours")], under_run.stderr
    assert all(not re.match(r"^\d{4}-", x) and not x.startswith("INFO") for x in under_run.stderr.splitlines())
