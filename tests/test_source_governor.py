"""The source is never hurt: a rows-per-second ceiling, index-served reads (handler counters), a statement time limit
and back-off when the source is slow — against the real MariaDB, with the real Exporter on a real broker.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa

from ingest.config import load_config
from ingest.export import Exporter, Publisher, _describe_tables, _ensure_topics
from ingest.governor import limit_statement_time
from ingest.source import connect
from ingest.watermarks import WatermarkStore
from tests.fixtures_export import LEDGER

pytestmark = pytest.mark.mariadb

ROWS = 3000
LOCK_SECONDS = 6.0
HANDLER_READS = ("Handler_read_first", "Handler_read_key", "Handler_read_last", "Handler_read_next",
                 "Handler_read_prev", "Handler_read_rnd", "Handler_read_rnd_next")


def make_ledger(url: str, rows: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INT PRIMARY KEY, amount_krw INT, updated_at DATETIME(6) NOT NULL,"
                             " KEY ix_ledger_updated_at (updated_at, entry_id))")
        conn.exec_driver_sql(f"INSERT INTO ledger SELECT seq, seq * 10, TIMESTAMP'2026-11-20 00:00:00' + INTERVAL seq SECOND "
                             f"FROM seq_1_to_{rows}")
        conn.exec_driver_sql("ANALYZE TABLE ledger")
    engine.dispose()


def exporter_for(write_config, tmp_path: Path, url: str, name: str, **exporter_keys) -> Exporter:
    keys = {"interval_seconds": 0.2, "chunk_rows": 250, "overlap_seconds": 0, "completeness_seconds": 0,
            "state_path": str(tmp_path / f"{name}_state.json"), **exporter_keys}
    lines = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in keys.items())
    path = write_config(tables=LEDGER, name=f"{name}.toml", extra=f'[source]\nurl = "{url}"\n[exporter]\n{lines}\n')
    cfg = load_config(path, needs=("source", "kafka", "exporter", "tables"), environ={})
    engine = connect(cfg.source)
    limit_statement_time(engine, cfg.exporter.statement_timeout_seconds)
    readers, failed = _describe_tables(cfg, engine)
    assert not failed
    exporter = Exporter(cfg, Publisher(cfg.kafka), WatermarkStore(cfg.exporter.state_path), readers)
    exporter.engine = engine
    _ensure_topics(exporter, [cfg.kafka.topic_for("ledger")])
    return exporter


def handler_reads(conn) -> int:
    status = {k: int(v) for k, v in conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Handler_read%%'").fetchall()}
    return sum(status[k] for k in HANDLER_READS)


def timed_pass(exporter: Exporter) -> tuple[int, float, float]:
    """(rows sent, seconds, rows examined per row sent) of one pass, from the exporter's own session's counters."""
    with exporter.engine.connect() as conn:
        session = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        conn.exec_driver_sql("FLUSH STATUS")
        before = handler_reads(conn)
    t0 = time.monotonic()
    sent = exporter.run_pass()["ledger"]
    seconds = time.monotonic() - t0
    with exporter.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar() == session, "the pooled session changed"
        examined = handler_reads(conn) - before
    return sent, seconds, examined / max(sent, 1)


def test_the_ceiling_paces_the_export_and_reads_stay_index_served(mariadb_url, write_config, tmp_path):
    make_ledger(mariadb_url, ROWS)
    ceiling = 1000.0  # a 3 s paced pass: the unpaced control stays far below half of it on a loaded machine
    paced = exporter_for(write_config, tmp_path, mariadb_url, "paced", max_rows_per_second=ceiling)
    free = exporter_for(write_config, tmp_path, mariadb_url, "free")
    try:
        sent, seconds, per_row = timed_pass(paced)
        assert sent == ROWS
        expected = ROWS / ceiling  # 3.0 s
        assert 0.9 * expected <= seconds <= expected + 1.5, f"{seconds:.2f} s for {ROWS} rows at {ceiling:g} rows/s"
        assert per_row <= 1.1, f"{per_row:.3f} rows examined per row sent"
        sent_free, seconds_free, per_row_free = timed_pass(free)  # negative control: no ceiling, no pacing
        assert sent_free == ROWS and seconds_free < expected / 2, f"{seconds_free:.2f} s without a ceiling"
        print(f"\nceiling {ceiling:g} rows/s: {ROWS} rows in {seconds:.2f} s (expected {expected:.2f} s), "
              f"{per_row:.3f} examined/sent; without: {seconds_free:.2f} s, {per_row_free:.3f} examined/sent")
    finally:
        for e in (paced, free):
            e.publisher.close()
            e.engine.dispose()


def test_a_locked_table_gives_back_off_not_a_pile_of_queries(mariadb_url, write_config, tmp_path, caplog):
    make_ledger(mariadb_url, 500)
    exporter = exporter_for(write_config, tmp_path, mariadb_url, "slow", statement_timeout_seconds=1.0,
                            slow_read_seconds=0.5, max_backoff_seconds=4)
    db = mariadb_url.rsplit("/", 1)[1]
    assert exporter.run_pass()["ledger"] == 500
    locker = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db, autocommit=True)
    waiting: list[int] = []  # how many exporter statements wait on the table, sampled
    stop = threading.Event()
    reads_before = len(exporter.query_seconds.get("ledger", []))

    def sample() -> None:
        watcher = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
        with watcher.cursor() as cur:
            while not stop.is_set():
                cur.execute("SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND COMMAND = 'Query' "
                            "AND INFO LIKE 'SELECT%%ledger%%' AND ID <> CONNECTION_ID()", (db,))
                waiting.append(cur.fetchone()[0])
                time.sleep(0.05)
        watcher.close()

    sampler = threading.Thread(target=sample, daemon=True)
    caplog.set_level(logging.WARNING, logger="ingest.export")
    reads = 0
    try:
        with locker.cursor() as cur:
            cur.execute("INSERT INTO ledger VALUES (501, 5010, '2026-11-21 00:00:00')")
            cur.execute("LOCK TABLES ledger WRITE")
        sampler.start()
        locked_at = time.monotonic()
        threading.Timer(LOCK_SECONDS, lambda: locker.cursor().execute("UNLOCK TABLES")).start()
        failed = 0
        while time.monotonic() < locked_at + LOCK_SECONDS + 8:  # the exporter's own loop, short interval
            exporter.source_errors.clear()
            exporter.run_pass()
            reads += len(exporter.query_seconds.get("ledger", [])) + (1 if "ledger" in exporter.source_errors else 0)
            failed += "ledger" in exporter.source_errors
            exporter.stop.wait(0.2)
    finally:
        stop.set()
        sampler.join(5)
        locker.close()
        exporter.publisher.close()
        exporter.engine.dispose()
    slow = [r.getMessage() for r in caplog.records if "answers slowly" in r.getMessage()]
    fast = [r.getMessage() for r in caplog.records if "quickly again" in r.getMessage()]
    assert max(waiting) <= 1, f"statements piled up on the locked table: {max(waiting)} at once"
    assert len(slow) == 1 and len(fast) == 1, (slow, fast)  # logged once per change, not once per read
    assert exporter.state.get("ledger").pk == (501,), "the row written under the lock was exported once it lifted"
    # Without back-off the 0.2 s loop with a 1 s statement limit tries a read every 1.2 s: 5 in 6 s.
    # With it the pauses grow (0.5, 1, 2 s): at most 3 reads are aborted by the time limit.
    assert failed <= 3, f"{failed} reads aborted while the table was locked"
    print(f"\nlocked {LOCK_SECONDS:g} s: {failed} read(s) aborted by the time limit, at most {max(waiting)} waiting "
          f"at once; {slow[0]}")
