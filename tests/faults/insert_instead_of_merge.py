"""A PLANTED BUG for the negative control: `python tests/faults/insert_instead_of_merge.py worker ...`.

The landing INSERTs every change instead of MERGEing it on the key (the real
statement with its match condition made false), so a row changed in two
batches, or delivered again, is stored twice. The duplicate oracle
(`tests/ingest_helpers.assert_matches_scenario`) must catch exactly that.
Never imported by the product.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ingest import landing_sql  # noqa: E402
from ingest.cli import main  # noqa: E402

_real_merge_changes = landing_sql.merge_changes
MATCH = " USING _stage AS s ON "


def insert_every_change(*args, **kwargs) -> str:
    statement = _real_merge_changes(*args, **kwargs)
    if MATCH not in statement:  # the landing's statement changed shape: fail loudly, never plant nothing
        raise RuntimeError(f"planted fault cannot find {MATCH!r} in the landing's MERGE: update this file")
    return statement.replace(MATCH, MATCH + "false AND ", 1)


landing_sql.merge_changes = insert_every_change
sys.exit(main())
