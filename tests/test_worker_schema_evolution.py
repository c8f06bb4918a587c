"""New fields add columns; values that no longer fit widen the column. Nothing is dead-lettered for it."""

from __future__ import annotations

from ingest.envelope import encode_envelope, encode_key
from tests.ingest_helpers import create_topics, produce, read_only, run_worker, ts

TABLES = """
[tables.payments]
primary_key = ["payment_id"]
"""


def _send(broker, topic_prefix, rows):
    topic = f"{topic_prefix}.payments"
    produce(broker.bootstrap, [
        (topic, encode_key({"payment_id": r["payment_id"]}),
         encode_envelope("payments", "upsert", {"payment_id": r["payment_id"]}, r, ts(i), ts(i)))
        for i, r in enumerate(rows)
    ])


def _columns(con) -> dict[str, str]:
    return dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema='main' AND table_name='payments'"
    ).fetchall())


def test_new_field_adds_a_column_and_types_widen_instead_of_failing(broker, write_config, topic_prefix, tmp_path):
    create_topics(broker.bootstrap, [f"{topic_prefix}.payments"])
    config = write_config(tables=TABLES)
    warehouse = tmp_path / "warehouse.duckdb"

    _send(broker, topic_prefix, [{"payment_id": i, "amount": 1000 + i} for i in range(100)])
    assert run_worker(config, "--until-idle").returncode == 0
    con = read_only(warehouse)
    assert _columns(con)["amount"] == "INTEGER"
    con.close()

    # A field appears mid-stream, and the integer column receives a float…
    _send(broker, topic_prefix, [{"payment_id": 100 + i, "amount": 2.5 + i, "channel": "card"} for i in range(50)])
    assert run_worker(config, "--until-idle").returncode == 0
    con = read_only(warehouse)
    assert _columns(con)["amount"] == "DOUBLE"
    assert _columns(con)["channel"] == "VARCHAR"
    con.close()

    # …and then a string.
    _send(broker, topic_prefix, [{"payment_id": 200, "amount": "1,000원", "channel": "bank"}])
    done = run_worker(config, "--until-idle")
    assert done.returncode == 0

    con = read_only(warehouse)
    try:
        assert con.execute("SELECT count(*) FROM _meta.dead_letters").fetchone()[0] == 0
        assert _columns(con)["amount"] == "VARCHAR"
        rows = dict(con.execute("SELECT payment_id, amount FROM live.payments").fetchall())
        assert len(rows) == 151
        assert float(rows[5]) == 1005 and float(rows[110]) == 12.5 and rows[200] == "1,000원"
        assert con.execute("SELECT count(*) FROM live.payments WHERE payment_id < 100 AND channel IS NULL").fetchone()[0] == 100
        changes = con.execute("SELECT column_name, change, old_type, new_type FROM _meta.schema_changes ORDER BY batch_id").fetchall()
    finally:
        con.close()
    assert (None, "create_table", None, None) in changes
    assert ("channel", "add_column", None, "VARCHAR") in changes
    assert ("amount", "widen", "INTEGER", "DOUBLE") in changes
    assert ("amount", "widen", "DOUBLE", "VARCHAR") in changes
    assert "schema: payments.amount: widen DOUBLE→VARCHAR" in done.stderr
