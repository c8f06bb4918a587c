"""Kafka → batches → decode → land: the ingest worker's loop.

Three threads, so that fetching, decoding and landing overlap:

- the *fetcher* owns the KafkaConsumer (kafka-python is not thread-safe): it
  assigns every partition of the configured topics itself (a consumer-group
  join takes ~20 s on the embedded broker, and the offsets that matter live
  in DuckDB anyway) — on a lake shared by several workers only the partitions
  this worker holds leases for (ingest/leases.py: claimed, renewed and checked
  in the landing transactions, so a partition is landed by one worker at a
  time) — seeks to the stored offsets, polls, and hands record
  chunks over a bounded queue; it also watches the broker (one log line per
  state change) and stops a partition whose stored offset the broker no
  longer has;
- the *main thread* cuts batches (max rows / max seconds) and lands each,
  in order, in one DuckDB transaction with its offsets (`landing.land_batch`),
  closing the file between batches so the app can read;
- the *decode* thread decodes the batch after the one being landed
  (`decode.Decoder`: checks, dead letters, dedupe, types — in its own
  in-memory DuckDB, off the GIL and off the warehouse's lock).

Whatever kills the process, the restart seeks to the offsets committed with
the rows, so nothing is landed twice or lost: a batch that was decoded but not
landed is simply fetched again. Kafka's own committed offsets are written
after each batch too, but only as a courtesy to lag tools.

No message stops the worker. Bad messages are dead letters by the checks;
and should decoding or landing a batch still raise (a case no check
foresaw), the batch is narrowed down (`_land_narrowed`): its halves are
decoded and landed one after the other, down to single messages, so every
good message lands in order and a message that fails alone becomes a dead
letter carrying the error. Only faults of the environment (disk full, the
warehouse unreadable, out of memory) stop the worker, with one line saying
what to fix; the restart resumes from the stored offsets.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import random
import re
import signal
import socket
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError, OffsetOutOfRangeError
from kafka.structs import OffsetAndMetadata

from ingest.batch import RawBatch, halves, raw_batch
from ingest.config import PipelineConfig
from ingest.control import control_topic
from ingest.failpoints import Failpoints
from ingest.decode import DecodedTopic
from ingest.landing import (
    Heartbeat,
    PartitionState,
    declared_columns,
    ensure_meta,
    forget_offsets,
    heartbeat_in_transaction,
    land_batch,
    stored_offsets,
    user_columns,
    write_heartbeat,
)
from ingest.decode import DecodedBatch, Decoder
from ingest.leases import Leases, LeaseLost
from ingest import warehouse_lake, warehouse_target
from ingest.warehouse_file import WarehouseBusy

log = logging.getLogger("ingest.worker")

WORKER_NAME = "worker"
WORKER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
POLL_RECORDS = 5000
DISCOVERY_SECONDS = 5.0
PROBE_SECONDS = 5.0
READER_GAP_SECONDS = 0.03
CREATION_RACE_ATTEMPTS = 5  # opening a lake that another worker is creating at the same moment
LAKE_RETRIES = 50  # commits that met another commit to the lake, retried before it counts as a failure
DECODE_THREADS = 1
# One DuckDB thread for landing too: the fetcher and the decoding keep the other core busy, and two landing
# threads only fought them (bench/ingest.py, alternating runs: 0.42 / 0.45 of raw with two, 0.47 / 0.49 with one).
LANDING_THREADS = 1
GIL_SWITCH_SECONDS = 0.001
QUIET_CUT_SECONDS = 0.3  # --until-idle: a batch is cut once nothing has arrived for this long
BUSY_BATCH_MESSAGES = 1000  # a batch this large gets its own log line; smaller ones a summary a minute
QUIET_SUMMARY_SECONDS = 60.0


class WorkerAlreadyRunning(RuntimeError):
    pass


# ───────────────────────────────────────────────────────── single worker ──


class WorkerLock:
    """An OS lock held for the worker's whole life.

    DuckDB's own lock is released between batches (so the app can read), so it
    cannot stop a second worker; this lock can. The kernel drops it when the
    process dies, even by SIGKILL, so a crash never leaves a stale lock.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WorkerAlreadyRunning(
                f"another worker (pid {holder}) is already landing into this warehouse "
                f"(lock {self.path}) — stop it first, or point this one at another [warehouse] path"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None


# ──────────────────────────────────────────────────────────────── fetcher ──


@dataclass
class Stopped:
    reason: str


class Fetcher(threading.Thread):
    """Owns the consumer; puts lists of records on `out`."""

    def __init__(self, cfg: PipelineConfig, start: dict[tuple[str, int], int], from_beginning: bool, stop: threading.Event,
                 leased: bool = False):
        super().__init__(name="fetcher", daemon=True)
        # leased (several workers on a lake): read only the partitions the main thread hands over (`assign`),
        # each from the offset stored with its rows; otherwise every partition of the topics.
        self.leased = leased
        self.available: frozenset[tuple[str, int]] = frozenset()  # every partition the broker has, as last seen
        self.generation = 0  # chunks carry it: those of an assignment the main thread has dropped are skipped
        self._assignments: queue.Queue[tuple[int, dict[tuple[str, int], int | None]]] = queue.Queue()
        self.cfg = cfg
        self.topics = sorted([*cfg.topics(), control_topic(cfg.kafka)])
        self.start_offsets = dict(start)
        self.from_beginning = from_beginning
        self.stop_event = stop
        max_chunks = max(2, 2 * cfg.worker.max_batch_rows // POLL_RECORDS + 1)
        self.out: queue.Queue[list] = queue.Queue(maxsize=max_chunks)  # bounded: backpressure, bounded memory
        self.commits: queue.Queue[dict[tuple[str, int], int]] = queue.Queue()
        self.highwater: dict[tuple[str, int], int] = {}
        self.stopped: dict[tuple[str, int], Stopped] = {}
        self.assigned: set[tuple[str, int]] = set()
        self.positions: dict[tuple[str, int], int] = {}  # next offset to hand over, where known
        self.broker_state = "connecting"
        self.error: BaseException | None = None
        self._last_response = time.monotonic()
        self._commit_warned = False

    # -- thread body
    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by the main thread
            self.error = exc
            log.error("fetcher stopped: %s: %s", type(exc).__name__, exc)

    def _run(self) -> None:
        consumer = self._connect()
        if consumer is None:
            return  # stopped before the broker ever answered
        self._set_broker_state("ok")
        self._serve(consumer)

    def _connect(self) -> KafkaConsumer | None:
        """A consumer, once the broker answers; a worker started during an outage waits it out."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                return self._new_consumer()
            except KafkaError as exc:
                self._set_broker_state("unreachable", f"{type(exc).__name__}: {exc}")
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)
        return None

    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.cfg.kafka.bootstrap_servers.split(","),
            client_id=f"{self.cfg.kafka.client_id}-worker",
            group_id=self.cfg.kafka.consumer_group,  # used only for the advisory offset commits
            enable_auto_commit=False,
            auto_offset_reset="none",  # a missing offset must surface, never be skipped silently
            max_poll_records=POLL_RECORDS,
            fetch_max_wait_ms=200,
            reconnect_backoff_ms=200,
            reconnect_backoff_max_ms=5000,
            request_timeout_ms=15000,
        )

    def _serve(self, consumer: KafkaConsumer) -> None:
        try:
            next_discovery = 0.0
            next_probe = time.monotonic() + PROBE_SECONDS
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= next_discovery:
                    self._discover(consumer)
                    next_discovery = now + DISCOVERY_SECONDS
                self._send_commits(consumer)
                self._apply_assignment(consumer)
                if not self.assigned:
                    time.sleep(0.2)
                    continue
                try:
                    records = consumer.poll(timeout_ms=200, max_records=POLL_RECORDS)
                except OffsetOutOfRangeError as exc:
                    positions = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                    for tp, offset in positions.items():
                        self._stop_partition(consumer, (tp.topic, tp.partition),
                                             f"offset {offset} is no longer on the broker (retention passed it or the topic was recreated)")
                    continue
                except KafkaError as exc:
                    self._set_broker_state("unreachable", f"{type(exc).__name__}: {exc}")
                    time.sleep(1.0)
                    continue
                if records:
                    self._last_response = time.monotonic()
                    self._set_broker_state("ok")
                    chunk: list = []  # one poll, one hand-over: the queue's bound is then ~POLL_RECORDS each
                    for tp, recs in records.items():
                        key = (tp.topic, tp.partition)
                        if key in self.stopped:
                            continue
                        self.positions[key] = recs[-1].offset + 1
                        chunk += recs
                    if chunk:
                        self._hand_over(chunk)
                self._track_highwater(consumer)
                if time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + PROBE_SECONDS
                    if time.monotonic() - self._last_response > PROBE_SECONDS:
                        self._probe(consumer)
        finally:
            self._send_commits(consumer)
            consumer.close(autocommit=False)

    def _hand_over(self, recs: list) -> None:
        while not self.stop_event.is_set():
            try:
                self.out.put((self.generation, recs), timeout=0.2)
                return
            except queue.Full:
                continue

    # -- partitions
    def _discover(self, consumer: KafkaConsumer) -> None:
        new: list[TopicPartition] = []
        seen: set[tuple[str, int]] = set()
        for topic in self.topics:
            try:
                parts = consumer.partitions_for_topic(topic) or set()
            except KafkaError as exc:
                self._set_broker_state("unreachable", f"{type(exc).__name__}: {exc}")
                return
            for p in sorted(parts):
                seen.add((topic, p))
                if (topic, p) not in self.assigned:
                    new.append(TopicPartition(topic, p))
        self.available = frozenset(seen)
        if not new or self.leased:
            return
        all_tps = [TopicPartition(t, p) for t, p in sorted(self.assigned)] + new
        consumer.assign(all_tps)
        for tp in new:
            key = (tp.topic, tp.partition)
            self.assigned.add(key)
            if not self.from_beginning and key in self.start_offsets:
                consumer.seek(tp, self.start_offsets[key])
                self.positions[key] = self.start_offsets[key]
            else:
                consumer.seek_to_beginning(tp)
        log.info("reading %d partition(s) of %d topic(s)", len(new), len({tp.topic for tp in new}))
        self._check_retention(consumer, [tp for tp in new if (tp.topic, tp.partition) in self.start_offsets and not self.from_beginning])

    def assign(self, generation: int, offsets: dict[tuple[str, int], int | None]) -> None:
        """From the main thread: read exactly these partitions from now on, each from its offset (None: the start)."""
        self._assignments.put((generation, dict(offsets)))

    def _apply_assignment(self, consumer: KafkaConsumer) -> None:
        latest = None
        while True:
            try:
                latest = self._assignments.get_nowait()
            except queue.Empty:
                break
        if latest is None:
            return
        generation, offsets = latest
        tps = [TopicPartition(*k) for k in sorted(offsets)]
        if tps:
            consumer.assign(tps)
        else:
            consumer.unsubscribe()
        self.stopped = {k: v for k, v in self.stopped.items() if k in offsets}
        self.highwater = {k: v for k, v in self.highwater.items() if k in offsets}
        self.positions = {}
        for tp in tps:
            key = (tp.topic, tp.partition)
            if offsets[key] is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offsets[key])
                self.positions[key] = self.start_offsets[key] = offsets[key]
            if key in self.stopped:
                consumer.pause(tp)
        self.assigned = set(offsets)  # a new set: the main thread reads it
        self.generation = generation
        log.info("reading %d partition(s) this worker owns: %s", len(tps),
                 ", ".join(f"{t}/{p}" for t, p in sorted(offsets)) or "none")
        self._check_retention(consumer, [tp for tp in tps if offsets[(tp.topic, tp.partition)] is not None])

    def _check_retention(self, consumer: KafkaConsumer, tps: list[TopicPartition]) -> None:
        if not tps:
            return
        try:
            earliest = consumer.beginning_offsets(tps, timeout_ms=5000)
        except KafkaError:
            return  # checked again through OffsetOutOfRange on fetch
        for tp, first in earliest.items():
            stored = self.start_offsets[(tp.topic, tp.partition)]
            if first is not None and stored < first:
                self._stop_partition(
                    consumer, (tp.topic, tp.partition),
                    f"stored offset {stored} is below the log start {first}: messages {stored}…{first - 1} "
                    "expired before they were landed",
                )

    def _track_highwater(self, consumer: KafkaConsumer) -> None:
        for key in self.assigned:
            hw = consumer.highwater(TopicPartition(*key))
            if hw is None:
                continue
            self.highwater[key] = hw
            position = self.positions.get(key)
            if key not in self.stopped and position is not None and position > hw:
                self._stop_partition(
                    consumer, key,
                    f"stored offset {position} is beyond the end of the log ({hw}): the topic was recreated or truncated",
                )

    def _stop_partition(self, consumer: KafkaConsumer, key: tuple[str, int], reason: str) -> None:
        if key in self.stopped:
            return
        self.stopped[key] = Stopped(reason)
        consumer.pause(TopicPartition(*key))
        log.error(
            "partition %s/%d STOPPED: %s. A re-export is needed: re-export the table "
            "(python -m ingest export --reset-watermarks), then restart the worker with --transport-reset. "
            "Other partitions go on.",
            key[0], key[1], reason,
        )

    # -- broker health
    def _probe(self, consumer: KafkaConsumer) -> None:
        """A round trip to the broker; only when fetches have been quiet for a while."""
        tps = [TopicPartition(*k) for k in sorted(self.assigned)][:1]
        try:
            consumer.beginning_offsets(tps, timeout_ms=3000)
        except (KafkaTimeoutError, KafkaError) as exc:
            self._set_broker_state("unreachable", f"{type(exc).__name__}")
            return
        self._last_response = time.monotonic()
        self._set_broker_state("ok")

    def _set_broker_state(self, state: str, detail: str = "") -> None:
        if state == self.broker_state:
            return
        previous, self.broker_state = self.broker_state, state
        if state == "unreachable":
            log.warning("broker %s unreachable (%s); retrying with backoff — rows are safe, landing resumes by itself",
                        self.cfg.kafka.bootstrap_servers, detail or "no answer")
        elif previous == "unreachable":
            log.info("broker %s reachable again; resuming", self.cfg.kafka.bootstrap_servers)

    # -- advisory commits
    def request_commit(self, offsets: dict[tuple[str, int], int]) -> None:
        self.commits.put(offsets)

    def _send_commits(self, consumer: KafkaConsumer) -> None:
        merged: dict[tuple[str, int], int] = {}
        while True:
            try:
                merged.update(self.commits.get_nowait())
            except queue.Empty:
                break
        if not merged:
            return
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in merged.items()}
        try:
            consumer.commit_async(offsets, callback=self._commit_done)
        except KafkaError as exc:
            self._commit_done(offsets, exc)

    def _commit_done(self, _offsets, response) -> None:
        if isinstance(response, BaseException) and not self._commit_warned:
            self._commit_warned = True  # advisory only: DuckDB holds the offsets that matter
            log.warning("advisory Kafka offset commit failed (%s); lag tools may show stale offsets", response)


# ─────────────────────────────────────────────────────────── main thread ──


class Worker:
    def __init__(self, cfg: PipelineConfig, until_idle: bool, transport_reset: bool, from_beginning: bool,
                 worker_id: str | None = None):
        self.cfg = cfg
        # Several workers may share a lake: each has an id, its own lock and heartbeat row, and leases for the
        # partitions it lands (ingest/leases.py). The single file keeps one worker, named "worker".
        self.worker_id = worker_id or cfg.worker.id or socket.gethostname()
        self.leases = Leases(self.worker_id, cfg.worker.lease_seconds) if cfg.warehouse.is_lake else None
        self.generation = 0  # of the fetcher's assignment; bumped whenever the owned partitions are re-read
        self._owned: set[tuple[str, int]] = set()
        self.lake_conflicts = 0  # landing commits that met another commit and were retried (bench/workers.py reads it)
        self.batches_dropped = 0  # batches refused because their partitions had moved to another worker
        self.until_idle = until_idle
        self.transport_reset = transport_reset
        self.from_beginning = from_beginning
        self.topics = cfg.topics()
        self.control_topic = control_topic(cfg.kafka)
        self.read_topics = [*self.topics, self.control_topic]  # offsets are stored for the control topic too
        self.stop = threading.Event()
        self.failpoints = Failpoints(cfg.failpoint)
        self.started_at = datetime.now().astimezone()
        self.committed: dict[tuple[str, int], int] = {}
        self.fetcher: Fetcher | None = None
        # One DuckDB thread for decoding: the fetcher and the landing have the other core
        # (measured: two threads here oversubscribed two cores and slowed the whole worker).
        self.decoder = Decoder(cfg.tables, self.topics, threads=DECODE_THREADS,
                               max_message_bytes=cfg.worker.max_message_bytes, control_topic=self.control_topic)
        self._decoding: ThreadPoolExecutor | None = None
        self._quiet = dict.fromkeys(("batches", "last", "messages", "upserts", "deletes", "stale"), 0)
        self._quiet_since = 0.0
        self._logged = False  # the first batch is always logged
        self._host = socket.gethostname()
        self.writer = warehouse_target.Writer(cfg.warehouse, cfg.worker.lock_timeout_seconds, threads=LANDING_THREADS)

    # -- lifecycle
    def run(self) -> int:
        self._install_signals()  # first: a SIGTERM while starting is a clean stop, not a kill
        lock = WorkerLock(self._lock_path())
        lock.acquire()
        # The fetcher is pure Python and holds the GIL most of the time; the
        # threads that drive DuckDB need it only briefly between statements,
        # and waited up to the default 5 ms for it each time (measured: ~10%
        # more throughput at 1 ms).
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        try:
            self._open_warehouse()
            self.fetcher = Fetcher(self.cfg, self.committed, self.from_beginning, self.stop, leased=self.leases is not None)
            self.fetcher.start()
            if self.leases is not None:
                log.info("worker %s: partitions shared with the other workers of this lake by leases of %g s",
                         self.worker_id, self.cfg.worker.lease_seconds)
            log.info("worker started: %d topic(s) → %s", len(self.topics), warehouse_target.describe(self.cfg.warehouse))
            self._loop()
            return 0
        finally:
            self.stop.set()
            if self.fetcher is not None:
                self.fetcher.join(timeout=15)
            problem = self._state_message()
            self._beat("stopped", "the worker was stopped" + (f"; before that: {problem}" if problem else ""), timeout=5,
                       release=True)
            self.decoder.close()
            self.writer.close()
            lock.release()
            self._flush_quiet("?")
            if self.cfg.warehouse.is_lake:
                log.info("worker %s: %d landing commit(s) met another commit and were retried; %d batch(es) dropped "
                         "for partitions that moved", self.worker_id, self.lake_conflicts, self.batches_dropped)
            log.info("worker stopped")

    def _lock_path(self) -> Path:
        """One worker per file; on a lake one per worker id (two processes with the same id still refuse)."""
        path = self.cfg.warehouse.worker_lock_path
        if self.leases is None:
            return path
        return path.with_name(f"{path.name.removesuffix('.lock')}-{self.worker_id}.lock")

    def _install_signals(self) -> None:
        def on_signal(signum, _frame):
            if not self.stop.is_set():
                log.info("%s received: finishing the current batch, then exiting", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _open_warehouse(self) -> None:
        # A lake's catalog may be busy with another commit (maintenance) while the worker starts.
        for attempt in range(CREATION_RACE_ATTEMPTS):
            try:
                warehouse_lake.retry_transient(self._open_warehouse_once, attempts=LAKE_RETRIES, max_pause=2.0,
                                               before_retry=self.writer.close)
                return
            except duckdb.Error as exc:
                # Two workers starting at once on a new lake both create `_meta`: the loser's commit fails in
                # ways DuckLake does not call a conflict ("Table entry … does not have any columns"). Once the
                # winner committed, opening again finds everything there.
                if not self.cfg.warehouse.is_lake or attempt == CREATION_RACE_ATTEMPTS - 1:
                    raise
                log.info("opening the lake met another worker creating it (%s); again", _one_line(exc))
                self.writer.close()
                time.sleep(0.5 * (attempt + 1))

    def _open_warehouse_once(self) -> None:
        if warehouse_target.create(self.cfg.warehouse, ensure_meta):
            log.info("created the warehouse %s", warehouse_target.describe(self.cfg.warehouse))
        with self.writer.open() as con:
            ensure_meta(con)
            if self.transport_reset:
                n = forget_offsets(con, self.read_topics)
                log.info("transport reset: forgot %d stored offset(s); reading every topic from its start "
                         "(re-sent rows are harmless: older versions never overwrite newer ones)", n)
            self.committed = stored_offsets(con, self.read_topics)
            self.decoder.know_columns(user_columns(con))
            self.decoder.know_declared(declared_columns(con))
            if not self.cfg.warehouse.is_lake:  # on a lake CHECKPOINT is the whole maintenance
                con.execute("CHECKPOINT")

    def _loop(self) -> None:
        cfg = self.cfg.worker
        assert self.fetcher is not None
        inbox: list = []  # records taken from the fetcher but not yet in a batch
        pending: list = []
        inflight: Future | None = None  # the batch being decoded, landed next
        batch_started: float | None = None
        batch_started_at: datetime | None = None
        last_message = time.monotonic()
        last_beat = 0.0
        next_round = 0.0  # lake with leases: when to claim, release and renew next
        seen_partitions = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as decoding:
            self._decoding = decoding
            while True:
                if self.fetcher.error is not None:
                    raise RuntimeError(f"Kafka fetcher failed: {self.fetcher.error}") from self.fetcher.error
                now = time.monotonic()
                if self.leases is not None and not self.stop.is_set() and (
                        now >= next_round or len(self.fetcher.available) != seen_partitions):
                    seen_partitions = len(self.fetcher.available)
                    next_round = now + max(0.5, cfg.lease_seconds / 3)
                    if self._lease_round(force=False):
                        # The owned partitions changed: what was read for the old set is dropped and read
                        # again from the stored offsets (at most a batch or two, and only on a change).
                        inbox, pending, batch_started = [], [], None
                        if inflight is not None:
                            inflight.result()
                            inflight = None
                got = False
                if not inbox and not self.stop.is_set():  # stopping: finish what was taken, take nothing new
                    try:
                        generation, chunk = self.fetcher.out.get(timeout=0.05)
                        if generation == self.generation:
                            inbox = list(chunk)
                            got = True
                    except queue.Empty:
                        pass
                now = time.monotonic()
                if inbox:
                    if batch_started is None:
                        batch_started, batch_started_at = now, datetime.now().astimezone()
                    room = cfg.max_batch_rows - len(pending)  # batches never exceed max_batch_rows
                    pending.extend(inbox[:room])
                    inbox = inbox[room:]
                    last_message = now
                due = batch_started is not None and (
                    len(pending) >= cfg.max_batch_rows
                    or now - batch_started >= cfg.max_batch_seconds
                    or self.stop.is_set()
                    or (self.until_idle and not got and self.fetcher.out.empty() and now - last_message >= QUIET_CUT_SECONDS)
                )
                try:
                    if pending and due:
                        # Read this batch while the previous one lands: one batch ahead, in order.
                        following = decoding.submit(self._read_batch, pending, batch_started_at)
                        pending, batch_started = [], None
                        if inflight is not None:
                            landing, inflight = inflight, following
                            self._land_decoded(landing.result())
                        else:
                            inflight = following
                        continue
                    if inflight is not None and (inflight.done() or self.stop.is_set()):
                        landing, inflight = inflight, None
                        self._land_decoded(landing.result())
                        last_beat = time.monotonic()
                        continue
                except LeaseLost as lost:
                    # Another worker took (some of) this batch's partitions over: nothing of it committed.
                    # Drop everything read so far and start again from what the lake holds now.
                    self.batches_dropped += 1
                    log.warning("worker %s: batch dropped, nothing of it committed: %s — re-reading its partitions "
                                "from the stored offsets", self.worker_id, lost)
                    inbox, pending, batch_started = [], [], None
                    if inflight is not None:
                        inflight.result()
                        inflight = None
                    if self.stop.is_set():
                        return
                    self._lease_round(force=True)
                    next_round = time.monotonic() + max(0.5, cfg.lease_seconds / 3)
                    continue
                if self.stop.is_set() and not pending:
                    return
                idle = not pending and inflight is None
                if idle and now - last_beat >= cfg.heartbeat_seconds:
                    self._beat(self._state(), self._state_message(), timeout=2)
                    last_beat = time.monotonic()
                if (
                    self.until_idle
                    and idle
                    and not inbox
                    and self.fetcher.out.empty()
                    and time.monotonic() - last_message >= cfg.idle_exit_seconds
                    and self.fetcher.broker_state != "unreachable"
                ):
                    log.info("idle for %.0f s: exiting (--until-idle)", cfg.idle_exit_seconds)
                    return

    def _lease_round(self, force: bool) -> bool:
        """Claim, release and renew leases (ingest/leases.py); on a change (or `force`), hand the fetcher the
        owned partitions with their stored offsets. Returns whether the fetcher was given a new assignment."""
        assert self.leases is not None and self.fetcher is not None
        leases = self.leases
        available = set(self.fetcher.available)

        def once():
            with self.writer.open() as con:
                leases.register(con, available)
                decided, owned = leases.round(con, available, also=lambda c: heartbeat_in_transaction(
                    c, self._heartbeat(self._state(), self._state_message())))
                stored = stored_offsets(con, self.read_topics)
                self._refresh_knowledge(con)  # the partitions may come with schemas another worker landed
                return decided, owned, stored

        try:
            decided, owned, stored = warehouse_lake.retry_transient(once, attempts=LAKE_RETRIES, max_pause=2.0)
        except duckdb.Error as exc:
            log.warning("lease round failed (%s); trying again shortly — nothing lands on partitions not owned",
                        _one_line(exc))
            return False
        if not force and owned == self._owned:
            return False
        if decided.claim or decided.release:
            log.info("worker %s: claimed %s, released %s; it owns %d of %d partition(s) (fair share %d)",
                     self.worker_id, _keys(decided.claim), _keys(decided.release), len(owned),
                     len(available | owned), decided.share)
        self.committed = {k: stored[k] for k in owned if k in stored}
        self._owned = owned
        self.generation += 1
        self.fetcher.assign(self.generation, {k: None if self.from_beginning else stored.get(k) for k in owned})
        self.from_beginning = False  # --from-beginning: the first assignment only
        # The fetcher applies it on its next turn; chunks of the old assignment still queued are skipped.
        return True

    # -- decoding and landing
    def _read_batch(self, records: list, started_at: datetime | None) -> "_Decoded":
        """In the decode thread: bytes → Arrow → checked, deduped, typed (`decode.py`).

        A failure is returned, not raised: the main thread then narrows the batch down.
        """
        raw = raw_batch(records)
        return self._decode(raw, started_at or datetime.now().astimezone())

    def _decode(self, raw: RawBatch, started_at: datetime) -> "_Decoded":
        try:
            if self.cfg.poison_marker:  # tests: a fault no check foresees (see config.poison_marker)
                self._plant_fault(raw)
            return _Decoded(raw, started_at, self.decoder.decode_batch(raw), None)
        except Exception as exc:  # noqa: BLE001 - any failure is narrowed down, never fatal here
            if _environment_fault(exc):
                raise
            return _Decoded(raw, started_at, None, exc)

    def _plant_fault(self, raw: RawBatch) -> None:
        marker = self.cfg.poison_marker.encode()
        for value in raw.records.column("value").to_pylist():
            if value is not None and marker in value:
                raise RuntimeError(f"planted fault: a message carries the marker {self.cfg.poison_marker!r}")

    def _land_decoded(self, decoded: "_Decoded") -> None:
        error = self._try_landing(decoded)
        if error is not None and self.leases is not None:
            # Another worker may have changed a table meanwhile (a schema record it landed, a column it added,
            # which this worker decoded without): once more with what the lake holds now, before narrowing.
            self._refresh_knowledge()
            assert self._decoding is not None
            error = self._try_landing(self._decoding.submit(self._decode, decoded.raw, decoded.started_at).result())
        if error is not None:
            self._land_narrowed(decoded.raw, decoded.started_at, error)

    def _try_landing(self, decoded: "_Decoded") -> BaseException | None:
        """Land a decoded batch; the error that stopped its decoding or landing, if the data is at fault."""
        if decoded.error is not None:
            return decoded.error
        assert decoded.batch is not None
        try:
            self._land(decoded.batch, decoded.started_at)
        except _DataFault as fault:
            return fault.__cause__ or fault
        return None

    def _refresh_knowledge(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """The decoder learns the tables' columns and declared types as the lake holds them (other workers'
        batches change them too)."""
        if con is None:
            with self.writer.open() as own:
                return self._refresh_knowledge(own)
        self.decoder.know_columns(user_columns(con))
        self.decoder.know_declared(declared_columns(con))

    def _land_narrowed(self, raw: RawBatch, started_at: datetime, error: BaseException) -> None:
        """Land a batch that failed as a whole: halves, quarters… down to single messages.

        In order, so offsets only move forward; a message that fails alone is
        a dead letter whose reason carries the error. Exactly once as ever:
        each part commits its rows with the offsets that cover them.
        """
        if not self.cfg.narrowing:  # tests only: the negative control of the hostile-stream test
            raise RuntimeError(f"a batch failed and narrowing is off: {_one_line(error)}") from error
        log.warning("a batch of %s messages failed (%s); narrowing it down to the message(s) at fault — "
                    "the others land as usual", f"{raw.messages:,}", _one_line(error))
        culprits = self._narrow(raw, started_at, error)
        log.warning("narrowed: %d message(s) failed alone and are dead letters carrying the error; the rest landed",
                    culprits)

    def _narrow(self, part: RawBatch, started_at: datetime, error: BaseException) -> int:
        """Land `part`, which failed as a whole with `error`: each half in turn, narrowing a failing half further."""
        if part.messages == 1:
            try:
                self._land(_dead_letter_batch(part, self.topics, error), started_at)
            except _DataFault as fault:
                raise RuntimeError(f"could not even record a dead letter: {_one_line(fault.__cause__ or fault)}") from fault
            return 1
        culprits = 0
        for half in halves(part):
            assert self._decoding is not None  # the decoder is not thread-safe: decode in its own thread
            decoded = self._decoding.submit(self._decode, half, started_at).result()
            half_error = decoded.error
            if half_error is None:
                try:
                    self._land(decoded.batch, started_at)
                    continue
                except _DataFault as fault:
                    half_error = fault.__cause__ or fault
            culprits += self._narrow(half, started_at, half_error)
        return culprits

    def _land(self, batch: DecodedBatch, started_at: datetime) -> None:
        # Offsets the batch will commit, for the partition states written with it.
        after = dict(self.committed)
        for key, (_first, nxt) in batch.offsets.items():
            after[key] = max(nxt, after.get(key, 0))
        attempt = 0
        lake_retries = 0
        waited_for_readers = False
        guard = None
        if self.leases is not None:
            starts = {key: self.committed.get(key) for key in batch.offsets}
            leases, topics = self.leases, self.read_topics
            guard = lambda con: leases.check_and_renew(con, starts, stored_offsets(con, topics))  # noqa: E731
        while True:
            try:
                with self.writer.open() as con:
                    result = land_batch(
                        con, batch,
                        self._heartbeat("running", self._state_message(), after),
                        self._partition_states(after),
                        started_at,
                        self.failpoints,
                        guard,
                    )
                break
            except LeaseLost:
                raise  # not the data's fault, not the machine's: the partition is someone else's now
            except WarehouseBusy:
                if not waited_for_readers:
                    log.info("warehouse busy (a reader holds it); batch kept in memory, retrying")
                    waited_for_readers = True
            except Exception as exc:  # noqa: BLE001 - sorted into the environment's faults and the data's
                if warehouse_lake.is_transient(exc) and lake_retries < LAKE_RETRIES:
                    # Another commit to the lake (maintenance, a second worker) met ours: nothing landed; again.
                    lake_retries += 1
                    self.lake_conflicts += 1
                    time.sleep(min(2.0, 0.1 * lake_retries) * (0.5 + random.random()))  # jitter: not in step with it
                    continue
                hint = _environment_fault(exc)
                if hint is None:
                    raise _DataFault(str(exc)) from exc
                attempt += 1
                if attempt >= 3:
                    raise RuntimeError(f"landing into {warehouse_target.describe(self.cfg.warehouse)} failed 3 times: {_one_line(exc)} — {hint}; "
                                       "the worker resumes from the stored offsets when restarted") from exc
                log.error("landing failed (%s); retrying in %d s — nothing is committed until it succeeds",
                          _one_line(exc), 2 ** attempt)
                time.sleep(2 ** attempt)
        self.committed = after
        self.decoder.know_columns(result.columns)
        self._write_version(result.batch_id)
        assert self.fetcher is not None
        self.fetcher.request_commit({k: v for k, v in after.items() if k in batch.offsets})
        lag = self._lag(after)
        self._log_batch(batch, result, lag)
        for change in result.schema_changes:
            log.info("schema: %s", change)
        # The file is closed now: leave readers a moment to get in before the
        # next batch takes it again (DuckDB has no queue). Lake readers never wait.
        if not self.cfg.warehouse.is_lake:
            time.sleep(READER_GAP_SECONDS)

    def _log_batch(self, batch: DecodedBatch, result, lag: int | None) -> None:
        """One line per batch that carries real work; the trickle of a quiet pipeline in one line a minute."""
        busy = batch.messages >= BUSY_BATCH_MESSAGES or result.dead_letters or result.schema_changes or not self._logged
        lag_text = "?" if lag is None else f"{lag:,}"
        if busy:
            self._flush_quiet(lag_text)
            self._logged = True
            log.info(
                "batch %d: %s messages → %s upserts, %s deletes, %s stale skipped, %s dead letters | %s | "
                "decoded %.2f s, landed %.2f s | lag %s",
                result.batch_id, f"{batch.messages:,}", f"{result.upserts:,}", f"{result.deletes:,}",
                f"{result.skipped_stale:,}", f"{result.dead_letters:,}", ", ".join(result.tables) or "no tables",
                batch.seconds, result.seconds, lag_text,
            )
            return
        q = self._quiet
        if not q["batches"]:
            self._quiet_since = time.monotonic()
        q["batches"] += 1
        q["last"] = result.batch_id
        for k, v in (("messages", batch.messages), ("upserts", result.upserts), ("deletes", result.deletes),
                     ("stale", result.skipped_stale)):
            q[k] += v
        if time.monotonic() - self._quiet_since >= QUIET_SUMMARY_SECONDS:
            self._flush_quiet(lag_text)

    def _flush_quiet(self, lag_text: str) -> None:
        q = self._quiet
        if q["batches"]:
            log.info("batches up to %d (%d small batch(es) in %.0f s): %s messages → %s upserts, %s deletes, "
                     "%s stale skipped | lag %s", q["last"], q["batches"], time.monotonic() - self._quiet_since,
                     f"{q['messages']:,}", f"{q['upserts']:,}", f"{q['deletes']:,}", f"{q['stale']:,}", lag_text)
        self._quiet = dict.fromkeys(self._quiet, 0)

    def _write_version(self, batch_id: int) -> None:
        """Sidecar the app reads without opening DuckDB: its cache key (a lake's is its snapshot id)."""
        if self.cfg.warehouse.is_lake:
            return
        path = self.cfg.warehouse.version_path
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(str(batch_id), encoding="utf-8")
        os.replace(tmp, path)

    # -- health
    def _lag(self, committed: dict[tuple[str, int], int]) -> int | None:
        assert self.fetcher is not None
        hw = dict(self.fetcher.highwater)
        if not hw:
            return None
        return sum(max(0, h - committed.get(k, 0)) for k, h in hw.items())

    def _partition_states(self, committed: dict[tuple[str, int], int]) -> list[PartitionState]:
        f = self.fetcher
        if f is None:
            return []
        hw = dict(f.highwater)
        states = []
        for key in sorted(f.assigned):
            stopped = f.stopped.get(key)
            states.append(PartitionState(
                key[0], key[1], committed.get(key, 0), hw.get(key),
                "stopped" if stopped else "ok", stopped.reason if stopped else None,
            ))
        return states

    def _state(self) -> str:
        f = self.fetcher
        if f is None:
            return "starting"
        if f.broker_state == "unreachable":
            return "broker_unreachable"
        if f.stopped:
            return "degraded"
        return "idle"

    def _state_message(self) -> str | None:
        f = self.fetcher
        if f is None:
            return None
        if f.broker_state == "unreachable":
            return f"broker {self.cfg.kafka.bootstrap_servers} unreachable; retrying"
        if f.stopped:
            parts = "; ".join(f"{t}/{p}: {s.reason}" for (t, p), s in sorted(f.stopped.items()))
            return f"partition(s) stopped, re-export needed — {parts}"
        return None

    def _heartbeat(self, state: str, message: str | None, committed: dict[tuple[str, int], int] | None = None) -> Heartbeat:
        return Heartbeat(
            worker=self.worker_id if self.leases is not None else WORKER_NAME, started_at=self.started_at, state=state, pid=os.getpid(), host=self._host,
            lag=self._lag(committed if committed is not None else self.committed) if self.fetcher else None,
            message=message,
        )

    def _beat(self, state: str, message: str | None, timeout: float, release: bool = False) -> None:
        """An idle beat; on a lake it renews this worker's leases too (or, when stopping, frees them)."""
        also = None
        if self.leases is not None:
            also = self.leases.release_all if release else self.leases.renew

        def once():
            with self.writer.open(timeout) as con:
                write_heartbeat(con, self._heartbeat(state, message), self._partition_states(self.committed), also)

        try:
            # Another worker's commit may meet this one on a lake: a few quick tries.
            warehouse_lake.retry_transient(once, attempts=10 if self.leases is not None else 1)
        except WarehouseBusy:
            log.debug("heartbeat skipped: a reader holds the warehouse")
        except duckdb.Error as exc:
            log.warning("heartbeat not written: %s", exc)


@dataclass
class _Decoded:
    """A batch as the decode thread hands it over: decoded, or the error that stopped its decoding."""

    raw: RawBatch
    started_at: datetime
    batch: DecodedBatch | None
    error: BaseException | None


class _DataFault(Exception):
    """Landing a batch failed because of what it carries (not the environment): narrow it down."""


def _environment_fault(exc: BaseException) -> str | None:
    """What to fix when `exc` is a fault of the machine rather than of the data; None for the data's faults."""
    text = str(exc).lower()
    if isinstance(exc, warehouse_lake.LakeUnavailable):
        return "the DuckLake catalog cannot be reached: check [warehouse] catalog and that its database server runs"
    if isinstance(exc, (MemoryError, duckdb.OutOfMemoryException)):
        return "the worker ran out of memory: lower [worker] max_batch_rows or give it more memory"
    if "no space left" in text or "disk full" in text:
        return "the disk is full: free space next to the warehouse"
    if isinstance(exc, (duckdb.PermissionException, PermissionError)) or "permission denied" in text:
        return "the worker may not write the warehouse: check the file's owner and mode"
    if isinstance(exc, (duckdb.IOException, OSError)):
        return "the warehouse file cannot be read or written: check the disk and the file"
    if isinstance(exc, (duckdb.FatalException, duckdb.InternalException)):
        return "DuckDB stopped the database after an internal error: restart the worker"
    return None


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"


def _dead_letter_batch(part: RawBatch, topics: dict[str, str], error: BaseException) -> DecodedBatch:
    """One message that fails alone, as a batch that only dead-letters it (with the error as its reason)."""
    records = part.records
    topic = records.column("topic")[0].as_py()
    reason = f"the worker could not decode or land this message: {_one_line(error)}"
    dead = pa.table({
        "topic": records.column("topic"), "partition": records.column("partition"),
        "offset": records.column("offset"), "key": records.column("key"), "value": records.column("value"),
        "reason": pa.array([reason], pa.string()),
    })
    if topic not in topics:  # a control record: never a dead letter; landing the empty batch moves its offset on
        return DecodedBatch(part, [], 0.0)
    table = topics[topic]
    return DecodedBatch(part, [DecodedTopic(topic, table, (), 0, dead, None)], 0.0)


def run_worker(cfg: PipelineConfig, until_idle: bool = False, transport_reset: bool = False, from_beginning: bool = False,
               worker_id: str | None = None) -> int:
    """`python -m ingest worker`: returns the process exit code."""
    if worker_id is not None and not WORKER_ID.fullmatch(worker_id):
        log.error("--worker-id %r: expected 1 to 64 letters, digits, '.', '_' or '-', e.g. --worker-id ingest-2", worker_id)
        return 2
    try:
        return Worker(cfg, until_idle, transport_reset, from_beginning, worker_id).run()
    except WorkerAlreadyRunning as exc:
        log.error("%s", exc)
        return 1


def _keys(keys) -> str:
    return ", ".join(f"{t}/{p}" for t, p in keys) or "none"
