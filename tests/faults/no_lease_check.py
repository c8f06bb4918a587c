"""A PLANTED BUG for the negative control: `python tests/faults/no_lease_check.py worker ...`.

A lake worker that trusts its memory of its leases: its batches renew the leases but no longer check, inside
the transaction, that their partitions are still its own and start at the stored offsets. A worker frozen
past its lease then commits a batch whose partitions another worker has landed meanwhile — the two-worker
tests must catch exactly that. Never imported by the product.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ingest import leases  # noqa: E402
from ingest.cli import main  # noqa: E402


def renew_without_checking(self, con, starts, stored):
    self.renew(con)


leases.Leases.check_and_renew = renew_without_checking
sys.exit(main())
