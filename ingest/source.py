"""Reading the source database: allow-listed columns, in keyset chunks, through the index.

SQLAlchemy Core only, so the same code reads MySQL/MariaDB (PyMySQL) in
production and SQLite in the demo. Every read is one short statement on its
own connection — no transaction stays open across chunks, which matters on
InnoDB: a long REPEATABLE READ snapshot would hide late commits, and a long
read would hold back purge on the production server.

The chunk query (docs/design.md, "Traps"): MariaDB does NOT serve the row-value form
`(updated_at, id) > (?, ?)` from the index (full scan + filesort), but it does
serve the expanded form

    updated_at > :ts OR (updated_at = :ts AND id > :id)  ORDER BY updated_at, id  LIMIT n

as a range scan on an index starting with `updated_at`. Composite keys expand
the same way, one level per key column.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ingest.config import SourceConfig, TableSpec
from ingest.schema import (
    BIGINT, BOOLEAN, DATE, DOUBLE, HUGEINT, INTEGER, MAX_DECIMAL_PRECISION, SMALLINT, TIME, TIMESTAMPTZ, VARCHAR,
    decimal, decimal_parts,
)

log = logging.getLogger("ingest.source")

SEOUL = ZoneInfo("Asia/Seoul")


class SourceTableError(RuntimeError):
    """The source table does not match its [tables.<t>] section (missing table or column)."""


def connect(source: SourceConfig) -> Engine:
    """An engine for `[source] url`; the password (env SOURCE_PASSWORD) is added here, never logged."""
    url = sa.make_url(source.url)
    if source.password:
        url = url.set(password=source.password)
    if url.get_backend_name() == "sqlite":
        # The simulator writes while we read; WAL (set by the simulator) lets
        # readers go on, busy timeout covers checkpoints.
        return sa.create_engine(url, connect_args={"timeout": 30})
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600)


# ──────────────────────────────────────────────────────────── timestamps ──


def iso_seoul(value: datetime | str) -> str:
    """A timestamp as ISO-8601 with offset; naive values are Asia/Seoul local time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=SEOUL)
    else:
        value = value.astimezone(SEOUL)
    return value.isoformat(timespec="microseconds")


def to_json_value(value: Any) -> Any:
    """A source value as the envelope carries it (docs/contracts.md: timestamps ISO with offset)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return iso_seoul(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def declared_type(column: sa.Column, hashed: bool = False) -> str | None:
    """The warehouse type for a source column, from its reflected SQLAlchemy type; None when the source says nothing.

    Timestamps become TIMESTAMP WITH TIME ZONE because the exporter sends
    them with their offset (naive source values are Asia/Seoul time); hashed
    columns are hex text; unsigned integers take the next wider type. A
    DECIMAL wider than 38 digits stays exact as VARCHAR.
    """
    if hashed:
        return VARCHAR
    t = column.type
    if isinstance(t, sa.types.NullType):
        return None  # SQLite column without a declared type: the worker infers one
    if isinstance(t, sa.Boolean):
        return BOOLEAN
    if isinstance(t, sa.Integer):
        name = type(t).__name__.upper()
        unsigned = bool(getattr(t, "unsigned", False))
        if name in ("TINYINT", "SMALLINT", "YEAR"):
            ladder = (SMALLINT, INTEGER)
        elif name in ("MEDIUMINT", "INTEGER", "INT"):
            ladder = (INTEGER, BIGINT)
        elif isinstance(t, sa.BigInteger) or name == "BIGINT":
            ladder = (BIGINT, HUGEINT)
        elif isinstance(t, sa.SmallInteger):
            ladder = (SMALLINT, INTEGER)
        else:
            ladder = (INTEGER, BIGINT)
        return ladder[1] if unsigned else ladder[0]
    if isinstance(t, sa.Float):
        return DOUBLE
    if isinstance(t, sa.Numeric):
        precision, scale = t.precision, t.scale
        if precision is None:
            return DOUBLE
        if precision > MAX_DECIMAL_PRECISION:
            return VARCHAR
        return decimal(precision, scale or 0)
    if isinstance(t, sa.DateTime):
        return TIMESTAMPTZ
    if isinstance(t, sa.Date):
        return DATE
    if isinstance(t, sa.Time):
        return TIME
    return VARCHAR  # strings, text, enums, JSON (as its text), binary (as hex)


def json_value_for(declared: str | None):
    """A function turning a source value into the envelope's JSON value for a column of type `declared`.

    Decimals go out as strings of their exact digits (a JSON number would be
    read as a double somewhere on the way); timestamps as ISO-8601 with their
    offset, naive ones taken as Asia/Seoul time; the rest as `to_json_value`.
    """
    if declared == TIMESTAMPTZ:
        return _timestamp_value
    if declared is not None and decimal_parts(declared) is not None:
        return _decimal_value
    if declared == TIME:
        return _time_value
    if declared == BOOLEAN:
        return lambda v: bool(v) if isinstance(v, int) and v in (0, 1) else to_json_value(v)
    return to_json_value


def _timestamp_value(value: Any) -> Any:
    if isinstance(value, (datetime, str)):
        try:
            return iso_seoul(value)
        except ValueError:
            return value  # not a timestamp after all: the worker says so (a dead letter with its reason)
    return to_json_value(value)


def _decimal_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(Decimal(str(value)), "f")
    return to_json_value(value)


def _time_value(value: Any) -> Any:
    if isinstance(value, timedelta) and timedelta(0) <= value < timedelta(days=1):  # MySQL TIME via PyMySQL
        return (datetime.min + value).time().isoformat()
    return to_json_value(value)


# ──────────────────────────────────────────────────────────────── reading ──


@dataclass(frozen=True)
class Cursor:
    """Where the next chunk starts: strictly after (ts, pk), or at ts inclusive when pk is None."""

    ts: datetime  # aware
    pk: tuple[Any, ...] | None


@dataclass(frozen=True)
class SourceRow:
    values: dict[str, Any]  # allow-listed columns, raw source values
    ts: datetime  # watermark value, aware (Asia/Seoul)
    pk: tuple[Any, ...]  # raw source pk values, in primary_key order


class TableReader:
    """Reads one configured table: only its allow-listed columns, in (watermark, pk) order."""

    def __init__(self, spec: TableSpec, table: sa.Table, watermark_is_text: bool, index_name: str | None = None,
                 raw_temporal: bool = False):
        self.spec = spec
        self.table = table
        self.watermark_is_text = watermark_is_text
        self.index_name = index_name  # an index starting with the watermark column, if the source has one
        # The declared type of every exported column (schema records), and how its values go out.
        hashed = {c.name for c in spec.columns if c.hash}
        self.declared = {c: declared_type(table.c[c], c in hashed) for c in spec.column_names}
        self.to_json = {c: json_value_for(t) for c, t in self.declared.items()}

        def read(column: sa.Column) -> sa.ColumnElement:
            # SQLite keeps the demo's timestamps as ISO text: read and compare them as the text they are
            # (SQLAlchemy's SQLite DATETIME would re-parse them and lose the offset).
            if raw_temporal and isinstance(column.type, (sa.DateTime, sa.Date, sa.Time)):
                return sa.type_coerce(column, sa.String())
            return column

        self._wm = read(table.c[spec.watermark])
        self._pk = [read(table.c[k]) for k in spec.primary_key]
        self._columns = [read(table.c[c]).label(c) for c in spec.column_names]

    def _bind_ts(self, ts: datetime) -> Any:
        """The watermark as the source compares it: ISO text (SQLite demo) or naive Seoul time (DATETIME)."""
        local = ts.astimezone(SEOUL)
        if self.watermark_is_text:
            return local.isoformat(timespec="microseconds")
        return local.replace(tzinfo=None)

    def _hinted(self, stmt: sa.Select) -> sa.Select:
        if self.index_name and self.index_name != "PRIMARY":
            hint = "FORCE INDEX (`%s`)" % self.index_name.replace("`", "``")
            stmt = stmt.with_hint(self.table, hint, dialect_name="mysql").with_hint(self.table, hint, dialect_name="mariadb")
        return stmt

    def day_counts_query(self, since: datetime, as_of: datetime) -> sa.Select:
        """Rows per local day of the watermark column in [since, as_of]: one range scan of the watermark index.

        The index starts with the watermark column and carries the key, so the
        count is read from the index alone (no row lookups): about one index
        entry examined per row counted.
        """
        day = sa.func.substr(self._wm, 1, 10) if self.watermark_is_text else sa.func.date(self._wm)
        # count(column), not count(*): the exporter's statements never contain "*" (tests/test_export_demo.py)
        stmt = (sa.select(day.label("day"), sa.func.count(self._wm).label("n"))
                .where(self._wm >= self._bind_ts(since), self._wm <= self._bind_ts(as_of))
                .group_by(day))
        return self._hinted(stmt)

    def day_counts(self, engine: Engine, since: datetime, as_of: datetime) -> dict[str, int]:
        with engine.connect() as conn:
            rows = conn.execute(self.day_counts_query(since, as_of)).all()
        return {str(d)[:10]: int(n) for d, n in rows if d is not None}

    def rows_after_query(self, ts: datetime | None, cap: int) -> sa.Select:
        """How many rows changed after `ts` (all rows when None), counted no further than `cap`: index-only, bounded."""
        inner = sa.select(sa.literal(1).label("one"))
        inner = inner.where(self._wm > self._bind_ts(ts)) if ts is not None else inner.where(self._wm.is_not(None))
        inner = self._hinted(inner.select_from(self.table)).limit(cap).subquery()
        return sa.select(sa.func.count(inner.c.one))

    def rows_after(self, engine: Engine, ts: datetime | None, cap: int) -> int:
        """Rows still to send after `ts`, for progress only. On MariaDB/MySQL the optimizer's estimate for the
        range (EXPLAIN: a few index dives, no rows read — a real count would read the whole backlog and double
        what a first load costs the source); elsewhere (the SQLite demo) a count capped at `cap`."""
        if engine.dialect.name in ("mysql", "mariadb"):
            inner = sa.select(*self._pk)
            inner = inner.where(self._wm > self._bind_ts(ts)) if ts is not None else inner.where(self._wm.is_not(None))
            compiled = self._hinted(inner).compile(engine, compile_kwargs={"literal_binds": False})
            with engine.connect() as conn:
                params = compiled.params if compiled.positiontup is None else tuple(compiled.params[k] for k in compiled.positiontup)
                result = conn.exec_driver_sql("EXPLAIN " + str(compiled), params)
                columns = list(result.keys())
                rows = [dict(zip(columns, r)) for r in result.fetchall()]
            return min(cap, sum(int(r.get("rows") or 0) for r in rows))
        with engine.connect() as conn:
            return int(conn.execute(self.rows_after_query(ts, cap)).scalar_one())

    def keys_between_query(self, start: datetime, until: datetime, as_of: datetime) -> sa.Select:
        """The primary keys of rows changed in [start, until) and not after `as_of`: read from the watermark index alone."""
        stmt = sa.select(*self._pk).where(self._wm >= self._bind_ts(start), self._wm < self._bind_ts(until),
                                          self._wm <= self._bind_ts(as_of))
        return self._hinted(stmt)

    def keys_between(self, engine: Engine, start: datetime, until: datetime, as_of: datetime) -> set[tuple]:
        with engine.connect() as conn:
            return {tuple(r) for r in conn.execute(self.keys_between_query(start, until, as_of)).all()}

    def existing_keys(self, engine: Engine, keys: Sequence[tuple]) -> set[tuple]:
        """Which of `keys` the table still has: primary-key lookups, one row examined each (in batches of 500)."""
        found: set[tuple] = set()
        keys = list(keys)
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            if len(self._pk) == 1:
                cond = self._pk[0].in_([k[0] for k in part])
            else:
                cond = sa.or_(*(sa.and_(*(c == v for c, v in zip(self._pk, k))) for k in part))
            with engine.connect() as conn:
                found |= {tuple(r) for r in conn.execute(sa.select(*self._pk).where(cond)).all()}
        return found

    def chunk_query(self, cursor: Cursor | None, limit: int, until: datetime | None = None) -> sa.Select:
        """The next `limit` rows after `cursor` in (watermark, key) order; with `until`, only those changed before it."""
        stmt = sa.select(*self._columns)
        if until is not None:
            stmt = stmt.where(self._wm < self._bind_ts(until))
        if cursor is not None:
            ts = self._bind_ts(cursor.ts)
            if cursor.pk is None:
                stmt = stmt.where(self._wm >= ts)
            else:
                # The redundant `wm >= ts` lets SQLite seek instead of scanning
                # the index from its start; MariaDB's range is the same either way.
                stmt = stmt.where(self._wm >= ts, _after([self._wm, *self._pk], [ts, *cursor.pk]))
        else:
            # Rows without a watermark value can never be ordered; they are not exported.
            stmt = stmt.where(self._wm.is_not(None))
        if self.index_name and self.index_name != "PRIMARY":
            # MariaDB's optimizer prefers a full scan + filesort once the range
            # looks large (the first chunk, or a watermark far behind): measured
            # 50,001 rows read for a 5,000-row first chunk. Name the index.
            hint = "FORCE INDEX (`%s`)" % self.index_name.replace("`", "``")
            stmt = stmt.with_hint(self.table, hint, dialect_name="mysql").with_hint(self.table, hint, dialect_name="mariadb")
        return stmt.order_by(self._wm, *self._pk).limit(limit)

    def read_chunk(self, engine: Engine, cursor: Cursor | None, limit: int, until: datetime | None = None) -> list[SourceRow]:
        stmt = self.chunk_query(cursor, limit, until)
        with engine.connect() as conn:
            result = conn.execute(stmt).mappings().all()
        out = []
        wm, pk = self.spec.watermark, self.spec.primary_key
        for r in result:
            ts = datetime.fromisoformat(iso_seoul(r[wm]))
            out.append(SourceRow(values=dict(r), ts=ts, pk=tuple(r[k] for k in pk)))
        return out


def _after(cols: Sequence[sa.ColumnElement], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """(c1, c2, …) > (v1, v2, …) written out as ORs the MariaDB range optimizer understands."""
    if len(cols) == 1:
        return cols[0] > values[0]
    return sa.or_(cols[0] > values[0], sa.and_(cols[0] == values[0], _after(cols[1:], values[1:])))


def describe(engine: Engine, spec: TableSpec) -> TableReader:
    """Reflect the source table's column list (not its data) and check the allow-list against it."""
    md = sa.MetaData()
    try:
        table = sa.Table(spec.name, md, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise SourceTableError(
            f"table {spec.name!r} from [tables.{spec.name}] does not exist at the source — "
            f"fix the name or remove the section"
        ) from None
    missing = [c for c in (*spec.column_names, *spec.primary_key) if c not in table.c]
    if spec.watermark and spec.watermark not in table.c:
        missing.append(spec.watermark)
    if missing:
        raise SourceTableError(
            f"table {spec.name!r}: column(s) {', '.join(sorted(set(missing)))} listed in pipeline.toml "
            f"are not in the source table — fix [tables.{spec.name}]"
        )
    wm_type = table.c[spec.watermark].type
    sqlite = engine.dialect.name == "sqlite"
    is_text = sqlite or not isinstance(wm_type, (sa.DateTime, sa.Date))
    return TableReader(spec, table, watermark_is_text=is_text, index_name=watermark_index(engine, spec), raw_temporal=sqlite)


def watermark_index(engine: Engine, spec: TableSpec) -> str | None:
    """Name of an index whose first column is the watermark column, or None."""
    insp = sa.inspect(engine)
    for ix in insp.get_indexes(spec.name):
        cols = ix.get("column_names") or []
        if cols and cols[0] == spec.watermark:
            return ix.get("name") or "(unnamed)"
    pk = insp.get_pk_constraint(spec.name).get("constrained_columns") or []
    if pk and pk[0] == spec.watermark:
        return "PRIMARY"
    return None


def row_to_envelope_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_json_value(v) for k, v in values.items()}
