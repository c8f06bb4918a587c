"""Keeping the exporter gentle on the production database.

The story behind it: the source once went down because of a single heavy
query. So besides reading only through the watermark index (ingest/source.py),
the exporter
- never reads faster than `[exporter] max_rows_per_second` (0 = no ceiling):
  after each chunk it waits until the rows sent so far fit the ceiling;
- puts a time limit on every statement of its session
  (`statement_timeout_seconds`: MariaDB `max_statement_time`, MySQL
  `MAX_EXECUTION_TIME`), so a read the server cannot serve quickly is
  stopped by the server itself instead of piling up;
- backs off when the source answers slowly or refuses: a read slower than
  `slow_read_seconds` (or one that failed) doubles a pause taken before each
  next read, up to `max_backoff_seconds`; quick answers halve it again. The
  change into and out of back-off is logged once each, not once per read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger("ingest.export")

FIRST_PAUSE_SECONDS = 0.5


@dataclass
class Governor:
    max_rows_per_second: float = 0.0
    slow_read_seconds: float = 2.0
    max_backoff_seconds: float = 30.0
    pause_seconds: float = 0.0  # the current back-off pause before each read
    _paced_from: float = field(default=0.0, repr=False)
    _paced_rows: int = field(default=0, repr=False)

    def begin(self) -> None:
        """A table's read starts: the ceiling counts rows from here (an idle gap earns no burst)."""
        self._paced_from = time.monotonic()
        self._paced_rows = 0

    def before_read(self, stop: threading.Event, tick=None) -> bool:
        """Wait out the back-off pause and the ceiling; False when told to stop meanwhile.

        `tick()` is called about every second of a long wait, so the exporter
        keeps reporting (a backing-off exporter is slow, not silent).
        """
        wait = self.pause_seconds
        if self.max_rows_per_second > 0 and self._paced_rows:
            due = self._paced_from + self._paced_rows / self.max_rows_per_second
            wait = max(wait, due - time.monotonic())
        end = time.monotonic() + wait
        while wait > 0:
            if stop.wait(min(wait, 1.0)):
                return False
            if tick is not None:
                tick()
            wait = end - time.monotonic()
        return True

    def after_read(self, rows: int, seconds: float) -> None:
        self._paced_rows += rows
        if seconds > self.slow_read_seconds:
            self._slower(f"one read took {seconds:.1f} s (limit {self.slow_read_seconds:g} s)")
        elif self.pause_seconds:
            self._faster()

    def after_failure(self, reason: str) -> None:
        self._slower(f"a read failed ({reason})")

    def _slower(self, why: str) -> None:
        before = self.pause_seconds
        self.pause_seconds = min(self.max_backoff_seconds, max(FIRST_PAUSE_SECONDS, before * 2))
        if not before:
            log.warning("the source answers slowly: %s; backing off — pausing %.1f s before each read, "
                        "longer while it stays slow (up to %g s)", why, self.pause_seconds, self.max_backoff_seconds)

    def _faster(self) -> None:
        self.pause_seconds = self.pause_seconds / 2 if self.pause_seconds > FIRST_PAUSE_SECONDS else 0.0
        if not self.pause_seconds:
            log.warning("the source answers quickly again; back-off ended")


def limit_statement_time(engine: Engine, seconds: float) -> None:
    """Every new connection of `engine` gets a per-statement time limit (MariaDB and MySQL; nothing elsewhere).

    Set on the session, not per statement, so no query text changes: the
    server aborts any of the exporter's statements that runs longer.
    """
    if seconds <= 0 or engine.dialect.name not in ("mysql", "mariadb"):
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT VERSION()")
            version = str(cursor.fetchone()[0])
            if "mariadb" in version.lower():
                cursor.execute("SET SESSION max_statement_time = %s", (float(seconds),))
            else:
                cursor.execute("SET SESSION MAX_EXECUTION_TIME = %s", (int(seconds * 1000),))
        finally:
            cursor.close()
