"""Exporter against a real MariaDB: index-friendly reads, the demo schema, late commits, a kill.

MariaDB is what production runs; these tests use the same SQL the exporter
sends (compiled from `ingest.source`), never a hand-written copy of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from ingest.config import ColumnSpec, TableSpec
from ingest.export import run_exporter
from ingest.simulate import PII_COLUMNS, create_demo_schema, seed_history
from ingest.source import SEOUL, Cursor, describe
from tests.fixtures_export import HASH_KEY, LEDGER, export_env, latest_by_key, load, read_topic, run_export_cli

pytestmark = pytest.mark.mariadb

TABLES = ("members", "cards", "merchants", "topups", "payments", "refunds")
HANDLER_READS = ("Handler_read_first", "Handler_read_key", "Handler_read_last", "Handler_read_next",
                 "Handler_read_prev", "Handler_read_rnd", "Handler_read_rnd_next")


def rows_examined(conn, sql: str, params) -> int:
    """Rows the storage engine handed to the server for one statement (handler counters)."""
    conn.exec_driver_sql("FLUSH STATUS")
    conn.exec_driver_sql(sql, params).fetchall()
    status = dict(conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Handler_read%%'").fetchall())
    return sum(int(status[k]) for k in HANDLER_READS)


PAYMENTS_SPEC = TableSpec(
    name="payments", primary_key=("payment_id",), watermark="updated_at",
    columns=tuple(ColumnSpec(c) for c in ("payment_id", "card_id", "merchant_id", "amount_krw", "status",
                                          "created_at", "cancelled_at", "updated_at")),
)


def test_chunk_query_is_a_range_scan_of_the_watermark_index(mariadb_url):
    engine = sa.create_engine(mariadb_url)
    create_demo_schema(engine)
    with engine.begin() as conn:
        # 60,000 payments, three per second (ties on updated_at, told apart by the pk).
        conn.exec_driver_sql("""
            INSERT INTO payments (payment_id, card_id, merchant_id, amount_krw, status, created_at, updated_at)
            SELECT seq, MOD(seq, 1000) + 1, MOD(seq, 50) + 1, 1000 + MOD(seq, 7) * 100, 'approved',
                   TIMESTAMP'2026-11-01 00:00:00' + INTERVAL (seq DIV 3) SECOND,
                   TIMESTAMP'2026-11-01 00:00:00' + INTERVAL (seq DIV 3) SECOND
            FROM seq_1_to_60000""")
        conn.exec_driver_sql("ANALYZE TABLE payments")
    reader = describe(engine, PAYMENTS_SPEC)
    middle = datetime(2026, 11, 1, tzinfo=SEOUL) + timedelta(seconds=30_000 // 3)
    with engine.connect() as conn:
        start = datetime(2026, 11, 1, tzinfo=SEOUL)
        # Mid-table keyset, overlap re-read (inclusive), a watermark far behind, and the very first chunk:
        # the last two are where the optimizer would pick a full scan + filesort if left alone.
        for cursor, first_id in ((Cursor(middle, (30_000,)), 30_001), (Cursor(middle, None), 30_000),
                                 (Cursor(start, (2,)), 3), (None, 1)):
            compiled = reader.chunk_query(cursor, 1000).compile(engine)
            sql, params = str(compiled), compiled.params
            plan = conn.exec_driver_sql("EXPLAIN " + sql, params).mappings().all()
            assert len(plan) == 1, plan
            assert plan[0]["key"] == "ix_payments_updated_at", plan
            assert plan[0]["type"] == ("index" if cursor is None else "range"), plan
            assert "filesort" not in (plan[0]["Extra"] or "").lower(), plan
            rows = conn.exec_driver_sql(sql, params).fetchall()
            assert len(rows) == 1000 and rows[0][0] == first_id
            assert rows_examined(conn, sql, params) <= 1.1 * 1000
        # Negative control: the row-value form the exporter avoids scans the table (docs/design.md "Traps").
        naive = ("SELECT payment_id FROM payments WHERE (updated_at, payment_id) > (%(ts)s, %(pk)s) "
                 "ORDER BY updated_at, payment_id LIMIT 1000")
        assert rows_examined(conn, naive, {"ts": middle.replace(tzinfo=None), "pk": 30_000}) > 10_000
    engine.dispose()


def expected_row(spec, row: dict) -> dict:
    """The envelope row computed here from a source row: allow-list, HMAC, Seoul ISO timestamps."""
    out = {}
    for col in spec.columns:
        v = row[col.name]
        if col.hash and v is not None:
            v = hmac.new(HASH_KEY.encode(), str(v).encode(), hashlib.sha256).hexdigest()
        elif isinstance(v, datetime):
            v = v.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+09:00"
        elif isinstance(v, date):
            v = v.isoformat()
        out[col.name] = v
    return out


def test_demo_schema_exported_from_mariadb_without_personal_data(mariadb_url, export_config, broker):
    engine = sa.create_engine(mariadb_url)
    create_demo_schema(engine)
    seed_history(engine, members_count=150, days=5, seed=9)
    source, personal = {}, []
    with engine.connect() as conn:
        for t in TABLES:
            source[t] = [dict(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t}").mappings()]
        for t, cols in PII_COLUMNS.items():
            for r in source[t]:
                personal += [str(r[c]) for c in cols if c != "birth_date"]
    engine.dispose()
    cfg = load(export_config(mariadb_url, chunk_rows=300))
    assert run_exporter(cfg, once=True, reset_watermarks=False) == 0

    everything = b""
    for t in TABLES:
        spec = cfg.tables[t]
        records = read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for(t), expect=len(source[t]))
        everything += b"\n".join(r.key + b"\t" + r.value for r in records)
        got = {k: v["row"] for k, v in latest_by_key(records).items()}
        want = {}
        for r in source[t]:
            row = expected_row(spec, r)
            want[orjson.dumps({k: row[k] for k in spec.primary_key}, option=orjson.OPT_SORT_KEYS)] = row
        assert got == want, f"{t}: exported rows differ from the source"
        deletes = [orjson.loads(r.value) for r in records if orjson.loads(r.value)["op"] == "delete"]
        if spec.soft_delete:
            assert len(deletes) == sum(r[spec.soft_delete] is not None for r in source[t])
            assert all(d["source_ts"] == d["row"]["updated_at"] for d in deletes)
    assert source["merchants"][0]["merchant_name"].encode() in everything  # the scan sees allow-listed text
    for value in personal:
        assert value.encode() not in everything, "a personal value reached Kafka"


@pytest.mark.parametrize("overlap, arrives", [(5, True), (0, False)], ids=["overlap-5s", "no-overlap-control"])
def test_late_commit_arrives_through_the_overlap_window(mariadb_url, export_config, broker, overlap, arrives):
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INT PRIMARY KEY, amount_krw INT NOT NULL, "
                             "updated_at DATETIME(6) NOT NULL, INDEX ix_ledger_updated_at (updated_at, entry_id))")
        conn.exec_driver_sql("INSERT INTO ledger VALUES (1, 100, NOW(6) - INTERVAL 30 SECOND), (2, 200, NOW(6) - INTERVAL 20 SECOND)")
    cfg = load(export_config(mariadb_url, tables=LEDGER, overlap_seconds=overlap))
    late = engine.connect()
    tx = late.begin()
    late.exec_driver_sql("INSERT INTO ledger VALUES (99, 9900, NOW(6) - INTERVAL 1 SECOND)")  # stamped, not committed
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ledger VALUES (3, 300, NOW(6))")  # newer, committed first
    assert run_exporter(cfg, once=True, reset_watermarks=False) == 0
    tx.commit()
    late.close()
    assert run_exporter(cfg, once=True, reset_watermarks=False) == 0
    keys = {orjson.loads(r.key)["entry_id"] for r in read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for("ledger"))}
    assert {1, 2, 3} <= keys
    assert (99 in keys) is arrives
    engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("point, expect_messages", [("after_chunk", 5000), ("before_save", 6000)])
def test_killed_after_second_chunk_loses_nothing(mariadb_url, export_config, broker, tmp_path, point, expect_messages):
    """5,000 rows with one updated_at, a composite key, chunks of 1,000; SIGKILL at the second chunk."""
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE shop_sales (shop_id INT NOT NULL, sale_no INT NOT NULL, amount_krw INT NOT NULL, "
                             "updated_at DATETIME(6) NOT NULL, PRIMARY KEY (shop_id, sale_no), "
                             "INDEX ix_shop_sales_updated_at (updated_at, shop_id, sale_no))")
        conn.exec_driver_sql("INSERT INTO shop_sales SELECT MOD(seq, 7), seq, seq * 10, TIMESTAMP'2026-11-24 10:00:00' "
                             "FROM seq_1_to_5000")
    engine.dispose()
    all_keys = sorted((n % 7, n) for n in range(1, 5001))
    tables = """
[tables.shop_sales]
primary_key = ["shop_id", "sale_no"]
watermark = "updated_at"
[tables.shop_sales.columns]
shop_id = "shop"
sale_no = "sale"
amount_krw = "amount"
updated_at = "changed"
"""
    # No overlap: the restart must continue exactly at (updated_at, shop_id, sale_no) through the ties.
    config = export_config(mariadb_url, tables=tables, chunk_rows=1000, overlap_seconds=0)
    cfg = load(config)
    killed = run_export_cli(config, "--once", env=export_env(EXPORT_FAILPOINT=f"{point}:2"))
    assert killed.returncode == -9, killed.stderr
    state = json.loads(cfg.exporter.state_path.read_text()) if cfg.exporter.state_path.exists() else {"tables": {}}
    saved = state["tables"].get("shop_sales")
    if point == "after_chunk":
        assert tuple(saved["pk"]) == all_keys[1999]  # two chunks acknowledged, and recorded
    else:
        assert tuple(saved["pk"]) == all_keys[999]  # the second chunk was acknowledged but not recorded
    done = run_export_cli(config, "--once")
    assert done.returncode == 0, done.stderr
    records = read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for("shop_sales"), expect=expect_messages)
    keys = {(k["shop_id"], k["sale_no"]) for k in (orjson.loads(r.key) for r in records)}
    assert keys == set(all_keys)
    assert len(records) == expect_messages  # re-sent only what was not recorded
