"""Kernel objects that processes (not threads) of the tree share: the fd
table (clone CLONE_FILES), the fs info (CLONE_FS: cwd, root, umask), the
signal handlers (CLONE_SIGHAND, with CLONE_VM) and the address space
(CLONE_VM without CLONE_THREAD).

refcr restores each process with its own copy of these, so a tree where two
processes share one would come back with the sharing silently lost (or, for
CLONE_VM, with two copies of memory that was one).  Until the restore forks
such processes with the same clone flags, the dump refuses them, naming the
two processes and what they share.

Dump: kcmp(pid1, pid2, KCMP_*) of every process against one representative
of each object seen so far: O(processes x distinct objects) kcmp calls per
kind, nothing for a single process.
"""
from __future__ import annotations

import errno

from refcr.errors import UnsupportedObject
from refcr.ptrace import native

KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND = 1, 2, 3, 4
KINDS = (      # CLONE_SIGHAND needs CLONE_VM: named first, it says more
    (KCMP_SIGHAND, "signal handlers (clone CLONE_SIGHAND)"),
    (KCMP_VM, "an address space (clone CLONE_VM)"),
    (KCMP_FILES, "an fd table (clone CLONE_FILES)"),
    (KCMP_FS, "cwd, root and umask (clone CLONE_FS)"),
)


def _same(a: int, b: int, kind: int) -> bool:
    try:
        return native.kcmp(a, b, kind) == 0
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        raise


def check(pids: list[int]) -> None:
    """Refuse a tree in which two processes share one of KINDS."""
    for kind, what in KINDS:
        seen: list[int] = []
        for pid in pids:
            other = next((s for s in seen if _same(s, pid, kind)), None)
            if other is not None:
                raise UnsupportedObject(f"processes {other} and {pid} share {what}: "
                                        "refcr cannot restore that sharing yet")
            seen.append(pid)
