"""What a row carries is what the warehouse holds: every JSON value, through the decode stage and the MERGE.

The decode stage reads values with `json_transform` and the landing casts them
to the column type the batch needed; these tests read the rows back and
compare them with the values the envelopes were made of.
"""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.config import TableSpec
from ingest.landing import ensure_meta
from ingest.identifiers import q
from ingest.decode import Decoder
from tests.ingest_helpers import land_upserts

TABLES = {"t": TableSpec("t", ("id",))}

columns = {
    "n": st.one_of(st.integers(-2**40, 2**40), st.none()),
    "x": st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                   st.text(max_size=6), st.just({"b": [1, "é"]}), st.none()),
    "f": st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(-10**6, 10**6)),
    "at": st.sampled_from(["2026-11-24T10:00:00+09:00", "2026-11-24 01:00:00.123456Z", "2026-11-23T23:59:59.5-05:00"]),
    "day": st.sampled_from(["2026-11-24", "2026-01-01"]),
    "s": st.text(max_size=8),
}


def _land(rows: list[dict], path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    ensure_meta(con)
    decoder = Decoder(TABLES, {"p.t": "t"})
    try:
        land_upserts(con, decoder, "t", "id", rows)
    finally:
        decoder.close()
    return con


def _same(column_type: str, stored, sent) -> bool:
    if sent is None:
        return stored is None
    if column_type == "VARCHAR":
        return stored == sent if isinstance(sent, str) else json.loads(stored) == sent
    if column_type in ("INTEGER", "BIGINT", "BOOLEAN"):
        return stored == sent
    if column_type == "DOUBLE":
        return stored == float(sent)
    if column_type == "TIMESTAMP WITH TIME ZONE":
        return stored == datetime.fromisoformat(sent.replace("Z", "+00:00"))
    if column_type == "DATE":
        return stored == date.fromisoformat(sent)
    raise AssertionError(f"unexpected column type {column_type}")


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries(columns), min_size=1, max_size=20))
def test_every_value_reads_back_as_it_was_sent(tmp_path, rows):
    rows = [{"id": i, **r} for i, r in enumerate(rows)]
    path = tmp_path / f"w{abs(hash(json.dumps(rows, default=str)))}.duckdb"
    con = _land(rows, path)
    try:
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'").fetchall())
        names = list(columns)
        stored = {r[0]: r[1:] for r in con.execute(
            f"SELECT id, {', '.join(q(n) for n in names)} FROM t ORDER BY id").fetchall()}
    finally:
        con.close()
    assert len(stored) == len(rows)
    for row in rows:
        for name, value in zip(names, stored[row["id"]]):
            assert _same(types[name], value, row[name]), f"{name} ({types[name]}): sent {row[name]!r}, stored {value!r}"


def test_a_row_without_a_field_the_table_has_stores_null_there(tmp_path):
    con = _land([{"id": 1, "a": 5, "b": "x"}, {"id": 2, "a": 6}], tmp_path / "w.duckdb")
    try:
        assert con.execute("SELECT id, a, b FROM t ORDER BY id").fetchall() == [(1, 5, "x"), (2, 6, None)]
    finally:
        con.close()
