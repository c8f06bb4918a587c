"""Named kill points for crash tests (env INGEST_FAILPOINT, read by the config loader).

`INGEST_FAILPOINT=after_commit` kills the worker with SIGKILL the first time it
reaches that step; `after_commit:3` the third time. A real SIGKILL, not an
exception: nothing gets a chance to clean up, exactly like a power cut.
Steps: before_transaction, mid_merge, after_commit (before the advisory Kafka
commit), during_checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading

STEPS = ("before_transaction", "mid_merge", "after_commit", "during_checkpoint")


class Failpoints:
    def __init__(self, spec: str | None):
        self.step: str | None = None
        self.nth = 1
        if spec:
            step, _, nth = spec.partition(":")
            if step not in STEPS:
                raise ValueError(f"INGEST_FAILPOINT={spec!r}: unknown step — expected one of {', '.join(STEPS)} (optionally :N)")
            self.step, self.nth = step, int(nth or 1)
        self._seen = 0

    def hit(self, step: str, delay: float | None = None) -> None:
        """Die here if this is the configured step's N-th visit.

        With `delay`, the kill comes from a timer thread while the caller goes
        on into the next statement (used to die *during* a CHECKPOINT).
        """
        if step != self.step:
            return
        self._seen += 1
        if self._seen != self.nth:
            return
        if delay is None:
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
