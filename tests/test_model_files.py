"""Model files: the demo model loads clean; each kind of mistake is a message naming file, key and fix; the rest works."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashboard.model import ModelError, load_model
from dashboard.questions import Filter, Question
from ingest.config import load_config
from tests.questions_fixtures import ROOT, business  # noqa: F401  (module fixture)


def _load(business, tmp_path: Path, files: dict[str, str], keep_demo: bool = True):
    directory = tmp_path / "models"
    directory.mkdir()
    if keep_demo:
        for path in (ROOT / "models").glob("*.toml"):
            shutil.copy(path, directory / path.name)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    config = load_config(business.config_path, needs=("warehouse",))
    return load_model(config, business.warehouse.catalog(), directory=directory)


def test_the_demo_model_loads_without_problems(business):
    model = business.model
    assert model.problems == []
    assert [r.describe() for r in model.path("payments", "members")] == [
        "payments.card_id → cards.card_id", "cards.member_id → members.member_id"]
    # refunds carry merchant_id themselves: the direct relationship is the shorter path, not via payments
    assert [r.describe() for r in model.path("refunds", "merchants")] == ["refunds.merchant_id → merchants.merchant_id"]
    assert model.dimension("payments.weekday").values["1"].ko == "월"
    assert model.dimension("topups.channel").values["auto_charge"].ko == "자동충전"


def test_a_fan_out_relationship_is_refused_naming_the_path(business, tmp_path):
    model = _load(business, tmp_path, {"merchants.toml": """
table = "merchants"
[relationships.by_region]
column = "region"
to = "members"
to_column = "region"
[measures.merchants]
agg = "count"
"""})
    [problem] = model.problems
    assert problem.file == "merchants.toml" and problem.key == "relationships.by_region"
    assert "fan-out: merchants.region → members.region" in problem.message
    assert "not the key of members" in problem.message
    assert model.has_measure("merchants.merchants")  # the rest of the file works


def test_a_question_against_the_arrows_is_a_fan_out_message(business):
    with pytest.raises(ModelError, match=r"fan-out: merchants ← payments .*start the question from payments"):
        business.model.path("merchants", "payments")
    q, problems = Question.from_params({"base": "merchants", "m": "merchants.merchants",
                                        "d": ["payments.status", "merchants.category"]}, business.model)
    assert q.dimensions == ("merchants.category",)
    assert any("fan-out: merchants ← payments" in p for p in problems)


def test_an_unknown_column_names_file_key_and_choices(business, tmp_path):
    model = _load(business, tmp_path, {"topups.toml": """
table = "topups"
[measures.amount]
agg = "sum"
column = "amount_won"
[measures.topups]
agg = "count"
[dimensions.channel]
column = "chanel"
"""})
    messages = {(p.file, p.key): p.message for p in model.problems}
    assert "column 'amount_won' is not in topups" in messages[("topups.toml", "measures.amount")]
    assert "amount_krw" in messages[("topups.toml", "measures.amount")]  # says what to use instead
    assert "column 'chanel' is not in topups" in messages[("topups.toml", "dimensions.channel")]
    assert model.has_measure("topups.topups") and not model.has_measure("topups.amount")
    assert model.has_measure("payments.amount")  # other files untouched


def test_a_malformed_measure_is_reported_and_skipped(business, tmp_path):
    model = _load(business, tmp_path, {"topups.toml": """
table = "topups"
[measures.broken_formula]
formula = "100 * {topups.topups} / nullif({topups.topups}"
[measures.broken_sql]
sql = "sum(amount_krw"
[measures.unknown_column_sql]
sql = "sum(amount_won)"
[measures.bad_where]
agg = "count"
where = "status = 'x' AND"
[measures.topups]
agg = "count"
[measures.dangling]
formula = "{topups.topups} / {payments.nothing}"
"""})
    messages = {p.key: p.message for p in model.problems if p.file == "topups.toml"}
    assert "formula does not parse" in messages["measures.broken_formula"]
    assert "sql does not parse" in messages["measures.broken_sql"]
    assert "amount_won" in messages["measures.unknown_column_sql"]
    assert "where does not parse" in messages["measures.bad_where"]
    assert "payments.nothing" in messages["measures.dangling"]
    assert model.has_measure("topups.topups")
    assert not any(model.has_measure(f"topups.{k}") for k in ("broken_formula", "broken_sql", "bad_where", "dangling"))


def test_cycles_and_ambiguous_paths_are_named(business, tmp_path):
    model = _load(business, tmp_path, {"merchants.toml": """
table = "merchants"
[relationships.first_payment]
column = "merchant_id"
to = "payments"
to_column = "payment_id"
""", "topups.toml": """
table = "topups"
[relationships.card]
column = "card_id"
to = "cards"
[relationships.card_again]
column = "topup_id"
to = "cards"
to_column = "card_id"
"""})
    messages = [str(p) for p in model.problems]
    cycle = [m for m in messages if "closes a cycle" in m]
    assert len(cycle) == 1 and "merchants.merchant_id" in cycle[0] and "payments" in cycle[0]
    assert any("topups reaches cards in two equally short ways" in m for m in messages)
    with pytest.raises(ModelError, match="two ways"):
        model.path("topups", "cards")
    assert model.path("payments", "members")  # the rest of the graph works


def test_a_table_without_a_model_file_is_derived_from_the_catalog(business, tmp_path):
    model = _load(business, tmp_path, {}, keep_demo=False)
    topups = model.tables["topups"]
    assert topups.source == "catalog"
    assert {"count", "sum_amount_krw", "avg_amount_krw"} <= set(topups.measures)
    assert "sum_card_id" not in topups.measures  # identifiers are not summed
    assert set(topups.dimensions) >= {"channel", "card_id", "amount_krw", "created_at"}
    assert topups.dimensions["channel"].label.ko == "충전 경로"


def test_a_question_round_trips_through_url_params(business):
    q = Question("payments", ("payments.amount", "payments.refund_rate"), ("merchants.category", "payments.weekday"),
                 filters=(Filter("merchants.merchant_name", "contains", ("a~b%7E'; --",)),
                          Filter("merchants.region", "in", ("서울", "부산"))),
                 time="payments.created_at", period="last_month", grain="week", compare="year",
                 sort="payments.refund_rate", descending=False, top=20, view="pivot",
                 pivot_rows=("merchants.category",), pivot_columns=("payments.status",))
    again, problems = Question.from_params(q.to_params(), business.model)
    assert problems == [] and again == q


def test_unknown_ids_from_a_link_are_dropped_with_a_message(business):
    q, problems = Question.from_params({"base": "payments", "m": ["payments.amount", "payments.nope"],
                                        "d": "merchants.colour", "f": ["merchants.category~like~x", "bad"],
                                        "period": "next_week", "top": "0"}, business.model)
    assert q.measures == ("payments.amount",) and q.dimensions == () and q.filters == ()
    assert q.period is None and q.top is None
    assert len(problems) == 6
    assert any("payments.nope" in p for p in problems) and any("merchants.colour" in p for p in problems)


def test_pages_get_the_model_of_their_warehouse_once_per_data_version(business):
    from dashboard.model import model_for

    first = model_for(business.warehouse)
    assert first is model_for(business.warehouse)
    assert first.problems == [] and first.has_measure("payments.refund_rate")


def test_link_problems_are_told_in_the_page_language(business):
    from dashboard import i18n

    params = {"base": "payments", "m": "payments.nope", "period": "someday"}
    with i18n.language("ko"):
        _, ko = Question.from_params(params, business.model)
    with i18n.language("en"):
        _, en = Question.from_params(params, business.model)
    assert ko == ["측정값 'payments.nope' 이(가) 없어 뺐습니다 — 목록에서 다시 골라 주세요.",
                  "기간 'someday' 을(를) 읽지 못해 뺐습니다 — 목록에서 고르거나 2026-11-01..2026-11-30 처럼 적어 주세요."]
    assert en[0] == "Measure 'payments.nope' does not exist and was dropped — pick one from the list."


def test_an_empty_warehouse_has_an_empty_model_and_no_problems(business):
    from dashboard.warehouse import Catalog

    config = load_config(business.config_path, needs=("warehouse",))
    model = load_model(config, Catalog(missing=True), directory=ROOT / "models")
    assert model.tables == {} and model.problems == []
