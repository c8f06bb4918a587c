"""Which curated reports a role is offered: those whose every table and column it may read.

What a report reads is not declared by hand: DuckDB's parser lists the
tables its query (and its `from=` option queries) names, and the columns
it refers to that those tables have. The Reports page shows that list
("Reads: …"), and a role that may not read one of them is not offered the
report — in the list, the Overview's links, the subscription form, or a
shared link. Running it anyway would fail on the missing column rather
than leak it (dashboard/access/enforce.py); this only keeps such reports
out of sight.
"""

from __future__ import annotations

from functools import lru_cache

from dashboard.access.enforce import AccessDenied, policy_now, reads
from dashboard.reports import Report, positional_sql


@lru_cache(maxsize=256)
def _reads_of(sql: str):
    try:
        return reads(sql)
    except AccessDenied:
        return None


def _reads(report: Report):
    """What the parser finds in the report's query and its `from=` option queries: (tables, columns) per query."""
    for sql in [positional_sql(report)] + [p.options_sql for p in report.params if p.options_sql]:
        found = _reads_of(sql)
        if found is not None:
            yield found.tables - found.ctes, found.columns


def needs(report: Report, catalog) -> tuple[tuple[str, str], ...]:
    """(table, column) pairs the report reads, by the parser; a table read as a whole appears as (table, "*")."""
    out: set[tuple[str, str]] = set()
    for tables, columns in _reads(report):
        for table in tables:
            info = catalog.tables.get(table)
            if info is None:
                continue
            used = [c for c in info.column_names if c.lower() in columns]
            out.update((table, c) for c in used)
            if not used:
                out.add((table, "*"))
    return tuple(sorted(out))


def missing_tables(report: Report, catalog) -> list[str]:
    """Tables the report reads that the warehouse does not have (yet): not landed, or not exported at all."""
    return sorted({t for tables, _ in _reads(report) for t in tables if t not in catalog.tables})


def offered(report: Report, warehouse) -> bool:
    """Whether the current person's role may read everything the report reads."""
    policy = policy_now(warehouse.config)
    if policy.everything:
        return True
    visible = warehouse.catalog().tables
    return all(policy.may_read_table(t) and not policy.hides(t, c) and t in visible
               for t, c in needs(report, warehouse.raw_catalog()))


def offered_reports(warehouse, reports):
    """The reports (of a mixed list of reports and broken files) the current person is offered."""
    return [r for r in reports if isinstance(r, Report) and offered(r, warehouse)]
