"""The Admin page through AppTest on a real store: the trail listed and filtered, counts, per-person summary,
the export audited; someone who is not an administrator sees "no access" and no link to the page."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard import app_state, audit
from dashboard.access import PERSON_KEY, Person
from dashboard.subscriptions.schedule import SEOUL
from ingest.config import load_config
from tests.browser_page import read_csv, read_xlsx
from tests.fixtures_app import ROOT, app_env, captured_downloads, run_page  # noqa: F401  (fixtures)

KIM = Person(email="kim@example.com", role="analyst")
LEE = Person(email="lee@example.com", role="admin", is_admin=True)


def state_path(env) -> Path:
    return app_state.store_path(load_config(env.config, needs=("warehouse",)))


def fill(env) -> None:
    now = datetime.now(SEOUL).replace(microsecond=0)
    with app_state.connect(state_path(env)) as conn:
        audit.record(conn, KIM, audit.SIGN_IN, KIM.label, at=now - timedelta(hours=5))
        audit.record(conn, KIM, audit.DOWNLOAD, "topups", {"page": "explore", "format": "csv",
                                                           "filters": ["충전 경로: 모바일"]}, rows=120,
                     at=now - timedelta(hours=4))
        audit.record(conn, LEE, "subscription_create", "subscription #1", {"report": "daily_topups"},
                     at=now - timedelta(hours=3))
        audit.record(conn, KIM, audit.DOWNLOAD, "일별 충전 금액", {"format": "xlsx"}, rows=30,
                     at=now - timedelta(hours=2))
        audit.record(conn, LEE, audit.DOWNLOAD, "payments", rows=7, at=now - timedelta(days=90))  # outside 30 days


def test_the_trail_newest_first_with_counts_and_people(app_env):
    fill(app_env)
    at = run_page("pages/admin.py")  # open mode: everyone is an administrator
    assert at.title[0].value == "관리"
    trail, people = (d.value for d in at.dataframe)
    assert list(trail.columns) == ["시각", "사람", "역할", "작업", "대상", "행 수", "내용"]
    assert list(trail["대상"]) == ["일별 충전 금액", "subscription #1", "topups", "kim@example.com"]  # last 30 days
    assert list(trail["작업"]) == ["내려받기", "구독 만들기", "내려받기", "로그인"]
    assert trail["행 수"].tolist()[0] == 30 and "filters: 충전 경로: 모바일" in trail["내용"].iloc[2]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"기록": "4", "내려받기": "2", "로그인": "1", "내려받은 행": "150"}
    assert list(people["사람"]) == ["kim@example.com", "lee@example.com"]
    assert list(people["내려받기 횟수"]) == [2, 1] and list(people["내려받은 행"]) == [150, 7]
    assert people["마지막 로그인"].iloc[1] == "—"


def test_the_page_in_english(app_env):
    fill(app_env)
    at = run_page("pages/admin.py", lang="en")
    assert at.title[0].value == "Admin"
    assert list(at.dataframe[0].value.columns) == ["When", "Person", "Role", "Action", "Target", "Rows", "Details"]
    assert list(at.dataframe[0].value["Action"])[:2] == ["Download", "Subscription: create"]


def test_filters_narrow_the_listing_and_the_export_is_audited(app_env, captured_downloads):
    fill(app_env)
    at = run_page("pages/admin.py")
    at.selectbox(key="adm_who").set_value("kim@example.com").run()
    at.selectbox(key="adm_action").set_value("download").run()
    trail = at.dataframe[0].value
    assert list(trail["대상"]) == ["일별 충전 금액", "topups"]
    assert {m.label: m.value for m in at.metric}["내려받은 행"] == "150"
    at.text_input(key="adm_search").set_value("TOP").run()
    assert list(at.dataframe[0].value["대상"]) == ["topups"]

    name = next(n for n in captured_downloads if n.endswith(".csv"))
    assert name.startswith("audit_")
    data = captured_downloads[name]()  # the click: the file is built, recorded, then served
    exported = read_csv(data)
    assert list(exported.columns) == ["시각", "사람", "역할", "작업", "대상", "행 수", "내용"]
    assert list(exported["대상"]) == ["topups"]  # what is shown, nothing more
    with app_state.connect(state_path(app_env)) as conn:
        newest = audit.entries(conn, limit=1)[0]
    assert (newest.action, newest.who, newest.target, newest.rows) == ("download", "anonymous", "audit", 1)
    assert newest.detail["page"] == "admin" and newest.detail["format"] == "csv"
    assert "대상에서 찾기: TOP" in newest.detail["filters"]


def test_someone_who_is_not_an_administrator_has_no_access(app_env):
    """The page on its own (the sign-in gate would replace the person; the browser role tests cover the link)."""
    fill(app_env)
    at = AppTest.from_file(str(ROOT / "pages" / "admin.py"), default_timeout=60)
    at.session_state[PERSON_KEY] = KIM
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith("이 페이지는 관리자만")
    assert not at.dataframe  # nothing of the trail is drawn

    at = AppTest.from_file(str(ROOT / "pages" / "admin.py"), default_timeout=60)
    at.session_state[PERSON_KEY] = LEE
    at.run()
    assert not at.error and len(at.dataframe) == 2


def test_saving_and_deleting_a_view_is_in_the_trail_with_who_and_what(app_env):
    at = run_page("pages/explore.py", {"table": "topups"})
    at.text_input(key="x_sv_name").input("모바일 충전").run()
    at.button(key="x_sv_save").click().run()
    assert any("저장했습니다" in s.value for s in at.success)
    with app_state.connect(state_path(app_env)) as conn:
        [saved] = audit.entries(conn)
    assert (saved.who, saved.action, saved.target) == ("anonymous", "saved_view_save", "모바일 충전")
    assert saved.detail["page"] == "explore" and "table=topups" in saved.detail["params"]

    at.button(key=f"x_sv_del_{saved.detail['id']}").click().run()
    with app_state.connect(state_path(app_env)) as conn:
        assert [(e.action, e.target) for e in audit.entries(conn)] == [("saved_view_delete", "모바일 충전"),
                                                                      ("saved_view_save", "모바일 충전")]


def test_a_download_whose_record_cannot_be_written_is_refused(app_env, captured_downloads):
    at = run_page("pages/explore.py", {"table": "topups"})
    name = next(n for n in captured_downloads if n.endswith(".csv"))
    with app_state.connect(state_path(app_env)) as conn:  # the trail starts refusing writes (a full disk, say)
        conn.execute("CREATE TRIGGER full_disk BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    try:
        captured_downloads[name]()
    except audit.AuditError as exc:
        assert "disk full" in str(exc)
    else:
        raise AssertionError("the file was served without its audit row")
    with app_state.connect(state_path(app_env)) as conn:
        assert audit.count(conn) == 0
    assert not at.exception


def test_when_the_trail_cannot_be_opened_the_download_buttons_are_off_and_say_why(app_env, monkeypatch):
    from tests.fixtures_app import write_app_config

    blocked = app_env.tmp / "state_is_a_folder"
    blocked.mkdir()
    config = app_env.tmp / "blocked"
    config.mkdir()
    monkeypatch.setenv("PIPELINE_CONFIG", str(write_app_config(config, app_env.warehouse,
                                                               app=f'state_path = "{blocked}"')))
    at = run_page("pages/explore.py", {"table": "topups"})
    assert any(e.value.startswith("감사 기록을 남길 수 없어 지금은 내려받기를 할 수 없습니다") for e in at.error)
    assert all(b.proto.disabled for b in at.get("download_button"))


def test_the_pivot_excel_is_audited_like_every_other_file(app_env, captured_downloads):
    run_page("pages/explore.py", {"base": "payments", "m": "payments.payments", "view": "pivot",
                                  "pr": "merchants.region", "pc": "payments.status"})
    [name] = [n for n in captured_downloads if n.endswith("_pivot.xlsx")]
    data = captured_downloads[name]()
    _, rows, _ = read_xlsx(data)
    with app_state.connect(state_path(app_env)) as conn:
        [entry] = audit.entries(conn)
    assert (entry.action, entry.rows, entry.detail["file"], entry.detail["format"]) == ("download", len(rows), name, "xlsx")
    assert entry.detail["page"] == "explore" and entry.rows > 0


def test_admins_are_told_which_access_rule_names_nothing(app_env, monkeypatch):
    from tests.fixtures_app import write_app_config

    folder = app_env.tmp / "with_access"
    folder.mkdir()
    access = """
[access]
people = [{ match = "lee@example.com", role = "admin" }, { match = "*", role = "busan" }]

[access.roles.busan]
rows = [{ dimension = "merchants.planet", op = "in", values = ["부산"] }]
"""
    monkeypatch.setenv("PIPELINE_CONFIG", str(write_app_config(folder, app_env.warehouse, extra=access)))
    at = AppTest.from_file(str(ROOT / "pages" / "admin.py"), default_timeout=60)  # the page itself: no sign-in gate
    at.session_state[PERSON_KEY] = LEE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [problem] = [w.value for w in at.warning]
    assert "access.roles.busan.rows[0]" in problem and "merchants.planet" in problem
