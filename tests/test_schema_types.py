"""Column types: inferred from JSON values, only ever widened — in Python and in DuckDB alike."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.batch import Message, raw_batch
from ingest.config import TableSpec
from ingest.decode import Decoder
from ingest.schema import (
    BIGINT, BOOLEAN, DATE, DOUBLE, INTEGER, TIMESTAMP, TIMESTAMPTZ, VARCHAR, KNOWN_TYPES,
    column_type, plan_columns, value_type, widen,
)

types = st.sampled_from(sorted(KNOWN_TYPES))
values = st.one_of(
    st.none(), st.booleans(), st.integers(-2**65, 2**65), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["2026-11-24T10:00:00+09:00", "2026-11-24T10:00:00.5Z", "2026-11-24", "2026-11-24 10:00:00",
                     "plain text", "", "12", {"a": 1}, [1, 2]]),
    st.text(max_size=5),
)


@given(types, types)
def test_widen_is_commutative_and_never_narrows(a, b):
    w = widen(a, b)
    assert w == widen(b, a)
    assert widen(w, a) == w and widen(w, b) == w  # both fit in the result


@given(types, types, types)
def test_widen_is_associative(a, b, c):
    assert widen(widen(a, b), c) == widen(a, widen(b, c))


def test_the_documented_chains():
    assert widen(INTEGER, BIGINT) == BIGINT
    assert widen(BIGINT, DOUBLE) == DOUBLE
    assert widen(DOUBLE, VARCHAR) == VARCHAR
    assert widen(DATE, TIMESTAMP) == TIMESTAMP
    assert widen(TIMESTAMPTZ, DATE) == VARCHAR
    assert widen(BOOLEAN, INTEGER) == VARCHAR
    assert value_type(2**31) == BIGINT and value_type(2**63) == VARCHAR
    assert value_type("2026-11-24T10:00:00+09:00") == TIMESTAMPTZ and value_type("2026-11-24") == DATE


def test_existing_columns_only_widen():
    types_, changes = plan_columns({"a": INTEGER, "b": VARCHAR}, {"a": DOUBLE, "b": INTEGER, "c": None})
    assert types_ == {"a": DOUBLE, "b": VARCHAR, "c": VARCHAR}
    assert [(c.column, c.change) for c in changes] == [("a", "widen"), ("c", "add_column")]


def _duckdb_type(vals: list, known: dict[str, str]) -> str | None:
    """The type the decode stage's profile gives a field holding `vals`.

    `known`: the table's columns as the warehouse already has them (empty: a new table).
    """
    msgs = []
    for i, v in enumerate(vals):
        env = {"table": "t", "op": "upsert", "pk": {"id": i}, "row": {"id": i, "x": v},
               "source_ts": "2026-11-24T10:00:00+09:00", "v": 1}
        msgs.append(Message("p.t", 0, i, None, json.dumps(env).encode()))
    decoder = Decoder({"t": TableSpec("t", ("id",))}, {"p.t": "t"})
    decoder.know_columns({"t": known} if known else {})
    try:
        (topic,) = decoder.decode_batch(raw_batch(msgs)).topics
        assert topic.rejected == 0
        return topic.incoming["x"]
    finally:
        decoder.close()


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=12),
       st.sampled_from([{}, {"id": INTEGER, "x": INTEGER}, {"id": INTEGER, "x": TIMESTAMPTZ}]))
def test_duckdb_profile_and_python_inference_agree(vals, known):
    assert _duckdb_type(vals, known) == column_type(vals)
