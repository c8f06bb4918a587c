"""A raw batch → what the landing needs: checked, deduped, typed, as Arrow.

This is the decode stage, between the fetch (Kafka → bytes) and the landing
(one transaction on the warehouse file). It runs on its own in-memory DuckDB
connection, so it never holds the warehouse's write lock, and the worker runs
it in its own thread, one batch ahead of the landing: while batch N merges,
batch N+1 is read here (DuckDB works off the GIL, so both overlap the fetch).

What comes out of it depends only on the batch and on the declared types
(schema records, docs/contracts.md) seen so far: every check, the dead
letters, the newest change per row and the column types the batch's values
need. The warehouse's current column types are only a hint of what need not
be looked at (a column that is already VARCHAR takes anything); the landing
decides the schema changes against the catalog itself.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Sequence

import duckdb
import pyarrow as pa

from ingest import decode_sql as sql
from ingest.batch import RawBatch
from ingest.config import TableSpec
from ingest.control import ControlBatch, read_control
from ingest.envelope import (
    DEFAULT_MAX_MESSAGE_BYTES, MAX_VALUE_DEPTH, Rejected, SchemaRecord, case_variant_reason, decode_schema,
    depth_reason, name_reason, nesting,
)
from ingest.identifiers import is_column_name, own_columns
from ingest.schema import DATE_PATTERN, TS_PATTERN, TSTZ_PATTERN, VARCHAR, normalise, type_from_profile, widen

DEAD_LETTER, WIDEN = "dead_letter", "widen"  # [tables.<t>] on_type_mismatch


@dataclass
class DecodedTopic:
    topic: str
    table: str
    primary_key: tuple[str, ...]
    valid: int  # messages that passed every check (before dedupe)
    dead_letters: pa.Table | None  # topic, partition, offset, key, value, reason
    stage: pa.Table | None  # the newest valid change per row: pk, fields (as text), _source_ts, …
    fields: list[str] = field(default_factory=list)  # row fields the valid messages carry, first seen first
    incoming: dict[str, str | None] = field(default_factory=dict)  # column → type its values need (None: only nulls)
    schema: SchemaRecord | None = None  # a schema record this batch carried (the newest), to be recorded

    @property
    def rejected(self) -> int:
        return 0 if self.dead_letters is None else self.dead_letters.num_rows


@dataclass
class DecodedBatch:
    raw: RawBatch
    topics: list[DecodedTopic]
    seconds: float
    control: ControlBatch = field(default_factory=ControlBatch)  # exporter status records (not row changes)

    @property
    def messages(self) -> int:
        return self.raw.messages

    @property
    def offsets(self) -> dict[tuple[str, int], tuple[int, int]]:
        return self.raw.offsets


class Decoder:
    """Owns one in-memory DuckDB connection; not thread-safe (one thread decodes).

    It follows the declared types (schema records) in the order it decodes
    batches: a record applies to its whole batch and to every batch decoded
    after it.
    """

    def __init__(self, tables: Mapping[str, TableSpec], topics: Mapping[str, str], threads: int | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, control_topic: str | None = None):
        self.tables = tables
        self.topics = topics  # topic → table
        self.control_topic = control_topic  # its records are read by `ingest.control`, never checked as rows
        self.max_message_bytes = max_message_bytes
        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.columns: dict[str, dict[str, str]] = {}  # table → column → type, as last known (a hint)
        self.declared: dict[str, dict[str, str]] = {}  # table → column → declared type (schema records)

    def close(self) -> None:
        self.con.close()

    def know_columns(self, columns: Mapping[str, Mapping[str, str]]) -> None:
        """The warehouse's user columns after a landing: lets the next batches skip what is settled."""
        self.columns = {t: dict(cols) for t, cols in columns.items()}

    def know_declared(self, declared: Mapping[str, Mapping[str, str]]) -> None:
        """The declared types the warehouse holds (`_meta.declared_columns`), at start."""
        self.declared = {t: dict(cols) for t, cols in declared.items()}

    def decode_batch(self, batch: RawBatch) -> DecodedBatch:
        t0 = time.perf_counter()
        self.con.register("_raw", batch.records)
        try:
            topics = [self._decode_topic(topic, self.topics[topic]) for topic in batch.topics
                      if topic != self.control_topic]
        finally:
            self.con.unregister("_raw")
        return DecodedBatch(batch, topics, time.perf_counter() - t0, read_control(batch.records, self.control_topic))

    # -- one topic
    def _decode_topic(self, topic: str, table: str) -> DecodedTopic:
        spec = self.tables[table]
        pk = tuple(spec.primary_key)
        mode = spec.on_type_mismatch or DEAD_LETTER
        checked = check_topic(self.con, topic, table, pk, self.columns.get(table, {}), self.declared.get(table),
                              check_types=mode == DEAD_LETTER, max_bytes=self.max_message_bytes)
        if checked.schema is not None:
            self.declared[table] = dict(checked.schema.columns)
        dead = self.con.execute(sql.dead_letters(), {"topic": topic}).to_arrow_table() if checked.rejected else None
        result = DecodedTopic(topic, table, pk, checked.valid, dead, None, schema=checked.schema)
        if not checked.valid:
            return result
        result.fields = checked.fields
        result.incoming = self._profile(pk, checked, widen_declared=mode == WIDEN)
        result.stage = self.con.execute(sql.newest_changes(pk, checked.fields, checked.kinded)).to_arrow_table()
        return result

    def _profile(self, pk: Sequence[str], checked: "Checked", widen_declared: bool) -> dict[str, str | None]:
        """The type each incoming column's values need (None: only nulls seen, or a column that takes anything).

        A declared column needs its declared type: its values were checked
        against it, or (`widen_declared`) are widened from it when they do not fit.
        """
        declared = checked.declared
        incoming: dict[str, str | None] = dict.fromkeys(pk)
        for f in checked.fields:
            incoming.setdefault(f, None)
        profiled = [f for f in checked.fields if f in checked.kinded and (widen_declared or f not in declared)]
        incoming.update(profile_fields(self.con, checked.kinded, profiled))
        for col in pk:
            if col in declared and not widen_declared:
                continue
            n_int, lo, hi, huge, n_str = self.con.execute(sql.profile_key(col)).fetchone()
            key_type = VARCHAR if huge else type_from_profile(n_int, lo, hi, 0, 0, 0, n_str, 0, 0, 0)
            incoming[col] = widen(incoming.get(col), key_type)
        for col, type_ in declared.items():
            if col in incoming:
                incoming[col] = widen(type_, incoming[col]) if widen_declared else type_
        return incoming


@dataclass
class Checked:
    valid: int
    rejected: int
    fields: list[str]  # names the valid rows carry, first seen first
    kinded: list[str]  # fields read as JSON snippets (their kinds matter), in `_parsed.e.row`
    declared: dict[str, str] = field(default_factory=dict)  # the declared types the batch was checked against
    schema: SchemaRecord | None = None  # the newest valid schema record in the batch


def check_topic(
    con: duckdb.DuckDBPyConnection, topic: str, table: str, primary_key: Sequence[str], columns: Mapping[str, str],
    declared: Mapping[str, str] | None = None, check_types: bool = True, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> Checked:
    """`_parsed` for `topic` (from `_raw`) with every message's final verdict in `reason` (NULL = valid).

    `columns` (the table's known user columns → type) and `declared` (its
    declared types, replaced by a schema record the batch carries) decide
    which fields are read up front; a batch that brings other names is
    simply read again. With `check_types`, a value that does not fit its
    declared type makes its message a dead letter.
    """
    declared = dict(declared or {})
    reading = _Reading(con, topic, table, primary_key, max_bytes)
    schema = reading.read(columns, declared)
    if schema is not None and schema.columns != declared:
        declared = dict(schema.columns)
        reading.read(columns, declared)
    lists = _key_lists(con, valid_only=False)
    seen = list(dict.fromkeys(n for names in lists for n in names))
    bad = [n for n in seen if not is_column_name(n)]
    variants = case_variants([*primary_key, *reading.names], [n for n in seen if n not in bad])
    new = [n for n in seen if n not in reading.names and n not in bad and n not in variants]
    twice = any(len(set(names)) < len(names) for names in lists)
    if new or bad or variants or twice:  # names this table has not had yet, or rows to look at closer: read again
        reading.read(columns, declared, extra=new, bad=[*bad, *variants], twice=twice)
    rejected, valid = con.execute(sql.count_verdicts()).fetchone()
    if rejected:  # the full chain says exactly what is wrong (or clears the message after all)
        unchecked = con.execute(f"SELECT count(*) FROM _parsed WHERE reason = '{sql.UNCHECKED}'").fetchone()[0]
        if unchecked:
            _full_chain(con, topic, table, primary_key, bad, variants, max_bytes)
    if check_types and declared:
        kinded = set(reading.kinded) | set(primary_key)
        statement = sql.type_checks({c: t for c, t in declared.items() if c in kinded}, primary_key)
        if statement is not None:
            con.execute(statement)
    rejected, valid = con.execute(sql.count_verdicts()).fetchone()
    if rejected:
        fields = list(dict.fromkeys(n for names in _key_lists(con, valid_only=True) for n in names))
    else:
        fields = [n for n in seen if n in reading.names]
    return Checked(valid, rejected, fields, reading.kinded, declared, schema)


class _Reading:
    """Runs `parse_messages` for one topic and settles its schema records; remembers what it read."""

    def __init__(self, con, topic, table, primary_key, max_bytes):
        self.con, self.topic, self.table, self.primary_key, self.max_bytes = con, topic, table, primary_key, max_bytes
        self.names: list[str] = []
        self.kinded: list[str] = []

    def read(self, columns: Mapping[str, str], declared: Mapping[str, str], extra: Sequence[str] = (),
             bad: Sequence[str] = (), twice: bool = False) -> SchemaRecord | None:
        pk = self.primary_key
        names = list(dict.fromkeys([*own_columns(columns), *declared, *extra]))
        kinded = [c for c in names if c not in pk and (declared.get(c) or normalise(columns.get(c, "?"))) != VARCHAR]
        self.names, self.kinded = names, kinded
        params = {"topic": self.topic, "structure": sql.message_structure(pk, names, kinded), "max_bytes": self.max_bytes}
        if bad:
            params["bad_names"] = list(bad)
        self.con.execute(sql.parse_messages(self.table, pk, names, duplicate_fields=twice, bad_names=bool(bad)), params)
        return self._settle_schema_records()

    def _settle_schema_records(self) -> SchemaRecord | None:
        """Valid schema records leave `_parsed`, bad ones become dead letters; returns the newest valid one."""
        if not self.con.execute(sql.count_schema_records()).fetchone()[0]:
            return None  # nearly every batch: a count is cheaper than the join below
        records = self.con.execute(sql.schema_records(), {"topic": self.topic}).fetchall()
        newest: tuple[datetime | None, SchemaRecord] | None = None
        good, bad, reasons = [], [], []
        for partition, offset, raw in records:
            key = sql.offset_key(partition, offset)
            try:
                record = decode_schema(raw, self.table, self.primary_key)
            except Rejected as exc:
                bad.append(key)
                reasons.append(str(exc))
                continue
            good.append(key)
            stamp = record.exported_at
            if newest is None or (stamp is not None and (newest[0] is None or stamp >= newest[0])):
                newest = (stamp, record)
        if good:
            self.con.execute(sql.drop_schema_records(), {"keys": good})
        if bad:
            self.con.execute(sql.reject_schema_records(), {"keys": bad, "reasons": reasons})
        return newest[1] if newest else None


def _full_chain(con, topic, table, primary_key, bad, variants, max_bytes) -> None:
    """The messages the cheap test did not clear: every check in order, with the reason of the first that fails."""
    con.execute(sql.check_envelopes(table, primary_key), {"topic": topic, "max_bytes": max_bytes})
    deep_keys, deep_reasons = [], []
    for partition, offset, row_text in con.execute(sql.deep_candidates()).fetchall():
        for name, depth in nesting(row_text).items():
            if depth > MAX_VALUE_DEPTH:
                deep_keys.append(sql.offset_key(partition, offset))
                deep_reasons.append(depth_reason(name, depth))
                break
    con.execute(sql.check_rows(primary_key), {
        "bad_names": list(bad), "bad_reasons": [name_reason(n) for n in bad],
        "variant_names": list(variants), "variant_reasons": [case_variant_reason(n, c) for n, c in variants.items()],
        "deep_keys": deep_keys, "deep_reasons": deep_reasons,
    })
    con.execute(sql.set_reasons("_suspects_checked"))


def case_variants(columns: Sequence[str], seen: Sequence[str]) -> dict[str, str]:
    """Field names in `seen` (batch order) that differ only in case from a column or an earlier name → that one.

    DuckDB, like MySQL, ignores case in column names and struct fields:
    "Amount" is the column "amount" there (adding it fails), and a row
    carrying both could not be read apart. So one spelling per name is kept —
    the table's, else the batch's first — and rows using another are
    dead-lettered saying which to use.
    """
    spelling = {c.lower(): c for c in columns}
    out: dict[str, str] = {}
    for name in seen:
        first = spelling.setdefault(name.lower(), name)
        if first != name:
            out[name] = first
    return out


def profile_fields(con: duckdb.DuckDBPyConnection, kinded: Sequence[str], fields: Sequence[str]) -> dict[str, str | None]:
    """Column types for `fields` (all in `kinded`) from the valid messages in `_parsed`.

    The same answer as `schema.column_type` over the same values, for less:
    the values' kinds (`kind_counts`, one grouped scan) settle most fields
    (strings mixed with anything else, objects: VARCHAR; booleans: BOOLEAN);
    only numbers (integer or not, and their range) and the shapes of strings
    need the values, looked at in one scan (plus one more for strings that
    are not all timestamps with a zone).
    """
    if not fields:
        return {}
    kinds: dict[str, Counter] = {f: Counter() for f in fields}
    for combo, n in con.execute(sql.kind_counts(kinded)).fetchall():
        for f in fields:
            kinds[f][sql.KINDS.get(combo[kinded.index(f)], "NUMBER")] += n
    out: dict[str, str | None] = {}
    columns: list[str] = []
    numbers: dict[str, int] = {}  # field → where its integer figures start in `columns`
    strings: dict[str, int] = {}  # fields holding only strings → where their count of zoned timestamps is
    for f in fields:
        c = kinds[f]
        present = {k for k, n in c.items() if n and k != "NULL"}
        if not present:
            out[f] = None
        elif "OBJECT" in present or "ARRAY" in present or ("VARCHAR" in present and len(present) > 1):
            out[f] = VARCHAR
        elif present == {"VARCHAR"}:
            strings[f] = len(columns)
            columns += sql.dated_strings(f, [TSTZ_PATTERN])
        elif "NUMBER" in present:
            numbers[f] = len(columns)
            columns += sql.number_profile(f)
        else:
            out[f] = type_from_profile(0, None, None, 0, c["BOOLEAN"], 0, 0, 0, 0, 0)
    values = con.execute(sql.profile(columns)).fetchone() if columns else ()
    for f, at in numbers.items():
        n_int, lo, hi, huge = values[at:at + 4]
        n_double = kinds[f]["NUMBER"] - n_int
        out[f] = VARCHAR if huge else type_from_profile(n_int, lo, hi, n_double, kinds[f]["BOOLEAN"], 0, 0, 0, 0, 0)
    zoned = {f: values[at] for f, at in strings.items()}
    rest = [f for f in strings if zoned[f] != kinds[f]["VARCHAR"]]
    if rest:  # not all timestamps with a zone: dates? timestamps without one?
        more = con.execute(sql.profile([x for f in rest for x in sql.dated_strings(f, [DATE_PATTERN, TS_PATTERN])])).fetchone()
        other = {f: more[2 * i:2 * i + 2] for i, f in enumerate(rest)}
    for f in strings:
        n_date, n_ts = other[f] if f in rest else (0, 0)
        out[f] = type_from_profile(0, None, None, 0, 0, 0, kinds[f]["VARCHAR"], zoned[f], n_date, n_ts)
    return out


def _key_lists(con: duckdb.DuckDBPyConnection, valid_only: bool) -> list[list[str]]:
    """The distinct lists of row field names, first seen first (rows usually all carry the same list)."""
    return [keys for (keys,) in con.execute(sql.row_key_lists(valid_only)).fetchall()]
