"""Saved views on a real SQLite store: save, find, rename, delete; names unique per owner with a clear message."""

import pytest

from dashboard import app_state, saved_views
from dashboard.saved_views import SavedViewError


@pytest.fixture
def conn(tmp_path):
    with app_state.connect(tmp_path / "data" / "app_state.sqlite") as c:
        yield c


def test_a_saved_view_reopens_exactly_the_query_it_was_saved_with(conn):
    params = {"measure": ["payments.count", "payments.amount"], "dim": "merchants.category",
              "f.created_at": "last_month", "lang": "en", "saved": "3"}
    view = saved_views.save(conn, "  월간   업종별 결제 ", "explore", params)
    assert view.name == "월간 업종별 결제"  # spaces tidied
    again = saved_views.get(conn, view.id)
    assert again.query() == {"dim": ["merchants.category"], "f.created_at": ["last_month"],
                             "measure": ["payments.count", "payments.amount"]}  # language and view pointer left out
    assert again.link == f"explore?saved={view.id}"
    assert again.full_link.startswith("explore?dim=merchants.category&")
    assert saved_views.get(conn, "not-a-number") is None
    assert saved_views.get(conn, 999) is None


def test_names_are_unique_per_owner_whatever_the_case(conn):
    saved_views.save(conn, "Refund Top 20", "explore", "measure=refunds.rate")
    with pytest.raises(SavedViewError, match="already exists|이미 있습니다"):
        saved_views.save(conn, "refund top 20", "explore", "measure=x")
    # another owner may use the name; the first owner's list is unchanged
    saved_views.save(conn, "Refund Top 20", "explore", "measure=y", owner="kim@example.com")
    assert [v.params for v in saved_views.list_views(conn, owner="")] == ["measure=refunds.rate"]
    with pytest.raises(SavedViewError):
        saved_views.save(conn, "   ", "explore", "")
    with pytest.raises(SavedViewError):
        saved_views.save(conn, "x" * (saved_views.NAME_MAX + 1), "explore", "")


def test_search_rename_and_delete(conn):
    a = saved_views.save(conn, "이번 주 업종별 결제", "explore", "a=1")
    b = saved_views.save(conn, "카드 7056 이력", "lookup", "card=7056")
    c = saved_views.save(conn, "100% 환불_률", "explore", "c=1")
    assert {v.id for v in saved_views.list_views(conn, "업종")} == {a.id}
    assert {v.id for v in saved_views.list_views(conn, "%")} == {c.id}  # LIKE wildcards are literal
    assert {v.id for v in saved_views.list_views(conn, "_")} == {c.id}
    assert {v.id for v in saved_views.list_views(conn, page="lookup")} == {b.id}
    assert len(saved_views.list_views(conn)) == 3

    with pytest.raises(SavedViewError, match="already exists|이미 있습니다"):
        saved_views.rename(conn, a.id, "카드 7056 이력")
    renamed = saved_views.rename(conn, a.id, "이번 주 업종별 결제 (월요일부터)")
    assert renamed.name == "이번 주 업종별 결제 (월요일부터)" and renamed.params == "a=1"
    assert saved_views.rename(conn, a.id, "이번 주 업종별 결제 (월요일부터)").id == a.id  # same name again is fine
    updated = saved_views.update_params(conn, a.id, {"a": "2"})
    assert updated.params == "a=2" and updated.link == a.link

    assert saved_views.delete(conn, b.id) is True
    assert saved_views.delete(conn, b.id) is False
    assert saved_views.get(conn, b.id) is None
    with pytest.raises(SavedViewError):
        saved_views.rename(conn, b.id, "gone")


def test_hostile_names_and_params_are_stored_as_text(conn, tmp_path):
    name = "x'); DROP TABLE saved_views; --"
    params = {"f.name": "'; DELETE FROM saved_views; --\x00" + "가" * 5000}
    view = saved_views.save(conn, name, "explore", params)
    assert saved_views.get(conn, view.id).query() == {"f.name": [params["f.name"]]}
    assert [v.name for v in saved_views.list_views(conn, "drop table")] == [name]
    # a second connection (another session) sees the same store
    with app_state.connect(tmp_path / "data" / "app_state.sqlite") as other:
        assert saved_views.get(other, view.id).name == name
