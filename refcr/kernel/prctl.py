"""prctl(2) attributes of a task that only the task itself can read or set.

Per thread: parent-death signal, timer slack, TSC access, machine-check kill
policy, speculation controls (a mitigation the thread asked for by prctl).
Per process: child subreaper, THP disable, memory-deny-write-execute.
All are read by injected prctl calls at the dump and set the same way.

Order at restore: after the credentials (a uid change clears the
parent-death signal), timer slack before the scheduling policy is set (the
kernel zeroes the slack of a real-time thread and gives it back on return
to a normal policy), MDWE last (it would refuse later executable mappings).
A subreaper's orphans are re-parented to it by construction: the images list
them as its children, so it forks them.

Refused at the dump, one line each:
* a parent-death signal of the tree's root: its parent is not dumped (the
  restored root's parent is refcr, or init after `-d`, so it would fire);
* PR_SET_IO_FLUSHER and PR_SET_MEMORY_MERGE: setting them needs
  CAP_SYS_RESOURCE, which refcr cannot count on.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

from refcr.errors import UnsupportedObject
from refcr.pb import core_pb2
from refcr.ptrace.tracee import Remote, RemoteError

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG = 1, 2
PR_GET_TSC, PR_SET_TSC = 25, 26
PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30
PR_MCE_KILL, PR_MCE_KILL_GET = 33, 34
PR_MCE_KILL_CLEAR, PR_MCE_KILL_SET = 0, 1
PR_MCE_KILL_DEFAULT = 2
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
PR_GET_IO_FLUSHER = 58
PR_SET_MDWE, PR_GET_MDWE = 65, 66
PR_GET_MEMORY_MERGE = 68
PR_GET_SPECULATION_CTRL, PR_SET_SPECULATION_CTRL = 52, 53
SPEC_KINDS = (0, 1, 2)               # PR_SPEC_STORE_BYPASS, PR_SPEC_INDIRECT_BRANCH, PR_SPEC_L1D_FLUSH
PR_SPEC_PRCTL, PR_SPEC_DISABLE, PR_SPEC_FORCE_DISABLE, PR_SPEC_DISABLE_NOEXEC = 1, 4, 8, 16


def _get_int(remote: Remote, option: int) -> int:
    """prctl options that write an int to arg2."""
    remote.check("prctl", option, remote.scratch, 0, 0, 0)
    return struct.unpack("<i", remote.get(remote.scratch, 4))[0]


def _optional(remote: Remote, option: int) -> int:
    """A getter the kernel may not have (EINVAL): 0."""
    ret = remote.call("prctl", option, 0, 0, 0, 0)
    return 0 if ret < 0 else ret


def thread_calls(ints: int) -> list[tuple[str, tuple[int, ...]]]:
    """Every per-thread getter, for a batch of the caller's (one round trip per
    thread for all of a thread's state); *ints*: 8 bytes of scratch for the two
    getters that write an int.  Their results go to thread_from()."""
    return [("prctl", (PR_GET_PDEATHSIG, ints, 0, 0, 0)), ("prctl", (PR_GET_TIMERSLACK, 0, 0, 0, 0)),
            ("prctl", (PR_GET_TSC, ints + 4, 0, 0, 0)), ("prctl", (PR_MCE_KILL_GET, 0, 0, 0, 0)),
            *[("prctl", (PR_GET_SPECULATION_CTRL, k, 0, 0, 0)) for k in SPEC_KINDS],
            ("prctl", (PR_GET_IO_FLUSHER, 0, 0, 0, 0))]


def thread_from(pid: int, remote: Remote, is_root: bool, results: Sequence[int | None],
                ints: int) -> core_pb2.ThreadPrctl:
    """The thread's prctl state from the batch of thread_calls(ints): the first
    four getters must work, the others may be missing from the kernel (EINVAL: 0)."""
    got = [r or 0 for r in results]
    for ret in got[:4]:
        if -4096 < ret < 0:
            raise RemoteError(remote.tid, "prctl", -ret)
    pdeath, tsc = struct.unpack("<ii", remote.get(ints, 8))
    e = core_pb2.ThreadPrctl(pdeath_signal=pdeath, timer_slack_ns=got[1], tsc=tsc, mce_kill=got[3],
                             speculation=[max(r, 0) for r in got[4:4 + len(SPEC_KINDS)]])
    if e.pdeath_signal and is_root:
        raise UnsupportedObject(f"process {pid}: thread {remote.tid} has parent-death signal {e.pdeath_signal} "
                                "(PR_SET_PDEATHSIG) but is in the tree's root, whose parent is not dumped: "
                                "refcr cannot dump it")
    if max(got[-1], 0):
        raise UnsupportedObject(f"process {pid}: thread {remote.tid} is an IO flusher (PR_SET_IO_FLUSHER): "
                                "refcr cannot restore it without CAP_SYS_RESOURCE")
    return e


def dump_process(pid: int, remote: Remote) -> core_pb2.ProcessPrctl:
    if _optional(remote, PR_GET_MEMORY_MERGE):
        raise UnsupportedObject(f"process {pid}: KSM merging of the whole process (PR_SET_MEMORY_MERGE): "
                                "refcr cannot restore it without CAP_SYS_RESOURCE")
    return core_pb2.ProcessPrctl(child_subreaper=bool(_get_int(remote, PR_GET_CHILD_SUBREAPER)),
                                 thp_disable=remote.check("prctl", PR_GET_THP_DISABLE, 0, 0, 0, 0),
                                 mdwe=_optional(remote, PR_GET_MDWE))


def restore_thread(remote: Remote, e: core_pb2.ThreadPrctl) -> None:
    """After the thread's credentials."""
    if e.timer_slack_ns:
        remote.defer("prctl", PR_SET_TIMERSLACK, e.timer_slack_ns, 0, 0, 0)
    if e.tsc:
        remote.defer("prctl", PR_SET_TSC, e.tsc, 0, 0, 0)
    if e.mce_kill in (0, 1):
        remote.defer("prctl", PR_MCE_KILL, PR_MCE_KILL_SET, e.mce_kill, 0, 0)
    if e.pdeath_signal:
        remote.defer("prctl", PR_SET_PDEATHSIG, e.pdeath_signal, 0, 0, 0)
    for kind, value in zip(SPEC_KINDS, e.speculation, strict=False):
        _restore_speculation(remote, kind, value)


def _restore_speculation(remote: Remote, kind: int, value: int) -> None:
    """Only a mitigation set by prctl (PR_SPEC_PRCTL with a disable bit) is the
    thread's own; the rest is the system's and the new thread has it too."""
    if not value & PR_SPEC_PRCTL:
        return
    for bit in (PR_SPEC_FORCE_DISABLE, PR_SPEC_DISABLE_NOEXEC, PR_SPEC_DISABLE):
        if value & bit:
            remote.defer("prctl", PR_SET_SPECULATION_CTRL, kind, bit, 0, 0)
            return


def restore_process(remote: Remote, e: core_pb2.ProcessPrctl) -> None:
    if e.child_subreaper:
        remote.check("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if e.thp_disable:
        remote.check("prctl", PR_SET_THP_DISABLE, 1, e.thp_disable & ~1, 0, 0)


def restore_mdwe(remote: Remote, e: core_pb2.ProcessPrctl) -> None:
    """Last of the process's injected calls that could map code."""
    if e.mdwe:
        remote.check("prctl", PR_SET_MDWE, e.mdwe, 0, 0, 0)
