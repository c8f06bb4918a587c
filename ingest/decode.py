"""A raw batch → what the landing needs: checked, deduped, typed, as Arrow.

This is the decode stage, between the fetch (Kafka → bytes) and the landing
(one transaction on the warehouse file). It runs on its own in-memory DuckDB
connection, so it never holds the warehouse's write lock, and the worker runs
it in its own thread, one batch ahead of the landing: while batch N merges,
batch N+1 is read here (DuckDB works off the GIL, so both overlap the fetch).

What comes out of it depends only on the batch: every check, the dead
letters, the newest change per row and the column types the batch's values
need. The warehouse's current column types are only a hint of what need not
be looked at (a column that is already VARCHAR takes anything); the landing
decides the schema changes against the catalog itself.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import duckdb
import pyarrow as pa

from ingest import decode_sql as sql
from ingest.batch import RawBatch
from ingest.config import TableSpec
from ingest.identifiers import own_columns
from ingest.schema import DATE_PATTERN, TS_PATTERN, TSTZ_PATTERN, VARCHAR, normalise, type_from_profile, widen

_ROW_COLUMN = re.compile(sql.ROW_COLUMN_PATTERN, re.ASCII)


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

    @property
    def rejected(self) -> int:
        return 0 if self.dead_letters is None else self.dead_letters.num_rows


@dataclass
class DecodedBatch:
    raw: RawBatch
    topics: list[DecodedTopic]
    seconds: float

    @property
    def messages(self) -> int:
        return self.raw.messages

    @property
    def offsets(self) -> dict[tuple[str, int], tuple[int, int]]:
        return self.raw.offsets


class Decoder:
    """Owns one in-memory DuckDB connection; not thread-safe (one thread decodes)."""

    def __init__(self, tables: Mapping[str, TableSpec], topics: Mapping[str, str], threads: int | None = None):
        self.tables = tables
        self.topics = topics  # topic → table
        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.columns: dict[str, dict[str, str]] = {}  # table → column → type, as last known (a hint)

    def close(self) -> None:
        self.con.close()

    def know_columns(self, columns: Mapping[str, Mapping[str, str]]) -> None:
        """The warehouse's user columns after a landing: lets the next batches skip what is settled."""
        self.columns = {t: dict(cols) for t, cols in columns.items()}

    def decode_batch(self, batch: RawBatch) -> DecodedBatch:
        t0 = time.perf_counter()
        self.con.register("_raw", batch.records)
        try:
            topics = [self._decode_topic(topic, self.topics[topic]) for topic in batch.topics]
        finally:
            self.con.unregister("_raw")
        return DecodedBatch(batch, topics, time.perf_counter() - t0)

    # -- one topic
    def _decode_topic(self, topic: str, table: str) -> DecodedTopic:
        pk = tuple(self.tables[table].primary_key)
        checked = check_topic(self.con, topic, table, pk, self.columns.get(table, {}))
        dead = self.con.execute(sql.dead_letters(), {"topic": topic}).to_arrow_table() if checked.rejected else None
        result = DecodedTopic(topic, table, pk, checked.valid, dead, None)
        if not checked.valid:
            return result
        result.fields = checked.fields
        result.incoming = self._profile(pk, checked)
        result.stage = self.con.execute(sql.newest_changes(pk, checked.fields, checked.kinded)).to_arrow_table()
        return result

    def _profile(self, pk: Sequence[str], checked: "Checked") -> dict[str, str | None]:
        """The type each incoming column's values need (None: only nulls seen, or a column that takes anything)."""
        incoming: dict[str, str | None] = dict.fromkeys(pk)
        for f in checked.fields:
            incoming.setdefault(f, None)
        incoming.update(profile_fields(self.con, checked.kinded, [f for f in checked.fields if f in checked.kinded]))
        for col in pk:
            n_int, lo, hi, huge, n_str = self.con.execute(sql.profile_key(col)).fetchone()
            key_type = VARCHAR if huge else type_from_profile(n_int, lo, hi, 0, 0, 0, n_str, 0, 0, 0)
            incoming[col] = widen(incoming.get(col), key_type)
        return incoming


@dataclass
class Checked:
    valid: int
    rejected: int
    fields: list[str]  # names the valid rows carry, first seen first
    kinded: list[str]  # fields read as JSON snippets (their kinds still matter), in `_parsed.e.row`


def check_topic(
    con: duckdb.DuckDBPyConnection, topic: str, table: str, primary_key: Sequence[str], columns: Mapping[str, str],
) -> Checked:
    """`_parsed` for `topic` (from `_raw`) with every message's final verdict in `reason` (NULL = valid).

    `columns` (the table's known user columns → type) decides which fields are
    read up front; a batch that brings other names is simply read again.
    """
    names = list(own_columns(columns))
    kinded = [c for c in names if c not in primary_key and normalise(columns[c]) != VARCHAR]
    con.execute(sql.parse_messages(table, primary_key, names, kinded), {"topic": topic})
    seen = _ordered_names(con, valid_only=False)
    bad = [n for n in seen if not _ROW_COLUMN.fullmatch(n)]
    variants = case_variants([*primary_key, *names], [n for n in seen if n not in bad])
    new = [n for n in seen if n not in names and n not in bad and n not in variants]
    if new or bad or variants:  # names this table has not had yet: read again, with them
        names += new
        kinded += [n for n in new if n not in primary_key]
        con.execute(sql.parse_messages(table, primary_key, names, kinded, [*bad, *variants]), {"topic": topic})
    rejected, valid = con.execute(sql.count_verdicts()).fetchone()
    if rejected:  # the full chain says exactly what is wrong (or clears the message after all)
        con.execute(sql.check_envelopes(table, primary_key), {"topic": topic})
        con.execute(sql.check_rows(primary_key, bad, variants))
        con.execute(sql.set_reasons("_suspects_checked"))
        rejected, valid = con.execute(sql.count_verdicts()).fetchone()
        fields = _ordered_names(con, valid_only=True)
    else:
        fields = seen
    return Checked(valid, rejected, fields, kinded)


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


def _ordered_names(con: duckdb.DuckDBPyConnection, valid_only: bool) -> list[str]:
    names: dict[str, None] = {}
    for (keys,) in con.execute(sql.row_key_lists(valid_only)).fetchall():
        names.update(dict.fromkeys(keys))
    return list(names)
