"""`python -m ingest replay`: dead letters through today's rules, after a config or schema fix.

A message goes to `_meta.dead_letters` because it broke a rule *at the time*:
a value that did not fit a declared type later widened by a migration, a
column missing from the allow-list, a fault fixed in a newer worker. Replay
reads the dead letters that have not been replayed yet (optionally of one
table, or received since a time), decodes them again with the same decode
stage the worker uses, and

- lands those that pass now (newer-wins as ever: a replayed old version never
  overwrites a newer row, it is counted as stale), marking them replayed;
- leaves the rest where they are, noting when they were tried and why they
  still fail.

Exactly once, even if killed midway: each chunk's rows, the "replayed" marks
and a `_meta.batches` row (kind 'replay', no offsets) commit in ONE
transaction, and a mark is what excludes a dead letter from the next replay.
Kafka offsets are not touched. The worker may keep running: both take
DuckDB's file lock in turn, and replay keeps each transaction short.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ingest.batch import Message, raw_batch
from ingest.config import PipelineConfig
from ingest.decode import Decoder
from ingest.landing import declared_columns, ensure_meta, land_replay, user_columns
from ingest.warehouse_file import WarehouseMissing, open_writer

log = logging.getLogger("ingest.replay")

CHUNK = 5000  # dead letters per transaction: short enough for a running worker to get the file back soon


@dataclass
class ReplayResult:
    tried: int = 0
    landed: int = 0  # passed today's rules (applied or stale)
    stale: int = 0  # of those, older than what the warehouse holds
    still_failing: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # why they still fail → how many

    def summary(self) -> str:
        if not self.tried:
            return "no dead letters to replay"
        text = (f"replayed {self.tried:,} dead letter(s): {self.landed:,} pass today's rules and landed "
                f"({self.stale:,} of them older than what the warehouse holds), {self.still_failing:,} still fail")
        if self.reasons:
            top = sorted(self.reasons.items(), key=lambda kv: -kv[1])[:3]
            text += " — " + "; ".join(f"{n:,}× {reason[:160]}" for reason, n in top)
        return text


def select_dead_letters() -> str:
    return (
        'SELECT topic, "partition", "offset", key, raw FROM _meta.dead_letters '
        "WHERE replayed_at IS NULL AND list_contains($topics, topic) "
        "AND ($since IS NULL OR received_at >= $since) "
        'AND (topic, "partition", "offset") > ($after_topic, $after_partition, $after_offset) '
        # one per offset: a re-delivery with other bytes (a recreated topic) is the same message to replay
        'QUALIFY row_number() OVER (PARTITION BY topic, "partition", "offset" ORDER BY received_at DESC) = 1 '
        'ORDER BY topic, "partition", "offset" LIMIT $limit'
    )


def replay(cfg: PipelineConfig, table: str | None = None, since: datetime | None = None) -> ReplayResult:
    """Replay the dead letters of `table` (all tables: None) received since `since`; see the module doc."""
    topics = {t: name for t, name in cfg.topics().items() if table is None or name == table}
    if not cfg.warehouse.path.exists():
        raise WarehouseMissing(str(cfg.warehouse.path))
    result = ReplayResult()
    decoder = Decoder(cfg.tables, cfg.topics(), max_message_bytes=cfg.worker.max_message_bytes)
    after = ("", -1, -1)
    try:
        while True:
            with open_writer(cfg.warehouse.path, cfg.worker.lock_timeout_seconds) as con:
                ensure_meta(con)
                rows = con.execute(select_dead_letters(), {
                    "topics": list(topics), "since": since, "limit": CHUNK,
                    "after_topic": after[0], "after_partition": after[1], "after_offset": after[2],
                }).fetchall()
                if not rows:
                    break
                after = rows[-1][:3]
                decoder.know_columns(user_columns(con))
                decoder.know_declared(declared_columns(con))
                batch = decoder.decode_batch(raw_batch([Message(t, p, o, k, v) for t, p, o, k, v in rows]))
                landed = land_replay(con, batch, datetime.now().astimezone())
            _write_version(cfg, landed.batch_id)
            result.tried += len(rows)
            result.landed += landed.replayed
            result.stale += landed.skipped_stale
            result.still_failing += landed.dead_letters
            for reason, n in landed.reasons.items():
                result.reasons[reason] = result.reasons.get(reason, 0) + n
            log.info("replay chunk: %d tried, %d landed, %d still fail", len(rows), landed.replayed, landed.dead_letters)
    finally:
        decoder.close()
    return result


def _write_version(cfg: PipelineConfig, batch_id: int) -> None:
    """The app's cache key moves on, as after a worker batch."""
    path = cfg.warehouse.version_path
    tmp = path.with_name(path.name + ".replay.tmp")
    tmp.write_text(str(batch_id), encoding="utf-8")
    os.replace(tmp, path)


def run_replay(cfg: PipelineConfig, table: str | None, since: datetime | None) -> int:
    """`python -m ingest replay`: prints the summary; exit 0 (also when some still fail: they are kept)."""
    if table is not None and table not in cfg.tables:
        print(f"replay: --table {table!r} is not a configured table (known: {', '.join(sorted(cfg.tables))})",
              file=sys.stderr)
        return 2
    try:
        result = replay(cfg, table, since)
    except WarehouseMissing:
        print(f"replay: no warehouse at {cfg.warehouse.path} yet — nothing to replay", file=sys.stderr)
        return 0
    except duckdb.Error as exc:
        print(f"replay failed: {type(exc).__name__}: {str(exc).splitlines()[0]} — nothing of the last chunk was kept; "
              "run it again", file=sys.stderr)
        return 1
    print(result.summary())
    return 0
