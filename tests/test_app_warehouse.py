"""The one reader (dashboard/warehouse.py) and the pure filter/freshness logic under it.

Real DuckDB files in tmp_path; a real second process holds the write lock.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from dashboard import dates, filters, freshness
from dashboard.filters import Filter, ViewState
from dashboard.warehouse import QueryTimeout, Warehouse, get_warehouse
from ingest.config import load_config
from tests.fixtures_app import build_warehouse, make_rows, write_app_config

ROOT = Path(__file__).resolve().parent.parent


def test_connections_cannot_reach_files_or_unlock_settings(app_env):
    wh = get_warehouse()
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        wh.query_uncached("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        wh.query_uncached(f"ATTACH '{app_env.tmp / 'other.duckdb'}'")
    with pytest.raises(duckdb.Error, match="locked"):
        wh.query_uncached("SET enable_external_access = true")
    settings = dict(wh.query_uncached(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('TimeZone', 'search_path', 'memory_limit')"
    ).itertuples(index=False))
    assert settings["TimeZone"] == "Asia/Seoul" and settings["search_path"] == "live,main"
    assert settings["memory_limit"].startswith("488") or "512" in settings["memory_limit"]  # 512MB, as DuckDB prints it


def test_values_are_bound_never_spliced(app_env):
    wh = get_warehouse()
    info = wh.catalog().table("merchants")
    evil = "'; DROP TABLE main.merchants; --"
    where, params = filters.where_clause([Filter("merchant_name", "has", (evil,)), Filter("region", "in", (evil,))], info)
    assert evil not in where and params.count(evil) == 2
    assert wh.query_uncached(filters.count_sql(info, where), params).iat[0, 0] == 0
    assert wh.query_uncached("SELECT count(*) FROM merchants").iat[0, 0] == len(app_env.live("merchants"))
    # identifiers only from the catalog
    assert filters.where_clause([Filter("merchant_name; DROP", "has", ("x",))], info) == ("", [])


def test_slow_query_is_interrupted_with_a_message(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(warehouse, make_rows(topups=10, payments=10))
    config = write_app_config(tmp_path, warehouse).read_text().replace("query_timeout_seconds = 20", "query_timeout_seconds = 1")
    (tmp_path / "pipeline.toml").write_text(config)
    wh = Warehouse(load_config(tmp_path / "pipeline.toml", needs=("warehouse",)))
    t0 = time.monotonic()
    with pytest.raises(QueryTimeout, match="narrow the filters"):
        wh.query_uncached("SELECT sum(hash(a.range * b.range)) FROM range(200000) a, range(200000) b")
    assert time.monotonic() - t0 < 10


def test_reader_waits_for_the_writer_instead_of_failing(app_env):
    """A real writer process holds the file for 1.5 s; the app's read waits and then sees its rows."""
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from ingest.warehouse_file import open_writer
        with open_writer({str(app_env.warehouse)!r}) as con:
            con.execute("INSERT INTO main.topups SELECT 900000 + i, 1, 'mobile', 1000, now(), now(), now(), now(), false, 0, i FROM range(5) t(i)")
            print("locked", flush=True)
            time.sleep(1.5)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        wh = get_warehouse()
        t0 = time.monotonic()
        n = wh.query_uncached("SELECT count(*) FROM topups").iat[0, 0]
        waited = time.monotonic() - t0
        assert n == len(app_env.live("topups")) + 5
        assert waited > 0.5  # it really waited for the lock
    finally:
        writer.wait(timeout=30)


def test_data_version_comes_from_the_sidecar(app_env):
    wh = get_warehouse()
    assert wh.data_version() == "1"
    app_env.warehouse.with_name("warehouse.duckdb.version").write_text("42\n")
    assert wh.data_version() == "42"
    app_env.warehouse.with_name("warehouse.duckdb.version").unlink()
    assert wh.data_version().startswith("mtime:")


def test_catalog_lists_live_tables_with_counts(app_env):
    catalog = get_warehouse().catalog()
    assert set(catalog.tables) == {"cards", "merchants", "payments", "topups"}
    topups = catalog.table("topups")
    assert topups.row_count == len(app_env.live("topups"))
    assert "_deleted" not in topups.column_names and "_kafka_offset" not in topups.column_names
    assert topups.column("created_at").kind == "time" and topups.column("amount_krw").kind == "number"


def test_missing_warehouse_is_an_empty_catalog(empty_app_env):
    catalog = get_warehouse().catalog()
    assert catalog.empty and catalog.missing


# ───────────────────────────────────────────────────────── pure logic ──


@pytest.mark.parametrize("today,preset,expected", [
    (date(2026, 3, 15), "last_month", (date(2026, 2, 1), date(2026, 2, 28))),
    (date(2028, 3, 1), "last_month", (date(2028, 2, 1), date(2028, 2, 29))),
    (date(2026, 1, 10), "last_month", (date(2025, 12, 1), date(2025, 12, 31))),
    (date(2026, 1, 10), "this_month", (date(2026, 1, 1), date(2026, 1, 10))),
    (date(2026, 1, 10), "last_7_days", (date(2026, 1, 4), date(2026, 1, 10))),
    (date(2026, 1, 10), "last_30_days", (date(2025, 12, 12), date(2026, 1, 10))),
    (date(2026, 1, 10), "today", (date(2026, 1, 10), date(2026, 1, 10))),
    # 2026-01-10 is a Saturday; weeks start on Monday
    (date(2026, 1, 10), "yesterday", (date(2026, 1, 9), date(2026, 1, 9))),
    (date(2026, 1, 10), "this_week", (date(2026, 1, 5), date(2026, 1, 10))),
    (date(2026, 1, 10), "last_week", (date(2025, 12, 29), date(2026, 1, 4))),
    (date(2026, 1, 5), "this_week", (date(2026, 1, 5), date(2026, 1, 5))),
    (date(2026, 1, 10), "this_year", (date(2026, 1, 1), date(2026, 1, 10))),
    (date(2026, 1, 10), "last_year", (date(2025, 1, 1), date(2025, 12, 31))),
    (date(2026, 1, 10), "last_45_days", (date(2025, 11, 27), date(2026, 1, 10))),
])
def test_presets(today, preset, expected):
    assert dates.preset_range(preset, today) == expected


def test_url_round_trip(app_env):
    tables = get_warehouse().catalog().tables
    state = ViewState(
        table="payments",
        filters=(Filter("created_at", "period", ("2026-10-01..2026-10-31",)),
                 Filter("status", "in", ("approved", "cancelled")),
                 Filter("amount_krw", "range", (1000, None)),
                 Filter("card_id", "range", (None, 2.5))),
        chart={"chart": "line", "x": "created_at", "bucket": "week", "agg": "sum", "y": "amount_krw"},
        sort="amount_krw", desc=True,
    )
    params = {k: (v if isinstance(v, list) else [v]) for k, v in filters.state_params(state).items()}
    parsed, problems = filters.parse_state(params, tables)
    assert problems == [] and parsed == state
    assert filters.file_basename("payments", state.filters) == "payments_2026-10-01_2026-10-31"


def test_freshness_levels(app_env):
    assert freshness.level_for(None, 10) == "none"
    assert freshness.level_for(15, 10) == "ok"
    assert freshness.level_for(25, 10) == "amber"
    assert freshness.level_for(101, 10) == "red"
    wh = get_warehouse()  # exporter interval 10 s in the test config
    con = duckdb.connect(str(app_env.warehouse), read_only=True)
    committed = con.execute("SELECT max(committed_at) FROM _meta.batches").fetchone()[0]
    con.close()
    f = freshness.freshness(wh, now=committed + timedelta(seconds=30))
    assert f.level == "amber" and round(f.age_seconds) == 30
    f = freshness.freshness(wh, now=committed.astimezone(timezone.utc) + timedelta(minutes=3))
    assert f.level == "red"
