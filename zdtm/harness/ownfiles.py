"""What a test legitimately changes itself, taken out of the state comparison.

The snapshot compares every fd's fdinfo ``pos``.  The test's own output file
(``--outfile``, WORKDIR/NAME.out, on its stdout and stderr and wherever it
dup()ed them) is opened ``O_APPEND`` and written by the test whenever it
logs: a test that logs after restore (a thread's progress line, CRIU's
tests' "restored, checking" messages before SIGTERM) moves that offset with
no fault of the restore.  So for fds whose target is the outfile the
comparison keeps the target and the flags (``O_APPEND`` must survive) and
compares the offset only as "not behind where it was": a restore that put
it back (a lost write, a wrong pos) still fails, a test that wrote more
does not.

What else the check leaves out, and why, is listed in one place: the
docstring of snapshot.py (inodes renumbered, namespaces, mount ids, VMA
merging, anonymous shared memory), the flavors' ``ignore_fields``
(flavors.py), cropts.normalise (files handed in with --inherit-fd) and
shelljob.normalise (the terminal of a shell job); zdtm/README.md sums them
up.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from . import snapshot

OWN_OUTPUT = "<own output>"


def _positions(state: snapshot.TreeState, target: str) -> dict[tuple[int, int], int]:
    out = {}
    for t in state.tasks:
        for f in t.fds:
            if f.target == target:
                pos = dict(f.info).get("pos", "")
                out[(t.pid, f.fd)] = int(pos) if pos.isdigit() else -1
    return out


def _mark(state: snapshot.TreeState, target: str, keep: set[tuple[int, int]]) -> snapshot.TreeState:
    def fd(pid: int, f: snapshot.Fd) -> snapshot.Fd:
        if f.target != target or (pid, f.fd) in keep:
            return f
        # its size and times grow with the test's own writes as its offset does
        return replace(f, info=tuple((k, OWN_OUTPUT if k in ("pos", "size", "mtime", "atime") else v)
                                     for k, v in f.info))

    return snapshot.TreeState(tuple(replace(t, fds=tuple(fd(t.pid, f) for f in t.fds)) for t in state.tasks))


def normalise(before: snapshot.TreeState, after: snapshot.TreeState,
              outfile: Path) -> tuple[snapshot.TreeState, snapshot.TreeState]:
    """Both states with the outfile fds' offsets replaced where the one after
    is at or beyond the one before; other differences are left to show."""
    target = str(outfile)
    b, a = _positions(before, target), _positions(after, target)
    behind = {key for key, pos in b.items() if key not in a or a[key] < pos}
    return _mark(before, target, behind), _mark(after, target, behind)
