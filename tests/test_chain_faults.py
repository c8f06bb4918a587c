"""Faults on the exporter's side, seen from the warehouse side: real exporter, worker and watchdog processes,
a real broker, a real source (SQLite; MariaDB with its own user), mail through a local aiosmtpd server.

Each fault gives exactly one alert mail naming the broken link and, once fixed,
exactly one recovery mail; the rows inserted meanwhile all arrive.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa

from ingest.broker import start_broker
from tests.conftest import free_port
from tests.fixtures_export import LEDGER, ROOT, export_env
from tests.fixtures_smtp import smtp_server  # noqa: F401  (fixture)
from tests.ingest_helpers import read_only, start_worker, stop_process, wait_for, worker_env
from tests.tcp_proxy import TcpProxy

ALERT_AFTER, CHECK, INTERVAL, HOLD_DOWN = 4.0, 0.5, 0.5, 1.0
SLACK = 3.0  # process scheduling on a shared 2-core machine, a batch cut, the SMTP round trip


def chain_config(write_config, tmp_path: Path, source_url: str, smtp_port: int) -> Path:
    return write_config(tables=LEDGER, extra=f"""
[source]
url = "{source_url}"

[exporter]
interval_seconds = {INTERVAL}
chunk_rows = 200
overlap_seconds = 1
state_path = "{tmp_path / 'exporter_state.json'}"

[alerts]
check_seconds = {CHECK}
alert_after_seconds = {ALERT_AFTER}
hold_down_seconds = {HOLD_DOWN}
max_lag_messages = 100000
recipients = ["data-team@example.com"]
sender = "datadesk@example.com"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
starttls = false
state_path = "{tmp_path / 'watchdog_state.json'}"
history_path = "{tmp_path / 'alerts.jsonl'}"
""")


def start(kind: str, config: Path, log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ingest", kind, "--config", str(config)], cwd=ROOT, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def warehouse_count(path: Path, sql: str) -> int:
    if not path.exists():
        return 0
    con = read_only(path)
    try:
        return con.execute(sql).fetchone()[0]
    except Exception:  # noqa: BLE001 - _meta or the table not created yet
        return 0
    finally:
        con.close()


def wait_for_mails(server, count: int, timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(server.messages) >= count:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def subjects(server) -> list[str]:
    return [m.subject for m in server.messages]


class Chain:
    """Exporter, worker and watchdog as processes, stopped by PID at the end."""

    def __init__(self, config: Path, tmp_path: Path, env: dict):
        self.config, self.tmp, self.env = config, tmp_path, env
        self.procs: list[subprocess.Popen] = []
        self.exporter: subprocess.Popen | None = None

    def start_exporter(self) -> None:
        self.exporter = start("export", self.config, self.tmp / "exporter.log", self.env)
        self.procs.append(self.exporter)

    def start_rest(self) -> None:
        self.procs.append(start_worker(self.config, log=self.tmp / "worker.log"))
        wait_for(lambda: warehouse_count(self.tmp / "warehouse.duckdb", "SELECT count(*) FROM _meta.exporter_status"),
                 60, "the exporter's first status record in the warehouse")
        self.procs.append(start("watchdog", self.config, self.tmp / "watchdog.log", worker_env()))

    def stop(self) -> None:
        for p in reversed(self.procs):
            stop_process(p, timeout=15)


def add_rows(engine: sa.Engine, first: int, last: int, placeholder: str = "?") -> None:
    """Rows changed at increasing times: ISO text with an offset on SQLite (the demo's form), DATETIME on MariaDB."""
    sqlite = engine.dialect.name == "sqlite"
    rows = [(i, i * 100, f"2026-11-24{'T' if sqlite else ' '}10:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}"
                         + ("+09:00" if sqlite else "")) for i in range(first, last + 1)]
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO ledger VALUES ({placeholder}, {placeholder}, {placeholder})", rows)


@pytest.mark.slow
def test_killed_exporter_gives_one_alert_naming_it_and_one_recovery_nothing_lost(
        write_config, tmp_path, broker, smtp_server):
    server = smtp_server()
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_updated_at ON ledger (updated_at, entry_id)")
    add_rows(engine, 1, 300)
    config = chain_config(write_config, tmp_path, url, server.port)
    chain = Chain(config, tmp_path, export_env())
    try:
        chain.start_exporter()
        chain.start_rest()
        time.sleep(ALERT_AFTER + 2 * CHECK)
        assert subjects(server) == [], "a healthy chain must not raise an alert"

        chain.exporter.send_signal(signal.SIGKILL)
        chain.exporter.wait()
        add_rows(engine, 301, 450)  # changes while the exporter is down
        took = wait_for_mails(server, 1, ALERT_AFTER + 20)
        assert took is not None, "no alert after the exporter was killed"
        assert took <= ALERT_AFTER + INTERVAL + CHECK + SLACK, f"alert took {took:.1f} s"
        time.sleep(4 * CHECK)
        assert len(server.messages) == 1, f"the alert was repeated: {subjects(server)}"
        alert = server.messages[0]
        assert alert.subject.startswith("[datadesk] ALERT exporter 'exporter' silent")
        assert "exporter ↔ broker" in alert.body and "datadesk-exporter" in alert.body

        chain.start_exporter()
        took = wait_for_mails(server, 2, 40)
        assert took is not None, "no recovery mail after the exporter was restarted"
        time.sleep(4 * CHECK)
        assert len(server.messages) == 2, subjects(server)
        assert server.messages[1].subject.startswith("[datadesk] RECOVERED exporter 'exporter' reports again")
        print(f"\nSIGKILL exporter → alert, restart → recovery after {took:.1f} s")

        wait_for(lambda: warehouse_count(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM main.ledger") == 450,
                 30, "every source row in the warehouse")
    finally:
        chain.stop()
        engine.dispose()


@pytest.fixture
def exporter_user(mariadb_url):
    """A MariaDB user of its own that may read only the test database's ledger table (table-level grant)."""
    db = mariadb_url.rsplit("/", 1)[1]
    user, password = "dd_exp_" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with root.cursor() as cur:
        cur.execute(f"USE `{db}`")
        cur.execute("CREATE TABLE ledger (entry_id INT PRIMARY KEY, amount_krw INT, updated_at DATETIME(6) NOT NULL,"
                    " KEY ix_ledger_updated_at (updated_at, entry_id))")
        cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
        cur.execute("CREATE USER %s@'localhost' IDENTIFIED BY %s", (user, password))
        for host in ("127.0.0.1", "localhost"):
            cur.execute(f"GRANT SELECT ON `{db}`.ledger TO %s@%s", (user, host))

    def grant(allowed: bool) -> None:
        with root.cursor() as cur:
            for host in ("127.0.0.1", "localhost"):
                verb = "GRANT SELECT ON `{db}`.ledger TO %s@%s" if allowed else "REVOKE SELECT ON `{db}`.ledger FROM %s@%s"
                cur.execute(verb.format(db=db), (user, host))

    try:
        yield f"mysql+pymysql://{user}@127.0.0.1:3306/{db}", password, grant
    finally:
        with root.cursor() as cur:
            for host in ("127.0.0.1", "localhost"):
                cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
        root.close()


@pytest.mark.slow
def test_a_revoked_grant_is_one_source_unreachable_mail_and_one_recovery(
        write_config, tmp_path, broker, smtp_server, mariadb_url, exporter_user):
    server = smtp_server()
    url, password, grant = exporter_user
    admin = sa.create_engine(mariadb_url)
    add_rows(admin, 1, 200, placeholder="%s")
    config = chain_config(write_config, tmp_path, url, server.port)
    chain = Chain(config, tmp_path, export_env(SOURCE_PASSWORD=password))
    try:
        chain.start_exporter()
        chain.start_rest()
        time.sleep(ALERT_AFTER + 2 * CHECK)
        assert subjects(server) == []

        grant(False)
        took = wait_for_mails(server, 1, ALERT_AFTER + 20)
        assert took is not None, "no alert after the exporter lost its grant"
        time.sleep(4 * CHECK)
        assert len(server.messages) == 1, subjects(server)
        alert = server.messages[0]
        assert alert.subject.startswith("[datadesk] ALERT source unreachable from exporter 'exporter'")
        assert "grants" in alert.body
        print(f"\nrevoked grant → alert after {took:.1f} s")

        add_rows(admin, 201, 260, placeholder="%s")
        grant(True)
        took = wait_for_mails(server, 2, 30)
        assert took is not None, "no recovery after the grant came back"
        time.sleep(4 * CHECK)
        assert len(server.messages) == 2, subjects(server)
        assert server.messages[1].subject.startswith("[datadesk] RECOVERED source readable again")
        wait_for(lambda: warehouse_count(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM main.ledger") == 260,
                 30, "every source row in the warehouse")
    finally:
        chain.stop()
        admin.dispose()


def sidebar_lines(wh: Path) -> list[str]:
    """The sidebar's completeness lines as the app words them, from the warehouse as it is now."""
    from datetime import datetime, timezone

    from dashboard import i18n
    from dashboard.freshness import chain_state_from
    from ingest import health

    con = read_only(wh)
    try:
        obs = health.read(lambda sql: con.execute(sql).fetchall(), datetime.now(timezone.utc))
    finally:
        con.close()
    with i18n.language("en"):
        return chain_state_from(obs, 0).lines()


def ledger_source(tmp_path) -> sa.Engine:
    """A SQLite source with one table, `ledger`, without a soft-delete column, indexed like a real source's."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_updated_at ON ledger (updated_at, entry_id)")
    return engine


def ledger_chain(engine, write_config, tmp_path, chunk_rows: int, completeness_seconds: float):
    """Exporter and worker on the ledger, with completeness passes every few seconds: (warehouse, processes),
    once the first pass has found the warehouse matching the source."""
    config = write_config(tables=LEDGER, extra=f"""
[source]
url = "{engine.url.render_as_string(hide_password=False)}"

[exporter]
interval_seconds = 0.5
chunk_rows = {chunk_rows}
overlap_seconds = 1
completeness_seconds = {completeness_seconds}
state_path = "{tmp_path / 'exporter_state.json'}"
""")
    wh = tmp_path / "warehouse.duckdb"
    procs = [start("export", config, tmp_path / "exporter.log", export_env()),
             start_worker(config, log=tmp_path / "worker.log")]
    try:
        wait_for(lambda: wh.exists() and sidebar_lines(wh)[0].startswith("Matches the source"), 60,
                 "a first completeness check that matches")
    except BaseException:
        for proc in reversed(procs):
            stop_process(proc, timeout=15)
        raise
    return wh, procs


@pytest.mark.slow
def test_rows_committed_behind_the_exporters_back_are_found_resent_and_healed(write_config, tmp_path, broker):
    """Rows whose updated_at is a day older than the watermark (far past the overlap window) appear at the source:
    the next completeness pass shows the difference, the one after re-sends the day, and the app goes from
    'the source has 5 more rows' to 'matches the source'."""
    engine = ledger_source(tmp_path)
    add_rows(engine, 1, 200)  # all on 2026-11-24
    wh, procs = ledger_chain(engine, write_config, tmp_path, chunk_rows=100, completeness_seconds=3)
    try:
        late = [(1000 + i, 7, f"2026-11-23T09:00:00.{i:06d}+09:00") for i in range(5)]  # a day before the watermark
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO ledger VALUES (?, ?, ?)", late)
        seen: list[str] = []

        def healed() -> bool:  # the app's line, each change of it recorded in order
            line = sidebar_lines(wh)[0]
            if not seen or seen[-1] != line:
                seen.append(line)
            return line.startswith("Matches the source") and any("more rows" in s for s in seen)

        wait_for(healed, 60, "the difference to be shown and then healed")
        # Matches (before the next count), the difference, matches again: nothing else in between.
        assert [s for s in seen if not s.startswith("Matches")] == ["ledger 2026-11-23: the source has 5 more rows"], seen
        assert seen[-1].startswith("Matches the source") and seen[-2] == "ledger 2026-11-23: the source has 5 more rows"
        count = warehouse_count(wh, "SELECT count(*) FROM main.ledger WHERE entry_id >= 1000")
        assert count == 5, "the late rows reached the warehouse"
        resent = warehouse_count(wh, "SELECT count(*) FROM _meta.completeness WHERE day = DATE '2026-11-23'")
        assert resent == 1
        assert "behind the exporter's back" in (tmp_path / "exporter.log").read_text()
    finally:
        for p in reversed(procs):
            stop_process(p, timeout=15)
        engine.dispose()


NOTED = """
[tables.ledger]
primary_key = ["entry_id"]
watermark = "updated_at"
[tables.ledger.columns]
entry_id = "id"
amount_krw = "amount"
note = "note"
updated_at = "changed"
"""


@pytest.mark.slow
def test_a_table_stopped_by_the_pii_guard_alerts_and_resumes_when_the_config_is_fixed(
        write_config, tmp_path, broker, smtp_server):
    """No restart: the running exporter re-reads pipeline.toml, and the table flows again."""
    server = smtp_server()
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, note TEXT, "
                             "updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_updated_at ON ledger (updated_at, entry_id)")
        conn.exec_driver_sql("INSERT INTO ledger VALUES (?, ?, ?, ?)", [
            (i, i * 10, "call 010-2345-6789" if i == 7 else "ok", f"2026-11-24T10:00:{i % 60:02d}.{i:06d}+09:00")
            for i in range(1, 101)])
    config = chain_config(write_config, tmp_path, url, server.port)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(LEDGER, NOTED), encoding="utf-8")
    chain = Chain(config, tmp_path, export_env())
    wh = tmp_path / "warehouse.duckdb"
    try:
        chain.start_exporter()
        chain.start_rest()
        took = wait_for_mails(server, 1, ALERT_AFTER + 20)
        assert took is not None, "no alert for the stopped table"
        alert = server.messages[0]
        assert alert.subject.startswith("[datadesk] ALERT table ledger stopped by the exporter"), alert.subject
        assert "pipeline.toml" in alert.body and "2345" not in alert.body
        assert warehouse_count(wh, "SELECT count(*) FROM main.ledger") == 0

        config.write_text(text, encoding="utf-8")  # the note column leaves the allow-list
        took = wait_for_mails(server, 2, 30)
        assert took is not None, "no recovery after the configuration was fixed"
        time.sleep(4 * CHECK)
        assert len(server.messages) == 2, subjects(server)
        assert server.messages[1].subject.startswith("[datadesk] RECOVERED table ledger exported again")
        wait_for(lambda: warehouse_count(wh, "SELECT count(*) FROM main.ledger") == 100, 30, "the table's rows")
        assert chain.exporter.poll() is None, "the exporter was not restarted"
        assert "export resumes" in (tmp_path / "exporter.log").read_text()
    finally:
        chain.stop()
        engine.dispose()


@pytest.mark.slow
def test_rows_deleted_at_the_source_become_tombstones_after_the_completeness_pass(write_config, tmp_path, broker):
    """A table without a soft-delete column: three rows deleted at the source; the completeness pass finds their keys
    gone and sends deletes; the warehouse keeps them as tombstones and matches the source again."""
    engine = ledger_source(tmp_path)
    data = [(i, i * 10, f"2026-11-{20 + i % 3}T{i % 24:02d}:00:00.{i:06d}+09:00") for i in range(1, 121)]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ledger VALUES (?, ?, ?)", data)
    wh, procs = ledger_chain(engine, write_config, tmp_path, chunk_rows=50, completeness_seconds=2)
    try:
        deleted = [4, 7, 10]  # all on 2026-11-21
        moved = 13  # an update moves this row to a later day: it must NOT become a tombstone
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM ledger WHERE entry_id IN ({', '.join('?' * len(deleted))})", tuple(deleted))
            conn.exec_driver_sql("UPDATE ledger SET amount_krw = 1, updated_at = '2026-11-24T12:00:00.000000+09:00' "
                                 "WHERE entry_id = ?", (moved,))
        wait_for(lambda: warehouse_count(wh, "SELECT count(*) FROM main.ledger WHERE _deleted") == len(deleted), 60,
                 "tombstones for the deleted rows")
        con = read_only(wh)
        try:
            tombstones = sorted(r[0] for r in con.execute("SELECT entry_id FROM main.ledger WHERE _deleted").fetchall())
            live = con.execute("SELECT count(*) FROM live.ledger").fetchone()[0]
            moved_row = con.execute("SELECT amount_krw, _deleted FROM main.ledger WHERE entry_id = ?", [moved]).fetchone()
        finally:
            con.close()
        assert tombstones == deleted
        assert live == len(data) - len(deleted)
        assert moved_row == (1, False)
        wait_for(lambda: sidebar_lines(wh)[0].startswith("Matches the source"), 30, "the counts to match again")
        assert "deleted at the source" in (tmp_path / "exporter.log").read_text()
    finally:
        for p in reversed(procs):
            stop_process(p, timeout=15)
        engine.dispose()


class LinkProxy(TcpProxy):
    """A TcpProxy that can cut one process's link only (the exporter's), leaving the others (the worker's) up.

    Each accepted connection is traced to its process through /proc (the
    client socket's inode, then the process's open file descriptors).
    """

    def __init__(self, listen_port: int, target: tuple[str, int]):
        super().__init__(listen_port, target)
        self.cut_pids: set[int] = set()
        self.watched: list[int] = []
        self._owners: dict[int, list] = {}

    def _owner(self, peer_port: int) -> int | None:
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == peer_port and int(fields[2].split(":")[1], 16) == self.listen_port:
                inode = fields[9]
        for pid in list(self.watched) if inode else ():
            try:
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                    return pid
            except OSError:
                continue
        return None

    def cut_process(self, pid: int) -> None:
        self.cut_pids.add(pid)
        with self._lock:
            for s in self._owners.pop(pid, []):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def restore_process(self, pid: int) -> None:
        self.cut_pids.discard(pid)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, peer = server.accept()
            except OSError:
                return
            owner = self._owner(peer[1])
            if owner in self.cut_pids:
                self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
                if owner is not None:
                    self._owners.setdefault(owner, []).extend([client, upstream])
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()


@pytest.mark.slow
def test_a_cut_exporter_broker_link_gives_one_mail_naming_it_and_one_recovery_nothing_lost(
        write_config, tmp_path, smtp_server):
    server = smtp_server()
    proxy_port, broker_port = free_port(), free_port()
    broker = start_broker(broker_port, advertised_port=proxy_port)
    proxy = LinkProxy(proxy_port, ("127.0.0.1", broker_port)).start()
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_updated_at ON ledger (updated_at, entry_id)")
    add_rows(engine, 1, 200)
    config = chain_config(write_config, tmp_path, url, server.port)
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'bootstrap_servers = "[^"]+"', f'bootstrap_servers = "127.0.0.1:{proxy_port}"', text),
                      encoding="utf-8")
    chain = Chain(config, tmp_path, export_env())
    try:
        chain.start_exporter()
        proxy.watched.append(chain.exporter.pid)
        chain.start_rest()
        time.sleep(ALERT_AFTER + 2 * CHECK)
        assert subjects(server) == [], "a healthy chain must not raise an alert"

        proxy.cut_process(chain.exporter.pid)
        add_rows(engine, 201, 300)  # changes while the exporter cannot reach the broker
        took = wait_for_mails(server, 1, ALERT_AFTER + 30)
        assert took is not None, "no alert after the exporter's link to the broker was cut"
        time.sleep(4 * CHECK)
        assert len(server.messages) == 1, subjects(server)
        alert = server.messages[0]
        assert alert.subject.startswith("[datadesk] ALERT exporter 'exporter' silent"), alert.subject
        assert "exporter ↔ broker" in alert.body
        assert warehouse_count(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM _meta.heartbeat "
                               "WHERE state <> 'broker_unreachable'") == 1, "the worker's own link stayed up"

        proxy.restore_process(chain.exporter.pid)
        took = wait_for_mails(server, 2, 60)
        assert took is not None, "no recovery mail after the link healed"
        time.sleep(4 * CHECK)
        assert len(server.messages) == 2, subjects(server)
        recovery = server.messages[1]
        assert recovery.subject.startswith("[datadesk] RECOVERED exporter 'exporter' reports again")
        assert "exporter ↔ broker" in recovery.body, recovery.body
        wait_for(lambda: warehouse_count(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM main.ledger") == 300,
                 30, "every source row in the warehouse")
    finally:
        chain.stop()
        proxy.stop()
        broker.stop()
        engine.dispose()
