"""Do people wait for each other, and does the worker wait for them? (prints figures and ratios)

    .venv/bin/python bench/app_users.py [--seconds 60] [--users 1,4] [--clients browser,server]
                                        [--app-url URL --config F --demo-log LOG]

Without --app-url it starts the whole demo (`python -m ingest run`) on its own
ports (--app-port, --broker-port; the demo writes the config's data/ folder),
waits until the worker has caught up with the demo's initial re-export (a
whole minute of small batches), and stops it at the end. Then, one after
another, each window --seconds long:

1. nobody uses the app: how many batches the worker lands on its own;
2. for each N in --users, N browser users (Playwright contexts in Debian
   chromium) open pages without pause, cycling through Overview, Explore,
   Reports (a report), Pipeline, Dictionary and Explore on another table,
   each user starting at a different page. A page load is timed from the
   navigation until Streamlit has finished drawing it: the app's script state
   is "not running", its running indicator is gone and the page title is on
   screen, and it stays so for 250 ms (a page that reruns itself is not
   finished at its first pass; the 250 ms are not counted). The browsers run
   reniced (--browser-nice): here they share two cores with the app, where a
   person's browser has a machine of its own;
3. for each N, N protocol users do the same through Streamlit's own websocket
   protocol, as the browser speaks it (ask for a page run, wait for "script
   finished"): the server's part of a page load, without the browsers' CPU;
4. nobody again, so that the baseline brackets the runs with users.

Per window: page loads p50/p95/max and loads not finished within
--page-timeout; batches the worker committed (`_meta.batches.committed_at`
inside the window), messages landed, the longest gap between two commits and
how long batches waited (committed_at − started_at, p95); the worker's
"warehouse busy" log lines when the demo log is known; CPU seconds used by
the app process, the worker and the browsers (from /proc).

Targets (issue 17): p95 with 4 users ≤ 1.5 × p95 with 1 user; batches landed
with users ≥ batches without (the two idle windows; batches are whole, so
the comparison holds to one batch).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import warehouse_lake  # noqa: E402
from ingest.config import WarehouseConfig, load_config  # noqa: E402
from ingest.warehouse_file import WarehouseBusy, WarehouseMissing, open_reader  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = ["", "explore", "reports?report=daily_topups", "pipeline", "dictionary", "explore?table=payments"]
SETTLE_MS = 250  # drawn and still drawn this long later = finished (not counted in the load time)
P95_LIMIT = 1.5

# True once Streamlit finished drawing and stayed so for SETTLE_MS; returns
# [drawnAt, now] in the page's clock so the settle time can be taken off.
DRAWN_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const drawn = app
    && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !document.querySelector('[data-testid="stStatusWidget"]')
    && document.querySelector('[data-testid="stMain"] h1');
  if (!drawn) { window.__drawnAt = undefined; return false; }
  if (window.__drawnAt === undefined) window.__drawnAt = performance.now();
  const now = performance.now();
  return now - window.__drawnAt >= %d ? [window.__drawnAt, now] : false;
}""" % SETTLE_MS


@dataclass
class Window:
    name: str
    users: int
    started: datetime
    ended: datetime | None = None
    loads: list[float] = field(default_factory=list)  # seconds
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used in the window, by role
    kind: str = "idle"  # idle | browser | server
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)
    busy_lines: int | None = None
    batches: dict | None = None


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


# ──────────────────────────────────────────────────────── CPU accounting ──

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, command line, CPU seconds so far), from /proc (Linux; empty elsewhere)."""
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / TICKS)
    return table


def descendants(table: dict, root: int) -> set[int]:
    out, todo = set(), [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, _, _) in table.items():
            if ppid == parent and pid not in out:
                out.add(pid)
                todo.append(pid)
    return out


def cpu_by_role(app_port: int, config: Path) -> dict[str, float]:
    """CPU seconds used so far by the app (the Streamlit process) and the worker."""
    cpu = {"app": 0.0, "worker": 0.0}
    for _ppid, cmd, seconds in _proc_table().values():
        if "streamlit" in cmd and f"--server.port {app_port}" in cmd:
            cpu["app"] += seconds
        elif " ingest worker " in f" {cmd} " and str(config) in cmd:
            cpu["worker"] += seconds
    return cpu


def browsers_cpu() -> dict[int, float]:
    """pid → CPU seconds of this script's browser processes."""
    table = _proc_table()
    return {pid: table[pid][2] for pid in descendants(table, os.getpid()) if "chrom" in table[pid][1]}


def lower_browser_priority(niceness: int) -> None:
    """Browsers here share the server's 2 cores; a person's browser runs on their own machine.
    Renice this script's browser processes so the app and the worker are served first."""
    if niceness <= 0:
        return
    table = _proc_table()
    for pid in descendants(table, os.getpid()):
        if "chrom" in table[pid][1]:
            try:
                os.setpriority(os.PRIO_PROCESS, pid, niceness)
            except OSError:
                pass


# ───────────────────────────────────────────────────────────── the demo ──


def start_demo(config: Path, app_port: int, broker_port: int, log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ingest", "run", "--config", str(config),
             "--port", str(app_port), "--broker-port", str(broker_port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def stop_demo(proc: subprocess.Popen) -> None:
    """SIGINT (the demo's Ctrl-C) to its process group; SIGKILL if it is still there after 40 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_app(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the demo stopped (exit {proc.returncode}); see its log")
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


def reading(warehouse: WarehouseConfig, timeout: float):
    """A read-only connection to the demo's warehouse: its DuckDB file, or its lake (a snapshot)."""
    if warehouse.is_lake:
        return warehouse_lake.open_lake(warehouse, read_only=True)
    return open_reader(warehouse.path, timeout=timeout)


def last_minute(warehouse: WarehouseConfig, since: datetime) -> tuple[int, int, int | None] | None:
    """(batches, largest batch, lag after the newest) over the last 60 s after `since` (this run's demo start)."""
    try:
        with reading(warehouse, 10) as con:
            if not con.execute("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_schema = '_meta' AND table_name = 'batches'").fetchone()[0]:
                return None
            return con.execute(
                "SELECT count(*), coalesce(max(messages), 0), arg_max(lag_messages, batch_id) FROM _meta.batches "
                "WHERE committed_at > now() - INTERVAL 60 SECOND AND committed_at > ?", [since]).fetchone()
    except (WarehouseMissing, WarehouseBusy, duckdb.Error):
        return None


def wait_until_caught_up(warehouse: WarehouseConfig, timeout: float, proc: subprocess.Popen | None) -> None:
    """The demo re-exports every table on start, table after table; measure only once that is over:
    for a whole minute, only the simulator's trickle (batches ≤ 2,000 messages) and a worker that keeps up."""
    deadline = time.monotonic() + timeout
    since = datetime.now(timezone.utc)  # batches of an earlier run say nothing about this one
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the demo stopped (exit {proc.returncode}); see its log")
        state = last_minute(warehouse, since)
        if state and state[0] >= 4 and state[1] <= 2000 and state[2] is not None and state[2] <= 1000:
            print(f"worker caught up: {state[0]} batches in the last minute, none over {state[1]:,} messages, "
                  f"lag {state[2]}", flush=True)
            return
        time.sleep(5)
    print(f"warning: the worker did not catch up within {timeout:.0f} s; measuring anyway", flush=True)


def batch_figures(warehouse: WarehouseConfig, start: datetime, end: datetime) -> dict:
    with reading(warehouse, 60) as con:
        rows = con.execute(
            "SELECT epoch(started_at), epoch(committed_at), messages FROM _meta.batches "
            "WHERE committed_at >= ? AND committed_at < ? ORDER BY committed_at", [start, end]
        ).fetchall()
    commits = [start.timestamp()] + [r[1] for r in rows] + [end.timestamp()]
    delays = [r[1] - r[0] for r in rows]
    return {
        "batches": len(rows),
        "messages": sum(r[2] for r in rows),
        "longest_gap": max(b - a for a, b in zip(commits, commits[1:])),
        "delay_p95": pct(delays, 0.95) if delays else None,
    }


# ────────────────────────────────────────────────────────────── browsers ──


async def one_user(context, base: str, first: int, deadline: float, window: Window, page_timeout: float,
                   niceness: int) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    page = await context.new_page()
    lower_browser_priority(niceness)  # the new renderer too
    i = first
    while time.monotonic() < deadline:
        url = f"{base}/{PAGES[i % len(PAGES)]}"
        i += 1
        t0 = time.monotonic()
        try:
            await page.goto(url, timeout=page_timeout * 1000, wait_until="commit")
            left = max(1.0, page_timeout - (time.monotonic() - t0))
            handle = await page.wait_for_function(DRAWN_JS, timeout=left * 1000, polling=20)
            drawn_at, now = await handle.json_value()
            window.loads.append(time.monotonic() - t0 - (now - drawn_at) / 1000)
        except PlaywrightTimeout:
            window.timeouts += 1
            window.loads.append(page_timeout)  # counted at the limit, so p95 cannot hide it
        except Exception as exc:  # a crash of one load is a finding, not the end of the run
            window.errors.append(f"{url}: {exc.__class__.__name__}: {str(exc).splitlines()[0][:120]}")


# ─────────────────────────────────────────── protocol users (no browser) ──


async def one_protocol_user(base: str, first: int, deadline: float, window: Window, page_timeout: float) -> None:
    """Streamlit's own websocket protocol, as the browser speaks it: ask for a page run, wait for
    "script finished". Times the server alone — what this machine's browsers add is left out."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    stream = base.replace("http", "ws", 1) + "/_stcore/stream"
    i = first
    while time.monotonic() < deadline:
        page, _, query = PAGES[i % len(PAGES)].partition("?")
        i += 1
        t0 = time.monotonic()
        try:
            async with websockets.connect(stream, subprotocols=["streamlit"], max_size=None) as ws:
                ask = BackMsg()
                ask.rerun_script.page_name = page
                ask.rerun_script.query_string = query
                await ws.send(ask.SerializeToString())
                while True:
                    left = page_timeout - (time.monotonic() - t0)
                    msg = ForwardMsg()
                    msg.ParseFromString(await asyncio.wait_for(ws.recv(), max(0.1, left)))
                    if msg.WhichOneof("type") == "script_finished":
                        window.loads.append(time.monotonic() - t0)
                        break
        except asyncio.TimeoutError:
            window.timeouts += 1
            window.loads.append(page_timeout)
        except Exception as exc:
            window.errors.append(f"{page}: {exc.__class__.__name__}: {str(exc).splitlines()[0][:120]}")


async def protocol_window(base: str, users: int, seconds: float, page_timeout: float) -> Window:
    window = Window(f"{users} server user{'s' if users > 1 else ''}", users, datetime.now(timezone.utc))
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(one_protocol_user(base, k * (len(PAGES) // users or 1), deadline, window, page_timeout)
                           for k in range(users)))
    window.ended = datetime.now(timezone.utc)
    return window


async def warm_up(browser, base: str, page_timeout: float) -> None:
    """Open every page once (not timed): static files cached, modules imported, reports parsed."""
    w = Window("warm-up", 1, datetime.now(timezone.utc))
    context = await browser.new_context()
    page = await context.new_page()
    for path in PAGES:
        try:
            await page.goto(f"{base}/{path}", timeout=page_timeout * 1000, wait_until="commit")
            await page.wait_for_function(DRAWN_JS, timeout=page_timeout * 1000, polling=50)
        except Exception as exc:
            w.errors.append(str(exc).splitlines()[0])
    await context.close()
    if w.errors:
        print(f"warm-up problems: {w.errors}", flush=True)


async def users_window(base: str, users: int, seconds: float, page_timeout: float, niceness: int) -> Window:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        lower_browser_priority(niceness)
        try:
            await warm_up(browser, base, page_timeout)
            contexts = [await browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(users)]
            window = Window(f"{users} user{'s' if users > 1 else ''}", users, datetime.now(timezone.utc))
            before = browsers_cpu()
            deadline = time.monotonic() + seconds
            await asyncio.gather(*(one_user(contexts[k], base, k * (len(PAGES) // users or 1), deadline, window,
                                            page_timeout, niceness) for k in range(users)))
            window.ended = datetime.now(timezone.utc)
            after = browsers_cpu()  # before the contexts close: a closed renderer takes its count along
            window.cpu["browsers"] = sum(after.values()) - sum(v for pid, v in before.items() if pid in after)
            for context in contexts:
                await context.close()
            return window
        finally:
            await browser.close()


# ───────────────────────────────────────────────────────────────── main ──


def log_size(path: Path | None) -> int:
    return path.stat().st_size if path and path.exists() else 0


def busy_lines(path: Path | None, start: int, end: int) -> int | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start).count(b"warehouse busy")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "pipeline.toml", help="the demo's config (its warehouse is read)")
    ap.add_argument("--app-url", help="an app already running with --config's warehouse; else the demo is started here")
    ap.add_argument("--demo-log", type=Path, help="with --app-url: the demo's log, to count the worker's 'warehouse busy' lines")
    ap.add_argument("--app-port", type=int, default=8511)
    ap.add_argument("--broker-port", type=int, default=9192)
    ap.add_argument("--users", default="1,4", help="comma-separated numbers of users, one window each")
    ap.add_argument("--clients", default="browser,server",
                    help="browser: Playwright users (what people see); server: protocol users (the app alone)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each window")
    ap.add_argument("--page-timeout", type=float, default=60.0)
    ap.add_argument("--browser-nice", type=int, default=10,
                    help="niceness of the browsers (they share the cores with the app here; 0 = none)")
    ap.add_argument("--warmup-timeout", type=float, default=600.0, help="longest wait for the worker to catch up")
    args = ap.parse_args()
    try:
        counts = [int(n) for n in args.users.split(",")]
        assert counts and all(n > 0 for n in counts)
    except (ValueError, AssertionError):
        ap.error("--users takes positive whole numbers separated by commas, e.g. 1,4")
    config = args.config.resolve()
    warehouse = load_config(config, needs=("warehouse",)).warehouse

    proc = None
    log_path = args.demo_log
    base = args.app_url.rstrip("/") if args.app_url else f"http://127.0.0.1:{args.app_port}"
    if not args.app_url:
        log_path = ROOT / "bench" / "out" / "app_users-demo.log"
        proc = start_demo(config, args.app_port, args.broker_port, log_path)
        print(f"started the demo (pid {proc.pid}), log {log_path.relative_to(ROOT)}", flush=True)
    windows: list[Window] = []
    try:
        wait_for_app(base, proc, 300)
        wait_until_caught_up(warehouse, args.warmup_timeout, proc)
        kinds = [k.strip() for k in args.clients.split(",") if k.strip()]
        plan = [("idle", 0)] + [(kind, n) for kind in kinds for n in counts] + [("idle", 0)]
        app_port = int(base.rsplit(":", 1)[1].split("/")[0]) if base.count(":") >= 2 else args.app_port
        for kind, n in plan:
            before = log_size(log_path)
            cpu_before = cpu_by_role(app_port, config)
            if kind == "idle":
                w = Window("no users", 0, datetime.now(timezone.utc))
                time.sleep(args.seconds)
                w.ended = datetime.now(timezone.utc)
            elif kind == "server":
                w = asyncio.run(protocol_window(base, n, args.seconds, args.page_timeout))
            else:
                w = asyncio.run(users_window(base, n, args.seconds, args.page_timeout, args.browser_nice))
            w.kind = kind
            cpu_after = cpu_by_role(app_port, config)
            w.cpu.update({k: cpu_after[k] - cpu_before[k] for k in cpu_after})
            w.busy_lines = busy_lines(log_path, before, log_size(log_path))
            w.batches = batch_figures(warehouse, w.started, w.ended)
            windows.append(w)
            report_window(w)
    finally:
        if proc is not None:
            stop_demo(proc)
    return summary(windows, counts)


def report_window(w: Window) -> None:
    b = w.batches or {}
    secs = (w.ended - w.started).total_seconds()
    line = f"{w.name:>16}: {secs:4.0f} s"
    if w.users:
        if w.loads:
            line += (f" | {len(w.loads)} page loads: p50 {pct(w.loads, 0.5):.2f} s, p95 {pct(w.loads, 0.95):.2f} s, "
                     f"max {max(w.loads):.2f} s, not finished {w.timeouts}")
        else:
            line += " | no page load finished"
    delay = "-" if b.get("delay_p95") is None else f"{b['delay_p95']:.1f} s"
    line += (f" | worker: {b.get('batches')} batches, {b.get('messages', 0):,} messages, "
             f"longest gap {b.get('longest_gap', 0):.1f} s, batch wait p95 {delay}")
    if w.busy_lines is not None:
        line += f", 'warehouse busy' ×{w.busy_lines}"
    if w.cpu:
        line += " | CPU s: " + ", ".join(f"{k} {v:.0f}" for k, v in w.cpu.items())
        if w.users and w.loads:
            line += (f" (per page load: app {w.cpu['app'] / len(w.loads):.2f} s, "
                     f"browser {w.cpu.get('browsers', 0) / len(w.loads):.2f} s)")
    print(line, flush=True)
    for e in w.errors[:5]:
        print(f"           error: {e}", flush=True)


def summary(windows: list[Window], counts: list[int]) -> int:
    idle = [w for w in windows if w.users == 0]
    minutes = lambda w: (w.ended - w.started).total_seconds() / 60  # noqa: E731
    baseline = sum(w.batches["batches"] for w in idle) / sum(minutes(w) for w in idle)
    print(f"\nworker without users: {baseline:.1f} batches/min (mean of {len(idle)} windows)")
    ok = True
    for w in (w for w in windows if w.users):
        rate = w.batches["batches"] / minutes(w)
        # Batches are counted whole: a window can only tell a difference of one batch or more.
        expected = baseline * minutes(w)
        met = w.batches["batches"] >= expected - 1
        ok &= met
        print(f"worker during {w.name}: {w.batches['batches']} batches, {rate:.1f}/min → {rate / baseline:.2f} of without, "
              f"{expected:.1f} expected (target ≥ without, to one batch: {'met' if met else 'MISSED'})")
    for kind, label in (("browser", "page load (browser)"), ("server", "page run (server)")):
        by_users = {w.users: w for w in windows if w.kind == kind and w.loads}
        if 1 not in by_users:
            continue
        one = pct(by_users[1].loads, 0.95)
        for n in sorted(by_users):
            if n == 1:
                continue
            many = pct(by_users[n].loads, 0.95)
            met = many / one <= P95_LIMIT
            ok &= met
            print(f"{label} p95 with {n} users {many:.2f} s / with 1 user {one:.2f} s = {many / one:.2f} "
                  f"(target ≤ {P95_LIMIT}: {'met' if met else 'MISSED'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
