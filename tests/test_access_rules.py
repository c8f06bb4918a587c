"""Access rules in the query layer: every kind of question a role asks returns exactly what it may see.

The oracle: a second warehouse that holds only what the role may see (its
tables, its columns, the rows of its region — filtered with pandas) is
asked the same question by someone without rules. The role's answers on
the full warehouse must equal those answers, whatever the compiler built.
A planted path that skips the rules must fail this check (negative
control), so the check can tell.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from dashboard.access import Person, person_from_claims
from dashboard.access import enforce
from dashboard.access.enforce import AccessDenied, acting_as, reads, with_ctes
from dashboard.access.policy import NOTHING, OPEN, policy_for
from dashboard.model import model_for
from dashboard.questions import (Filter, MeasureFilter, Question, compile_lookup, compile_lookup_search,
                                 compile_pivot, compile_rows, compile_summary)
from dashboard.warehouse import Warehouse
from ingest.config import ConfigError, load_config
from tests.fixtures_app import build_warehouse, write_app_config
from tests.questions_fixtures import business_rows

ACCESS = """
[access]
people = [
  { match = "boss@example.com", role = "admin" },
  { match = "busan@example.com", role = "busan" },
  { match = "group:analysts", role = "analyst" },
]

[access.roles.busan]
tables = ["payments", "refunds", "merchants"]
hide_columns = ["payments.card_id", "refunds.card_id", "merchants.merchant_name"]
rows = [{ dimension = "merchants.region", op = "in", values = ["부산"] }]

[access.roles.analyst]
hide_columns = ["cards.balance_krw"]
"""

BUSAN = Person("busan@example.com", role="busan")
ANALYST = Person("ana@example.com", groups=("analysts",), role="analyst")
BOSS = Person("boss@example.com", role="admin", is_admin=True)


LANDED_AT = datetime.now(ZoneInfo("Asia/Seoul"))  # one `_ingested_at` for both warehouses, compared row for row


def _warehouse(tmp: Path, rows, extra: str = "") -> Warehouse:
    path = tmp / "warehouse.duckdb"
    build_warehouse(path, rows, now=LANDED_AT)
    config = load_config(write_app_config(tmp, path, extra=extra), needs=("warehouse",))
    return Warehouse(config)


def _busan_rows(rows):
    """What the busan role may see, cut with pandas: its three tables, its region, its columns."""
    merchants = rows["merchants"]
    busan_ids = set(merchants.loc[merchants.region == "부산", "merchant_id"])
    out = {
        "merchants": merchants[merchants.merchant_id.isin(busan_ids)].drop(columns=["merchant_name"]),
        "payments": rows["payments"][rows["payments"].merchant_id.isin(busan_ids)].drop(columns=["card_id"]),
        "refunds": rows["refunds"][rows["refunds"].merchant_id.isin(busan_ids)].drop(columns=["card_id"]),
    }
    return out


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory):
    rows = business_rows()
    full = _warehouse(tmp_path_factory.mktemp("full"), rows, ACCESS)
    from tests import fixtures_app

    types = fixtures_app.TYPES
    saved = {t: dict(types[t]) for t in ("payments", "refunds", "merchants")}
    for table, column in (("payments", "card_id"), ("refunds", "card_id"), ("merchants", "merchant_name")):
        types[table].pop(column)
    try:
        oracle = _warehouse(tmp_path_factory.mktemp("busan_only"), _busan_rows(rows))
    finally:
        for t, cols in saved.items():
            types[t].clear()
            types[t].update(cols)
    return full, oracle


def _ask(warehouse, person, build):
    """Build the question with the model the person is shown, run it as that person."""
    with acting_as(person):
        model = model_for(warehouse)
        compiled = build(model)
        return warehouse.query_uncached(compiled.sql, compiled.params)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)


QUESTIONS = {
    "summary by a related dimension": lambda m: compile_summary(m, Question(
        "payments", ("payments.payments", "payments.amount"), ("merchants.category",))),
    "ratio across two tables with a floor and top N": lambda m: compile_summary(m, Question(
        "payments", ("payments.payments", "refunds.refunds"), ("merchants.merchant_id",),
        measure_filters=(MeasureFilter("payments.payments", "ge", 3),), top=5)),
    "comparison with the previous period": lambda m: compile_summary(m, Question(
        "payments", ("payments.amount",), ("merchants.category",), period="last_30_days", compare="previous")),
    "time series": lambda m: compile_summary(m, Question(
        "payments", ("payments.payments",), (), period="last_90_days", grain="week")),
    "pivot with totals": lambda m: compile_pivot(m, Question("payments", ("payments.amount",)),
                                                ["merchants.category"], ["payments.status"]),
    "records behind a number": lambda m: compile_rows(m, Question(
        "payments", ("payments.payments",), ("merchants.category",),
        filters=(Filter("payments.status", "eq", ("approved",)),)), 100000),
    "a merchant's timeline": lambda m: compile_lookup(m, "merchants", _BUSAN_MERCHANT[0]).timeline,
    "a merchant's attributes": lambda m: compile_lookup(m, "merchants", _BUSAN_MERCHANT[0]).attributes,
    "look-up search": lambda m: compile_lookup_search(m, "merchants", _BUSAN_MERCHANT[0]),
}
_BUSAN_MERCHANT: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def busan_merchant(warehouses):
    full, _ = warehouses
    with acting_as(BOSS):
        frame = full.query_uncached("SELECT merchant_id FROM live.merchants WHERE region = '부산' ORDER BY 1 LIMIT 1")
    _BUSAN_MERCHANT[:] = [str(frame.iat[0, 0])]


@pytest.mark.parametrize("kind", list(QUESTIONS))
def test_every_kind_of_question_answers_only_what_the_role_may_see(warehouses, kind):
    full, oracle = warehouses
    got = _ask(full, BUSAN, QUESTIONS[kind])
    want = _ask(oracle, Person(None), QUESTIONS[kind])  # the cut warehouse, open (no [access] there)
    _same(got, want)
    assert not {"card_id", "merchant_name"} & set(got.columns)
    if "details" in got:  # a timeline carries each event as JSON: hidden columns must not be inside
        assert not got.details.str.contains('"card_id"').any()


def test_a_planted_path_that_skips_the_rules_fails_the_same_check(warehouses, monkeypatch):
    """Negative control: with the guard bypassed the role's answers differ, and the check says so."""
    full, oracle = warehouses
    monkeypatch.setattr(enforce.Guard, "secure", lambda self, sql: sql)
    build = QUESTIONS["summary by a related dimension"]
    got = _ask(full, BUSAN, build)
    want = _ask(oracle, Person(None), build)
    with pytest.raises(AssertionError):
        _same(got, want)


def test_the_rules_are_in_the_sql_that_runs(warehouses):
    full, _ = warehouses
    with acting_as(BUSAN):
        model = model_for(full)
        compiled = compile_summary(model, Question("payments", ("payments.payments",), ("merchants.category",)))
        secured = enforce.secure(full, compiled.sql)
    assert "'부산'" in secured and '"payments" AS NOT MATERIALIZED' in secured
    assert '"card_id"' not in secured.split("SELECT", 2)[1]  # the payments relation lists its visible columns only


def test_hidden_tables_and_columns_are_absent_from_the_model_and_the_catalog(warehouses):
    full, _ = warehouses
    with acting_as(BUSAN):
        model = model_for(full)
        catalog = full.catalog()
    assert set(model.tables) == set(catalog.tables) == {"payments", "refunds", "merchants"}
    assert "card_id" not in catalog.tables["payments"].column_names
    assert "merchant_name" not in [c for c, _ in model.tables["merchants"].columns]
    assert not any(d.column == "card_id" for t in model.tables.values() for d in t.dimensions.values())
    assert "card" not in model.tables["payments"].relationships
    with acting_as(BOSS):
        busan_payments = full.scalar("SELECT count(*) FROM live.payments p JOIN live.merchants m USING (merchant_id) "
                                     "WHERE m.region = '부산'")
    assert catalog.tables["payments"].row_count == busan_payments  # counts are the role's counts
    with acting_as(ANALYST):
        catalog = full.catalog()
    assert "balance_krw" not in catalog.tables["cards"].column_names and "members" in catalog.tables
    with acting_as(BOSS):
        assert "balance_krw" in full.catalog().tables["cards"].column_names


@pytest.mark.parametrize("sql, why", [
    ("SELECT * FROM cards", "table cards"),
    ("SELECT * FROM live.payments", "live.payments"),
    ("SELECT * FROM main.payments", "main.payments"),
    ("SELECT * FROM _meta.dead_letters", "_meta.dead_letters"),
    ("SELECT * FROM (WITH cards AS (SELECT 1 AS x) SELECT * FROM cards), cards", "table cards"),
    ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
    ("SELECT 1; SELECT * FROM cards", "single reading statement"),
    ("DESCRIBE payments", "describe"),
    ("SUMMARIZE payments", "describe"),
    ("PRAGMA table_info('payments')", "single reading statement"),
])
def test_sql_that_would_read_around_the_rules_is_refused(warehouses, sql, why):
    full, _ = warehouses
    with acting_as(BUSAN), pytest.raises(AccessDenied, match=why):
        full.query_uncached(sql)


def test_a_report_query_reads_only_the_roles_rows_under_the_same_names(warehouses):
    """Curated reports name tables plainly; their own CTEs and sub-queries still see the role's rows."""
    full, _ = warehouses
    sql = ("-- title: x\nWITH p AS (SELECT merchant_id, amount_krw FROM payments)\n"
           "SELECT m.region, count(*) AS n FROM p JOIN merchants AS m USING (merchant_id) GROUP BY ALL")
    with acting_as(BUSAN):
        got = full.query_uncached(sql)
    assert list(got.region) == ["부산"]
    with acting_as(BUSAN), pytest.raises(Exception, match="card_id"):
        full.query_uncached("SELECT card_id FROM payments")  # a hidden column does not exist for the role


def test_nobody_without_a_role_reads_anything(warehouses):
    full, _ = warehouses
    with acting_as(Person("stranger@example.com")), pytest.raises(AccessDenied):
        full.query_uncached("SELECT count(*) FROM payments")
    with acting_as(Person(None)), pytest.raises(AccessDenied):  # nobody signed in while [access] is on
        full.query_uncached("SELECT count(*) FROM payments")
    with acting_as(Person("stranger@example.com")):
        assert full.catalog().tables == {}


def test_people_get_the_role_of_the_first_line_that_matches(warehouses):
    full, _ = warehouses
    access = full.config.access
    assert person_from_claims(access, {"email": "Busan@Example.com"}).role == "busan"
    assert person_from_claims(access, {"email": "x@example.com", "groups": ["Analysts"]}).role == "analyst"
    assert person_from_claims(access, {"email": "x@example.com", "groups": []}).role is None
    boss = person_from_claims(access, {"email": "boss@example.com", "groups": ["analysts"]})
    assert boss.is_admin and policy_for(access, boss).everything
    assert policy_for(None, Person(None)) is OPEN and policy_for(access, Person(None)) is NOTHING


def test_with_ctes_keeps_comments_and_an_existing_with_clause():
    assert with_ctes("-- c\nSELECT 1", [("t", "SELECT 2")]) == '-- c\nWITH "t" AS NOT MATERIALIZED (SELECT 2) SELECT 1'
    merged = with_ctes("/* x */ with recursive r AS (SELECT 1) SELECT * FROM r", [("t", "SELECT 2")])
    assert merged == '/* x */ with recursive "t" AS NOT MATERIALIZED (SELECT 2), r AS (SELECT 1) SELECT * FROM r'
    assert reads("SELECT a FROM t JOIN s.u ON TRUE").qualified == frozenset({("s", "u")})


@pytest.mark.parametrize("text, message", [
    ('[access]\npeople = []', "[access] people"),
    ('[access]\npeople = [{ match = "a@b.c", role = "nobody" }]', "no such role"),
    ('[access]\npeople = [{ match = "a@b.c", role = "r" }]\n[access.roles.r]\nhide_columns = ["nodot"]',
     "hide_columns"),
    ('[access]\npeople = [{ match = "a@b.c", role = "r" }]\n[access.roles.r]\nrows = [{ dimension = "x.y", op = "like", values = ["a"] }]',
     "op"),
    ('[access]\npeople = [{ match = "a@b.c", role = "r" }]\n[access.roles.r]\ntabels = ["x"]', "did you mean tables"),
])
def test_a_bad_access_line_names_the_file_the_key_and_what_was_expected(tmp_path, text, message):
    path = tmp_path / "pipeline.toml"
    path.write_text(f'[warehouse]\npath = "w.duckdb"\n{text}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, needs=("warehouse",))
    assert str(path) in str(err.value) and message in str(err.value)


def test_the_sidebars_chain_status_reads_for_a_role_with_rules(warehouses):
    """The status (fresh / catching up) is the same for everyone; its fixed statements read beyond the role."""
    from dashboard import freshness

    full, _ = warehouses
    with acting_as(BUSAN):
        freshness.chain_state(full)  # no AccessDenied from the status tables it reads
        with pytest.raises(AccessDenied):
            full.query_uncached("SELECT count(*) FROM _meta.dead_letters")  # while the role itself may not
