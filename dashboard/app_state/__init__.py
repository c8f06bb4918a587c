"""The app-state store: what the app itself writes (saved views, subscriptions, audit trail).

The warehouse stays read-only for the app; everything a person creates in the
app lives here, in one small SQLite file (`[app] state_path`, default
`data/app_state.sqlite`, created on first use).

Schema changes are numbered `.sql` files in this folder (`010_saved_views.sql`,
`020_subscriptions.sql`, ...). Each file runs once, in name order, inside one
transaction, and is recorded by name in `schema_migrations`; so features can
add their tables independently, and an older file is never edited once
released (add a new one instead).

SQLite is opened in WAL mode with a busy timeout: the app's sessions (threads)
and the scheduler process write rarely and briefly, so waiting a few seconds
for a writer is the right answer, never a "database is locked" error.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

MIGRATIONS_DIR = Path(__file__).resolve().parent
BUSY_TIMEOUT_SECONDS = 10.0

_migrated: set[Path] = set()
_migrate_lock = threading.Lock()


class AppStateError(RuntimeError):
    """The app-state file cannot be opened or upgraded; the message says what to fix."""


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every migration file, in the order they run."""
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(MIGRATIONS_DIR.glob("[0-9]*.sql"))]


def _open(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise AppStateError(f"cannot open the app-state store {path}: {exc}; check that its folder is writable") from exc
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    _use_wal(conn)
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL (it stays so). The switch needs the file to itself and SQLite
    does not wait for that (no busy handler), so a first use by several sessions at once retries."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this file has not seen yet; returns their names."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for name, sql in migrations():
        if name in done:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Another process may have applied it while we waited for the write lock.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, datetime('now'))", (name,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise AppStateError(f"app-state migration {name} failed: {exc}") from exc
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration file into statements (sqlite3 runs one per execute inside a transaction)."""
    out, buf = [], []
    for line in sql.splitlines():
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            stmt = "\n".join(buf).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest and not all(l.strip().startswith("--") or not l.strip() for l in buf):
        raise AppStateError(f"unterminated statement in a migration: {rest[:80]!r}")
    return out


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the store at `path`, migrated; closed on exit.

    Use `with transaction(conn):` for writes that must happen together.
    """
    path = Path(path)
    conn = _open(path)
    try:
        key = path.resolve()
        if key not in _migrated:
            with _migrate_lock:
                migrate(conn)
                _migrated.add(key)
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): takes the write lock up front, so it never deadlocks.

    Inside an open transaction it joins it (no BEGIN, no COMMIT): a page can
    wrap a store function and its audit row (dashboard/audit.py) in one
    `with transaction(conn):`, so the change and the record of it land together
    or not at all; an error anywhere rolls back the outer transaction.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def store_path(config) -> Path:
    """The store's file for a loaded `PipelineConfig`."""
    app = getattr(config, "app", None)
    return Path(app.state_path) if app is not None else Path("data/app_state.sqlite")
