"""deploy/: the example server config loads, the systemd units run our real commands, the backup is consistent."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from ingest.cli import _parser
from ingest.config import load_config
from ingest.warehouse_file import open_writer

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
META_SQL = ROOT / "ingest" / "sql" / "meta.sql"
SERVICES = ["exporter", "worker", "watchdog", "scheduler", "app"]


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str
    cp.read(DEPLOY / name, encoding="utf-8")
    return cp


def test_the_example_server_config_loads_every_section_and_holds_no_secret():
    everything = ("source", "kafka", "warehouse", "exporter", "worker", "alerts", "app", "tables")
    cfg = load_config(DEPLOY / "pipeline.example.toml", needs=everything, environ={})
    assert cfg.source.url.startswith("mysql+pymysql://") and cfg.source.password is None
    assert cfg.alerts.smtp_host and cfg.alerts.starttls and cfg.alerts.recipients
    assert cfg.warehouse.path.is_absolute() and cfg.alerts.history_path.is_absolute()
    assert set(cfg.tables) == set(load_config(ROOT / "pipeline.toml", environ={}).tables)
    text = (DEPLOY / "pipeline.example.toml").read_text()
    assert "password =" not in text.lower() and "PII_HASH_KEY =" not in text
    env_example = (DEPLOY / "datadesk.env.example").read_text()
    for line in env_example.splitlines():  # the secrets template ships empty
        if line and not line.startswith("#"):
            assert line.endswith("="), line


@pytest.mark.parametrize("service", SERVICES)
def test_each_unit_restarts_always_and_runs_a_real_command(service):
    cp = unit(f"datadesk-{service}.service")
    s = cp["Service"]
    assert s["Restart"] == "always"
    assert s["User"] == "datadesk" and s["EnvironmentFile"] == "/etc/datadesk/datadesk.env"
    assert cp["Install"]["WantedBy"] == "datadesk.target"
    lines = (DEPLOY / f"datadesk-{service}.service").read_text().splitlines()
    assert "Environment=PIPELINE_CONFIG=/etc/datadesk/pipeline.toml" in lines  # the app finds its config this way
    argv = shlex.split(s["ExecStart"])
    assert argv[0] == "/opt/datadesk/.venv/bin/python" and argv[1] == "-m"
    args = _parser().parse_args(argv[3:])  # the CLI accepts exactly this command line
    if service == "app":  # `ingest app` becomes streamlit, on loopback only (a TLS proxy faces people)
        assert args.command == "app" and args.address == "127.0.0.1" and args.config == "/etc/datadesk/pipeline.toml"
        return
    assert args.command == {"exporter": "export"}.get(service, service)
    assert args.config == "/etc/datadesk/pipeline.toml"
    # One-off repair switches never belong in a unit that restarts by itself.
    assert not getattr(args, "transport_reset", False) and not getattr(args, "reset_watermarks", False)
    assert not getattr(args, "from_beginning", False) and not getattr(args, "once", False)


def test_the_proxy_example_fronts_the_apps_loopback_port_with_tls_and_websockets():
    conf = (DEPLOY / "nginx-datadesk.conf").read_text()
    argv = shlex.split(unit("datadesk-app.service")["Service"]["ExecStart"])
    port = argv[argv.index("--port") + 1]
    assert f"proxy_pass http://127.0.0.1:{port};" in conf
    assert "listen 443 ssl;" in conf and "return 301 https://" in conf
    for line in ("proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $connection_upgrade;",
                 "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_set_header X-Forwarded-For",
                 "proxy_cookie_flags ~ secure"):
        assert line in conf, line
    # The app's public address is the proxy's https one (mails link there; sign-in returns there).
    cfg = load_config(DEPLOY / "pipeline.example.toml", needs=("app",), environ={})
    assert cfg.app.public_url.startswith("https://")
    # The app itself listens on loopback, also when started by hand, and keeps XSRF protection.
    import tomllib
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1" and server.get("enableXsrfProtection", True) is True


def test_the_target_starts_every_service():
    wants = unit("datadesk.target")["Unit"]["Wants"].split()
    assert sorted(wants) == sorted(f"datadesk-{s}.service" for s in SERVICES)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_units():
    files = sorted(str(p) for p in DEPLOY.glob("datadesk*.service")) + sorted(str(p) for p in DEPLOY.glob("datadesk*.t*"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *files], capture_output=True, text=True, cwd=DEPLOY)
    problems = [
        line for line in (r.stdout + r.stderr).splitlines()
        if line.strip() and "is not executable" not in line  # /opt/datadesk is not installed on a test machine
    ]
    assert problems == []


def make_warehouse(path: Path, batches: int) -> None:
    with open_writer(path) as con:
        con.execute(META_SQL.read_text())
        con.execute("CREATE TABLE main.topups (topup_id BIGINT, amount_krw BIGINT)")
        now = datetime.now(timezone.utc)
        for b in range(1, batches + 1):
            con.execute("INSERT INTO main.topups SELECT range + ?, 1000 FROM range(100)", [b * 100])
            con.execute(
                "INSERT INTO _meta.batches (batch_id, started_at, committed_at, messages, upserts, deletes, skipped_stale, dead_letters, seconds, tables, offsets, lag_messages) VALUES (?, ?, ?, 100, 100, 0, 0, 0, 0.1, ['topups'], '{}', 0)", [b, now, now]
            )


def test_backup_waits_for_the_writer_copies_consistently_and_rotates(tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    make_warehouse(wh, batches=3)
    config = tmp_path / "pipeline.toml"
    config.write_text(f'[warehouse]\npath = "{wh}"\n')
    dest = tmp_path / "backups"

    # A writer holds the file for 1.5 s when the backup starts: the backup must wait, not fail or copy mid-write.
    holding = threading.Event()

    def writer():
        with open_writer(wh) as con:
            holding.set()
            con.execute("INSERT INTO main.topups SELECT range + 10000, 1000 FROM range(100)")
            con.execute("INSERT INTO _meta.batches (batch_id, started_at, committed_at, messages, upserts, deletes, skipped_stale, dead_letters, seconds, tables, offsets, lag_messages) SELECT 4, now(), now(), 100, 100, 0, 0, 0, 0.1, ['topups'], '{}', 0")
            time.sleep(1.5)

    t = threading.Thread(target=writer)
    t.start()
    holding.wait(5)
    cmd = [sys.executable, str(DEPLOY / "backup_warehouse.py"), "--config", str(config), "--to", str(dest), "--keep", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    t.join()
    assert r.returncode == 0, r.stderr
    (copy,) = dest.glob("warehouse-*.duckdb")
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute("SELECT max(batch_id) FROM _meta.batches").fetchone()[0] == 4
        assert con.execute("SELECT count(*), count(DISTINCT topup_id) FROM main.topups").fetchone() == (400, 400)
    for _ in range(2):  # rotation keeps the newest two
        time.sleep(1.1)  # backups are named by the second
        assert subprocess.run(cmd, capture_output=True, text=True, timeout=120).returncode == 0
    kept = sorted(dest.glob("warehouse-*.duckdb"))
    assert len(kept) == 2 and copy not in kept
