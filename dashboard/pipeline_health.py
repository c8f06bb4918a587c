"""What the Pipeline page shows: the worker's own bookkeeping (`_meta`) and the alert history.

Each function runs one read through `query` (`Warehouse.query`: read-only,
short-lived, cached by data version; `(sql, params list) -> DataFrame`) and
returns a frame or a small dataclass the page only lays out. Table names come
from the warehouse catalog (the allow-list), never from a user.

- `table_health`: per table, live rows, tombstones, last landed, freshness;
- `partition_lag`: `_meta.partitions` (position, high watermark, lag, stopped);
- `batch_history`: `_meta.batches` over time (rows, seconds, lag);
- `dead_letters`: reasons and raw payloads (a short preview for the screen,
  the full text for the download);
- `heartbeat`, `chain`, `exporter_problems`: the worker's last beat and the
  exporters' status, read and judged by `ingest/health.py` (the watchdog's code);
- `lake_workers`: on a lake, every worker with its partitions, lease and
  verdict (the watchdog's rule, per worker);
- `alert_history`: the watchdog's JSON-lines file, newest first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from ingest import health

QueryFn = Callable[[str, list], pd.DataFrame]
PREVIEW_CHARS = 120


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _aware(value: Any) -> datetime | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def meta_tables(query: QueryFn) -> set[str]:
    """The `_meta` tables that exist (an empty set before the worker's first batch)."""
    df = query("SELECT table_name FROM information_schema.tables WHERE table_schema = '_meta'", [])
    return set(df["table_name"])


def landed_tables(query: QueryFn) -> list[str]:
    """Tables the worker lands (main tables with the `_ingested_at` column), by name."""
    df = query(
        "SELECT DISTINCT table_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND column_name = '_ingested_at' ORDER BY table_name",
        [],
    )
    return list(df["table_name"])


def table_health(query: QueryFn, tables: Iterable[str], now: datetime) -> pd.DataFrame:
    """table, rows (live), tombstones, last_landed_at, last_change_at, freshness_seconds — one query."""
    tables = list(tables)
    columns = ["table", "rows", "tombstones", "last_landed_at", "last_change_at", "freshness_seconds"]
    if not tables:
        return pd.DataFrame(columns=columns)
    parts = [
        f"SELECT ? AS \"table\", count(*) FILTER (WHERE NOT _deleted) AS rows, count(*) FILTER (WHERE _deleted) AS tombstones, "
        f"max(_ingested_at) AS last_landed_at, max(_source_ts) AS last_change_at FROM main.{quote(t)}"
        for t in tables
    ]
    df = query(" UNION ALL ".join(parts) + ' ORDER BY "table"', tables)
    df["freshness_seconds"] = [
        (now - landed).total_seconds() if (landed := _aware(v)) is not None else None for v in df["last_landed_at"]
    ]
    return df[columns]


def partition_lag(query: QueryFn) -> pd.DataFrame:
    return query(
        'SELECT topic, "partition", next_offset, high_watermark, lag_messages, state, reason, updated_at '
        'FROM _meta.partitions ORDER BY state = \'ok\', lag_messages DESC NULLS LAST, topic, "partition"',
        [],
    )


def batch_history(query: QueryFn, limit: int = 500) -> pd.DataFrame:
    """The last `limit` batches, oldest first: committed_at, rows (upserts + deletes), messages, seconds, lag."""
    return query(
        "SELECT * FROM (SELECT batch_id, committed_at, messages, upserts + deletes AS rows, upserts, deletes, "
        "skipped_stale, dead_letters, seconds, lag_messages, array_to_string(tables, ', ') AS tables "
        "FROM _meta.batches ORDER BY batch_id DESC LIMIT ?) ORDER BY batch_id",
        [int(limit)],
    )


def dead_letter_counts(query: QueryFn) -> tuple[int, int]:
    """(remaining, replayed): dead letters still waiting, and those `python -m ingest replay` landed."""
    if not _has_replay_columns(query):
        return int(query("SELECT count(*) AS n FROM _meta.dead_letters", []).iat[0, 0]), 0
    df = query("SELECT count(*) FILTER (replayed_at IS NULL) AS remaining, count(replayed_at) AS replayed "
               "FROM _meta.dead_letters", [])
    return int(df.iat[0, 0]), int(df.iat[0, 1])


def _has_replay_columns(query: QueryFn) -> bool:
    """Warehouses from before replay existed lack the columns until a newer worker starts on them."""
    df = query("SELECT count(*) FROM information_schema.columns WHERE table_schema = '_meta' "
               "AND table_name = 'dead_letters' AND column_name = 'replayed_at'", [])
    return bool(df.iat[0, 0])


def dead_letters(query: QueryFn, limit: int = 1000) -> pd.DataFrame:
    """Remaining ones first, newest first: where it came from, why, and the payload as text
    (raw_text full, raw_preview cut); `replayed_at` once a replay landed it, `last_replay_reason`
    when a replay tried it and it still fails."""
    replay = ("replayed_at, last_replay_reason" if _has_replay_columns(query)
              else "NULL::TIMESTAMPTZ AS replayed_at, NULL::VARCHAR AS last_replay_reason")
    df = query(
        'SELECT received_at, topic, "partition", "offset", batch_id, reason, key, raw, octet_length(raw) AS raw_bytes, '
        f"raw_sha256, {replay} "
        "FROM _meta.dead_letters ORDER BY replayed_at IS NOT NULL, received_at DESC, topic, \"partition\", \"offset\" "
        "LIMIT ?",
        [int(limit)],
    )
    df["key"] = [_text(v) for v in df["key"]]
    df["raw_text"] = [_text(v) for v in df["raw"]]
    df["raw_preview"] = [_cut(v, PREVIEW_CHARS) for v in df["raw_text"]]
    return df.drop(columns=["raw"])


def _text(value: Any) -> str:
    """Bytes as UTF-8 text; anything undecodable shown as \\x.. escapes (never lost, never a crash)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    return str(value)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _fetch(query: QueryFn):
    """`health.read`'s `fetch` on top of the app's cached reader: the same statements as the watchdog's."""
    return lambda sql: list(query(sql, []).itertuples(index=False, name=None))


def chain(query: QueryFn, now: datetime) -> health.Observation:
    """The worker's heartbeat, partitions, dead letters and the exporters' status, as the watchdog reads them."""
    return health.read(_fetch(query), now)


@dataclass(frozen=True)
class Heartbeat:
    state: str  # running | idle | broker_unreachable | degraded | stopped | missing
    beat_at: datetime | None
    age_seconds: float | None
    started_at: datetime | None = None
    pid: int | None = None
    host: str | None = None
    last_batch_id: int | None = None
    lag_messages: int | None = None
    message: str | None = None
    worker_id: str | None = None  # on a lake: the worker judged (the oldest beat among those holding partitions)

    def verdict(self, alert_after_seconds: float) -> str:
        """ok | late | down | missing — `health.worker_verdict`, the watchdog's rule."""
        if self.beat_at is None:
            return health.WORKER_MISSING
        now = self.beat_at + timedelta(seconds=self.age_seconds or 0)
        obs = health.Observation(now, heartbeat_at=self.beat_at, worker_state=self.state)
        return health.worker_verdict(obs, timedelta(seconds=alert_after_seconds))


def heartbeat(query: QueryFn, now: datetime) -> Heartbeat:
    obs = chain(query, now)
    if obs.heartbeat_at is None:
        return Heartbeat("missing", None, None)
    return Heartbeat(
        state=obs.worker_state or "missing", beat_at=obs.heartbeat_at,
        age_seconds=obs.heartbeat_age.total_seconds(), started_at=obs.worker_started_at, pid=obs.worker_pid,
        host=obs.worker_host, last_batch_id=obs.last_batch_id, lag_messages=obs.heartbeat_lag,
        message=obs.worker_message, worker_id=obs.worker_id,
    )


def exporter_problems(query: QueryFn, now: datetime, alert_after_seconds: float) -> tuple[health.Observation, dict]:
    """The chain as read now, and the exporter-side problems the watchdog would name (None: cannot judge now)."""
    obs = chain(query, now)
    return obs, health.exporter_problems(obs, timedelta(seconds=alert_after_seconds))


def lake_workers(query: QueryFn, now: datetime, alert_after_seconds: float) -> list[tuple[health.LakeWorker, str]]:
    """Each worker of a lake with its verdict (`health.lake_worker_verdict`); empty on a single file."""
    after = timedelta(seconds=alert_after_seconds)
    return [(w, health.lake_worker_verdict(w, now, after)) for w in health.read_workers(_fetch(query))]


ALERT_COLUMNS = ["at", "kind", "problem", "subject", "body", "channel", "delivered"]


def alert_history(path: Path | str | None, limit: int = 200) -> pd.DataFrame:
    """The watchdog's alerts and recoveries, newest first. A missing file is an empty history; torn lines are skipped."""
    records: list[dict[str, Any]] = []
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (FileNotFoundError, IsADirectoryError):
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the watchdog was stopped mid-line
            if isinstance(record, dict):
                records.append(record)
    df = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=ALERT_COLUMNS)
    for col in ALERT_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df["at"] = pd.to_datetime(df["at"], utc=True, errors="coerce", format="ISO8601")
    return df.sort_values("at", ascending=False, na_position="last").head(limit)[ALERT_COLUMNS].reset_index(drop=True)


# ── lake mode ([warehouse] catalog): files per table and the last maintenance ──

def lake_files(query) -> pd.DataFrame:
    """table, files: the Parquet files each table's current snapshot reads (maintenance brings this down).

    The data tables first, then the worker's bookkeeping by its schema's name (`_meta.leases`): its rows change
    with every batch, so its files pile up as well."""
    from ingest.warehouse_lake import LAKE

    return query(
        "SELECT CASE WHEN s.schema_name = 'main' THEN t.table_name ELSE s.schema_name || '.' || t.table_name END "
        f"AS \"table\", count(*) AS files FROM __ducklake_metadata_{LAKE}.ducklake_data_file f "
        f"JOIN __ducklake_metadata_{LAKE}.ducklake_table t USING (table_id) "
        f"JOIN __ducklake_metadata_{LAKE}.ducklake_schema s USING (schema_id) "
        "WHERE f.end_snapshot IS NULL AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL "
        "AND t.table_name NOT LIKE '\\_%' ESCAPE '\\' "
        "GROUP BY ALL ORDER BY bool_or(s.schema_name <> 'main'), 1"
    )


def last_maintenance(query) -> pd.DataFrame:
    """The newest `python -m ingest maintain` run (empty before the first)."""
    return query("SELECT started_at, seconds, files_before, files_after, snapshots_expired, files_deleted "
                 "FROM _meta.maintenance ORDER BY started_at DESC LIMIT 1")
