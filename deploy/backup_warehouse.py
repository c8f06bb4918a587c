"""Back up the DuckDB warehouse while the pipeline runs: a consistent file copy, verified, rotated.

    /opt/datadesk/.venv/bin/python /opt/datadesk/deploy/backup_warehouse.py \\
        --config /etc/datadesk/pipeline.toml --to /var/backups/datadesk --keep 14

Why a plain copy is consistent: while this script holds a read-only
connection, DuckDB lets no writer open the file (docs/design.md, "DuckDB locks"), so
the worker waits (its batch stays in memory and is retried) and neither the
file nor its WAL changes during the copy. The copy is then opened on its own
and checked before older backups are deleted.

Restore: stop the worker (systemctl stop datadesk-worker), copy the backup
back to [warehouse] path (and its .wal, if the backup has one), start the
worker: it resumes from the Kafka offsets stored in the backup.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from ingest.config import ConfigError, load_config  # noqa: E402
from ingest.warehouse_file import WarehouseBusy, WarehouseMissing, open_reader  # noqa: E402

PREFIX = "warehouse-"


def backup(warehouse: Path, dest_dir: Path, keep: int, lock_timeout: float = 300.0) -> Path:
    """Copy, verify, rotate; returns the new backup's path. Raises on any failure (no rotation then)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = dest_dir / f"{PREFIX}{stamp}.duckdb"
    tmp = dest_dir / f".{target.name}.partial"
    wal = warehouse.with_name(warehouse.name + ".wal")
    started = time.monotonic()
    with open_reader(warehouse, timeout=lock_timeout) as con:
        batch = con.execute("SELECT coalesce(max(batch_id), 0) FROM _meta.batches").fetchone()[0]
        shutil.copyfile(warehouse, tmp)
        if wal.exists():
            shutil.copyfile(wal, tmp.with_name(tmp.name + ".wal"))
    held = time.monotonic() - started
    if tmp.with_name(tmp.name + ".wal").exists():
        tmp.with_name(tmp.name + ".wal").rename(target.with_name(target.name + ".wal"))
    tmp.rename(target)
    with duckdb.connect(str(target), read_only=True) as check:
        copied = check.execute("SELECT coalesce(max(batch_id), 0) FROM _meta.batches").fetchone()[0]
    if copied != batch:
        raise RuntimeError(f"{target}: holds batch {copied}, the warehouse had {batch} — backup kept, nothing rotated")
    old = sorted(p for p in dest_dir.glob(f"{PREFIX}*.duckdb"))[:-keep] if keep > 0 else []
    for p in old:
        p.unlink()
        p.with_name(p.name + ".wal").unlink(missing_ok=True)
    print(f"backup: {target} ({target.stat().st_size:,} bytes, batch {batch}; worker paused {held:.1f} s; "
          f"{len(old)} old backup(s) removed)")
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="pipeline.toml (default: env PIPELINE_CONFIG, else ./pipeline.toml)")
    p.add_argument("--to", required=True, type=Path, help="backup folder")
    p.add_argument("--keep", type=int, default=14, help="how many backups to keep (default 14)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, needs=("warehouse",))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        backup(cfg.warehouse.path, args.to, args.keep)
    except (WarehouseMissing, WarehouseBusy, OSError, RuntimeError, duckdb.Error) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
