"""The app's one reader of the DuckDB warehouse.

Pages never open DuckDB themselves: they ask this module for the catalog
(which tables and columns exist — the allow-list every identifier is checked
against), for the data version, and for query results.

What it promises:

- every connection is read-only, short-lived (open, query, close: the worker
  gets the file back at once) and opened through `ingest.warehouse_file`, so
  a writer holding the lock means a short wait, never a lock error;
- connections cannot read files or attach databases
  (`enable_external_access = false`, then `lock_configuration = true`), run
  under a memory limit, in Asia/Seoul time, and are interrupted after
  `[app] query_timeout_seconds` (`QueryTimeout`, a message for the user);
- results are cached under (sql, parameters, data version): a new batch
  (the worker bumps the sidecar version file) refreshes what people see, and
  nothing else does;
- a missing file or a warehouse without tables is an empty `Catalog`, not an
  exception: pages show "no data yet".
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd
import pyarrow as pa
import streamlit as st

from ingest.config import ConfigError, PipelineConfig, TableSpec, load_config, resolve_config_path
from ingest.warehouse_file import WarehouseBusy, WarehouseMissing, open_reader

TIME_ZONE = "Asia/Seoul"
DATA_SCHEMA = "live"  # views without tombstones and Kafka bookkeeping (DESIGN.md)
CACHE_TTL_SECONDS = 600
CACHE_MAX_ENTRIES = 512
_CONNECTION_LOCK = threading.RLock()

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
        return f"{quote(self.schema)}.{quote(self.name)}"

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

    @contextmanager
    def _connect(self):
        """One read-only connection, alone in this process while it is open.

        DuckDB shares one database instance between all connections a
        process opens on the same file, and `lock_configuration` locks that
        instance: a second connection opened meanwhile could not set its own
        search_path. So app connections take turns (queries are short; DuckDB
        uses every core for each one anyway), and each gets a fresh instance.
        """
        if not _CONNECTION_LOCK.acquire(timeout=self.app.query_timeout_seconds):
            raise WarehouseBusy("other queries of this app kept the warehouse busy; try again in a moment")
        try:
            with self._open() as con:
                yield con
        finally:
            _CONNECTION_LOCK.release()

    @contextmanager
    def reading(self):
        """Let every query inside the block share one connection (one page run).

        Opening the file costs 15–25 ms; a page asks for several results. The
        connection is opened on the first uncached query and closed (the file
        released) when the block ends, which is a page run: milliseconds.
        """
        if getattr(_LOCAL, "shared", None) is not None:
            yield self
            return
        shared = _SharedConnection(self)
        _LOCAL.shared = shared
        try:
            yield self
        finally:
            _LOCAL.shared = None
            shared.close()

    @contextmanager
    def _connection(self):
        shared = getattr(_LOCAL, "shared", None)
        if shared is not None and shared.warehouse.path == self.path:
            yield shared.get()
        else:
            with self._connect() as con:
                yield con

    def _open(self):
        return open_reader(
            self.path,
            timeout=self.app.query_timeout_seconds,
            config={"enable_external_access": False, "memory_limit": self.app.memory_limit},
            setup=(
                f"SET search_path = '{DATA_SCHEMA},main'",
                f"SET TimeZone = '{TIME_ZONE}'",
                "SET lock_configuration = true",
            ),
        )

    def _execute(self, sql: str, params: Sequence[Any], fetch: str) -> Any:
        """Run one statement on a fresh connection, interrupting it after the time-out."""
        timeout = self.app.query_timeout_seconds
        with self._connection() as con:
            timer = threading.Timer(timeout, con.interrupt)
            timer.daemon = True
            timer.start()
            try:
                cur = con.execute(sql, list(params))
                if fetch == "arrow":
                    return cur.to_arrow_table()
                if fetch == "rows":
                    return cur.fetchall()
                return cur.to_arrow_table().to_pandas()
            except duckdb.InterruptException as exc:
                raise QueryTimeout(
                    f"query stopped after {timeout:g} s — narrow the filters (e.g. a shorter date range) and try again"
                ) from exc
            finally:
                timer.cancel()

    # Data version -------------------------------------------------------------

    def data_version(self) -> str:
        """The last landed batch id from the sidecar file the worker writes after each commit.

        Without a sidecar (a warehouse built by hand) the file's modification
        time stands in, so a change still refreshes the caches.
        """
        try:
            text = Path(self.config.warehouse.version_path).read_text(encoding="utf-8").strip()
            if text:
                return text
        except OSError:
            pass
        try:
            stamps = [self.path.stat().st_mtime_ns]
            wal = self.path.with_name(self.path.name + ".wal")
            if wal.exists():
                stamps.append(wal.stat().st_mtime_ns)
            return "mtime:" + ":".join(map(str, stamps))
        except OSError:
            return "missing"

    # Queries --------------------------------------------------------------------

    def query(self, sql: str, params: Iterable[Any] = ()) -> pd.DataFrame:
        """Cached result of a bound query (keyed by sql, params and the data version)."""
        return _cached_query(self, sql, tuple(params), self.data_version())

    def query_uncached(self, sql: str, params: Iterable[Any] = ()) -> pd.DataFrame:
        return self._execute(sql, tuple(params), "pandas")

    def query_arrow(self, sql: str, params: Iterable[Any] = ()) -> pa.Table:
        """Uncached Arrow result, for downloads (built on click, possibly large)."""
        return self._execute(sql, tuple(params), "arrow")

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        frame = self.query(sql, params)
        return None if frame.empty else frame.iat[0, 0]

    def catalog(self) -> Catalog:
        """Tables and columns in the warehouse, with row counts; cached per data version."""
        if not self.path.exists():
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


_LOCAL = threading.local()  # the shared connection of the page run on this thread, if any


class _SharedConnection:
    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse
        self._cm = None
        self._con = None

    def get(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._cm = self.warehouse._connect()
            self._con = self._cm.__enter__()
        return self._con

    def close(self) -> None:
        if self._cm is not None:
            cm, self._cm, self._con = self._cm, None, None
            cm.__exit__(None, None, None)


def _warehouse_key(wh: Warehouse) -> tuple:
    return (str(wh.path), wh.app.query_timeout_seconds, wh.app.memory_limit)


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
    key = (str(path.resolve()), stamp)
    wh = _WAREHOUSES.get(key)
    if wh is None:
        wh = Warehouse(load_config(path, needs=("warehouse",)))
        _WAREHOUSES.clear()
        _WAREHOUSES[key] = wh
    return wh


def _leave_legacy_multipage() -> None:
    """Make a page that Streamlit ran on its own re-run inside streamlit_app.py.

    DESIGN.md "Traps": while a `pages/` folder exists, a fresh server treats the
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
