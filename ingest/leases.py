"""Several workers on one DuckLake: who lands which Kafka partition, by leases in the lake's own catalog.

Why leases and not a Kafka consumer group: the offsets that matter live in
the warehouse, with the rows (exactly once per partition), so ownership that
lives there too can be checked in the very transaction that lands a batch.
A group only tells a worker what it *should* read; a worker paused past its
session (a long GC, a frozen VM) still holds a batch it may try to commit.
Here it cannot: every landing transaction checks, for each partition of the
batch, that this worker still owns it and that the stored offset is the one
the batch starts from, and renews the worker's leases. A takeover deletes the
same lease rows, and DuckLake refuses the second of two commits that both
deleted from one table ("Transaction conflict … another transaction has
deleted from it"; on a SQLite catalog any two overlapping commits conflict),
so a batch and the takeover of its partition never both commit. A lease
therefore guards *assignment and liveness*; the in-transaction check guards
*exactly-once*. (And the embedded broker's group join takes ~20 s: measured,
docs/operations.md.)

The rules (`plan`, pure):

- live workers: those holding an unexpired lease, those whose heartbeat is
  younger than a lease and not "stopped", and oneself;
- fair share: ceil(partitions / live workers);
- a worker above its share releases the excess (owner NULL: free at once);
  below it, it claims free or expired partitions, lowest first.

A partition is claimed by deleting its row(s) and inserting one: always a
real delete (new partitions are first registered as free rows in a
transaction of their own), so two claims of one partition conflict instead
of both landing. Rows of one partition registered twice by two workers at
once are harmless: the claim replaces them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Sequence

import duckdb
import pyarrow as pa

Key = tuple[str, int]


class LeaseLost(RuntimeError):
    """A batch's partition is no longer this worker's (or its stored offset moved): the batch must not land."""


@dataclass(frozen=True)
class Lease:
    topic: str
    partition: int
    owner: str | None
    lease_until: datetime | None

    @property
    def key(self) -> Key:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class Plan:
    claim: tuple[Key, ...]
    release: tuple[Key, ...]
    share: int


def fair_share(partitions: int, live_workers: int) -> int:
    return math.ceil(partitions / max(1, live_workers))


def plan(me: str, leases: Sequence[Lease], known: Iterable[Key], live: Iterable[str], now: datetime) -> Plan:
    """What `me` claims and releases now, so that the live workers split the partitions evenly."""
    by_key: dict[Key, list[Lease]] = {}
    for lease in leases:
        by_key.setdefault(lease.key, []).append(lease)
    keys = set(known) | set(by_key)
    owners = {l.owner for l in leases if l.owner and l.lease_until is not None and l.lease_until > now}
    workers = owners | set(live) | {me}
    share = fair_share(len(keys), len(workers))
    mine = sorted(k for k, rows in by_key.items() if any(r.owner == me for r in rows))
    if len(mine) > share:
        return Plan((), tuple(mine[share:]), share)

    def free(key: Key) -> bool:
        return all(r.owner is None or r.lease_until is None or r.lease_until <= now for r in by_key.get(key, []))

    candidates = sorted(k for k in keys if k not in mine and free(k))
    return Plan(tuple(candidates[: share - len(mine)]), (), share)


# ─────────────────────────────────────────────────────── in the catalog ──

READ_LEASES = 'SELECT topic, "partition", owner, lease_until FROM _meta.leases'
LIVE_WORKERS = "SELECT DISTINCT worker FROM _meta.heartbeat WHERE beat_at > $since AND state <> 'stopped'"
MY_PARTITIONS = 'SELECT DISTINCT topic, "partition" FROM _meta.leases WHERE owner = $me'
RENEW = "UPDATE _meta.leases SET lease_until = $until WHERE owner = $me"
RELEASE_ALL = "UPDATE _meta.leases SET owner = NULL, lease_until = NULL WHERE owner = $me"
DELETE_ROWS = 'DELETE FROM _meta.leases l USING _lease_rows s WHERE l.topic = s.topic AND l."partition" = s."partition"'
INSERT_ROWS = "INSERT INTO _meta.leases BY NAME SELECT * FROM _lease_rows"


def _rows(con: duckdb.DuckDBPyConnection) -> list[Lease]:
    return [Lease(t, int(p), o, u) for t, p, o, u in con.execute(READ_LEASES).fetchall()]


def _replace(con: duckdb.DuckDBPyConnection, keys: Sequence[Key], owner: str | None, until: datetime | None,
             delete_first: bool = True) -> None:
    con.register("_lease_rows", pa.table({
        "topic": pa.array([t for t, _ in keys], pa.string()),
        "partition": pa.array([p for _, p in keys], pa.int32()),
        "owner": pa.array([owner] * len(keys), pa.string()),
        "lease_until": pa.array([until] * len(keys), pa.timestamp("us", tz="UTC")),
    }))
    try:
        if delete_first:
            con.execute(DELETE_ROWS)
        con.execute(INSERT_ROWS)
    finally:
        con.unregister("_lease_rows")


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], object]) -> object:
    con.execute("BEGIN TRANSACTION")
    try:
        out = work()
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    return out


@dataclass
class Leases:
    """One worker's side of the leases: `me` is its id ([worker] id / --worker-id)."""

    me: str
    lease_seconds: float

    def _until(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.lease_seconds)

    def register(self, con: duckdb.DuckDBPyConnection, available: Iterable[Key]) -> int:
        """Partitions the broker has but the catalog does not know yet become free rows (own transaction)."""
        known = {l.key for l in _rows(con)}
        new = sorted(set(available) - known)
        if new:
            _in_transaction(con, lambda: _replace(con, new, None, None, delete_first=False))
        return len(new)

    def round(self, con: duckdb.DuckDBPyConnection, available: Iterable[Key],
              also: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> tuple[Plan, set[Key]]:
        """Claim and release per `plan`, renew the rest, run `also(con)` (the heartbeat), all in one transaction.

        Returns the plan and the partitions this worker owns after it.
        """
        available = set(available)

        def work():
            now = datetime.now(timezone.utc)
            since = now - timedelta(seconds=self.lease_seconds)
            live = [w for (w,) in con.execute(LIVE_WORKERS, {"since": since}).fetchall()]
            decided = plan(self.me, _rows(con), available, live, now)
            if decided.release:
                _replace(con, decided.release, None, None)
            if decided.claim:
                _replace(con, decided.claim, self.me, self._until())
            con.execute(RENEW, {"until": self._until(), "me": self.me})
            if also is not None:
                also(con)
            return decided, self.owned(con)

        return _in_transaction(con, work)

    def owned(self, con: duckdb.DuckDBPyConnection) -> set[Key]:
        return {(t, int(p)) for t, p in con.execute(MY_PARTITIONS, {"me": self.me}).fetchall()}

    def check_and_renew(self, con: duckdb.DuckDBPyConnection, starts: Mapping[Key, int | None],
                        stored: Mapping[Key, int]) -> None:
        """Inside a batch's transaction: every partition of the batch is still ours and its stored offset is
        where the batch starts (`stored`: the catalog's offsets as this transaction sees them); then renew.

        Raises `LeaseLost` (the caller rolls back and drops the batch; the partition's owner re-reads it)."""
        mine = self.owned(con)
        lost = sorted(k for k in starts if k not in mine)
        if lost:
            raise LeaseLost(f"partition(s) {', '.join(f'{t}/{p}' for t, p in lost)} now belong to another worker")
        moved = sorted(k for k, start in starts.items() if stored.get(k) != start)
        if moved:
            t, p = moved[0]
            raise LeaseLost(f"partition {t}/{p} was landed elsewhere meanwhile (stored offset {stored.get(moved[0])}, "
                            f"this batch starts at {starts[moved[0]]})")
        self.renew(con)

    def renew(self, con: duckdb.DuckDBPyConnection) -> None:
        """Inside the caller's transaction: push the end of every lease this worker still owns."""
        con.execute(RENEW, {"until": self._until(), "me": self.me})

    def release_all(self, con: duckdb.DuckDBPyConnection) -> None:
        """Inside the caller's transaction (the last heartbeat of a clean stop): free this worker's partitions
        at once, so another takes them over without waiting for the leases to run out."""
        con.execute(RELEASE_ALL, {"me": self.me})
