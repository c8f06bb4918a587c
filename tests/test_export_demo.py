"""Exporter on the demo source (SQLite): no personal data anywhere downstream, a faithful copy.

The whole pipeline runs for real: exporter → embedded broker → worker
subprocess → DuckDB file. Expectations come from the source database,
computed here, never from what the pipeline reports about itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest
import sqlalchemy as sa

from ingest.export import run_exporter
from ingest.simulate import PII_COLUMNS, tick
from ingest.source import SEOUL
from ingest.watermarks import WatermarkStore
from ingest.envelope import SCHEMA_KEY
from tests.fixtures_export import HASH_KEY, LEDGER, ROOT, export_env, latest_by_key, load, read_topic, run_export_cli
from tests.ingest_helpers import wait_for
from tests.pii_scan import file_bytes, find_in_text, find_in_warehouse

TABLES = ("members", "cards", "merchants", "topups", "payments", "refunds")


def run_worker_until_idle(config: Path) -> subprocess.CompletedProcess:
    env = export_env()
    env.pop("INGEST_FAILPOINT", None)
    return subprocess.run([sys.executable, "-m", "ingest", "worker", "--config", str(config), "--until-idle"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def all_messages(cfg, expect_counts: dict[str, int] | None = None) -> dict[str, list]:
    return {t: read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for(t),
                          expect=(expect_counts or {}).get(t), schema_records=True) for t in TABLES}


def source_rows(url: str, table: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table}").mappings()]
    engine.dispose()
    return rows


def plant_canaries(url: str) -> list[str]:
    """Every personal column of every row gets its own unique random string."""
    engine = sa.create_engine(url)
    canaries = []
    with engine.begin() as conn:
        for table, cols in PII_COLUMNS.items():
            pk = {"members": "member_id", "cards": "card_id", "merchants": "merchant_id"}[table]
            ids = [r[0] for r in conn.exec_driver_sql(f"SELECT {pk} FROM {table}")]
            for i in ids:
                values = {c: f"cnry{uuid.uuid4().hex[:16]}" for c in cols}
                canaries.extend(values.values())
                sets = ", ".join(f"{c} = :{c}" for c in cols)
                conn.execute(sa.text(f"UPDATE {table} SET {sets} WHERE {pk} = :id"), {**values, "id": i})
    engine.dispose()
    return canaries


@pytest.fixture
def sql_log():
    """Every statement any SQLAlchemy engine sends, to prove what the exporter reads."""
    seen: list[str] = []

    def remember(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", remember)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", remember)


def add_merchants(url: str, total: int) -> None:
    """Grow the merchants table to `total` rows shaped like the demo's ("…N호점" shop names, their categories).

    At a few thousand similar names DuckDB stores the column compressed: the
    size at which a byte search of the warehouse went blind (`tests/pii_scan.py`).
    """
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        templates = [dict(r) for r in conn.exec_driver_sql("SELECT * FROM merchants ORDER BY merchant_id").mappings()]
        first = max(t["merchant_id"] for t in templates) + 1
        rows = []
        for mid in range(first, total + 1):
            t = templates[mid % len(templates)]
            rows.append({**t, "merchant_id": mid, "merchant_name": re.sub(r"\d+호점$", f"{mid}호점", t["merchant_name"])})
        columns = list(templates[0])
        conn.execute(sa.text(f"INSERT INTO merchants ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"), rows)
    engine.dispose()


MERCHANTS = 5_200  # ≥ 5,000: the negative control's marker sits in a compressed column
# Every planted value: canaries (personal values that must never arrive), the visible
# marker (allow-listed, must arrive), and the hash key (a secret, must never arrive).
PLANTED = rf"cnry[0-9a-f]{{16}}|vis[0-9a-f]{{16}}|{HASH_KEY}"


def test_whole_pipeline_carries_no_personal_data_and_reconciles(export_config, demo_sqlite, broker, caplog, sql_log, tmp_path):
    add_merchants(demo_sqlite, MERCHANTS)
    canaries = plant_canaries(demo_sqlite)
    engine = sa.create_engine(demo_sqlite)
    with engine.begin() as conn:
        # A column added to the source later is not in the allow-list: never read, never sent.
        conn.exec_driver_sql("ALTER TABLE payments ADD COLUMN internal_note TEXT")
        note = f"cnry{uuid.uuid4().hex[:16]}"
        conn.exec_driver_sql("UPDATE payments SET internal_note = ?", (note,))
        canaries.append(note)
        # Negative control: an allow-listed column carrying a marker, in one row of a 5,000+ row
        # table, must show up everywhere we scan — the scans can see what they are looking for.
        visible = f"vis{uuid.uuid4().hex[:16]}"
        conn.exec_driver_sql("UPDATE merchants SET merchant_name = ? WHERE merchant_id = ?",
                             (f"{visible} 직영점", MERCHANTS // 2))
    engine.dispose()
    assert len(canaries) > 3 * MERCHANTS and all(re.fullmatch(PLANTED, c) for c in canaries)

    config = export_config(demo_sqlite)
    cfg = load(config)
    # As `python -m ingest` does (ingest/cli.py): kafka-python's own DEBUG lines dump whole messages.
    # (The last set_level also sets the capturing handler's level, so the kafka one comes first.)
    caplog.set_level(logging.CRITICAL, logger="kafka")
    caplog.set_level(logging.DEBUG)
    assert run_exporter(cfg, once=True, reset_watermarks=False) == 0
    worker = run_worker_until_idle(config)
    assert worker.returncode == 0, worker.stderr[-2000:]

    # 1. What the exporter asked the source for: only allow-listed columns.
    selects = [s for s in sql_log if s.lstrip().upper().startswith("SELECT") and "FROM payments" in s]
    assert selects
    for s in selects:
        assert "internal_note" not in s and "*" not in s
    for table, cols in PII_COLUMNS.items():
        for s in (s for s in sql_log if f"FROM {table}" in s and s.lstrip().upper().startswith("SELECT")):
            assert not any(f"{table}.{c}" in s or f" {c}," in s or f" {c}\n" in s for c in cols), s

    # 2. Raw Kafka bytes, keys and values, of every topic.
    expected_counts = {t: len(source_rows(demo_sqlite, t)) for t in TABLES}
    assert expected_counts["merchants"] == MERCHANTS
    messages = all_messages(cfg, expected_counts)
    kafka_bytes = b"\n".join((r.key or b"") + b"\t" + (r.value or b"") for recs in messages.values() for r in recs)
    # 3. The warehouse: every column of every table through SQL (compressed strings are
    #    invisible in the file's bytes), and the bytes too (free blocks SQL cannot see).
    wh = Path(cfg.warehouse.path)
    in_warehouse = find_in_warehouse(wh, PLANTED)
    in_file_bytes = find_in_text(file_bytes(wh), PLANTED)
    con = duckdb.connect(str(wh), read_only=True)
    dead_letters = con.execute("SELECT COUNT(*) FROM _meta.dead_letters").fetchone()[0]
    counts = {t: con.execute(f"SELECT COUNT(*) FROM main.{t}").fetchone()[0] for t in TABLES}
    deleted = {t: con.execute(f"SELECT COUNT(*) FROM main.{t} WHERE _deleted").fetchone()[0] for t in ("members", "cards")}
    wh_balance = dict(con.execute("SELECT card_id, balance_krw FROM main.cards").fetchall())
    wh_members = {r[0] for r in con.execute("SELECT member_id FROM main.members").fetchall()}
    con.close()
    # 4. The logs: the exporter's (captured here) and the worker's (its stderr).
    logs = caplog.text + worker.stdout + worker.stderr
    assert f"merchants {MERCHANTS:,}" in caplog.text and "batch 1:" in worker.stderr  # the real logs

    in_kafka = find_in_text(kafka_bytes, PLANTED)
    assert visible in in_kafka, "the Kafka scan must see the allow-listed marker (negative control)"
    assert in_warehouse.get("main.merchants.merchant_name") == {visible}, "the SQL scan must see the marker (negative control)"
    assert in_kafka == {visible}, f"personal data or the hash key in Kafka: {sorted(in_kafka - {visible})[:5]}"
    assert set(in_warehouse) == {"main.merchants.merchant_name"}, f"personal data or the hash key in the warehouse: {in_warehouse}"
    assert in_file_bytes <= {visible}, f"personal data or the hash key in the DuckDB file: {sorted(in_file_bytes)[:5]}"
    assert find_in_text(logs, PLANTED) == set(), "personal data, the hash key or a row value in the logs"
    assert dead_letters == 0

    # 5. Hashed ids: keyed HMAC, not a plain SHA-256, and still joinable.
    src_members = source_rows(demo_sqlite, "members")
    key = HASH_KEY.encode()
    expect_hashed = {hmac.new(key, str(m["member_id"]).encode(), hashlib.sha256).hexdigest() for m in src_members}
    plain = {hashlib.sha256(str(m["member_id"]).encode()).hexdigest() for m in src_members}
    assert wh_members == expect_hashed and not (wh_members & plain)
    changes = {t: [r for r in recs if r.key != SCHEMA_KEY] for t, recs in messages.items()}
    card_members = {orjson.loads(r.value)["row"]["member_id"] for r in changes["cards"]}
    assert card_members <= expect_hashed

    # 6. Everything arrived: counts, soft deletes, balances equal the source.
    assert counts == expected_counts
    src_cards = source_rows(demo_sqlite, "cards")
    assert deleted["members"] == sum(m["deleted_at"] is not None for m in src_members) > 0
    assert deleted["cards"] == sum(c["deleted_at"] is not None for c in src_cards) > 0
    assert wh_balance == {c["card_id"]: c["balance_krw"] for c in src_cards}
    # Every envelope row carries exactly the allow-listed columns.
    for table in TABLES:
        allowed = set(cfg.tables[table].column_names)
        assert all(set(orjson.loads(r.value)["row"]) == allowed for r in changes[table])
        # ... and the schema record declares exactly those columns' types.
        declared = [orjson.loads(r.value)["columns"] for r in messages[table] if r.key == SCHEMA_KEY]
        assert len(declared) == cfg.kafka.partitions and all(set(d) == allowed for d in declared)


def exporter_caught_up(cfg, engine: sa.Engine) -> bool:
    """Every table's saved watermark is at its newest source row, in the exporter's (watermark, key) order.

    The watermark moves only after the broker acknowledged a chunk, so this is
    the moment everything the source holds is in Kafka.
    """
    if not cfg.exporter.state_path.exists():
        return False
    marks = WatermarkStore(cfg.exporter.state_path)
    with engine.connect() as conn:
        for table in TABLES:
            spec = cfg.tables[table]
            order = ", ".join(f"{c} DESC" for c in (spec.watermark, *spec.primary_key))
            newest = conn.exec_driver_sql(
                f"SELECT {', '.join((spec.watermark, *spec.primary_key))} FROM {table} ORDER BY {order} LIMIT 1").first()
            mark = marks.get(table)
            if newest is None:
                continue
            if mark is None or (mark.ts_datetime(), mark.pk) != (datetime.fromisoformat(str(newest[0])), tuple(newest[1:])):
                return False
    return True


def test_copy_follows_a_moving_source_and_restart_resumes(export_config, demo_sqlite, broker, tmp_path):
    """The running exporter picks up updates (latest version wins); a restart does not re-send everything."""
    config = export_config(demo_sqlite, chunk_rows=200, overlap_seconds=2, interval_seconds=0.3)
    cfg = load(config)
    log_path = tmp_path / "export.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "export", "--config", str(config)],
                                cwd=ROOT, env=export_env(), stdout=log_file, stderr=subprocess.STDOUT)
    try:
        engine = sa.create_engine(demo_sqlite)
        import random

        from faker import Faker

        rng, fake = random.Random(4), Faker("ko_KR")
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:  # the business moves while the exporter runs
            tick(engine, rng, fake=fake)
            time.sleep(0.05)
        wait_for(lambda: exporter_caught_up(cfg, engine), 60, "the exporter to send every table's last change")
        engine.dispose()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log_path.read_text()

    key = HASH_KEY.encode()
    first_counts = {}
    for table in TABLES:
        spec = cfg.tables[table]
        expect = {}
        for row in source_rows(demo_sqlite, table):
            out = {}
            for col in spec.columns:
                v = row[col.name]
                out[col.name] = hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest() if col.hash and v is not None else v
            pk = {k: out[k] for k in spec.primary_key}
            expect[orjson.dumps(pk, option=orjson.OPT_SORT_KEYS)] = out
        records = read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for(table))
        first_counts[table] = len(records)
        got = {k: v["row"] for k, v in latest_by_key(records).items()}
        assert got == expect, f"{table}: Kafka's latest versions differ from the source"

    # Restart: only the overlap window is read again, not the table.
    assert run_export_cli(config, "--once").returncode == 0
    for table in TABLES:
        rows = source_rows(demo_sqlite, table)
        newest = max(datetime.fromisoformat(r["updated_at"]) for r in rows)
        in_window = sum(datetime.fromisoformat(r["updated_at"]) >= newest - timedelta(seconds=2) for r in rows)
        resent = len(read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for(table))) - first_counts[table]
        assert resent == in_window < len(rows), table


def test_missing_watermark_index_is_reported_at_start(export_config, tmp_path, broker, caplog):
    url = f"sqlite:///{tmp_path / 'plain.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, updated_at TEXT)")
        conn.exec_driver_sql("INSERT INTO ledger VALUES (1, 500, '2026-11-24T10:00:00.000000+09:00')")
    engine.dispose()
    cfg = load(export_config(url, tables=LEDGER))
    caplog.set_level(logging.WARNING, logger="ingest.export")
    assert run_exporter(cfg, once=True, reset_watermarks=False) == 0
    warning = [r.getMessage() for r in caplog.records if "no index" in r.getMessage()]
    assert warning and "ledger" in warning[0] and "updated_at" in warning[0]
    assert len(read_topic(cfg.kafka.bootstrap_servers, cfg.kafka.topic_for("ledger"), expect=1)) == 1
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka.bootstrap_servers, group_id=None)
    try:  # the exporter created the missing topic with [kafka] partitions partitions
        assert consumer.partitions_for_topic(cfg.kafka.topic_for("ledger")) == set(range(cfg.kafka.partitions))
    finally:
        consumer.close()


def test_hash_column_without_key_refuses_to_start(export_config, demo_sqlite):
    env = export_env()
    env.pop("PII_HASH_KEY")
    done = run_export_cli(export_config(demo_sqlite), "--once", env=env)
    assert done.returncode == 2
    assert "PII_HASH_KEY" in done.stderr and "members" in done.stderr and "Traceback" not in done.stderr


def test_sqlite_chunk_query_seeks_the_watermark_index(demo_sqlite):
    from ingest.config import load_config
    from ingest.source import Cursor, describe

    cfg = load_config(ROOT / "pipeline.toml", needs=("tables",), environ={})
    engine = sa.create_engine(demo_sqlite)
    for table in TABLES:
        reader = describe(engine, cfg.tables[table])
        assert reader.index_name == f"ix_{table}_updated_at"
        compiled = reader.chunk_query(Cursor(datetime(2026, 11, 20, tzinfo=SEOUL), (5,)), 500).compile(engine)
        with engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                        tuple(compiled.params[k] for k in compiled.positiontup)).all()
        detail = " ".join(row[-1] for row in plan)
        assert f"SEARCH {table} USING INDEX ix_{table}_updated_at" in detail and "TEMP B-TREE" not in detail, detail
    engine.dispose()
