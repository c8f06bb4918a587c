"""Opening the DuckDB warehouse file under its one-writer rule.

DuckDB lets one process open a file read-write; while it does, another process
cannot open it at all, not even read-only ("Conflicting lock is held"), and a
read-only opener blocks the writer in the same way. So:

- the worker (`open_writer`) opens per batch, writes, commits, closes, and
  retries while a reader holds the file;
- readers (`open_reader`, used by the app and the watchdog) open read-only,
  query, close, and retry with jitter while the worker writes.

DuckDB has no queue: a writer that finds the file held retries, and readers
that keep overlapping could hold it forever. So a writer that waits says so:
it touches `<file>.writer-waiting` on every failed attempt and removes it once
it has the file (or gives up). Readers do not open while that signal is fresh
(`writer_waiting`), and the app's shared reader (dashboard/warehouse.py) lets
its running queries finish, closes the file and admits no new query until
the writer had its turn. A signal left by a killed writer goes stale in
`WRITER_WAIT_FRESH_SECONDS` and is ignored.

Both only ever wait; neither turns a lock into an error the user sees unless
the wait exceeds its timeout.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

import duckdb


class WarehouseMissing(FileNotFoundError):
    """No warehouse file yet: the worker has not landed a batch."""


class WarehouseBusy(TimeoutError):
    """The file stayed locked by another process for longer than the timeout."""


# A waiting writer re-touches its signal at least every ~0.1 s (its retry
# delay is at most 75 ms); older than this, the writer is gone.
WRITER_WAIT_FRESH_SECONDS = 1.0


def writer_signal_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".writer-waiting")


def writer_waiting(path: str | Path) -> bool:
    """True while a writer waits for the file (its signal is fresh): readers should let it in."""
    try:
        touched = writer_signal_path(path).stat().st_mtime
    except OSError:
        return False
    return time.time() - touched < WRITER_WAIT_FRESH_SECONDS


def _signal_writer_waiting(path: Path) -> None:
    try:
        writer_signal_path(path).touch()
    except OSError:
        pass  # a folder we cannot write: readers merely won't step aside


def _clear_writer_signal(path: Path) -> None:
    try:
        writer_signal_path(path).unlink(missing_ok=True)
    except OSError:
        pass


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.IOException) and ("lock" in text.lower())


def _is_being_created(path: Path, exc: BaseException) -> bool:
    """A file another process has only just created has no DuckDB header yet."""
    if "not a valid DuckDB database file" not in str(exc):
        return False
    try:
        return path.stat().st_size < 16384  # DuckDB's headers take the first 12 KiB
    except FileNotFoundError:
        return True


def _busy(path: Path, timeout: float, read_only: bool) -> WarehouseBusy:
    who = "the worker is writing" if read_only else "a reader has it open"
    return WarehouseBusy(f"{path} stayed locked for {timeout:g} s ({who}); try again in a moment")


def _retry_open(path: Path, timeout: float, read_only: bool, config: Mapping[str, object]) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout
    delay = 0.005
    signalled = False
    try:
        while True:
            if read_only and writer_waiting(path):
                # Let the waiting writer in first: opening now would only push it back.
                if time.monotonic() >= deadline:
                    raise _busy(path, timeout, read_only)
                time.sleep(0.01 * (0.5 + random.random()))
                continue
            try:
                return duckdb.connect(str(path), read_only=read_only, config=dict(config))
            except duckdb.IOException as exc:
                if not (is_lock_error(exc) or _is_being_created(path, exc)):
                    raise
                if not read_only and is_lock_error(exc):
                    _signal_writer_waiting(path)
                    signalled = True
                if time.monotonic() >= deadline:
                    raise _busy(path, timeout, read_only) from exc
                # Jitter keeps several readers from retrying in lock-step.
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 0.05)
    finally:
        if signalled:
            _clear_writer_signal(path)


def connect_reader(
    path: str | Path,
    timeout: float = 30.0,
    config: Mapping[str, object] | None = None,
    setup: tuple[str, ...] = (),
) -> duckdb.DuckDBPyConnection:
    """A read-only connection that the caller closes (DuckDB releases the file only on close).

    `setup` statements run right after opening (e.g. search_path, time zone,
    then `SET lock_configuration = true`). Raises `WarehouseMissing` when the
    file does not exist yet, `WarehouseBusy` after `timeout` seconds of locks.
    """
    path = Path(path)
    if not path.exists():
        raise WarehouseMissing(f"{path} does not exist yet — start the pipeline (make run) and wait for its first batch")
    con = _retry_open(path, timeout, True, config or {})
    try:
        for stmt in setup:
            con.execute(stmt)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def open_reader(
    path: str | Path,
    timeout: float = 30.0,
    config: Mapping[str, object] | None = None,
    setup: tuple[str, ...] = (),
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect_reader` for one block: closed (lock released) on exit."""
    con = connect_reader(path, timeout, config, setup)
    try:
        yield con
    finally:
        con.close()


def create_warehouse(path: str | Path, initialise: Callable[[duckdb.DuckDBPyConnection], None]) -> bool:
    """Create the file complete or not at all: built beside it, then renamed into place.

    A reader that sees the path therefore always finds a valid database, never
    one whose header is still being written. Returns False when it already existed.
    """
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        initialise(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    return True


@contextmanager
def open_writer(path: str | Path, timeout: float = 30.0, threads: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection for one unit of work; closed on exit so readers get in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _retry_open(path, timeout, False, {"threads": threads} if threads else {})
    try:
        yield con
    finally:
        con.close()
