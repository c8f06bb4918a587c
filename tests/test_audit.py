"""The audit trail in the real app-state store: recorded, listed newest first, filtered, counted; added to a store
that already holds saved views and subscriptions; a change and its record land together or not at all."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date, datetime, timedelta

import pytest

from dashboard import app_state, audit, saved_views
from dashboard.access import ANONYMOUS, Person
from dashboard.subscriptions import store
from dashboard.subscriptions.schedule import SEOUL

KIM = Person(email="kim@example.com", role="analyst")
LEE = Person(email="lee@example.com", role="admin", is_admin=True)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / "app_state.sqlite"


@pytest.fixture
def conn(path):
    with app_state.connect(path) as c:
        yield c


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=SEOUL)


def test_a_download_is_recorded_with_who_what_and_the_row_count(path):
    new_id = audit.record(path, KIM, audit.DOWNLOAD, "topups",
                          {"page": "explore", "format": "csv", "filters": ["충전 경로: 모바일"]}, rows=1234)
    with app_state.connect(path) as conn:
        [entry] = audit.entries(conn)
    assert entry.id == new_id
    assert (entry.who, entry.role, entry.action, entry.target, entry.rows) == ("kim@example.com", "analyst", "download",
                                                                              "topups", 1234)
    assert entry.detail == {"page": "explore", "format": "csv", "filters": ["충전 경로: 모바일"]}
    assert entry.at.endswith("+09:00")  # Seoul time with its offset
    assert abs(datetime.fromisoformat(entry.at) - datetime.now(SEOUL)) < timedelta(minutes=1)


def test_open_mode_is_recorded_as_anonymous(conn):
    audit.record(conn, ANONYMOUS, audit.DOWNLOAD, "payments", rows=0)
    [entry] = audit.entries(conn)
    assert (entry.who, entry.role, entry.rows, entry.detail) == ("anonymous", None, 0, None)


def test_unknown_actions_and_negative_row_counts_are_refused(conn):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(conn, KIM, "downlaod", "topups")
    with pytest.raises(ValueError):
        audit.record(conn, KIM, audit.DOWNLOAD, "topups", rows=-1)
    assert audit.count(conn) == 0


def test_listing_is_newest_first_and_filters_by_person_action_days_and_target(conn):
    audit.record(conn, KIM, audit.SIGN_IN, "kim@example.com", at=at(1, 8))
    audit.record(conn, KIM, audit.DOWNLOAD, "topups", rows=10, at=at(1, 9))
    audit.record(conn, LEE, audit.DOWNLOAD, "payments", rows=20, at=at(2, 23))  # late evening, Seoul
    audit.record(conn, LEE, "saved_view_save", "월간 환불 Top_20", at=at(3))
    audit.record(conn, KIM, audit.DOWNLOAD, "daily_topups_2026-11-01", rows=5, at=at(4))

    assert [e.target for e in audit.entries(conn)] == ["daily_topups_2026-11-01", "월간 환불 Top_20", "payments",
                                                       "topups", "kim@example.com"]
    assert [e.target for e in audit.entries(conn, limit=2)] == ["daily_topups_2026-11-01", "월간 환불 Top_20"]
    assert [e.rows for e in audit.entries(conn, who="kim@example.com", action="download")] == [5, 10]
    # Days are Seoul days, both ends included: 23:00 on the 2nd is the 2nd.
    assert [e.target for e in audit.entries(conn, since=date(2026, 11, 2), until=date(2026, 11, 3))] == [
        "월간 환불 Top_20", "payments"]
    assert [e.target for e in audit.entries(conn, search="TOPUPS")] == ["daily_topups_2026-11-01", "topups"]
    assert [e.target for e in audit.entries(conn, search="p_2")] == ["월간 환불 Top_20"]  # _ is a letter, not a wildcard
    assert audit.entries(conn, search="%") == []

    assert audit.count(conn) == 5
    assert audit.count(conn, action="download") == 3
    assert audit.count(conn, who="lee@example.com", since=date(2026, 11, 3)) == 1
    assert audit.counts_by_action(conn) == {"download": 3, "saved_view_save": 1, "sign_in": 1}
    assert audit.downloaded_rows(conn) == 35
    assert audit.downloaded_rows(conn, who="kim@example.com") == 15
    assert audit.who_values(conn) == ["kim@example.com", "lee@example.com"]


def test_per_person_last_sign_in_and_downloads(conn):
    audit.record(conn, KIM, audit.SIGN_IN, "kim@example.com", at=at(1, 8))
    audit.record(conn, KIM, audit.SIGN_IN, "kim@example.com", at=at(5, 8))
    audit.record(conn, KIM, audit.DOWNLOAD, "topups", rows=10, at=at(5, 9))
    audit.record(conn, KIM, audit.DOWNLOAD, "payments", rows=7, at=at(5, 10))
    audit.record(conn, LEE, "alert_delete", "alert #3", at=at(6))
    lee, kim = audit.people(conn)
    assert (kim.who, kim.last_sign_in, kim.downloads, kim.downloaded_rows, kim.last_seen) == (
        "kim@example.com", "2026-11-05T08:00:00+09:00", 2, 17, "2026-11-05T10:00:00+09:00")
    assert (lee.who, lee.last_sign_in, lee.downloads) == ("lee@example.com", None, 0)


def test_record_sign_in_is_the_login_hook(tmp_path, path):
    from ingest.config import load_config

    config_file = tmp_path / "pipeline.toml"
    config_file.write_text(f'[warehouse]\npath = "w.duckdb"\n[app]\nstate_path = "{path}"\n', encoding="utf-8")
    config = load_config(config_file, needs=("warehouse",))
    audit.record_sign_in(config, Person(email="kim@example.com", role="analyst", groups=("data",)))
    with app_state.connect(path) as conn:
        [entry] = audit.entries(conn)
    assert (entry.action, entry.who, entry.target, entry.detail) == ("sign_in", "kim@example.com", "kim@example.com",
                                                                     {"groups": ["data"]})


def test_the_migration_adds_the_trail_to_a_store_from_the_earlier_migrations(path, monkeypatch, tmp_path):
    # A store made by the released app: only 010 and 020 exist.
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("010_saved_views.sql", "020_subscriptions.sql"):
        shutil.copy(app_state.MIGRATIONS_DIR / name, earlier / name)
    monkeypatch.setattr(app_state, "MIGRATIONS_DIR", earlier)
    monkeypatch.setattr(app_state, "_migrated", set())
    now = datetime.now(SEOUL)
    with app_state.connect(path) as conn:
        view = saved_views.save(conn, "월간 환불", "explore", {"table": "refunds"})
        sub = conn.execute(  # the released app's columns (later migrations add more)
            "INSERT INTO subscriptions (ref, frequency, at_time, recipients, created_at, updated_at)"
            " VALUES ('daily_topups', 'daily', '09:00', '[\"a@example.com\"]', ?, ?)",
            (store.iso(now), store.iso(now))).lastrowid
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'audit'").fetchone()[0] == 0
    # The new release starts: 030 runs once, the data stays.
    monkeypatch.undo()
    monkeypatch.setattr(app_state, "_migrated", set())
    with app_state.connect(path) as conn:
        applied = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert applied == [name for name, _ in app_state.migrations()] and "030_audit.sql" in applied
        assert saved_views.get(conn, view.id).name == "월간 환불"
        assert store.subscription(conn, sub).ref == "daily_topups"
        audit.record(conn, KIM, audit.DOWNLOAD, "topups", rows=3)
        assert audit.count(conn) == 1
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'")}
        assert {"audit_at", "audit_who", "audit_action"} <= indexes


def test_the_migration_says_the_trail_holds_no_customer_data():
    text = (app_state.MIGRATIONS_DIR / "030_audit.sql").read_text(encoding="utf-8")
    assert "NO CUSTOMER PERSONAL DATA" in text


def test_a_change_and_its_record_land_together_or_not_at_all(conn):
    with app_state.transaction(conn):
        view = saved_views.save(conn, "결제 추이", "explore", {"table": "payments"})
        audit.record(conn, KIM, "saved_view_save", view.name, {"id": view.id})
    assert audit.count(conn) == 1 and saved_views.get(conn, view.id) is not None

    # The record fails (the trail is read-only here): the view is not saved either.
    conn.execute("CREATE TEMP TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(audit.AuditError, match="disk full"):
        with app_state.transaction(conn):
            saved_views.save(conn, "환불 추이", "explore", {"table": "refunds"})
            audit.record(conn, KIM, "saved_view_save", "환불 추이")
    assert [v.name for v in saved_views.list_views(conn)] == ["결제 추이"]
    assert audit.count(conn) == 1


def test_a_trail_that_cannot_be_written_is_an_error_that_says_so(tmp_path, caplog):
    broken = tmp_path / "not_a_store"
    broken.mkdir()  # a folder where the file should be: SQLite cannot open it
    with pytest.raises(audit.AuditError) as err:
        audit.record(broken, KIM, audit.DOWNLOAD, "topups", rows=1)
    assert "audit" in str(err.value).lower() or "감사" in str(err.value)
    assert any("could not record download by kim@example.com" in r.getMessage() for r in caplog.records)
    assert audit.check_writable(broken) is not None


def test_detail_is_json_and_the_table_checks_it(conn):
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO audit (at, who, action, detail) VALUES ('x', 'a', 'download', 'not json')")
