"""A PLANTED BUG for the negative control: `python tests/faults/offsets_outside_transaction.py worker ...`.

Commits each batch's offsets in their own transaction BEFORE the rows. A kill
between the two then loses rows — the crash tests must catch exactly that.
Never imported by the product.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ingest import landing, worker  # noqa: E402
from ingest.cli import main  # noqa: E402

_real_land_batch = landing.land_batch


def land_batch_with_offsets_outside(con, plan, *args, **kwargs):
    con.execute("BEGIN TRANSACTION")
    landing._write_offsets(con, plan)
    con.execute("COMMIT")
    return _real_land_batch(con, plan, *args, **kwargs)


worker.land_batch = land_batch_with_offsets_outside
sys.exit(main())
