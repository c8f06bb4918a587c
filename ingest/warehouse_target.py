"""Which warehouse the pipeline writes and reads: one DuckDB file, or a DuckLake.

The worker, the replay command and the watchdog ask this module for a
connection and do not care which kind it is: the landing SQL is the same on
both (ingest/landing.py notes the two places where a lake differs).

- file (`[warehouse] path`): ingest/warehouse_file.py — one writer at a time,
  opened per batch and closed so that readers get their turn;
- lake (`[warehouse] catalog`): ingest/warehouse_lake.py — the writer keeps
  its connection (attaching a catalog costs a round trip or two), readers
  never wait for it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import duckdb

from ingest import warehouse_lake
from ingest.config import WarehouseConfig
from ingest.warehouse_file import WarehouseMissing, create_warehouse, open_reader, open_writer


def describe(cfg: WarehouseConfig) -> str:
    """For logs: where the data goes."""
    if cfg.is_lake:
        return f"DuckLake (catalog {cfg.catalog}, data {cfg.data_path})"
    return str(cfg.path)


def create(cfg: WarehouseConfig, initialise: Callable[[duckdb.DuckDBPyConnection], None]) -> bool:
    """Create the warehouse if it does not exist; True if it was created."""
    if not cfg.is_lake:
        return create_warehouse(cfg.path, initialise)
    with warehouse_lake.open_lake(cfg) as con:
        existed = con.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE catalog_name = current_database() AND schema_name = '_meta'"
        ).fetchone()[0] > 0
        initialise(con)
    return not existed


def exists(cfg: WarehouseConfig) -> bool:
    if not cfg.is_lake:
        return cfg.path.exists()
    try:
        with warehouse_lake.open_lake(cfg, read_only=True):
            return True
    except warehouse_lake.LakeUnavailable:
        return False


class Writer:
    """The worker's way in: `with writer.open() as con:` for each batch."""

    def __init__(self, cfg: WarehouseConfig, timeout: float, threads: int | None = None):
        self.cfg = cfg
        self.timeout = timeout
        self.threads = threads  # DuckDB threads for landing (None: DuckDB's default, one per core)
        self._lake: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def open(self, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.cfg.is_lake:
            with open_writer(self.cfg.path, self.timeout if timeout is None else timeout, self.threads) as con:
                yield con
            return
        if self._lake is None:
            self._lake = warehouse_lake.connect(self.cfg, config={"threads": self.threads} if self.threads else None)
        try:
            yield self._lake
        except BaseException:
            # A failed statement may leave the connection unusable (or the catalog gone): start afresh next time.
            self.close()
            raise

    def close(self) -> None:
        if self._lake is not None:
            try:
                self._lake.close()
            finally:
                self._lake = None


@contextmanager
def open_for_reading(cfg: WarehouseConfig, timeout: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for one block (the watchdog, backups, benches)."""
    if not cfg.is_lake:
        with open_reader(cfg.path, timeout=timeout) as con:
            yield con
        return
    try:
        con = warehouse_lake.connect(cfg, read_only=True)
    except warehouse_lake.LakeUnavailable as exc:
        raise WarehouseMissing(str(exc)) from exc
    try:
        yield con
    finally:
        con.close()
