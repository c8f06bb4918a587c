"""The failpoint spec (INGEST_FAILPOINT): what crash and stop tests rely on to reach a step on purpose."""

from __future__ import annotations

import threading

import pytest

from ingest.failpoints import Failpoints
from tests.ingest_helpers import wait_for


@pytest.mark.parametrize("spec, expected", [
    ("after_commit", ("after_commit", 1, "kill", None)),
    ("mid_merge:3", ("mid_merge", 3, "kill", None)),
    ("mid_merge:2:kill", ("mid_merge", 2, "kill", None)),
    ("during_checkpoint:hold:/tmp/fp", ("during_checkpoint", 1, "hold", "/tmp/fp")),
    ("mid_merge:2:hold:/tmp/a:b", ("mid_merge", 2, "hold", "/tmp/a:b")),
])
def test_spec_is_read_as_step_visit_action(spec, expected):
    fp = Failpoints(spec)
    assert (fp.step, fp.nth, fp.action, fp.hold_dir and str(fp.hold_dir)) == expected


@pytest.mark.parametrize("spec, says", [
    ("mid-merge", "unknown step 'mid-merge'"),
    ("mid_merge:0", "N counts visits from 1"),
    ("mid_merge:1:pause", "unknown action 'pause'"),
    ("mid_merge:1:hold", "hold needs an absolute directory"),
    ("mid_merge:1:hold:relative/dir", "hold needs an absolute directory"),
    ("mid_merge:1:kill:/tmp/x", "kill takes no argument"),
])
def test_a_wrong_spec_says_what_is_expected(spec, says):
    with pytest.raises(ValueError) as exc:
        Failpoints(spec)
    assert says in str(exc.value) and "STEP[:N]" in str(exc.value) and "before_transaction" in str(exc.value)


def test_hold_waits_at_the_nth_visit_until_released(tmp_path):
    fp = Failpoints(f"mid_merge:2:hold:{tmp_path}")
    passed = []

    def landing():
        for visit in (1, 2, 3):
            fp.hit("after_commit")  # another step: never holds
            fp.hit("mid_merge")
            passed.append(visit)

    thread = threading.Thread(target=landing, daemon=True)
    thread.start()
    wait_for(lambda: (tmp_path / "held").exists(), 10, "the hold marker")
    assert passed == [1], "held at the second visit, not before, not after"
    assert (tmp_path / "held").read_text().startswith("mid_merge 2 pid ")
    assert not (tmp_path / "resumed").exists()
    (tmp_path / "release").touch()
    thread.join(10)
    assert not thread.is_alive() and passed == [1, 2, 3]
    assert (tmp_path / "resumed").read_text() == "released\n"
