"""The worker checks envelopes inside DuckDB; `envelope.decode` is the contract in Python.

Both must accept and reject exactly the same messages — checked on messages
hypothesis generates from valid envelopes with one thing broken at a time.
"""

from __future__ import annotations

import json

import duckdb
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.batch import Message, raw_batch
from ingest.envelope import Rejected, case_variant_reason, decode
from ingest.identifiers import is_column_name
from ingest.decode import check_topic

TABLE, TOPIC = "orders", "p.orders"
MAX_BYTES = 4096  # a small limit, so that sizes around it are cheap to generate

def nested(depth: int):
    value: object = 1
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


scalars = st.one_of(st.integers(-2**70, 2**70), st.text(max_size=8), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False), st.just({"nested": 1}), st.just([1, 2]),
                    st.sampled_from([1e308, -0.0, "NaN", "[[[[{{{{", nested(32), nested(33), nested(80)]),
                    st.just([[i] for i in range(40)]))  # more brackets than the depth limit, yet shallow
timestamps = st.one_of(
    st.sampled_from(["2026-11-24T10:00:00+09:00", "2026-11-24 10:00:00.123456+09:00", "2026-11-24T01:00:00Z",
                     "2026-11-24T10:00+0900", "2026-11-24T10:00:00", "2026-11-24", "yesterday", "2026-13-45T10:00:00+09:00", ""]),
    st.text(max_size=12),
)
column_names = st.one_of(st.sampled_from(["amount", "note", "a1", "_hidden", "1abc", "a b", "x-y", "é",
                                          "Amount", "NOTE", "ORDER_ID", "Card_Id",  # other spellings of columns
                                          "a\x00b", "a'b", 'a"b', "a\\b", "a\nb", "\u200fabc", "😀", "x" * 300, "",
                                          "_deleted", "금액", "가" * 63, "가" * 64, "select"]),
                         st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True))


@st.composite
def envelopes(draw, primary_key):
    pk = {c: draw(st.one_of(st.integers(-10**12, 10**12), st.text(min_size=1, max_size=6))) for c in primary_key}
    row = dict(pk)
    for _ in range(draw(st.integers(0, 3))):
        row[draw(column_names)] = draw(scalars)
    env = {"table": TABLE, "op": draw(st.sampled_from(["upsert", "delete"])), "pk": pk, "row": row,
           "source_ts": "2026-11-24T10:00:00+09:00", "exported_at": "2026-11-24T10:00:05+09:00", "v": 1}
    breakage = draw(st.sampled_from(["none", "none", "drop", "retype", "op", "v", "table", "pk_keys", "pk_value",
                                     "row_none", "row_pk", "ts", "not_object", "bytes", "empty", "big", "twice"]))
    if breakage == "drop":
        env.pop(draw(st.sampled_from(sorted(env))))
    elif breakage == "retype":
        env[draw(st.sampled_from(sorted(env)))] = draw(scalars)
    elif breakage == "op":
        env["op"] = draw(st.sampled_from(["merge", "UPSERT", "", "delete"]))
    elif breakage == "v":
        env["v"] = draw(st.sampled_from([0, 2, "1", 1.0, 1]))
    elif breakage == "table":
        env["table"] = draw(st.sampled_from(["cards", "Orders", TABLE]))
    elif breakage == "pk_keys":
        env["pk"] = draw(st.sampled_from([{}, {"other": 1}, {**pk, "extra": 2}]))
    elif breakage == "pk_value":
        env["pk"] = {**pk, primary_key[0]: draw(scalars)}
    elif breakage == "row_none":
        env["row"] = None
    elif breakage == "row_pk":
        env["row"] = {**row, primary_key[-1]: draw(scalars)}
    elif breakage == "ts":
        env["source_ts"] = draw(timestamps)
    if breakage == "not_object":
        return json.dumps(draw(st.sampled_from([[env], "text", 3, None]))).encode()
    if breakage == "bytes":
        return draw(st.sampled_from([b"\xff\xfe{}", b"{not json", b"  ", b"{\"table\": }"]))
    if breakage == "empty":
        return draw(st.sampled_from([b"", None]))
    text = json.dumps(env, ensure_ascii=False)
    if breakage == "big":  # over the size limit, or just under it
        env["row"] = {**(env.get("row") or {}), "note": "x" * (MAX_BYTES - len(text) + draw(st.sampled_from([-40, 40])))}
        text = json.dumps(env, ensure_ascii=False)
    if breakage == "twice" and isinstance(env.get("row"), dict) and env["row"]:
        first = next(iter(env["row"]))
        text = text.replace('"row": {', '"row": {' + json.dumps(first) + ": 0, ", 1)
    return text.encode()


def sql_verdicts(values: list[bytes | None], primary_key: tuple[str, ...], columns: dict | None = None) -> list[str | None]:
    """The worker's verdicts: the cheap test, then the full chain for what it did not clear.

    `columns` is what the table already holds (it decides which fields are read up front).
    """
    batch = raw_batch([Message(TOPIC, 0, i, None, v) for i, v in enumerate(values)])
    con = duckdb.connect()
    try:
        con.register("_raw", batch.records)
        check_topic(con, TOPIC, TABLE, primary_key, columns or {}, max_bytes=MAX_BYTES)
        return [r for (r,) in con.execute('SELECT reason FROM _parsed ORDER BY "offset"').fetchall()]
    finally:
        con.close()


def python_verdict(value: bytes | None, primary_key: tuple[str, ...], spelling: dict[str, str] | None = None) -> str | None:
    """`envelope.decode`, plus the one rule that needs the batch: `spelling` (lower-cased name → the
    column's spelling, from the table and then the batch) refuses a field spelled another way."""
    try:
        change = decode(value, TABLE, primary_key, 0, 0, max_bytes=MAX_BYTES)
    except Rejected as exc:
        return str(exc)
    for name in change.row or {}:
        if spelling is not None and spelling[name.lower()] != name:
            return case_variant_reason(name, spelling[name.lower()])
    return None


def batch_spelling(values: list[bytes | None], primary_key: tuple[str, ...], columns: dict) -> dict[str, str]:
    """Each name's one spelling: the table's, else the first in the batch — every message's row counts."""
    spelling = {c.lower(): c for c in [*primary_key, *columns]}
    for value in values:
        try:
            env = json.loads(value) if value else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        row = env.get("row") if isinstance(env, dict) else None
        for name in row if isinstance(row, dict) else ():
            if is_column_name(name):
                spelling.setdefault(name.lower(), name)
    return spelling


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_duckdb_checks_and_python_decode_agree(data):
    primary_key = data.draw(st.sampled_from([("order_id",), ("card_id", "day")]))
    values = data.draw(st.lists(envelopes(primary_key), min_size=1, max_size=40))
    # A table that does not exist yet, or one whose columns are already known.
    columns = data.draw(st.sampled_from([{}, {"amount": "BIGINT", "note": "VARCHAR", "a1": "DOUBLE"}]))
    in_sql = sql_verdicts(values, primary_key, {**dict.fromkeys(primary_key, "VARCHAR"), **columns} if columns else {})
    spelling = batch_spelling(values, primary_key, columns)
    for value, s in zip(values, in_sql):
        p = python_verdict(value, primary_key, spelling)
        assert (s is None) == (p is None), f"{value!r}: DuckDB says {s!r}, Python says {p!r}"


def test_reasons_are_the_same_kind_of_sentence():
    cases = {
        b"\xff": "not valid JSON",
        b"[1]": "not an envelope",
        b'{"table": "orders"}': "not an envelope",
        orjson.dumps({"table": "cards", "op": "upsert", "pk": {"order_id": 1}, "row": {"order_id": 1},
                      "source_ts": "2026-11-24T10:00:00+09:00", "v": 1}): "names table 'cards'",
        orjson.dumps({"table": "orders", "op": "upsert", "pk": {"id": 1}, "row": {"id": 1},
                      "source_ts": "2026-11-24T10:00:00+09:00", "v": 1}): "primary_key is ['order_id']",
        orjson.dumps({"table": "orders", "op": "upsert", "pk": {"order_id": 1.5}, "row": None,
                      "source_ts": "2026-11-24T10:00:00+09:00", "v": 1}): "not coercible",
        orjson.dumps({"table": "orders", "op": "upsert", "pk": {"order_id": 1}, "row": {"order_id": 2},
                      "source_ts": "2026-11-24T10:00:00+09:00", "v": 1}): "row says order_id=2 but pk says order_id=1",
        orjson.dumps({"table": "orders", "op": "upsert", "pk": {"order_id": 1}, "row": {"order_id": 1},
                      "source_ts": "2026-11-24T10:00:00", "v": 1}): "with a time zone",
        orjson.dumps({"table": "orders", "op": "upsert", "pk": {"order_id": 1}, "row": {"order_id": 1, "Order_Id": 1},
                      "source_ts": "2026-11-24T10:00:00+09:00", "v": 1}): "'Order_Id' differs from 'order_id' only in case",
    }
    values = list(cases)
    for value, reason in zip(values, sql_verdicts(values, ("order_id",))):
        assert cases[value] in reason, (value, reason)
        assert cases[value] in python_verdict(value, ("order_id",))
