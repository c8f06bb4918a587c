"""Opening the warehouse when it is a DuckLake (`[warehouse] catalog`), and keeping it tidy.

A DuckLake keeps its catalog in SQLite or PostgreSQL and its data as Parquet
files under `data_path`. Unlike the single DuckDB file there is no file lock:
every commit is a snapshot, readers read the latest snapshot when their query
starts and never wait for a writer, and a batch appears to them whole or not
at all (one batch = one transaction = one snapshot).

The worker's landing code is the same on both warehouses: this module only
attaches the lake as the connection's default database, so `main.<table>`,
`_meta.*` and `live.*` name the same things as in the file.

What differs, and why:

- every commit writes new Parquet files (and delete files for updated rows),
  so a lake fed every few seconds collects many small files: `maintain`
  rewrites files with `rewrite_delete_threshold` of their rows deleted, merges
  small ones, expires snapshots older than `keep_snapshots_hours` and deletes the
  files no snapshot needs any more; its results land in `_meta.maintenance`;
- DuckLake's CHECKPOINT runs all of that maintenance at once, so the worker
  does not call it after each batch (on the file it only trims the WAL);
- MERGE … RETURNING is not implemented by DuckLake, so the landing counts
  what a merge will apply before running it (`landing._merge`).

The extensions come from PyPI wheels (`duckdb-extension-ducklake`, …), so no
download from extensions.duckdb.org is needed: this machine has no network.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import duckdb

from ingest.config import WarehouseConfig

T = TypeVar("T")
LAKE = "wh"
SQLITE_BUSY_MS = 10_000  # the name the lake is attached under; the connection's default database
EXTENSIONS = {"sqlite": ("ducklake", "sqlite_scanner"), "postgres": ("ducklake", "postgres_scanner")}


class LakeUnavailable(RuntimeError):
    """The lake's catalog cannot be reached or read; the message says what to check."""


def _install(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    from duckdb_extensions import import_extension  # the wheels' loader: INSTALL from the package's file

    for name in EXTENSIONS[kind]:
        try:
            con.execute(f"LOAD {name}")
        except duckdb.Error:
            import_extension(name, con=con)
            con.execute(f"LOAD {name}")


def attach(con: duckdb.DuckDBPyConnection, cfg: WarehouseConfig, read_only: bool = False) -> None:
    """Attach the lake as `wh` and make it the default database of `con`."""
    assert cfg.catalog is not None and cfg.data_path is not None
    kind = cfg.catalog.partition(":")[0]
    _install(con, kind)
    data_path = str(cfg.data_path).rstrip("/") + "/"
    options = [f"DATA_PATH {_literal(data_path)}"]
    if kind == "sqlite":
        # Several processes share a SQLite catalog (worker, app, maintenance): wait for a writer instead of
        # failing at once, and let readers read while it writes.
        options += ["META_JOURNAL_MODE 'WAL'", f"META_BUSY_TIMEOUT {SQLITE_BUSY_MS}"]
    if read_only:
        options.append("READ_ONLY")
    else:
        Path(cfg.data_path).mkdir(parents=True, exist_ok=True)
        if kind == "sqlite":
            Path(cfg.catalog.partition(":")[2]).parent.mkdir(parents=True, exist_ok=True)
    # ATTACH takes no bound parameters for its target; the text comes from pipeline.toml (the operator), not from users.
    statement = f"ATTACH {_literal('ducklake:' + cfg.catalog)} AS {LAKE} ({', '.join(options)})"
    try:
        _attach_retrying(con, statement)
    except duckdb.Error as exc:
        raise LakeUnavailable(
            f"cannot open the DuckLake catalog {cfg.catalog!r}: {str(exc).splitlines()[0]} — check [warehouse] catalog "
            "(is the database server running, does the database exist, may this user connect?)"
        ) from exc
    con.execute(f"USE {LAKE}")


def _attach_retrying(con: duckdb.DuckDBPyConnection, statement: str, attempts: int = 10) -> None:
    """ATTACH, again while the catalog is busy — or still being created by another worker that started at the
    same moment (two first ATTACHes race to create DuckLake's own tables; the loser sees them half made)."""
    for attempt in range(attempts):
        try:
            con.execute(statement)
            return
        except duckdb.Error as exc:
            racing = "failed to initialize ducklake" in str(exc).lower()
            if not (racing or is_transient(exc)) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def is_transient(exc: BaseException) -> bool:
    """A lake commit that met another one (a DuckLake conflict, a busy SQLite catalog): try again, it is not the data."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("database is locked" in text or "conflict" in text
                                              or "could not serialize" in text)


def retry_transient(call: Callable[[], T], attempts: int, max_pause: float = 1.0,
                    before_retry: Callable[[], None] | None = None) -> T:
    """`call()`, again after a growing pause (0.1 s more each time, at most `max_pause`) while it fails
    with a transient lake error (`is_transient`); any other error, or the last attempt's, is raised."""
    for attempt in range(attempts):
        try:
            return call()
        except duckdb.Error as exc:
            if not is_transient(exc) or attempt == attempts - 1:
                raise
            if before_retry is not None:
                before_retry()
            time.sleep(min(max_pause, 0.1 * (attempt + 1)))
    raise AssertionError("attempts must be at least 1")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(cfg: WarehouseConfig, read_only: bool = False, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as its default database."""
    con = duckdb.connect(config=dict(config or {}))
    try:
        attach(con, cfg, read_only=read_only)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def open_lake(cfg: WarehouseConfig, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(cfg, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def snapshot_id(con: duckdb.DuckDBPyConnection) -> int:
    """The lake's latest snapshot: the data version the app caches by (it changes with every commit)."""
    return con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0]


def file_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Table → number of data files its current snapshot reads (the figure maintenance brings down)."""
    rows = con.execute(
        f"SELECT t.table_name, count(*) FROM __ducklake_metadata_{LAKE}.ducklake_data_file f "
        f"JOIN __ducklake_metadata_{LAKE}.ducklake_table t USING (table_id) "
        "WHERE f.end_snapshot IS NULL AND t.end_snapshot IS NULL GROUP BY ALL ORDER BY 1"
    ).fetchall()
    return {name: n for name, n in rows}


MAINTENANCE_DDL = """
CREATE TABLE IF NOT EXISTS _meta.maintenance (
    started_at        TIMESTAMPTZ NOT NULL,
    seconds           DOUBLE NOT NULL,
    files_before      BIGINT NOT NULL,
    files_after       BIGINT NOT NULL,
    snapshots_expired BIGINT NOT NULL,
    files_deleted     BIGINT NOT NULL
)"""


def maintain(cfg: WarehouseConfig, log=print) -> dict[str, float]:
    """Merge small files, expire old snapshots, delete unneeded files; record it in `_meta.maintenance`.

    Safe while the worker lands batches: each step is a DuckLake transaction
    that conflicts at worst with a concurrent commit, and is then retried.
    """
    started = datetime.now().astimezone()
    t0 = time.perf_counter()
    with open_lake(cfg) as con:
        before = sum(file_counts(con).values())
        # The worker's MERGE leaves a delete file on most data files (updates land all over a table), and a
        # scan reads both: rewrite files with at least this share deleted, then merge the small ones.
        _retrying(con, f"CALL ducklake_rewrite_data_files('{LAKE}', delete_threshold => "
                       f"{float(cfg.rewrite_delete_threshold)!r})")
        _retrying(con, f"CALL ducklake_merge_adjacent_files('{LAKE}')")
        older = f"now() - INTERVAL '{float(cfg.keep_snapshots_hours)} hours'"
        expired = _retrying(con, f"CALL ducklake_expire_snapshots('{LAKE}', older_than => {older})")
        deleted = _retrying(con, f"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)")
        after = sum(file_counts(con).values())
        figures = {"files_before": before, "files_after": after, "snapshots_expired": len(expired),
                   "files_deleted": len(deleted), "seconds": time.perf_counter() - t0}
        _retrying(con, "CREATE SCHEMA IF NOT EXISTS _meta")
        _retrying(con, MAINTENANCE_DDL)
        _retrying(con, "INSERT INTO _meta.maintenance VALUES (?, ?, ?, ?, ?, ?)",
                  [started, figures["seconds"], before, after, figures["snapshots_expired"], figures["files_deleted"]])
    log(f"maintenance: {before:,} data files → {after:,}; {figures['snapshots_expired']:,} snapshot(s) expired, "
        f"{figures['files_deleted']:,} file(s) deleted, {figures['seconds']:.1f} s")
    return figures


def _retrying(con: duckdb.DuckDBPyConnection, statement: str, params: list | None = None) -> list:
    """Run one maintenance statement; a conflict with the worker's concurrent commit is retried after a short pause."""
    def run() -> list:
        cur = con.execute(statement, params or [])
        return cur.fetchall() if cur.description else []

    return retry_transient(run, attempts=20)


def run_maintenance(cfg: WarehouseConfig, every: float | None = None) -> int:
    """`python -m ingest maintain`: once, or every `every` seconds until stopped (SIGTERM/SIGINT)."""
    import logging
    import signal
    import threading

    log = logging.getLogger("ingest.maintain")
    if not cfg.is_lake:
        print("maintain: the warehouse is a single DuckDB file ([warehouse] has no catalog); "
              "nothing to do — the worker keeps the file compact itself", file=sys.stderr)
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while True:
        try:
            maintain(cfg, log=log.info)
        except (LakeUnavailable, duckdb.Error) as exc:
            if every is None:
                raise
            log.error("maintenance failed: %s — retrying at the next run", str(exc).splitlines()[0])
        if every is None or stop.wait(every):
            return 0
