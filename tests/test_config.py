"""A bad configuration line names the file, the key and what was expected, and exits 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingest.config import ConfigError, load_config
from tests.ingest_helpers import ROOT, worker_env

GOOD = """
[kafka]
bootstrap_servers = "127.0.0.1:9"
topic_prefix = "prepaid"
[warehouse]
path = "wh.duckdb"
[tables.cards]
primary_key = ["card_id"]
[tables.cards.columns]
card_id = "카드 / card"
member_id = { description = "회원 / member", hash = true }
"""


def _write(tmp_path, text: str):
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change, expected",
    [
        (('max_batch_rows = 50000', 'max_batch_rows = "lots"'), "[worker] max_batch_rows = 'lots' — expected a whole number"),
        (('max_batch_rows = 50000', 'max_batch_row = 5'), "[worker] max_batch_row is not a known key — did you mean max_batch_rows?"),
        (('primary_key = ["card_id"]', 'primary_key = []'), "[tables.cards] primary_key is empty"),
        (('primary_key = ["card_id"]', ''), "[tables.cards] primary_key is missing — list the key columns"),
        (('primary_key = ["card_id"]', 'primary_key = ["id"]'), "[tables.cards] primary_key names 'id', which is not under [tables.cards.columns]"),
        (('hash = true', 'hash = "yes"'), "[tables.cards.columns.member_id] hash = 'yes' — expected true or false"),
        (('max_batch_seconds = 5', 'max_batch_seconds = -1'), "[worker] max_batch_seconds = -1 — expected a number of at least 0.01"),
        (('topic_prefix = "prepaid"', 'topic_prefix = "pre paid"'), "[kafka] topic_prefix = 'pre paid' — expected letters"),
        (('path = "wh.duckdb"', 'path = "wh.duckdb"\ncatalog = "sqlite:c.sqlite"\ndata_path = "lake"\n'
          'rewrite_delete_threshold = 1.5'), "[warehouse] rewrite_delete_threshold = 1.5 — expected a share from 0 to 1"),
        (('path = "wh.duckdb"', 'path = "wh.duckdb"\nrewrite_delete_threshold = 0.2'),
         "[warehouse] rewrite_delete_threshold is only used with a DuckLake catalog"),
    ],
)
def test_bad_values_name_file_key_and_expectation(tmp_path, change, expected):
    text = (GOOD + "[worker]\nmax_batch_rows = 50000\nmax_batch_seconds = 5\n").replace(*change)
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, needs=("kafka", "warehouse", "tables"), environ={})
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_not_toml_points_at_the_line(tmp_path):
    path = _write(tmp_path, GOOD + "\n[worker\n")
    with pytest.raises(ConfigError, match=r"not valid TOML .*line"):
        load_config(path, environ={})


def test_a_process_asks_only_for_its_own_sections(tmp_path):
    path = _write(tmp_path, GOOD)
    cfg = load_config(path, needs=("kafka", "warehouse", "tables"), environ={})
    assert cfg.source is None and cfg.tables["cards"].watermark is None  # the worker needs neither
    with pytest.raises(ConfigError, match=r"section \[source\] is missing"):
        load_config(path, needs=("source", "kafka", "tables"), environ={})
    with pytest.raises(ConfigError, match=r"\[tables.cards\] watermark is missing"):
        load_config(path, needs=("kafka", "tables", "exporter"), environ={})


def test_environment_overrides_and_relative_paths(tmp_path):
    path = _write(tmp_path, GOOD)
    cfg = load_config(path, environ={"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "WAREHOUSE_PATH": "/srv/wh.duckdb"})
    assert cfg.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert str(cfg.warehouse.path) == "/srv/wh.duckdb"
    cfg = load_config(path, environ={})
    assert cfg.warehouse.path == tmp_path / "wh.duckdb"  # relative to the config file, not the cwd
    assert cfg.tables["cards"].column("member_id").hash is True


def test_password_in_source_url_is_refused(tmp_path):
    path = _write(tmp_path, GOOD + '[source]\nurl = "mysql+pymysql://reader:s3cret@db:3306/prepaid"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, needs=("source",), environ={})
    assert "SOURCE_PASSWORD" in str(err.value) and "s3cret" not in str(err.value)


def test_the_cli_exits_2_with_the_message(tmp_path):
    path = _write(tmp_path, GOOD + "[worker]\nmax_batch_rows = 0\n")
    done = subprocess.run([sys.executable, "-m", "ingest", "worker", "--config", str(path)],
                          env=worker_env(), capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert f"{path}: [worker] max_batch_rows = 0 — expected a whole number of at least 1" in done.stderr


def test_the_cli_exits_2_when_the_file_is_missing(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ingest", "worker", "--config", str(tmp_path / "nope.toml")],
                          env=worker_env(), capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert "nope.toml: file not found" in done.stderr


def test_the_demo_configuration_is_valid():
    cfg = load_config(ROOT / "pipeline.toml", needs=("source", "kafka", "warehouse", "exporter", "worker", "alerts", "app", "tables"),
                      environ={})
    assert set(cfg.tables) >= {"members", "cards", "merchants", "topups", "payments", "refunds"}
