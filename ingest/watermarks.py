"""Durable exporter watermarks: one small JSON file, replaced atomically.

Why a local file and not a compacted Kafka topic (docs/exporter.md has the
long form): the watermark may only move after the broker acknowledged a chunk,
so it is written by the one process that knows that, right then; a file makes
that one `os.replace`, readable and resettable by an operator with a text
editor, and independent of the broker — the demo broker forgets its topics on
restart, and `--reset-watermarks` is how the exporter is told so. Losing the
file costs a full re-export, never data: the worker's `source_ts` rule makes
re-sent rows harmless.

File shape::

    {"v": 1, "tables": {"payments": {"ts": "2026-11-24T10:00:00.123456+09:00",
                                     "pk": [42], "rows_sent": 1200, "saved_at": "..."}}}

`pk` holds the SOURCE primary key values (before any hashing): it is where
the keyset read resumes, and the file stays on the exporter host.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

VERSION = 1


@dataclass(frozen=True)
class Watermark:
    """Last exported position of one table: (watermark column value, primary key values)."""

    ts: str  # ISO-8601 with offset
    pk: tuple[Any, ...]
    rows_sent: int = 0

    def ts_datetime(self) -> datetime:
        return datetime.fromisoformat(self.ts)


class WatermarkStore:
    """Watermarks of every table, loaded once and saved after each acknowledged chunk."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._tables: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RuntimeError(
                    f"{self.path}: watermark file is unreadable ({exc}) — fix it, or start again with "
                    f"--reset-watermarks (a full re-export; duplicates are harmless)"
                ) from None
            self._tables = dict(raw.get("tables", {}))

    def get(self, table: str) -> Watermark | None:
        entry = self._tables.get(table)
        if not entry:
            return None
        return Watermark(ts=entry["ts"], pk=tuple(entry["pk"]), rows_sent=int(entry.get("rows_sent", 0)))

    def reset(self) -> None:
        self._tables = {}
        self._write()

    def save(self, table: str, mark: Watermark) -> None:
        """Record `mark` and make it durable before returning (write temp, fsync, rename)."""
        self._tables[table] = {
            "ts": mark.ts,
            "pk": list(mark.pk),
            "rows_sent": mark.rows_sent,
            "saved_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"v": VERSION, "tables": self._tables}, ensure_ascii=False, indent=1, default=str)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        # The rename itself is durable only once the directory entry is on disk.
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
