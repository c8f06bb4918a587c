"""The exporter's status record travels the chain: source → exporter → Kafka → worker → `_meta`.

Real SQLite source, real broker, real exporter and worker processes. The
expected watermark and row counts come from the rows this test inserted.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import sqlalchemy as sa

from ingest.control import control_topic
from ingest.config import KafkaConfig
from tests.fixtures_export import LEDGER, read_topic, run_export_cli
from tests.ingest_helpers import read_only, run_worker


def make_ledger(url: str, rows: int) -> list[tuple[int, int, str]]:
    data = [(i, i * 100, f"2026-11-24T10:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}+09:00") for i in range(1, rows + 1)]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_updated_at ON ledger (updated_at, entry_id)")
        conn.exec_driver_sql("INSERT INTO ledger VALUES (?, ?, ?)", data)
    engine.dispose()
    return data


def test_status_record_lands_in_meta_with_the_batch(export_config, tmp_path, broker, topic_prefix):
    data = make_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}", 250)
    config = export_config(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tables=LEDGER, chunk_rows=100)
    done = run_export_cli(config, "--once")
    assert done.returncode == 0, done.stderr

    # On the wire: one status record keyed by the exporter, not a row change.
    records = read_topic(broker.bootstrap, control_topic(KafkaConfig(topic_prefix=topic_prefix)))
    # Statuses (one while the first load was behind, one at the end of the pass) and one counts record.
    assert {r.key for r in records} == {b"counts/exporter/ledger", b"status/exporter"}
    statuses = [orjson.loads(r.value) for r in sorted(records, key=lambda r: r.offset) if r.key == b"status/exporter"]
    assert statuses[0]["state"] == "catching_up" and statuses[0]["tables"]["ledger"]["rows_behind"] == len(data) - 100
    wire = statuses[-1]
    assert wire["op"] == "status" and wire["state"] == "ok" and wire["rows_sent"] == len(data)

    worker = run_worker(config, "--until-idle")
    assert worker.returncode == 0, worker.stderr
    newest = max(data, key=lambda r: (r[2], r[0]))
    con = read_only(tmp_path / "warehouse.duckdb")
    try:
        status = con.execute("SELECT exporter, state, rows_sent, stopped_tables, errors FROM _meta.exporter_status").fetchall()
        tables = con.execute("SELECT table_name, watermark, rows_sent, rows_total, queries FROM _meta.exporter_tables").fetchall()
        dead = con.execute("SELECT count(*) FROM _meta.dead_letters").fetchone()[0]
        landed = con.execute("SELECT count(*) FROM main.ledger").fetchone()[0]
        control_offsets = con.execute("SELECT sum(next_offset) FROM _meta.offsets WHERE topic = $t",
                                      {"t": control_topic(KafkaConfig(topic_prefix=topic_prefix))}).fetchone()[0]
    finally:
        con.close()
    assert status == [("exporter", "ok", len(data), [], [])]
    (name, watermark, sent, total, queries), = tables
    assert name == "ledger" and sent == len(data) and total == len(data)
    assert watermark == datetime.fromisoformat(newest[2])
    assert queries == len(data) // 100 + 1  # keyset chunks of 100: 100, 100, 50 (the short one ends the pass)
    assert dead == 0, "a control record must never be a dead letter"
    assert landed == len(data)
    assert control_offsets == len(records), "the control records' offsets are committed with the batch"


def test_completeness_counts_per_day_match_and_a_missing_row_shows_as_a_difference(
        export_config, tmp_path, broker, topic_prefix):
    """Counts per day of the watermark column, computed here from the inserted rows, against `_meta.completeness`."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    data = [(i, i, f"2026-11-{20 + i % 3}T{i % 24:02d}:00:00.{i:06d}+09:00") for i in range(1, 121)]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (entry_id INTEGER PRIMARY KEY, amount_krw INTEGER, updated_at TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_updated_at ON ledger (updated_at, entry_id)")
        conn.exec_driver_sql("INSERT INTO ledger VALUES (?, ?, ?)", data)
    expected: dict[str, int] = {}
    for _, _, ts in data:
        expected[ts[:10]] = expected.get(ts[:10], 0) + 1
    config = export_config(url, tables=LEDGER, chunk_rows=50)
    assert run_export_cli(config, "--once").returncode == 0
    assert run_worker(config, "--until-idle").returncode == 0
    wh = tmp_path / "warehouse.duckdb"

    def completeness():
        con = read_only(wh)
        try:
            return {str(d): (s, w, m) for d, s, w, m in con.execute(
                "SELECT day, source_rows, warehouse_rows, mismatch_passes FROM _meta.completeness").fetchall()}
        finally:
            con.close()

    assert completeness() == {d: (n, n, 0) for d, n in expected.items()}

    # Negative control: a row lost on the way (deleted from the warehouse by hand) must show as a difference.
    import duckdb
    con = duckdb.connect(str(wh))
    con.execute("DELETE FROM main.ledger WHERE entry_id = 3")  # 2026-11-20
    con.close()
    assert run_export_cli(config, "--once").returncode == 0
    assert run_worker(config, "--until-idle").returncode == 0
    got = completeness()
    assert got["2026-11-20"] == (expected["2026-11-20"], expected["2026-11-20"] - 1, 1)
    assert all(got[d] == (n, n, 0) for d, n in expected.items() if d != "2026-11-20")
    engine.dispose()
