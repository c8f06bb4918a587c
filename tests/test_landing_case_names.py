"""A field spelled like a column but for case is refused, never lands in the wrong place, never stops the worker.

DuckDB ignores case in column names (and in struct fields): before this rule,
one message carrying "Amount" for a table with "amount" made every landing of
its batch fail (ADD COLUMN "Amount": already exists), so the worker retried,
stopped, and stopped again after each restart.
"""

from __future__ import annotations

import duckdb

from ingest.config import TableSpec
from ingest.landing import ensure_meta
from ingest.decode import Decoder
from tests.ingest_helpers import land_upserts

TABLES = {"orders": TableSpec("orders", ("order_id",))}


class Landing:
    """Batches through the real decode stage into a real DuckDB file, offsets counted on."""

    def __init__(self, path):
        self.decoder = Decoder(TABLES, {"p.orders": "orders"})
        self.con = duckdb.connect(str(path))
        ensure_meta(self.con)
        self.offset = 0

    def land(self, *rows: dict):
        result = land_upserts(self.con, self.decoder, "orders", "order_id", list(rows), self.offset)
        self.offset += len(rows)
        self.decoder.know_columns(result.columns)
        return result

    def rows(self) -> list[tuple]:
        return self.con.execute("SELECT * EXCLUDE (_ingested_at, _source_ts, _deleted, _kafka_partition, _kafka_offset) "
                                "FROM orders ORDER BY order_id").fetchall()

    def dead_letters(self) -> list[tuple]:
        return self.con.execute('SELECT "offset", reason FROM _meta.dead_letters ORDER BY "offset"').fetchall()


def test_a_known_column_in_other_case_is_dead_lettered_and_the_next_batches_land(tmp_path):
    wh = Landing(tmp_path / "w.duckdb")
    wh.land({"order_id": 1, "amount": 100})
    result = wh.land({"order_id": 2, "Amount": 200}, {"order_id": 3, "amount": 300})
    assert (result.upserts, result.dead_letters, result.schema_changes) == (1, 1, [])
    wh.land({"order_id": 4, "amount": 400})
    assert wh.rows() == [(1, 100), (3, 300), (4, 400)]
    assert wh.dead_letters() == [(1, "row column name 'Amount' differs from 'amount' only in case "
                                     "(column names ignore case); send it as 'amount'")]


def test_within_a_batch_the_first_spelling_is_the_column(tmp_path):
    wh = Landing(tmp_path / "w.duckdb")
    wh.land({"order_id": 1, "note": "a"}, {"order_id": 2, "NOTE": "b"}, {"order_id": 3, "note": "c"})
    assert wh.rows() == [(1, "a"), (3, "c")]
    assert [o for o, _ in wh.dead_letters()] == [1]


def test_a_row_with_two_spellings_of_one_name_is_refused(tmp_path):
    wh = Landing(tmp_path / "w.duckdb")
    wh.land({"order_id": 1, "b": 1, "B": 2}, {"order_id": 2, "b": 3})
    assert wh.rows() == [(2, 3)]
    assert "'B' differs from 'b' only in case" in wh.dead_letters()[0][1]


def test_the_key_column_in_other_case_is_refused(tmp_path):
    wh = Landing(tmp_path / "w.duckdb")
    wh.land({"order_id": 1, "ORDER_ID": 1, "amount": 5}, {"order_id": 2, "amount": 6})
    assert wh.rows() == [(2, 6)]
    assert "send it as 'order_id'" in wh.dead_letters()[0][1]
