"""Which curated reports a role is offered: what a report reads comes from DuckDB's parser, and is complete.

Completeness is what makes hiding a report safe: a role that may read
exactly the columns `needs` lists must be able to run the report (so the
list misses nothing), and a role missing one of them is not offered it.
"""

from __future__ import annotations

import pytest

from dashboard.access import Person
from dashboard.access.enforce import acting_as, guard_for
from dashboard.access.policy import Policy
from dashboard.access.reports import needs, offered, offered_reports
from dashboard.report_runner import BUNDLED_REPORTS_DIR, bind_params, seoul_today, values_from_url
from dashboard.reports import Report, load_reports, positional_sql
from tests.test_access_rules import ACCESS, BUSAN, _warehouse
from tests.questions_fixtures import business_rows

REPORTS = [r for r in load_reports(BUNDLED_REPORTS_DIR) if isinstance(r, Report)]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return _warehouse(tmp_path_factory.mktemp("reports"), business_rows(), ACCESS)


@pytest.mark.parametrize("report", REPORTS, ids=lambda r: r.slug)
def test_a_role_that_reads_exactly_what_a_report_needs_can_run_it(warehouse, report):
    raw = warehouse.raw_catalog()
    need = needs(report, raw)
    assert need, "every bundled report reads some table"
    tables = {t for t, _ in need}
    hidden = frozenset((t, c) for t in tables for c in raw.tables[t].column_names if (t, c) not in need
                       and (t, "*") not in need)
    policy = Policy(role="exactly", tables=frozenset(tables), hidden=hidden)
    values, problems = values_from_url(report, {}, seoul_today())
    assert not problems
    bound = bind_params(report, values)
    sql = guard_for(warehouse, policy).secure(positional_sql(report))
    warehouse._execute(sql, [bound[n] for n in report.sql_names], "pandas")  # runs: nothing it reads is missing


def test_a_role_missing_a_column_a_report_reads_is_not_offered_it(warehouse):
    daily = next(r for r in REPORTS if r.slug == "daily_topups")
    assert ("topups", "amount_krw") in needs(daily, warehouse.raw_catalog())
    with acting_as(BUSAN):  # busan reads payments, refunds, merchants only
        slugs = {r.slug for r in offered_reports(warehouse, REPORTS)}
        assert not offered(daily, warehouse)
    assert "daily_topups" not in slugs
    assert slugs == {r.slug for r in REPORTS if {t for t, _ in needs(r, warehouse.raw_catalog())}
                     <= {"payments", "refunds", "merchants"} and ("merchants", "merchant_name") not in
                     needs(r, warehouse.raw_catalog()) and ("payments", "card_id") not in needs(r, warehouse.raw_catalog())
                     and ("refunds", "card_id") not in needs(r, warehouse.raw_catalog())}
    with acting_as(Person("boss@example.com", role="admin", is_admin=True)):
        assert len(offered_reports(warehouse, REPORTS)) == len(REPORTS)
