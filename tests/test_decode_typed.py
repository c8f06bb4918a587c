"""Declared column types: schema records, values checked against them, and the reasons people read.

The decode stage runs on a real in-memory DuckDB here; the landing on a real
DuckDB file. Expectations come from the values the test sends.
"""

from __future__ import annotations

import json
from decimal import Decimal

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.batch import Message, raw_batch
from ingest.config import TableSpec
from ingest.decode import Decoder
from ingest.decode_sql import fits
from ingest.envelope import Rejected, decode_schema, encode_schema_record
from ingest.landing import Heartbeat, declared_columns, ensure_meta, land_batch
from ingest.schema import misfit_reason, parse_declared_type, value_fits
from tests.ingest_helpers import BASE_TS

TOPIC, TABLE = "p.items", "items"
DECLARED = {
    "item_id": "BIGINT", "price": "DECIMAL(10,2)", "qty": "INTEGER", "day": "DATE",
    "at": "TIMESTAMP WITH TIME ZONE", "name": "VARCHAR", "ok": "BOOLEAN", "ratio": "DOUBLE", "t": "TIME",
}
GOOD = {"item_id": 1, "price": "1234.50", "qty": 3, "day": "2026-11-01", "at": "2026-11-01T10:00:00+09:00",
        "name": "커피", "ok": True, "ratio": 0.25, "t": "09:30:00"}


def envelope(row: dict, key: int = 1, ts: str = "2026-11-01T10:00:00+09:00") -> bytes:
    return json.dumps({"table": TABLE, "op": "upsert", "pk": {"item_id": key}, "row": {**row, "item_id": key},
                       "source_ts": ts, "v": 1}, ensure_ascii=False).encode()


def schema_record(columns: dict = DECLARED) -> bytes:
    return encode_schema_record(TABLE, ["item_id"], columns, "2026-11-01T10:00:00+09:00")


def decode(values: list[bytes], mode: str | None = None, declared: dict | None = None):
    spec = TableSpec(TABLE, ("item_id",), on_type_mismatch=mode)
    decoder = Decoder({TABLE: spec}, {TOPIC: TABLE})
    if declared:
        decoder.know_declared({TABLE: declared})
    try:
        (topic,) = decoder.decode_batch(raw_batch([Message(TOPIC, 0, i, None, v) for i, v in enumerate(values)])).topics
        return topic, decoder.declared.get(TABLE)
    finally:
        decoder.close()


def reasons(topic) -> dict[int, str]:
    if topic.dead_letters is None:
        return {}
    return dict(zip(topic.dead_letters.column("offset").to_pylist(), topic.dead_letters.column("reason").to_pylist()))


def test_a_schema_record_declares_the_types_the_batch_is_checked_against():
    bad = [
        ({"qty": "1,000원"}, "qty: '1,000원' is not INTEGER"),
        ({"qty": 1.5}, "qty: 1.5 is not INTEGER"),
        ({"qty": 2**40}, f"qty: {2**40} is not INTEGER"),
        ({"price": "12.345"}, "price: '12.345' is not DECIMAL(10,2)"),
        ({"price": "123456789.5"}, "price: '123456789.5' is not DECIMAL(10,2)"),
        ({"day": "inf"}, "day: 'inf' is not DATE"),
        ({"at": "2026-11-01 10:00:00"}, "at: '2026-11-01 10:00:00' is not TIMESTAMP WITH TIME ZONE (expected ISO-8601"),
        ({"ok": "yes"}, "ok: 'yes' is not BOOLEAN"),
        ({"ratio": "NaN"}, "ratio: 'NaN' is not DOUBLE"),
        ({"ratio": [1, 2]}, "ratio: [1,2] is not DOUBLE"),
        ({"t": "24:00:00"}, "t: '24:00:00' is not TIME"),
    ]
    values = [schema_record(), envelope(GOOD, key=1)]
    values += [envelope({**GOOD, **row}, key=10 + i) for i, (row, _) in enumerate(bad)]
    topic, declared = decode(values)
    assert declared == DECLARED and topic.schema is not None and topic.schema.columns == DECLARED
    got = reasons(topic)
    for i, (_, reason) in enumerate(bad):
        assert reason in got[2 + i], (reason, got[2 + i])
    assert topic.valid == 1 and len(got) == len(bad)  # the schema record is no change and no dead letter
    assert topic.incoming["price"] == "DECIMAL(10,2)" and topic.incoming["qty"] == "INTEGER"


def test_widen_mode_keeps_the_value_and_widens_the_column():
    topic, _ = decode([schema_record(), envelope({**GOOD, "qty": "1,000원"})], mode="widen")
    assert topic.rejected == 0 and topic.incoming["qty"] == "VARCHAR"


def test_without_types_columns_are_inferred_as_before():
    topic, declared = decode([envelope({**GOOD, "qty": "1,000원"})])
    assert declared is None and topic.rejected == 0 and topic.incoming["qty"] == "VARCHAR"


@pytest.mark.parametrize("columns, reason", [
    ({"item_id": "BIGINT", "x": "MONEY"}, "has type 'MONEY', which the warehouse does not know"),
    ({"item_id": "BIGINT", "a\x00b": "INTEGER"}, "column name 'a\\x00b' is not usable"),
    ({"price": "DECIMAL(10,2)"}, "declares no type for key column(s) ['item_id']"),
    ({"item_id": "DECIMAL(60,2)"}, "DECIMAL(60,2)"),
])
def test_a_bad_schema_record_is_a_dead_letter_with_its_reason(columns, reason):
    topic, declared = decode([schema_record(columns), envelope({"item_id": 1})])
    assert declared is None
    assert reason in reasons(topic)[0]
    with pytest.raises(Rejected, match="schema record"):
        decode_schema(schema_record(columns), TABLE, ["item_id"])


def test_declared_types_create_the_columns_and_are_remembered(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_meta(con)
    spec = TableSpec(TABLE, ("item_id",))
    decoder = Decoder({TABLE: spec}, {TOPIC: TABLE})
    msgs = [Message(TOPIC, 0, 0, None, schema_record()), Message(TOPIC, 0, 1, None, envelope(GOOD))]
    land_batch(con, decoder.decode_batch(raw_batch(msgs)), Heartbeat("w", BASE_TS, "running", 1, "h", 0), [], BASE_TS)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'main' AND table_name = 'items'").fetchall())
    assert {c: types[c] for c in DECLARED} == {**DECLARED, "price": "DECIMAL(10,2)"}
    row = con.execute("SELECT price, qty, day::VARCHAR, name, ok, t::VARCHAR FROM main.items").fetchone()
    assert row == (Decimal("1234.50"), 3, "2026-11-01", "커피", True, "09:30:00")
    assert declared_columns(con) == {TABLE: DECLARED}
    # A migration at the source widens a column: the next schema record alters it.
    wider = {**DECLARED, "qty": "BIGINT", "price": "DECIMAL(12,2)"}
    msgs = [Message(TOPIC, 0, 2, None, schema_record(wider)), Message(TOPIC, 0, 3, None, envelope({**GOOD, "qty": 2**40}))]
    result = land_batch(con, decoder.decode_batch(raw_batch(msgs)), Heartbeat("w", BASE_TS, "running", 1, "h", 0), [], BASE_TS)
    assert result.dead_letters == 0
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'main' AND table_name = 'items'").fetchall())
    assert types["qty"] == "BIGINT" and types["price"] == "DECIMAL(12,2)"
    changes = con.execute("SELECT column_name, change, old_type, new_type FROM _meta.schema_changes "
                          "WHERE change IN ('declare', 'widen') AND column_name = 'qty' ORDER BY batch_id, change").fetchall()
    assert ("qty", "declare", "INTEGER", "BIGINT") in changes and ("qty", "widen", "INTEGER", "BIGINT") in changes
    decoder.close()
    con.close()


TYPES = ["BOOLEAN", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "DECIMAL(10,2)", "DECIMAL(5,0)",
         "DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "VARCHAR"]
values = st.one_of(
    st.none(), st.booleans(), st.integers(-2**130, 2**130), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1", "-0", "1.5", "1.50", "007.10", "1e3", "0x10", " 12", "+5", "1,000", "NaN", "inf", "true",
                     "2026-11-01", "2026-02-30", "2026-11-01 10:00:00", "2026-11-01T10:00:00+09:00",
                     "2026-11-01T10:00:00Z", "10:00", "23:59:59.5", "24:00:00", "99999999.99", "100000000.00"]),
    st.text(max_size=6), st.just([1]), st.just({"a": 1}),
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(values, st.sampled_from(TYPES)), min_size=1, max_size=30))
def test_python_and_duckdb_agree_on_what_fits(cases):
    """`schema.value_fits` (the contract) and `decode_sql.fits` (what the worker runs) give the same verdicts."""
    con = duckdb.connect()
    try:
        for value, type_ in cases:
            snippet = json.dumps(value, ensure_ascii=False)
            text = ("CASE WHEN left($s, 1) = '\"' THEN $s::JSON->>'$' ELSE $s END")
            cond = fits(text, type_)
            in_sql = True if value is None or cond is None else con.execute(f"SELECT coalesce({cond}, false)", {"s": snippet}).fetchone()[0]
            assert in_sql == value_fits(value, type_), (value, type_, in_sql, misfit_reason("c", value, type_))
    finally:
        con.close()


def test_declared_type_spellings():
    assert parse_declared_type("decimal(12, 2)") == "DECIMAL(12,2)"
    assert parse_declared_type("TIMESTAMPTZ") == "TIMESTAMP WITH TIME ZONE"
    assert parse_declared_type("int8") == "BIGINT"
    for bad in ("TEXT", "DECIMAL(39,2)", "DECIMAL(5,6)", "VARCHAR; DROP TABLE x", 5, None):
        assert parse_declared_type(bad) is None
