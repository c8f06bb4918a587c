"""`python -m ingest run` (what `make run` calls): the whole demo in one terminal.

Starts, in this order, each as a child process with its own prefixed (and,
on a terminal, coloured) log lines — `09:16:14 worker   | batch 1: …`, the
time in Asia/Seoul like every time stamp in the data (ingest/cli.py
LOG_ZONE), the level only when it is WARNING or worse (the children are told
so through env INGEST_LOG_PREFIXED; Streamlit through its logger options):

1. broker     `python -m ingest broker --port P` — waited for until it listens;
2. seed       `python -m ingest simulate --once` — creates and seeds the demo
              source on the first run (a no-op later), so the exporter never
              meets a source without tables;
3. simulate   `python -m ingest simulate` — keeps the business moving;
   export     `python -m ingest export --reset-watermarks` and
   worker     `python -m ingest worker --transport-reset` — the embedded broker
              starts empty on every run (docs/design.md, "Tansu"), so the
              exporter re-sends from the start and the worker forgets offsets
              the new broker never had; the source_ts rule makes re-sent rows harmless;
   watchdog   `python -m ingest watchdog`;
   maintain   `python -m ingest maintain --every 600`, only when the warehouse is a
              DuckLake ([warehouse] catalog): merges the small files each batch writes;
   scheduler  `python -m ingest scheduler` — subscribed reports and data alerts by e-mail;
   app        `streamlit run streamlit_app.py` on 127.0.0.1:N, URL printed once healthy
              (with [access], its sign-in secrets are put in place first: ingest/app_launch.py)
              (Streamlit's welcome lines and INFO log are off: this line says
              where to go, once the app answers).

It refuses a [source] that is not SQLite (the simulator writes invented rows
into the source) and drops an inherited SOURCE_URL / SOURCE_PASSWORD.
Every child gets `--config <absolute path>` / env PIPELINE_CONFIG, env
KAFKA_BOOTSTRAP_SERVERS pointing at the broker it started, and env
PII_HASH_KEY: the operator's own if set, else a demo key generated once into
`<warehouse folder>/demo_pii_hash_key` (mode 0600; data/ is not committed) so
that hashed ids stay stable across runs.

When a child dies, the supervisor says so and restarts nothing (a silent
restart hides the bug you are demonstrating). If the broker or the app dies
the demo is useless, so everything stops and the exit code is 1. If the
simulator, exporter, worker or watchdog dies the rest keeps running: that is
exactly the situation the watchdog and the Pipeline page exist to show, and
Ctrl-C still stops everything (exit code 1, because something failed).

Stopping (Ctrl-C, SIGTERM, SIGHUP) takes under ten seconds: SIGINT to every
child's process group (each child is started in its own session, so the
group id is the child's PID and also reaches what the child started, e.g.
the Tansu binary); whatever still runs after GRACE_SECONDS gets SIGKILL —
safe, because every child is built to survive it (the worker's batch and its
offsets commit in one transaction, the exporter moves a watermark only after
the broker acknowledged, the simulator writes in transactions), and SIGTERM
would only ask them again what SIGINT asked. The broker goes last so the
worker can finish its batch. A second Ctrl-C skips the grace period. On
Linux each child also gets SIGTERM if this supervisor itself is killed
(PR_SET_PDEATHSIG), so even `kill -9` of the supervisor leaves no orphans.
The worker's lock is an OS lock the kernel drops with the process, so no
stale lock can remain.

Starting again right away works: a port counts as busy only while something
listens on it, not while the previous run's closed connections linger in
TIME_WAIT (`port_in_use`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from ingest.app_launch import streamlit_argv
from ingest.broker import wait_until_listening
from ingest.cli import LOG_ZONE, PREFIXED_ENV
from ingest.config import PipelineConfig, load_config, resolve_config_path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
GRACE_SECONDS = 6.0  # after SIGINT, before SIGKILL (a worker finishing a big batch on a busy laptop needs ~5 s)
BROKER_GRACE_SECONDS = 2.0  # Tansu stops on SIGINT in milliseconds
KILL_WAIT_SECONDS = 1.5  # for the kernel to reap what SIGKILL hit
APP_READY_SECONDS = 120.0
LAKE_MAINTENANCE_SECONDS = 600

_COLOURS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[96m", "\033[93m", "\033[95m"]
_RESET, _BOLD, _RED = "\033[0m", "\033[1m", "\033[31m"


# ─────────────────────────────────────────────────────────── children ──


@dataclass
class Child:
    name: str
    argv: list[str]
    essential: bool  # its death stops the whole demo
    colour: str
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    reported: bool = False
    expected_exit: bool = False  # a set-up step that is meant to end

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def _parent_death_signal():
    """preexec_fn: ask the kernel to SIGTERM this child when the supervisor dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl  # resolved here, not in the forked child
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


class Supervisor:
    """Starts children, prefixes their output, notices deaths, stops them all by PID."""

    def __init__(self, env: dict[str, str], out: IO[str] = sys.stdout):
        self.env = env
        self.out = out
        self.colour = out.isatty()
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.hurry = threading.Event()
        self.failed: list[str] = []
        self._print_lock = threading.Lock()
        self._preexec = _parent_death_signal()

    # -- output
    def say(self, text: str, name: str = "run", colour: str = _BOLD) -> None:
        stamp = datetime.now(LOG_ZONE).strftime("%H:%M:%S")
        prefix = f"{stamp} {name:<9}|"
        if self.colour:
            prefix = f"{colour}{prefix}{_RESET}"
        with self._print_lock:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()

    def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for raw in child.process.stdout:
            self.say(raw.decode("utf-8", "replace").rstrip("\n"), child.name, child.colour)

    # -- starting
    def start(self, name: str, argv: list[str], essential: bool = False, expected_exit: bool = False) -> Child:
        child = Child(name, argv, essential, _COLOURS[len(self.children) % len(_COLOURS)], expected_exit=expected_exit)
        child.process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C in the terminal reaches only us; we stop them in order
            preexec_fn=self._preexec,
        )
        child.reader = threading.Thread(target=self._pump, args=(child,), name=f"log-{name}", daemon=True)
        child.reader.start()
        self.children.append(child)
        self.say(f"started {name} (pid {child.pid}): {' '.join(_short(a) for a in argv)}")
        return child

    # -- watching
    def check_children(self) -> bool:
        """Report every child that ended unexpectedly; True if the demo must stop."""
        must_stop = False
        for child in self.children:
            code = child.process.poll() if child.process else None
            if code is None or child.reported:
                continue
            child.reported = True
            if child.expected_exit and code == 0:
                continue
            self.failed.append(child.name)
            what = "stops the demo" if child.essential else (
                "not restarted; the rest keeps running (the watchdog and the Pipeline page show the effect) — "
                "Ctrl-C stops everything")
            self.say(f"{child.name} (pid {child.pid}) exited with code {code}: {what}", "run", _RED + _BOLD)
            must_stop = must_stop or child.essential or child.expected_exit
        return must_stop

    def sleep(self, seconds: float) -> bool:
        """Wait, returning True early if a stop was requested."""
        return self.stop_requested.wait(seconds)

    # -- stopping
    def _signal(self, child: Child, sig: int) -> None:
        try:
            os.killpg(child.pid, sig)  # the group id is the child's PID (start_new_session)
        except ProcessLookupError:
            pass

    def _wait(self, children: list[Child], seconds: float, hurry: bool = True) -> list[Child]:
        """The children still alive after `seconds` (sooner after a second Ctrl-C, when `hurry`)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (hurry and self.hurry.is_set()):
            alive = [c for c in children if c.process.poll() is None or _group_alive(c.pid)]
            if not alive:
                return []
            time.sleep(0.05)
        return [c for c in children if c.process.poll() is None or _group_alive(c.pid)]

    def stop_all(self) -> None:
        started = [c for c in self.children if c.process is not None]
        # Everything first, the broker last: the worker may still commit its batch.
        waves = [([c for c in started if c.name != "broker"], GRACE_SECONDS),
                 ([c for c in started if c.name == "broker"], BROKER_GRACE_SECONDS)]
        for wave, grace in waves:
            alive = [c for c in wave if c.process.poll() is None or _group_alive(c.pid)]
            for c in alive:
                self._signal(c, signal.SIGINT)
            alive = self._wait(alive, grace)
            if alive:
                why = "after a second Ctrl-C" if self.hurry.is_set() else f"{grace:.0f} s after Ctrl-C"
                self.say(f"{', '.join(c.name for c in alive)} still running {why}: killing "
                         "(nothing is lost: unfinished work is redone on the next start)")
                for c in alive:
                    self._signal(c, signal.SIGKILL)
                self._wait(alive, KILL_WAIT_SECONDS, hurry=False)
        for c in started:
            try:
                c.process.wait(1)
            except subprocess.TimeoutExpired:
                pass
            if c.reader is not None:
                c.reader.join(2)
        left = [c.name for c in started if c.process.poll() is None or _group_alive(c.pid)]
        if left:
            self.say(f"could not stop: {', '.join(left)}", "run", _RED + _BOLD)
        else:
            self.say(f"all {len(started)} processes stopped")


def _group_alive(pgid: int) -> bool:
    """Does any (non-zombie) process of this process group still exist? Linux /proc; elsewhere assume not."""
    proc = Path("/proc")
    if not proc.exists():
        return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _short(arg: str) -> str:
    return "python" if arg == sys.executable else arg


# ───────────────────────────────────────────────────────────── the run ──


def port_in_use(port: int, host: str = HOST) -> bool:
    """Does something listen on (host, port)?

    Binds the way the broker and the app do, with SO_REUSEADDR: that fails
    while a socket listens there, and succeeds while only the connections of
    a demo stopped a moment ago linger in TIME_WAIT (a plain bind refused
    those for a minute: `make run` right after Ctrl-C said the port was busy).
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def demo_hash_key(cfg: PipelineConfig) -> str:
    """The operator's PII_HASH_KEY, else a demo key made once beside the warehouse (never committed)."""
    if cfg.pii_hash_key:
        return cfg.pii_hash_key.decode("utf-8")
    assert cfg.warehouse is not None
    path = cfg.warehouse.path.parent / "demo_pii_hash_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def _app_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def run_all(config_path: str | None, app_port: int = 8501, broker_port: int = 9092) -> int:
    """Run the demo until Ctrl-C/SIGTERM; 0 after a clean stop, 1 if a child failed, 2 on bad usage."""
    path = resolve_config_path(config_path).resolve()
    # The demo's simulator WRITES into [source]: never let an inherited SOURCE_URL (say, a
    # production database's) redirect it. The children get the same filtered environment.
    env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_URL", "SOURCE_PASSWORD")}
    cfg = load_config(path, needs=("source", "kafka", "warehouse", "tables"), environ=env)
    assert cfg.source is not None
    if not cfg.source.url.startswith("sqlite:"):
        print(f"run: {path}: [source] url is not a SQLite file — `make run` is the demo and its simulator writes "
              "invented rows into the source; run the real services instead (docs/operations.md)", file=sys.stderr)
        return 2
    for port, what, flag in ((broker_port, "broker", "--broker-port"), (app_port, "app", "--port")):
        if port_in_use(port):
            print(f"run: port {port} for the {what} is in use — is another `make run` running? "
                  f"Stop it, or pick another port with {flag}", file=sys.stderr)
            return 2
    assert cfg.warehouse is not None
    cfg.warehouse.path.parent.mkdir(parents=True, exist_ok=True)
    # With [access], the app's sign-in secrets (from the environment or .streamlit/secrets.toml) must be
    # in place before anything starts: a demo nobody can sign in to is no demo (ingest/app_launch.py).
    app_argv = streamlit_argv(cfg, app_port, HOST, env, extra=[
        # No code reloading in the demo: watching the tree only overflowed inotify
        # ("filesystem events were lost") while the worker rewrote data/.
        "--server.fileWatcherType", "none",
        # One line format for the whole console: our prefix has the time; warnings say so.
        "--logger.level", "warning", "--logger.messageFormat", "%(levelname)s: %(message)s",
        "--logger.hideWelcomeMessage", "true"])
    env.update({
        "PIPELINE_CONFIG": str(path),
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{broker_port}",
        "PII_HASH_KEY": demo_hash_key(cfg),
        "PYTHONUNBUFFERED": "1",  # children's lines appear as they are written
        PREFIXED_ENV: "1",  # our prefix carries the time and the name: the children print the message only
        "PYTHONPATH": str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
    })
    sup = Supervisor(env)
    sup.say(f"starting the demo (times are {LOG_ZONE.key}, the business's time zone)")

    def on_signal(signum, _frame):
        if sup.stop_requested.is_set():
            sup.hurry.set()
            return
        sup.stop_requested.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    py = sys.executable
    ingest = [py, "-m", "ingest"]
    conf = ["--config", str(path)]
    try:
        broker = sup.start("broker", [*ingest, "broker", "--port", str(broker_port)], essential=True)
        try:
            wait_until_listening(HOST, broker_port, timeout=30)
        except TimeoutError as exc:
            sup.check_children()
            sup.say(f"{exc}", "run", _RED)
            return 1
        if broker.process.poll() is not None:
            sup.check_children()
            return 1
        seed = sup.start("seed", [*ingest, "simulate", *conf, "--once"], expected_exit=True)
        while seed.process.poll() is None:
            if sup.sleep(0.2) or sup.check_children():
                return 0 if not sup.failed else 1
        if sup.check_children():
            return 1
        sup.start("simulate", [*ingest, "simulate", *conf])
        sup.start("export", [*ingest, "export", *conf, "--reset-watermarks"])
        sup.start("worker", [*ingest, "worker", *conf, "--transport-reset"])
        sup.start("watchdog", [*ingest, "watchdog", *conf])
        if cfg.warehouse is not None and cfg.warehouse.is_lake:  # a lake collects small files: tidy it every 10 minutes
            sup.start("maintain", [*ingest, "maintain", *conf, "--every", str(LAKE_MAINTENANCE_SECONDS)])
        sup.start("scheduler", [*ingest, "scheduler", *conf])
        sup.start("app", app_argv, essential=True)
        announced = False
        deadline = time.monotonic() + APP_READY_SECONDS
        while not sup.sleep(0.5):
            if sup.check_children():
                return 1
            if not announced and _app_ready(app_port):
                announced = True
                sup.say(f"the data desk is running: open http://localhost:{app_port}   (Ctrl-C stops everything)",
                        "run", _BOLD + "\033[32m")
            elif not announced and time.monotonic() > deadline:
                announced = True
                sup.say(f"the app did not answer on port {app_port} within {APP_READY_SECONDS:.0f} s — see its lines above",
                        "run", _RED)
        sup.say("stopping (Ctrl-C again to skip the grace period)")
        return 1 if sup.failed else 0
    finally:
        sup.stop_all()
