"""Named points where a test makes the worker die, or wait (env INGEST_FAILPOINT, read by the config loader).

Kill — `INGEST_FAILPOINT=after_commit` kills the worker with SIGKILL the first
time it reaches that step; `after_commit:3` the third time. A real SIGKILL, not
an exception: nothing gets a chance to clean up, exactly like a power cut.

Hold — `INGEST_FAILPOINT=mid_merge:1:hold:/some/dir` stops the worker's
landing thread at the first visit of that step: it writes `/some/dir/held`
(the step and the pid), waits until a file `/some/dir/release` exists, writes
`/some/dir/resumed` and carries on where it stopped. A test waits on those
files instead of sleeping and hoping the worker got there: it can, for
example, send SIGTERM while a batch is half merged and check that the batch
still lands. Signal handlers run during the hold (only this thread waits, in
short sleeps). After HOLD_LIMIT_SECONDS without a release the worker carries
on by itself, so a test that died never leaves a worker stuck for good.

Steps: before_transaction, mid_merge (after the batch's first table is merged,
inside the transaction), after_commit (before the advisory Kafka commit),
during_checkpoint; the scheduler's before_send (slot claimed, nothing sent),
after_send (the SMTP server accepted the mail, the log does not say so yet),
after_log (the log says sent).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

STEPS = ("before_transaction", "mid_merge", "after_commit", "during_checkpoint",
         # the scheduler (dashboard/subscriptions/sender.py): around one mail's send and its log entry
         "before_send", "after_send", "after_log")
ACTIONS = ("kill", "hold")
HOLD_LIMIT_SECONDS = 300.0
HOLD_POLL_SECONDS = 0.02
SPEC_FORM = "STEP[:N] (kill) or STEP[:N]:hold:DIR (wait for DIR/release)"


class Failpoints:
    def __init__(self, spec: str | None):
        self.step: str | None = None
        self.nth = 1
        self.action = "kill"
        self.hold_dir: Path | None = None
        if spec:
            self.step, self.nth, self.action, self.hold_dir = _parse(spec)
        self._seen = 0

    def hit(self, step: str, delay: float | None = None) -> None:
        """Die (or hold) here if this is the configured step's N-th visit.

        With `delay`, the kill comes from a timer thread while the caller goes
        on into the next statement (used to die *during* a CHECKPOINT). A hold
        ignores `delay`: the caller waits right here.
        """
        if step != self.step:
            return
        self._seen += 1
        if self._seen != self.nth:
            return
        if self.action == "hold":
            self._hold(step)
        elif delay is None:
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()

    def _hold(self, step: str) -> None:
        assert self.hold_dir is not None
        self.hold_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.hold_dir / "held", f"{step} {self.nth} pid {os.getpid()}\n")
        release = self.hold_dir / "release"
        deadline = time.monotonic() + HOLD_LIMIT_SECONDS
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(HOLD_POLL_SECONDS)
        _write_atomically(self.hold_dir / "resumed", "released\n" if release.exists() else "hold limit passed\n")


def _parse(spec: str) -> tuple[str, int, str, Path | None]:
    """`STEP[:N][:ACTION[:ARG]]` → (step, n, action, hold directory); a clear ValueError otherwise."""
    def bad(why: str) -> ValueError:
        return ValueError(f"INGEST_FAILPOINT={spec!r}: {why} — expected {SPEC_FORM}, steps: {', '.join(STEPS)}")

    step, _, rest = spec.partition(":")
    if step not in STEPS:
        raise bad(f"unknown step {step!r}")
    nth = 1
    head, _, tail = rest.partition(":")
    if head.isdigit():
        nth, rest = int(head), tail
        if nth < 1:
            raise bad("N counts visits from 1")
    action, _, arg = rest.partition(":")
    action = action or "kill"
    if action not in ACTIONS:
        raise bad(f"unknown action {action!r}")
    if action == "kill":
        if arg:
            raise bad("kill takes no argument")
        return step, nth, action, None
    if not arg or not os.path.isabs(arg):
        raise bad("hold needs an absolute directory for its marker files")
    return step, nth, action, Path(arg)


def _write_atomically(path: Path, text: str) -> None:
    """A reader polling for `path` sees it whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
