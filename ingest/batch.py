"""Kafka messages → a landing plan. Pure: no broker, no file.

`plan_batch` decodes every message, sends the invalid ones to dead letters,
keeps only the newest change per row (by `source_ts`, Kafka offset breaking
ties — the same rule the MERGE applies against the warehouse), and works out
the next offset of every partition the batch covers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple, Sequence

from ingest.config import TableSpec
from ingest.envelope import Change, Rejected, decode


class Message(NamedTuple):
    """What the worker keeps of a Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes | None
    reason: str

    @property
    def raw_sha256(self) -> str:
        return hashlib.sha256(self.raw or b"").hexdigest()


@dataclass
class BatchPlan:
    changes: dict[str, list[Change]] = field(default_factory=dict)  # table → newest change per row
    dead_letters: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # (topic, p) → (first, next)
    messages: int = 0
    superseded: int = 0  # older versions dropped inside the batch

    @property
    def tables(self) -> list[str]:
        return sorted(self.changes)


def _newer(a: Change, b: Change) -> bool:
    """True when `a` should win over `b` (same row)."""
    return (a.source_ts, a.offset) >= (b.source_ts, b.offset)


def plan_batch(messages: Sequence[Message], topics: Mapping[str, str], tables: Mapping[str, TableSpec]) -> BatchPlan:
    plan = BatchPlan(messages=len(messages))
    latest: dict[str, dict[tuple, Change]] = {}
    for m in messages:
        first_next = plan.offsets.get((m.topic, m.partition))
        if first_next is None:
            plan.offsets[(m.topic, m.partition)] = (m.offset, m.offset + 1)
        else:
            plan.offsets[(m.topic, m.partition)] = (min(first_next[0], m.offset), max(first_next[1], m.offset + 1))
        table = topics.get(m.topic)
        if table is None:  # the worker only subscribes to configured topics; defensive
            plan.dead_letters.append(DeadLetter(m.topic, m.partition, m.offset, m.key, m.value, f"topic {m.topic!r} belongs to no configured table"))
            continue
        try:
            change = decode(m.value, table, tables[table].primary_key, m.partition, m.offset)
        except Rejected as exc:
            plan.dead_letters.append(DeadLetter(m.topic, m.partition, m.offset, m.key, m.value, str(exc)))
            continue
        rows = latest.setdefault(table, {})
        current = rows.get(change.key)
        if current is None:
            rows[change.key] = change
        else:
            plan.superseded += 1
            if _newer(change, current):
                rows[change.key] = change
    plan.changes = {t: list(rows.values()) for t, rows in latest.items()}
    return plan
