"""The app-state store: created on first use, migrations run once each, concurrent writers wait instead of failing."""

import sqlite3
import threading

import pytest

from dashboard import app_state


@pytest.fixture
def extra_migration(tmp_path, monkeypatch):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_notes.sql").write_text(
        "-- a note per person\nCREATE TABLE notes (id INTEGER PRIMARY KEY, who TEXT NOT NULL, body TEXT);\n"
        "CREATE INDEX notes_who ON notes (who);\n", encoding="utf-8")
    monkeypatch.setattr(app_state, "MIGRATIONS_DIR", folder)
    monkeypatch.setattr(app_state, "_migrated", set())
    return folder


def test_store_is_created_on_first_use_and_migrated_once(tmp_path, extra_migration):
    path = tmp_path / "data" / "app_state.sqlite"
    with app_state.connect(path) as conn:
        conn.execute("INSERT INTO notes (who, body) VALUES (?, ?)", ("a@example.com", "첫 메모"))
    assert path.exists()
    app_state._migrated.clear()
    with app_state.connect(path) as conn:  # a second process: nothing re-applied, data kept
        assert app_state.migrate(conn) == []
        assert conn.execute("SELECT body FROM notes").fetchone()[0] == "첫 메모"
        assert [r[0] for r in conn.execute("SELECT name FROM schema_migrations")] == ["001_notes.sql"]


def test_a_new_migration_file_is_applied_to_an_existing_store(tmp_path, extra_migration):
    path = tmp_path / "state.sqlite"
    with app_state.connect(path):
        pass
    (extra_migration / "002_tags.sql").write_text("CREATE TABLE tags (name TEXT PRIMARY KEY);", encoding="utf-8")
    app_state._migrated.clear()
    with app_state.connect(path) as conn:
        conn.execute("INSERT INTO tags VALUES ('x')")
        assert {r[0] for r in conn.execute("SELECT name FROM schema_migrations")} == {"001_notes.sql", "002_tags.sql"}


def test_a_failing_migration_names_itself_and_leaves_nothing_half_done(tmp_path, extra_migration):
    (extra_migration / "002_broken.sql").write_text("CREATE TABLE ok (a);\nCREATE TABLE notes (a);\n", encoding="utf-8")
    path = tmp_path / "state.sqlite"
    with pytest.raises(app_state.AppStateError, match="002_broken.sql"):
        with app_state.connect(path):
            pass
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ok'").fetchone()[0] == 0


def test_concurrent_writers_wait_for_each_other(tmp_path, extra_migration):
    path = tmp_path / "state.sqlite"
    errors = []

    def write(n):
        try:
            with app_state.connect(path) as conn:
                for i in range(50):
                    with app_state.transaction(conn):
                        conn.execute("INSERT INTO notes (who, body) VALUES (?, ?)", (f"w{n}", str(i)))
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app_state.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 200
