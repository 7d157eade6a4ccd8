"""Fault injection for the test suite.

Setting ``REFCR_FAULT=<point>`` makes refcr fail on purpose at that point, so
the suite can prove that a failed dump leaves the process untouched and a
failed restore leaves nothing behind.  Points are named after the pipeline
step that has just finished.
"""
from __future__ import annotations

import os

from refcr.errors import InjectedFault

POINTS = (
    "dump-after-seize",
    "dump-after-memory",
    "dump-before-write",
    "restore-after-fork",
    "restore-after-memory",
    "restore-before-detach",
)


def point(name: str) -> None:
    """Raise InjectedFault if REFCR_FAULT names this point."""
    assert name in POINTS, name
    if os.environ.get("REFCR_FAULT") == name:
        raise InjectedFault(f"fault injected at {name} (REFCR_FAULT)")
