"""Fault injection for the test suite.

Setting ``REFCR_FAULT=<point>`` makes refcr fail on purpose at that point, so
the suite can prove that a failed dump leaves the process untouched and a
failed restore leaves nothing behind.  Points are named after the pipeline
step that has just finished.

Setting ``REFCR_KILL_AT=<point>`` makes refcr SIGKILL itself there instead
(no cleanup of its own runs), so the suite can prove that refcr's guardian
(refcr/ptrace/guardian.py) puts the tasks back.  Kill points are named
``<pipeline>-<step>``: the steps shared by dump and pre-dump (freezing,
masks, scratch, an injected call) take the pipeline from :data:`stage`.
"""
from __future__ import annotations

import os
import signal

from refcr.errors import InjectedFault

POINTS = (
    "dump-after-seize",
    "dump-mid-pages",
    "dump-after-memory",
    "dump-before-write",
    "restore-after-fork",
    "restore-after-memory",
    "restore-before-detach",
)

SHARED_STEPS = ("after-seize", "after-masks", "after-scratch", "mid-syscall", "mid-finish")
FREEZER_STEPS = ("cgroup-frozen",)      # reached only with --freeze-cgroup (tests/test_freezer.py)
KILL_POINTS = {
    "dump": SHARED_STEPS + ("after-threads", "mid-pages", "after-memory", "after-fds", "before-inventory",
                            "after-inventory") + FREEZER_STEPS,
    "pre-dump": SHARED_STEPS + ("after-track-start", "after-arm", "after-plan", "after-thaw",
                                "before-inventory") + FREEZER_STEPS,
}
stage = "dump"          # the pipeline running: "dump" or "pre-dump"


def point(name: str) -> None:
    """Raise InjectedFault if REFCR_FAULT names this point."""
    assert name in POINTS, name
    if os.environ.get("REFCR_FAULT") == name:
        raise InjectedFault(f"fault injected at {name} (REFCR_FAULT)")


def armed(step: str) -> bool:
    """True if REFCR_KILL_AT names this step of the running pipeline."""
    assert step in KILL_POINTS[stage], (stage, step)
    return os.environ.get("REFCR_KILL_AT") == f"{stage}-{step}"


def kill_point(step: str) -> None:
    """SIGKILL refcr itself if REFCR_KILL_AT names this step."""
    if armed(step):
        os.kill(os.getpid(), signal.SIGKILL)
