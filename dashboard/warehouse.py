"""The app's one reader of the DuckDB warehouse.

Pages never open DuckDB themselves: they ask this module for the catalog
(which tables and columns exist — the allow-list every identifier is checked
against), for the data version, and for query results.

What it promises:

- every query runs read-only on one DuckDB instance that all sessions of the
  process share (`_SharedReader`): sessions are threads, and their queries run
  side by side, each on its own cursor. The file stays open while queries run
  and between the queries of page runs under way (`reading`), and closes when
  neither is left. A worker that waits for the file
  (`ingest.warehouse_file.writer_waiting`) gets it as soon as the running
  queries finish, even while people keep opening pages: new queries wait
  until it landed its batch. A writer holding the file means a short wait,
  never a lock error;
- the instance cannot read files or attach databases
  (`enable_external_access = false`, then `lock_configuration = true`), runs
  under a memory limit, in Asia/Seoul time; each query is interrupted after
  `[app] query_timeout_seconds` (`QueryTimeout`, a message for the user);
- results are cached under (sql, parameters, data version) and shared by all
  sessions: a new batch (the worker bumps the sidecar version file)
  refreshes what people see, and nothing else does;
- a missing file or a warehouse without tables is an empty `Catalog`, not an
  exception: pages show "no data yet".
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd
import pyarrow as pa
import streamlit as st

from ingest import warehouse_lake
from ingest.config import ConfigError, PipelineConfig, TableSpec, WarehouseConfig, load_config, resolve_config_path
from ingest.warehouse_lake import LAKE
from ingest.warehouse_file import WarehouseBusy, WarehouseMissing, connect_reader, writer_waiting

TIME_ZONE = "Asia/Seoul"
DATA_SCHEMA = "live"  # views without tombstones and Kafka bookkeeping (docs/contracts.md)
CACHE_TTL_SECONDS = 600
CACHE_MAX_ENTRIES = 512

__all__ = [
    "Catalog",
    "ColumnInfo",
    "ConfigError",
    "QueryTimeout",
    "TableInfo",
    "Warehouse",
    "WarehouseBusy",
    "get_warehouse",
    "quote",
    "app_warehouse",
]


class QueryTimeout(TimeoutError):
    """A query ran longer than `[app] query_timeout_seconds` and was interrupted."""


def quote(identifier: str) -> str:
    """A DuckDB identifier in double quotes. Only ever called on catalog names."""
    return '"' + identifier.replace('"', '""') + '"'


# ───────────────────────────────────────────────────────────── catalog ──

_TIME_TYPES = ("TIMESTAMP", "DATE")
_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")


def column_kind(duckdb_type: str) -> str:
    """'time', 'number', 'bool' or 'text': what kind of filter and chart axis a column gets."""
    t = duckdb_type.upper()
    if t.startswith(_TIME_TYPES):
        return "time"
    if t.startswith(_NUMBER_TYPES):
        return "number"
    if t == "BOOLEAN":
        return "bool"
    return "text"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str

    @property
    def kind(self) -> str:
        return column_kind(self.type)

    @property
    def is_date(self) -> bool:
        return self.type.upper() == "DATE"


@dataclass(frozen=True)
class TableInfo:
    name: str
    schema: str
    columns: tuple[ColumnInfo, ...]
    row_count: int

    @property
    def qualified(self) -> str:
        """How SQL names the table: plainly, resolved through the search path (live, then main).

        Plain on purpose: a role with access rules reads its own version of a
        table under the same name (dashboard/access/enforce.py), and refuses a
        schema-qualified name that would read around it.
        """
        return quote(self.name)

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    def columns_of(self, kind: str) -> list[ColumnInfo]:
        return [c for c in self.columns if c.kind == kind]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Catalog:
    """Tables people may query. Identifiers not in here are never put in SQL."""

    tables: Mapping[str, TableInfo] = field(default_factory=dict)
    missing: bool = False  # the warehouse file does not exist yet

    @property
    def empty(self) -> bool:
        return not self.tables

    def table(self, name: str | None) -> TableInfo | None:
        return self.tables.get(name) if name else None


# ──────────────────────────────────────────────────────────── the reader ──


class Warehouse:
    """Read access for one configuration; cheap to create, holds no connection."""

    def __init__(self, config: PipelineConfig):
        assert config.warehouse is not None and config.app is not None
        self.config = config
        self.path = Path(config.warehouse.path)
        self.app = config.app

    # Configuration-derived ---------------------------------------------------

    def table_spec(self, table: str) -> TableSpec | None:
        return self.config.tables.get(table)

    def description(self, table: str, column: str | None = None) -> str:
        spec = self.table_spec(table)
        if spec is None:
            return ""
        if column is None:
            return spec.description
        col = spec.column(column)
        return col.description if col else ""

    # Connections ---------------------------------------------------------------

    @property
    def is_lake(self) -> bool:
        return self.config.warehouse.is_lake

    def exists(self) -> bool:
        """Whether there is a warehouse to read yet (the file, or a lake whose catalog opens)."""
        if not self.is_lake:
            return self.path.exists()
        return self.data_version() != "missing"

    def _reader(self) -> "_SharedReader | _LakeReader":
        if self.is_lake:
            return _lake_reader(self.config.warehouse, self.app.memory_limit)
        return _shared_reader(self.path, self.app.memory_limit)

    @contextmanager
    def _connection(self):
        """A cursor on the process's shared read-only instance, for one query (or one catalog read)."""
        with self._reader().cursor(self.app.query_timeout_seconds) as cur:
            yield cur

    @contextmanager
    def reading(self):
        """One page run: the shared instance may stay open between its queries.

        Opening the file costs more than most queries (60–200 ms for the
        demo's), and a page asks for several results. Other sessions' page
        runs are not held back by this, and neither is the worker: when it
        waits for the file, the file is released as soon as the running
        queries finish, even in the middle of a page run.
        """
        token = _PAGE_RUN_VERSIONS.set({})
        try:
            with self._reader().hold():
                yield self
        finally:
            _PAGE_RUN_VERSIONS.reset(token)

    def _execute(self, sql: str, params: Sequence[Any], fetch: str) -> Any:
        """Run one statement on its own cursor, interrupting it after the time-out.

        The file is held while DuckDB works (query and Arrow fetch); the
        conversion to pandas happens after the cursor has let go.
        """
        timeout = self.app.query_timeout_seconds
        with self._connection() as con:
            timer = threading.Timer(timeout, con.interrupt)
            timer.daemon = True
            timer.start()
            try:
                cur = con.execute(sql, list(params))
                result = cur.fetchall() if fetch == "rows" else cur.to_arrow_table()
            except duckdb.InterruptException as exc:
                raise QueryTimeout(
                    f"query stopped after {timeout:g} s — narrow the filters (e.g. a shorter date range) and try again"
                ) from exc
            finally:
                timer.cancel()
        return result.to_pandas() if fetch == "pandas" else result

    # Data version -------------------------------------------------------------

    def data_version(self) -> str:
        """The last landed batch id from the sidecar file the worker writes after each commit.

        Without a sidecar (a warehouse built by hand) the file's modification
        time stands in, so a change still refreshes the caches. A lake's data
        version is its latest snapshot (every commit makes one).
        """
        if self.is_lake:
            # A catalog read per call (~10 ms); every query asks, so one page run (`reading`) asks the lake once
            # and all its queries read that snapshot's cached results.
            run = _PAGE_RUN_VERSIONS.get()
            if run is not None and id(self) in run:
                return run[id(self)]
            try:
                with self._connection() as con:
                    version = "snapshot:" + str(con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0])
            except WarehouseMissing:
                return "missing"
            if run is not None:
                run[id(self)] = version
            return version
        text = _sidecar_text(Path(self.config.warehouse.version_path))
        if text:
            return text
        try:
            stamps = [self.path.stat().st_mtime_ns]
            wal = self.path.with_name(self.path.name + ".wal")
            if wal.exists():
                stamps.append(wal.stat().st_mtime_ns)
            return "mtime:" + ":".join(map(str, stamps))
        except OSError:
            return "missing"

    # Queries --------------------------------------------------------------------

    # Every statement passes `_secured` first: the person's access rules (dashboard/access/enforce.py)
    # decide what it may read; the cache is keyed by the secured text, so roles never share results.

    def _secured(self, sql: str) -> str:
        from dashboard.access.enforce import secure

        return secure(self, sql)

    def query(self, sql: str, params: Iterable[Any] = ()) -> pd.DataFrame:
        """Cached result of a bound query (keyed by sql, params and the data version)."""
        return _cached_query(self, self._secured(sql), tuple(params), self.data_version())

    def query_uncached(self, sql: str, params: Iterable[Any] = ()) -> pd.DataFrame:
        return self._execute(self._secured(sql), tuple(params), "pandas")

    def query_arrow(self, sql: str, params: Iterable[Any] = ()) -> pa.Table:
        """Uncached Arrow result, for downloads (built on click, possibly large)."""
        return self._execute(self._secured(sql), tuple(params), "arrow")

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        frame = self.query(sql, params)
        return None if frame.empty else frame.iat[0, 0]

    def catalog(self) -> Catalog:
        """The tables and columns the current person may see, with their row counts (pages use this one)."""
        from dashboard.access.enforce import visible_catalog

        return visible_catalog(self, self.raw_catalog())

    def raw_catalog(self) -> Catalog:
        """Every table and column in the warehouse, with row counts; cached per data version.

        For the model and the access rules themselves — never shown to a person as it is.
        """
        if not self.is_lake and not self.path.exists():
            return Catalog(missing=True)
        return _cached_catalog(self, self.data_version())

    def _read_catalog(self) -> Catalog:
        try:
            with self._connection() as con:
                rows = con.execute(
                    "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema IN ('live', 'main') AND table_catalog = current_database() "
                    "ORDER BY table_schema, table_name, ordinal_position"
                ).fetchall()
                by_table: dict[tuple[str, str], list[ColumnInfo]] = {}
                for schema, table, column, dtype in rows:
                    by_table.setdefault((schema, table), []).append(ColumnInfo(column, dtype))
                live = {t for s, t in by_table if s == "live"}
                tables: dict[str, TableInfo] = {}
                for (schema, table), cols in sorted(by_table.items()):
                    # The live view is what people query; a bare main table (no view) is shown as is.
                    if table.startswith("_") or (schema == "main" and table in live):
                        continue
                    where = ""
                    if schema == "main":
                        where = " WHERE NOT _deleted" if any(c.name == "_deleted" for c in cols) else ""
                        cols = [c for c in cols if c.name not in ("_deleted", "_kafka_partition", "_kafka_offset")]
                    qualified = f"{quote(schema)}.{quote(table)}"
                    count = con.execute(f"SELECT count(*) FROM {qualified}{where}").fetchone()[0]
                    tables[table] = TableInfo(table, schema, tuple(cols), int(count))
        except WarehouseMissing:
            return Catalog(missing=True)
        return Catalog(tables=tables)

    def has_meta(self, table: str) -> bool:
        try:
            return self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_meta' AND table_name = ?",
                (table,),
            ) > 0
        except WarehouseMissing:
            return False


# ─────────────────────────────────────────────────── the shared reader ──


class _SharedReader:
    """One read-only DuckDB instance on the warehouse file, shared by every session of the process.

    Why one instance: DuckDB keeps one database instance per file per process
    and all connections to it share its settings; `lock_configuration` locks
    them for the instance. So the settings are made once, when the instance
    opens (memory limit, no external access, `SET GLOBAL TimeZone`, then the
    lock), and every query gets a cursor — its own connection to the same
    instance, which runs beside the others. Only `search_path` is per cursor,
    and DuckDB lets it be set under the lock.

    When the file is open: while a query runs, and between the queries of
    page runs that are under way (`hold`): opening the demo's 20 MB file costs
    60–200 ms on this machine, and a page asks for ten results. It closes as
    soon as neither is left, and — what the worker needs — whenever a writer
    waits (`writer_waiting`): new queries are held back, the running ones
    finish, the file closes even while pages are still rendering, the writer
    lands its batch, and the next query opens a new instance, which sees the
    new batch. A watcher thread looks at the writer's signal while the file
    is open and idle, so a page that is busy rendering cannot keep it.
    """

    POLL_SECONDS = 0.01  # how often a waiting query, or the watcher, looks at the writer's signal

    def __init__(self, path: Path, memory_limit: str):
        self.path = path
        self.memory_limit = memory_limit
        self._state = threading.Condition(threading.Lock())
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opening = False
        self._running = 0  # queries running now
        self._holding = 0  # page runs under way

    @contextmanager
    def hold(self):
        """Keep the instance open between this page run's queries (unless a writer waits)."""
        with self._state:
            self._holding += 1
        try:
            yield
        finally:
            with self._state:
                self._holding -= 1
                self._close_if_idle()

    @contextmanager
    def cursor(self, timeout: float):
        """A cursor for one query; waits (up to `timeout`) for a writer, raises `WarehouseBusy` past it."""
        cur = self._admit(time.monotonic() + timeout, timeout)
        try:
            yield cur
        finally:
            cur.close()
            self._leave()

    def _admit(self, deadline: float, timeout: float) -> duckdb.DuckDBPyConnection:
        opener = False
        with self._state:
            while True:
                if writer_waiting(self.path):
                    self._close_if_idle(writer=True)
                elif self._con is not None:
                    self._running += 1
                    con = self._con
                    break
                elif not self._opening:
                    self._opening = opener = True
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WarehouseBusy(f"{self.path} stayed locked for {timeout:g} s (the worker is writing); "
                                        "try again in a moment")
                self._state.wait(min(self.POLL_SECONDS, left))
        if opener:
            con = self._open(max(0.1, deadline - time.monotonic()))
        try:
            with self._state:  # cursors are registered on the base connection: one thread at a time
                cur = con.cursor()
            cur.execute(f"SET search_path = '{DATA_SCHEMA},main'")
            return cur
        except BaseException:
            self._leave()
            raise

    def _open(self, timeout: float) -> duckdb.DuckDBPyConnection:
        """Open the instance (one thread at a time gets here; the others wait for it)."""
        con = None
        try:
            con = _connect_shared_instance(self.path, timeout, self.memory_limit)
        finally:
            with self._state:
                self._opening = False
                if con is not None:
                    self._con = con
                    self._running += 1
                    threading.Thread(target=self._watch, args=(con,), name="warehouse-watch", daemon=True).start()
                self._state.notify_all()
        return con

    def _leave(self) -> None:
        with self._state:
            self._running -= 1
            self._close_if_idle(writer=self._holding > 0 and writer_waiting(self.path))
            self._state.notify_all()

    def _watch(self, con: duckdb.DuckDBPyConnection) -> None:
        """While this instance is open: close it when no query runs and a writer waits."""
        with self._state:
            while self._con is con:
                if self._running == 0 and writer_waiting(self.path):
                    self._close_if_idle(writer=True)
                    return
                self._state.wait(self.POLL_SECONDS)

    def _close_if_idle(self, writer: bool = False) -> None:
        """Release the file when no query runs and no page run needs it, or a writer waits (state lock held)."""
        if self._con is not None and self._running == 0 and (writer or self._holding == 0):
            con, self._con = self._con, None
            con.close()  # the cursors' instance goes with it: DuckDB releases the file lock only here
            self._state.notify_all()


# Per page run (`Warehouse.reading`): a lake's snapshot id, read once for all the run's queries.
_PAGE_RUN_VERSIONS: contextvars.ContextVar[dict[int, str] | None] = contextvars.ContextVar("page_run_versions",
                                                                                          default=None)
_SIDECARS: dict[str, tuple[tuple[int, int, int], str]] = {}


def _sidecar_text(path: Path) -> str | None:
    """The version sidecar's text, read again only when the file changed (every query asks for it).

    Keyed by inode, size and modification time: the worker replaces the file
    after each commit, so a new batch is seen at once; an unchanged file costs
    a stat instead of an open and a read (a tenth of the app's CPU with four
    people at once).
    """
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _SIDECARS.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    _SIDECARS[str(path)] = (key, text)
    return text


def _connect_shared_instance(path: Path, timeout: float, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """The instance with its settings made and locked; waits for a writer as `open_reader` does."""
    return connect_reader(
        path,
        timeout=timeout,
        config={"enable_external_access": False, "memory_limit": memory_limit},
        setup=(
            # GLOBAL: a plain SET of TimeZone is per connection and the cursors would not see it.
            f"SET GLOBAL TimeZone = '{TIME_ZONE}'",
            "SET lock_configuration = true",
        ),
    )


class _LakeReader:
    """The app's reader of a DuckLake warehouse: one read-only instance, kept open, shared by all sessions.

    A lake has no file lock: each query reads the latest snapshot when it
    starts, the worker commits beside it, and nobody waits. So there is
    nothing to release between page runs (`hold` is a no-op). The instance
    may read the lake's own data folder and nothing else
    (`allowed_directories`, then no external access, then the lock).
    """

    def __init__(self, cfg: WarehouseConfig, memory_limit: str):
        self.cfg = cfg
        self.memory_limit = memory_limit
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def hold(self):
        yield

    @contextmanager
    def cursor(self, timeout: float):
        with self._lock:
            if self._con is None:
                self._con = self._open()
            cur = self._con.cursor()
        try:
            cur.execute(f"USE {LAKE}")
            cur.execute(f"SET search_path = '{LAKE}.{DATA_SCHEMA},{LAKE}.main'")
            yield cur
        finally:
            cur.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            con = warehouse_lake.connect(self.cfg, read_only=True, config={"memory_limit": self.memory_limit})
        except warehouse_lake.LakeUnavailable as exc:
            raise WarehouseMissing(f"no data yet: {exc}") from exc
        try:
            con.execute("SET allowed_directories = [?]", [str(self.cfg.data_path).rstrip("/") + "/"])
            con.execute("SET enable_external_access = false")
            con.execute(f"SET GLOBAL TimeZone = '{TIME_ZONE}'")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con


_LAKE_READERS: dict[tuple[str, str], _LakeReader] = {}


def _lake_reader(cfg: WarehouseConfig, memory_limit: str) -> _LakeReader:
    key = (f"{cfg.catalog}|{cfg.data_path}", memory_limit)
    with _READERS_LOCK:
        reader = _LAKE_READERS.get(key)
        if reader is None:
            reader = _LAKE_READERS[key] = _LakeReader(cfg, memory_limit)
        return reader


@functools.lru_cache(maxsize=64)
def _resolved(path: str) -> str:
    """A path made absolute with its links followed, once per path: every query of every page run asks."""
    return str(Path(path).resolve())


_READERS: dict[tuple[str, str], _SharedReader] = {}
_READERS_LOCK = threading.Lock()


def _shared_reader(path: Path, memory_limit: str) -> _SharedReader:
    key = (_resolved(str(path)), memory_limit)
    with _READERS_LOCK:
        reader = _READERS.get(key)
        if reader is None:
            reader = _READERS[key] = _SharedReader(path, memory_limit)
        return reader


def _warehouse_key(wh: Warehouse) -> tuple:
    return (str(wh.path), wh.config.warehouse.catalog, wh.app.query_timeout_seconds, wh.app.memory_limit)


@st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=CACHE_MAX_ENTRIES, show_spinner=False,
               hash_funcs={Warehouse: _warehouse_key})
def _cached_query(wh: Warehouse, sql: str, params: tuple, version: str) -> pd.DataFrame:
    return wh._execute(sql, params, "pandas")


@st.cache_data(ttl=CACHE_TTL_SECONDS, max_entries=64, show_spinner=False,
               hash_funcs={Warehouse: _warehouse_key})
def _cached_catalog(wh: Warehouse, version: str) -> Catalog:
    return wh._read_catalog()


# ───────────────────────────────────────────────────────────── discovery ──

_WAREHOUSES: dict[tuple[str, int], Warehouse] = {}


def get_warehouse(config_path: str | None = None) -> Warehouse:
    """The warehouse of the app's config (env PIPELINE_CONFIG, else ./pipeline.toml).

    Re-read when the file changes; raises `ConfigError` with a message to show.
    """
    path = resolve_config_path(config_path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = -1
    key = (_resolved(str(path)), stamp)
    wh = _WAREHOUSES.get(key)
    if wh is None:
        wh = Warehouse(load_config(path, needs=("warehouse",)))
        _WAREHOUSES.clear()
        _WAREHOUSES[key] = wh
    return wh


def _leave_legacy_multipage() -> None:
    """Make a page that Streamlit ran on its own re-run inside streamlit_app.py.

    docs/design.md "Traps": while a `pages/` folder exists, a fresh server treats the
    app as a legacy (v1) multipage app until `st.navigation` has run once, so
    the first visitor arriving through a shared link (/explore?...) gets the
    page script alone: no sidebar, no language switch, no freshness. Every
    page starts by asking for the warehouse, so this is the one place to
    notice it: switch the process to `st.navigation` mode and rerun the same
    URL, which now goes through the entry script.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def app_warehouse() -> Warehouse:
    """For pages: the warehouse, or a readable configuration error on screen and stop."""
    from dashboard import i18n  # late: i18n is a leaf module, this keeps warehouse importable alone

    _leave_legacy_multipage()
    try:
        return get_warehouse()
    except ConfigError as exc:
        st.error(i18n.t("config_error", msg=str(exc)))
        st.stop()
        raise  # st.stop() raises; this line only satisfies type checkers
