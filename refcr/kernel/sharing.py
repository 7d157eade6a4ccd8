"""Kernel objects that processes (not threads) of the tree share: the fd
table (clone CLONE_FILES), the fs info (CLONE_FS: cwd, root, umask), the
signal handlers (CLONE_SIGHAND, with CLONE_VM) and the address space
(CLONE_VM without CLONE_THREAD).

Restored: a process that shares any of them with its parent.  The dump
records the flags in its pstree entry (clone_flags); the restore forks it
from its parent's puppet with clone3(those flags), and only the first
process of the group (the topmost) restores what they share:
- CLONE_FS / CLONE_FILES: cwd, root and umask, or the fd table (the image
  checker wants the others' to be the same: a sharer's fdinfo image is its
  parent's).  The fork happens while the table holds only refcr's pidfd
  slot, so nothing of the parent's table is copied by accident; the slot is
  closed once every process has restored its memory (a sharer's file areas
  are mapped through it after its parent installed the table).
- CLONE_VM: the address space, dumped and mapped once, by the topmost
  process (a sharer has no mm or pagemap image: restore.py and the image
  checker take its parent's); the puppets of the group run refcr's
  restorer area of that one address space, which the last of them to
  finish removes.  The per-mm state that prctl sets (dumpable, THP, MDWE)
  is the same in every member's image and is set again by each, harmlessly.
- CLONE_SIGHAND: the signal handlers, set by every member alike (the same
  table: the last write wins with the same values).
A chain (a grandchild sharing with its child sharing with the root) is one
group made by the same forks.  As CRIU (cr-restore.c fork_with_pid,
rst->clone_flags), sharing is rebuilt only the way clone makes it: with the
parent.

Refused at the dump, naming the two processes and what they share: sharing
with a process that is not the parent (two siblings after CLONE_PARENT, or
re-parented sharers).  Refused before the freeze (dump.py): a process that
waits in vfork() for a child that has not exec'ed or exited yet (ptrace
cannot stop it there, and that wait cannot be made again: the parent would
return from its vfork early).

Dump: per kind, the processes sorted in kcmp(pid1, pid2, KCMP_*) order
(O(n log n) calls; a scan against one representative of each object seen
so far where the kernel gives no order), then each process's group checked
against its parent; nothing for a single process.
"""
from __future__ import annotations

import errno
import functools
from dataclasses import dataclass

from refcr.errors import UnsupportedObject
from refcr.kernel.pstree import Member
from refcr.ptrace import native

KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND = 1, 2, 3, 4
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x00000100, 0x00000200, 0x00000400, 0x00000800
RESTORED = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND   # the clone_flags a pstree entry may carry
VFORK_SYSCALLS = {56, 58, 435}         # clone, vfork, clone3: where a vfork parent waits for its child
VFORK_WAITS = {"kernel_clone", "wait_for_vfork_done"}    # its wchan (the wait is inlined or not)


@dataclass(frozen=True)
class Kind:
    kcmp: int
    what: str
    clone_flags: int = 0               # restored by a clone with these flags from the parent; 0: refused


KINDS = (      # CLONE_SIGHAND needs CLONE_VM: named first, it says more
    Kind(KCMP_SIGHAND, "signal handlers (clone CLONE_SIGHAND)", CLONE_SIGHAND),
    Kind(KCMP_VM, "an address space (clone CLONE_VM)", CLONE_VM),
    Kind(KCMP_FILES, "an fd table (clone CLONE_FILES)", CLONE_FILES),
    Kind(KCMP_FS, "cwd, root and umask (clone CLONE_FS)", CLONE_FS),
)


class _NoOrder(Exception):
    """kcmp gave no order (or a process went away): compare with each instead."""


def _order(a: int, b: int, kind: int) -> int:
    try:
        r = native.kcmp(a, b, kind)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            raise _NoOrder from None
        raise
    if r == 3:
        raise _NoOrder
    return (0, -1, 1)[r]


def _same(a: int, b: int, kind: int) -> bool:
    try:
        return native.kcmp(a, b, kind) == 0
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        raise


def _groups(pids: list[int], kind: int) -> dict[int, list[int]]:
    """pid -> the pids that share the kind's object with it, in the order of
    *pids*: a sort in kcmp's order (n log n kcmp calls; comparing each with
    each was 20,000 calls for 100 processes), else a scan of the groups."""
    groups: list[list[int]] = []
    try:
        ordered = sorted(pids, key=functools.cmp_to_key(lambda a, b: _order(a, b, kind)))
        for pid in ordered:
            if groups and _order(groups[-1][0], pid, kind) == 0:
                groups[-1].append(pid)
            else:
                groups.append([pid])
    except _NoOrder:
        groups = []
        for pid in pids:
            group = next((g for g in groups if _same(g[0], pid, kind)), None)
            if group is None:
                groups.append([pid])
            else:
                group.append(pid)
    rank = {pid: i for i, pid in enumerate(pids)}
    return {pid: sorted(g, key=rank.__getitem__) for g in groups for pid in g}


def _refuse(other: int, pid: int, kind: Kind, why: str) -> None:
    raise UnsupportedObject(f"processes {other} and {pid} share {kind.what}: refcr cannot restore that "
                            f"sharing{why}")


def dump(live: list[Member]) -> None:
    """Set clone_flags in the pstree entry of every process that shares a
    restorable kind with its parent; UnsupportedObject for any other
    sharing.  *live*: the live processes, parents before children."""
    host_of = {m.entry.pid: m.host_pid for m in live}
    pids = [m.host_pid for m in live]
    for kind in KINDS:
        group_of = _groups(pids, kind.kcmp)      # the first of a group is its representative
        for m in live:
            group = group_of[m.host_pid]
            if group[0] == m.host_pid:
                continue
            if not kind.clone_flags:
                _refuse(group[0], m.host_pid, kind, " yet")
            if host_of.get(m.entry.ppid) not in group:
                _refuse(group[0], m.host_pid, kind, " with a process that is not its parent")
            m.entry.clone_flags |= kind.clone_flags


def in_vfork_wait(tid: int) -> bool:
    """Whether a task waits inside vfork (or clone(CLONE_VFORK)) for its child
    to exec or exit: asleep (D) in clone, vfork or clone3, at the wait of
    kernel_clone (wchan; a task of a frozen cgroup is asleep (D) in its
    syscall too, but in the refrigerator).  It must be looked at before it
    is seized: ptrace cannot stop a task in that wait."""
    try:
        with open(f"/proc/{tid}/syscall") as f:
            nr = f.read().split()[0]
        with open(f"/proc/{tid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{tid}/wchan") as f:
            wchan = f.read().strip()
    except (OSError, IndexError):
        return False
    return state == "D" and nr.isdigit() and int(nr) in VFORK_SYSCALLS and wchan in VFORK_WAITS


def restores_mm(clone_flags: int) -> bool:
    """Whether a process has an address space of its own to dump and restore
    (not when it shares its parent's: CLONE_VM)."""
    return not clone_flags & CLONE_VM


def restores_files(clone_flags: int) -> bool:
    """Whether a process installs its own fd table (not when its parent's is its own)."""
    return not clone_flags & CLONE_FILES


def restores_fs(clone_flags: int) -> bool:
    """Whether a process restores its own cwd, root and umask (not when its parent's are its own)."""
    return not clone_flags & CLONE_FS
