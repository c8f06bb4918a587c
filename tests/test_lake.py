"""Lake mode: the same worker lands into a DuckLake (SQLite or PostgreSQL catalog) exactly once,
readers never see part of a batch and never wait, maintenance shrinks the files and loses nothing,
and the app reads the lake with the same code as the file."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from ingest import warehouse_lake
from ingest.config import load_config
from ingest.envelope import encode_envelope, encode_key
from tests.ingest_helpers import (
    ROOT,
    assert_a_worker_run_lands_the_scenario,
    create_topics,
    kill_at_random_moments,
    produce,
    read_only,
    run_worker,
    scenario_config_tables,
    start_worker,
    stop_process,
    ts,
    wait_for,
    worker_env,
)


def lake_section(tmp_path: Path, catalog: str | None = None) -> str:
    catalog = catalog or f"sqlite:{tmp_path / 'lake' / 'catalog.sqlite'}"
    return f'catalog = "{catalog}"\ndata_path = "{tmp_path / "lake" / "files"}"\n'


@pytest.fixture
def lake_config(write_config, tmp_path):
    """write_config with a DuckLake [warehouse]; returns (config path, WarehouseConfig)."""

    def write(catalog: str | None = None, **kwargs):
        path = write_config(**kwargs)
        text = path.read_text(encoding="utf-8")
        text = text.replace("[warehouse]\n", "[warehouse]\n" + lake_section(tmp_path, catalog), 1)
        path.write_text(text, encoding="utf-8")
        return path, load_config(path).warehouse

    return write


@pytest.fixture
def postgres_catalog():
    """A brand-new PostgreSQL database for one test's lake catalog (PostgreSQL on 127.0.0.1:5432)."""
    name = "lake_" + uuid.uuid4().hex[:10]
    admin = "dbname=postgres host=127.0.0.1 port=5432 user=postgres"
    con = duckdb.connect()
    try:
        warehouse_lake._install(con, "postgres")
        con.execute(f"ATTACH '{admin}' AS pg (TYPE postgres)")
        con.execute(f"CALL postgres_execute('pg', 'CREATE DATABASE {name}', use_transaction => false)")
    except duckdb.Error as exc:
        con.close()
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not usable for a lake catalog: {exc}")
    try:
        yield f"postgres:dbname={name} host=127.0.0.1 port=5432 user=postgres"
    finally:
        con.execute(f"CALL postgres_execute('pg', 'DROP DATABASE IF EXISTS {name} WITH (FORCE)', use_transaction => false)")
        con.close()


@pytest.mark.parametrize("catalog_kind", ["sqlite", "postgres"])
def test_a_stream_with_poison_lands_exactly_once_into_a_lake(catalog_kind, produced, lake_config, request):
    scenario = produced(12_000)
    catalog = request.getfixturevalue("postgres_catalog") if catalog_kind == "postgres" else None
    config, lake = lake_config(catalog=catalog, tables=scenario_config_tables(),
                               worker={"max_batch_rows": 3000, "max_batch_seconds": 0.5})

    assert_a_worker_run_lands_the_scenario(config, lake, scenario)
    # The data really is in Parquet files under data_path, and no DuckDB file was written.
    assert list((Path(lake.data_path)).rglob("*.parquet"))
    assert not Path(lake.path).exists()


@pytest.mark.slow
def test_sigkill_at_random_moments_on_a_lake_then_restart_gives_the_uncrashed_result(produced, lake_config, tmp_path):
    scenario = produced(60_000)
    config, lake = lake_config(tables=scenario_config_tables(),
                               worker={"max_batch_rows": 4000, "max_batch_seconds": 0.5})

    kill_at_random_moments(config, lake, len(scenario.messages), random.Random(17), rounds=4, max_pause=1.0,
                           log=tmp_path / "worker.log")

    assert_a_worker_run_lands_the_scenario(config, lake, scenario)


@pytest.mark.parametrize("step", ["mid_merge", "after_commit"])
def test_a_kill_inside_a_lake_transaction_loses_and_duplicates_nothing(step, produced, lake_config):
    scenario = produced(9_000)
    config, lake = lake_config(tables=scenario_config_tables(), worker={"max_batch_rows": 2000, "max_batch_seconds": 0.5})
    crashed = subprocess.run(
        [sys.executable, "-m", "ingest", "worker", "--config", str(config), "--until-idle"],
        env=worker_env({"INGEST_FAILPOINT": f"{step}:3"}), capture_output=True, text=True, timeout=180, cwd=config.parent)
    assert crashed.returncode != 0, "the failpoint did not fire"

    assert_a_worker_run_lands_the_scenario(config, lake, scenario)


def _new_rows_stream(prefix: str, n: int):
    """Every message a new row of `orders` or `items`: in any committed state, rows == offsets landed."""
    messages = []
    for i in range(n):
        table = "orders" if i % 2 else "items"
        key = "order_id" if table == "orders" else "item_id"
        pk = {key: i}
        messages.append((f"{prefix}.{table}", encode_key(pk), encode_envelope(table, "upsert", pk, {**pk, "qty": i % 7}, ts(i), ts(i))))
    return messages


TWO_TABLES = """
[tables.orders]
primary_key = ["order_id"]
[tables.items]
primary_key = ["item_id"]
"""


@pytest.mark.slow
def test_readers_and_maintenance_during_ingest_see_whole_batches_and_lose_nothing(broker, topic_prefix, lake_config):
    n, waves = 12_000, 6
    create_topics(broker.bootstrap, [f"{topic_prefix}.orders", f"{topic_prefix}.items"])
    stream = _new_rows_stream(topic_prefix, n)
    config, lake = lake_config(tables=TWO_TABLES, worker={"max_batch_rows": 1000, "max_batch_seconds": 0.2})

    torn: list[tuple] = []
    reads: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def poll():
        con = None
        while not done.is_set():
            try:
                if con is None:
                    con = read_only(lake)
                # One statement = one snapshot: rows and the offsets that cover them must agree.
                row = con.execute(
                    "SELECT (SELECT count(*) FROM main.orders) + (SELECT count(*) FROM main.items), "
                    "(SELECT coalesce(sum(next_offset), 0) FROM _meta.offsets)").fetchone()
                reads.append(row[1])
                if row[0] != row[1]:
                    torn.append(row)
            except (warehouse_lake.LakeUnavailable, duckdb.CatalogException):
                time.sleep(0.05)  # not created yet
            except BaseException as exc:  # noqa: BLE001 - any failure of a reader is the finding
                errors.append(exc)
                return
        if con is not None:
            con.close()

    def maintain_repeatedly():
        while not done.is_set():
            try:
                warehouse_lake.maintain(lake, log=lambda _m: None)
            except (warehouse_lake.LakeUnavailable, duckdb.CatalogException):
                pass  # the lake is not there yet
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return
            time.sleep(1.0)

    threads = [threading.Thread(target=poll), threading.Thread(target=maintain_repeatedly)]
    for t in threads:
        t.start()
    log = Path(lake.path).parent / "worker.log"
    proc = start_worker(config, log=log)
    try:
        # The messages come in waves, the next once the reader has seen the last one landed: produced all at once,
        # a quick worker landed everything before the reader's first look (seen once in CI), proving nothing.
        per = n // waves
        for wave in range(1, waves + 1):
            produce(broker.bootstrap, stream[(wave - 1) * per:wave * per])
            wait_for(lambda: wave * per in reads or bool(errors), 120, f"the reader to see wave {wave} landed")
        assert stop_process(proc) == 0, log.read_text(encoding="utf-8")[-3000:]
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
        if proc.poll() is None:
            stop_process(proc)

    assert not errors, f"a reader or the maintenance failed: {errors[0]!r}"
    assert not torn, f"a reader saw part of a batch: {torn[:3]}"
    assert len(set(reads)) >= waves, "the reader saw too few states to prove anything"
    with read_only(lake) as con:
        assert con.execute("SELECT count(*), count(DISTINCT order_id) FROM main.orders").fetchone() == (n // 2, n // 2)
        assert con.execute("SELECT count(*), count(DISTINCT item_id) FROM main.items").fetchone() == (n // 2, n // 2)
    before = warehouse_lake.maintain(lake, log=lambda _m: None)
    assert before["files_after"] <= max(2, before["files_before"])
    with warehouse_lake.open_lake(lake) as con:
        assert sum(warehouse_lake.file_counts(con).values()) <= 4, "maintenance should leave about one file per table"
        assert con.execute("SELECT count(*) FROM _meta.maintenance").fetchone()[0] >= 1


def test_maintenance_rewrites_files_the_workers_updates_have_partly_deleted(tmp_path):
    """Updates leave delete files that every scan reads; maintain rewrites files past the threshold, rows intact."""
    from ingest.config import WarehouseConfig

    lake = WarehouseConfig(path=tmp_path / "wh.duckdb", catalog=f"sqlite:{tmp_path / 'catalog.sqlite'}",
                           data_path=tmp_path / "files", rewrite_delete_threshold=0.1)
    deletes = (f"SELECT count(*) FROM __ducklake_metadata_{warehouse_lake.LAKE}.ducklake_delete_file "
               "WHERE end_snapshot IS NULL")
    with warehouse_lake.open_lake(lake) as con:
        con.execute("CREATE TABLE main.t (id BIGINT, v BIGINT)")
        for batch in range(4):
            con.execute("INSERT INTO main.t SELECT range, 0 FROM range(?, ?)", [batch * 1000, batch * 1000 + 1000])
        con.execute("DELETE FROM main.t WHERE id < 3000 AND id % 5 = 0")  # a fifth of three files: past 0.1
        con.execute("DELETE FROM main.t WHERE id >= 3000 AND id % 50 = 1")  # 2% of the last one
        assert con.execute(deletes).fetchone()[0] == 4
        expected = con.execute("SELECT count(*), sum(id) FROM main.t").fetchone()
    figures = warehouse_lake.maintain(lake, log=lambda _m: None)
    with warehouse_lake.open_lake(lake) as con:
        assert con.execute(deletes).fetchone()[0] == 1, "the three files past the threshold were rewritten"
        assert con.execute("SELECT count(*), sum(id) FROM main.t").fetchone() == expected
    assert figures["files_after"] <= 2


def test_maintain_command_says_what_it_did_and_a_file_warehouse_needs_none(produced, lake_config, write_config):
    produced(3_000)
    config, _lake = lake_config(tables=scenario_config_tables(), worker={"max_batch_rows": 500, "max_batch_seconds": 0.3})
    assert run_worker(config, "--until-idle").returncode == 0

    out = subprocess.run([sys.executable, "-m", "ingest", "maintain", "--config", str(config)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=worker_env())

    assert out.returncode == 0, out.stderr
    assert "maintenance:" in out.stderr and "data files" in out.stderr

    file_config = write_config(tables=scenario_config_tables(), name="file.toml")
    out = subprocess.run([sys.executable, "-m", "ingest", "maintain", "--config", str(file_config)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=worker_env())
    assert out.returncode == 0 and "single DuckDB file" in out.stderr


def test_the_app_reads_a_lake_with_the_same_code(produced, lake_config):
    scenario = produced(3_000, poison_share=0)
    config, _lake = lake_config(tables=scenario_config_tables(), worker={"max_batch_rows": 1000, "max_batch_seconds": 0.3})
    assert run_worker(config, "--until-idle").returncode == 0
    from dashboard.warehouse import Warehouse

    wh = Warehouse(load_config(config, needs=("warehouse",)))
    catalog = wh.catalog()

    expected = {t: sum(1 for row in rows.values() if row is not None) for t, rows in scenario.expected.items()}
    assert {t: catalog.table(t).row_count for t in expected} == expected
    assert wh.data_version().startswith("snapshot:")
    frame = wh.query("SELECT count(*) AS n FROM transactions WHERE amount_krw >= ?", [50_000])
    assert frame.iat[0, 0] == sum(1 for r in scenario.expected["transactions"].values() if r and r["amount_krw"] >= 50_000)
    # The app's instance may read the lake's files and nothing else.
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        wh.query_uncached("SELECT * FROM read_csv('/etc/hostname')")


def test_a_lake_without_data_path_is_a_clear_configuration_error(tmp_path):
    from ingest.config import ConfigError

    path = tmp_path / "p.toml"
    path.write_text('[warehouse]\ncatalog = "sqlite:lake.sqlite"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[warehouse\] data_path is missing"):
        load_config(path, needs=("warehouse",))
    path.write_text('[warehouse]\ncatalog = "mysql:x"\ndata_path = "lake"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[warehouse\] catalog .*expected \"sqlite:<file>\""):
        load_config(path, needs=("warehouse",))


def test_the_watchdog_judges_a_lake_from_its_meta(produced, lake_config):
    from datetime import datetime, timezone

    from ingest.watchdog import observe

    produced(2_000, poison_share=0)
    config, lake = lake_config(tables=scenario_config_tables(), worker={"max_batch_rows": 1000, "max_batch_seconds": 0.3})
    assert observe(lake, datetime.now(timezone.utc)).unreadable == "missing"  # no catalog yet
    assert run_worker(config, "--until-idle").returncode == 0

    obs = observe(lake, datetime.now(timezone.utc))

    assert obs.unreadable is None
    assert obs.worker_state == "stopped" and obs.heartbeat_at is not None


def test_the_pipeline_page_shows_a_lakes_files_and_its_last_maintenance(produced, lake_config, monkeypatch):
    from tests.test_pages_overview_reports_pipeline import run_page, texts

    produced(3_000, poison_share=0)
    config, lake = lake_config(tables=scenario_config_tables(), worker={"max_batch_rows": 500, "max_batch_seconds": 0.3})
    assert run_worker(config, "--until-idle").returncode == 0
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))

    at = run_page("pages/pipeline.py", lang="en")
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Lake files" in shown and "No maintenance yet" in shown

    files = next(d.value for d in at.dataframe if "Data files" in d.value.columns)
    assert list(files["Table"]) == ["balances", "cards", "transactions"]  # _meta's few rows sit in the catalog...
    with warehouse_lake.open_lake(lake) as con:  # ...until a table of it gets files, like the leases of many partitions
        con.execute("INSERT INTO _meta.leases SELECT 'planted.topic', range, NULL, NULL FROM range(100)")
    at = run_page("pages/pipeline.py", lang="en")
    files = next(d.value for d in at.dataframe if "Data files" in d.value.columns)
    assert list(files["Table"]) == ["balances", "cards", "transactions", "_meta.leases"]  # by its schema's name, last

    figures = warehouse_lake.maintain(lake, log=lambda _m: None)
    at = run_page("pages/pipeline.py", lang="en")
    assert f"{figures['files_before']:,} → {figures['files_after']:,} files" in texts(at)
