"""Many people at once: the app's reader lets sessions query side by side and lets the worker in.

Streamlit runs each session's page in its own thread, so "several people"
is several threads calling dashboard.warehouse. Real DuckDB files in
tmp_path; the writer is a real second process using the worker's own
`open_writer`, or the real worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dashboard.warehouse import QueryTimeout, Warehouse, get_warehouse
from ingest.config import load_config
from ingest.envelope import encode_envelope, encode_key
from ingest.warehouse_file import writer_signal_path
from tests.fixtures_app import build_warehouse, make_rows, write_app_config
from tests.ingest_helpers import create_topics, produce, start_worker, stop_process, ts

ROOT = Path(__file__).resolve().parent.parent

# A CPU-bound query of roughly a second or more on this machine (no sleep() in DuckDB).
SLOW_SQL = "SELECT sum(hash(a.range * b.range)) FROM range(10000) a, range(10000) b"


def run_in_thread(fn, *args) -> tuple[threading.Thread, dict]:
    """Start fn(*args) in a thread; the dict gets start/end (monotonic), result or error."""
    out: dict = {}

    def body():
        out["start"] = time.monotonic()
        try:
            out["result"] = fn(*args)
        except BaseException as exc:  # reported by the test
            out["error"] = exc
        out["end"] = time.monotonic()

    t = threading.Thread(target=body)
    t.start()
    return t, out


def test_a_quick_query_is_not_stuck_behind_a_slow_one(app_env):
    """Two sessions: one runs a slow query, the other a quick one meanwhile; the quick one answers at once."""
    wh = get_warehouse()
    slow_thread, slow = run_in_thread(wh.query_uncached, SLOW_SQL)
    time.sleep(0.2)  # the slow query is running now
    quick_thread, quick = run_in_thread(wh.query_uncached, "SELECT count(*) FROM topups")
    quick_thread.join(30)
    slow_thread.join(60)
    assert "error" not in slow and "error" not in quick, (slow.get("error"), quick.get("error"))
    assert quick["result"].iat[0, 0] == len(app_env.live("topups"))
    assert slow["end"] - slow["start"] > 0.5, "the slow query must really be slow for this test to mean anything"
    assert quick["end"] < slow["end"], "the quick query waited for the slow one (page runs serialized)"
    assert quick["end"] - quick["start"] < 0.5 * (slow["end"] - slow["start"])


def test_slow_queries_of_four_sessions_run_side_by_side(app_env):
    """Taking turns, the fourth of four equal queries would end ~4× later than the first; side by side they end together."""
    wh = get_warehouse()
    threads = [run_in_thread(wh.query_uncached, SLOW_SQL) for _ in range(4)]
    for t, _ in threads:
        t.join(120)
    outs = [o for _, o in threads]
    assert all("error" not in o for o in outs), [o.get("error") for o in outs]
    assert len({o["result"].iat[0, 0] for o in outs}) == 1
    durations = sorted(o["end"] - o["start"] for o in outs)
    assert durations[-1] < 2.0 * durations[0], durations


def test_every_cursor_keeps_the_security_settings(app_env):
    """Refusals and settings hold on a cursor that shares the instance with a running query."""
    wh = get_warehouse()
    slow_thread, slow = run_in_thread(wh.query_uncached, SLOW_SQL)
    time.sleep(0.3)
    try:
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            wh.query_uncached("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            wh.query_uncached(f"ATTACH '{app_env.tmp / 'other.duckdb'}'")
        with pytest.raises(duckdb.Error):
            wh.query_uncached("ATTACH ':memory:' AS scratch")  # the instance is read-only: no writable side door
        for setting in ("enable_external_access = true", "memory_limit = '64GB'", "TimeZone = 'UTC'", "threads = 1",
                        "lock_configuration = false"):
            with pytest.raises(duckdb.Error, match="locked"):
                wh.query_uncached(f"SET {setting}")
        with pytest.raises(duckdb.Error):
            wh.query_uncached("CREATE TABLE main.x AS SELECT 1")
        # A query may change its own search_path; the next query starts clean.
        wh.query_uncached("SET search_path = 'main'")
        settings = dict(wh.query_uncached(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('TimeZone', 'search_path', 'memory_limit', "
            "'enable_external_access', 'lock_configuration')"
        ).itertuples(index=False))
        assert slow_thread.is_alive(), "the checks must run while another query holds the shared instance"
    finally:
        slow_thread.join(60)
    assert "error" not in slow
    assert settings["TimeZone"] == "Asia/Seoul" and settings["search_path"] == "live,main"
    assert settings["enable_external_access"] == "false" and settings["lock_configuration"] == "true"
    assert settings["memory_limit"].startswith("488") or "512" in settings["memory_limit"]  # 512MB, as DuckDB prints it


def test_timeout_interrupts_one_query_and_the_others_go_on(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    rows = make_rows(topups=50, payments=50)
    build_warehouse(warehouse, rows)
    config = write_app_config(tmp_path, warehouse).read_text().replace("query_timeout_seconds = 20", "query_timeout_seconds = 1")
    (tmp_path / "pipeline.toml").write_text(config)
    wh = Warehouse(load_config(tmp_path / "pipeline.toml", needs=("warehouse",)))
    endless = "SELECT sum(hash(a.range * b.range)) FROM range(200000) a, range(200000) b"
    runaway, out = run_in_thread(wh.query_uncached, endless)
    time.sleep(0.2)
    answers = [wh.query_uncached("SELECT count(*) FROM topups").iat[0, 0] for _ in range(3)]
    runaway.join(20)
    assert isinstance(out.get("error"), QueryTimeout) and "narrow the filters" in str(out["error"])
    assert out["end"] - out["start"] < 10
    assert answers == [int((~rows["topups"]["_deleted"]).sum())] * 3
    assert wh.query_uncached("SELECT count(*) FROM payments").iat[0, 0] == int((~rows["payments"]["_deleted"]).sum())


def test_the_file_is_released_when_no_query_and_no_page_run_needs_it(app_env):
    """After a page run (and after a query outside one) nothing holds the file: a writer opens it at once."""
    wh = get_warehouse()
    with wh.reading():
        wh.query_uncached("SELECT count(*) FROM topups")
        wh.catalog()
    wh.query_uncached("SELECT count(*) FROM payments")
    t0 = time.monotonic()
    con = duckdb.connect(str(app_env.warehouse))  # read-write: refused while any reader instance is open
    try:
        con.execute("INSERT INTO main.topups SELECT 800000 + i, 1, 'mobile', 1000, now(), now(), now(), now(), "
                    "false, 0, i FROM range(3) t(i)")
    finally:
        con.close()
    assert time.monotonic() - t0 < 1
    assert wh.query_uncached("SELECT count(*) FROM topups").iat[0, 0] == len(app_env.live("topups")) + 3


HOLDING_WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from ingest.warehouse_file import open_writer
t0 = time.monotonic()
with open_writer({path!r}, timeout=20) as con:
    print(round(time.monotonic() - t0, 3), flush=True)
    con.execute("INSERT INTO main.topups SELECT 600000 + i, 1, 'mobile', 1000, now(), now(), now(), now(), false, 0, i FROM range(4) t(i)")
"""


def test_a_waiting_writer_gets_the_file_in_the_middle_of_a_page_run(app_env):
    """A page run keeps the instance between its queries, but not against the worker:
    while the page 'renders' (no query running), a writer that asks gets the file within a moment,
    and the page's next query sees what it wrote."""
    wh = get_warehouse()
    base = len(app_env.live("topups"))
    with wh.reading():
        assert wh.query_uncached("SELECT count(*) FROM topups").iat[0, 0] == base
        writer = subprocess.run(
            [sys.executable, "-c", HOLDING_WRITER.format(root=str(ROOT), path=str(app_env.warehouse))],
            capture_output=True, text=True, timeout=60,
        )  # the page run is "rendering" meanwhile: it holds no query
        assert writer.returncode == 0, writer.stderr[-2000:]
        assert float(writer.stdout) < 1.0, f"the writer waited {writer.stdout.strip()} s for a page that ran no query"
        assert wh.query_uncached("SELECT count(*) FROM topups").iat[0, 0] == base + 4


BUSY_ROWS = 500_000

WRITER = """
import json, sys, time
sys.path.insert(0, {root!r})
from ingest.warehouse_file import open_writer
waits = []
for i in range({writes}):
    t0 = time.monotonic()
    with open_writer({path!r}, timeout={timeout}) as con:
        waits.append(time.monotonic() - t0)
        con.execute("INSERT INTO main.topups SELECT 700000 + ?, 1, 'mobile', 1000, now(), now(), now(), now(), false, 0, ?", [i, i])
        time.sleep(0.05)  # a landing takes a while
    time.sleep(0.1)
print(json.dumps(waits), flush=True)
"""


def test_a_writer_gets_the_file_while_sessions_query_without_pause(app_env):
    """Six sessions keep querying back to back (always at least one running); a writer process
    still lands each of its 10 writes within a second or two, and every session keeps getting answers."""
    wh = get_warehouse()
    base = len(app_env.live("topups"))
    writes = 10
    stop = threading.Event()
    seen: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def session(k: int) -> None:
        counts = seen.setdefault(k, [])
        while not stop.is_set():
            try:
                # a page's query: tens of ms, so the six sessions' queries overlap all the time
                counts.append(int(wh.query_uncached(
                    "SELECT (SELECT count(*) FROM topups), (SELECT sum(hash(range)) FROM range(?))", (BUSY_ROWS,)).iat[0, 0]))
            except BaseException as exc:
                errors.append(exc)
                return

    sessions = [threading.Thread(target=session, args=(k,)) for k in range(6)]
    for s in sessions:
        s.start()
    time.sleep(0.5)  # sessions are busy before the writer comes
    writer = subprocess.run(
        [sys.executable, "-c", WRITER.format(root=str(ROOT), path=str(app_env.warehouse), writes=writes, timeout=20)],
        capture_output=True, text=True, timeout=120,
    )
    time.sleep(0.3)
    stop.set()
    for s in sessions:
        s.join(30)
    assert writer.returncode == 0, writer.stderr[-2000:]
    waits = json.loads(writer.stdout)
    assert not errors, errors[:3]
    assert len(waits) == writes and max(waits) < 3.0, waits
    for k, counts in seen.items():
        assert len(counts) >= 10, f"session {k} starved: {len(counts)} answers"
        assert counts == sorted(counts), f"session {k} saw rows disappear"
    assert max(c[-1] for c in seen.values()) == base + writes
    assert not writer_signal_path(app_env.warehouse).exists()  # the writer cleared its signal


def test_a_stale_writer_signal_does_not_block_readers(app_env):
    """A writer killed while it waited leaves its signal behind; readers ignore it once it is stale."""
    signal_file = writer_signal_path(app_env.warehouse)
    signal_file.touch()
    old = time.time() - 5
    os.utime(signal_file, (old, old))
    t0 = time.monotonic()
    assert get_warehouse().query_uncached("SELECT count(*) FROM topups").iat[0, 0] == len(app_env.live("topups"))
    assert time.monotonic() - t0 < 1


TABLES = """
[tables.orders]
primary_key = ["order_id"]
"""


@pytest.mark.slow
def test_the_worker_lands_while_app_sessions_poll(broker, write_config, topic_prefix, tmp_path):
    """The real worker and four app sessions that never pause: the worker lands every batch it cuts,
    never gives up on the lock, and each session sees only whole batches."""
    n = 20_000
    topic = f"{topic_prefix}.orders"
    create_topics(broker.bootstrap, [topic])
    config = write_config(tables=TABLES, worker={"max_batch_rows": 1000, "max_batch_seconds": 0.2,
                                                  "lock_timeout_seconds": 5},
                          extra='[app]\nquery_timeout_seconds = 20\nmemory_limit = "512MB"\n')
    wh = Warehouse(load_config(config, needs=("warehouse",)))
    snapshots: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def session() -> None:
        while not done.is_set():
            try:
                if not wh.path.exists():
                    time.sleep(0.05)
                    continue
                rows = wh.query_uncached(
                    "SELECT (SELECT count(*) FROM main.orders), (SELECT coalesce(sum(next_offset), 0) FROM _meta.offsets)")
                snapshots.append((int(rows.iat[0, 0]), int(rows.iat[0, 1])))
            except duckdb.CatalogException:
                time.sleep(0.02)  # the worker has not created the table yet
            except BaseException as exc:
                errors.append(exc)
                return

    sessions = [threading.Thread(target=session) for _ in range(4)]
    for s in sessions:
        s.start()
    log = tmp_path / "worker.log"
    worker = start_worker(config, log=log)
    try:
        produce(broker.bootstrap, [(topic, encode_key({"order_id": i}),
                                    encode_envelope("orders", "upsert", {"order_id": i}, {"order_id": i, "qty": i % 5},
                                                    ts(i), ts(i))) for i in range(n)])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (snapshots and snapshots[-1][1] == n):
            time.sleep(0.1)
    finally:
        done.set()
        for s in sessions:
            s.join(30)
        code = stop_process(worker)
    text = log.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert not errors, errors[:3]
    assert snapshots and snapshots[-1] == (n, n), snapshots[-3:]
    assert all(rows == landed for rows, landed in snapshots), "a session saw part of a batch"
    assert len(snapshots) > 50, "the sessions should have kept querying during the ingest"
    assert "landing failed" not in text
    assert "warehouse busy" not in text, text[-3000:]  # it waited for running queries only, never for its lock timeout
