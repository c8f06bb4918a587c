"""A PLANTED BUG for the negative control: `python tests/faults/sigterm_abandons_batch.py worker ...`.

On SIGTERM the worker exits at once (a clean-looking exit 0) instead of
finishing the batch it is landing: the open transaction rolls back and the
batch's rows and offsets are lost from this run. The SIGTERM test must catch
exactly that. Never imported by the product.
"""

import logging
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ingest import worker  # noqa: E402
from ingest.cli import main  # noqa: E402


def install_signals_that_abandon_the_batch(self):
    def on_signal(signum, _frame):
        logging.getLogger("ingest.worker").info(
            "%s received: finishing the current batch, then exiting", signal.Signals(signum).name)
        self.stop.set()
        raise SystemExit(0)  # the bug: the batch in flight is dropped

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


worker.Worker._install_signals = install_signals_that_abandon_the_batch
sys.exit(main())
