"""Scheduling of a thread: policy and RT priority, nice, CPU affinity, io priority.

Everything is read and set from outside, on the thread's tid as refcr sees
it (sched_getscheduler/sched_getparam, getpriority, sched_getaffinity,
ioprio_get and their setters): no injected syscall.  refcr has CAP_SYS_NICE,
so real-time policies, a lower nice and IOPRIO_CLASS_RT can be given back.

The restore comes last, just before the tasks are released: a puppet made
SCHED_FIFO early would compete with refcr, one made SCHED_IDLE would crawl
through the restore.  The io priority is set only when the dumped one
differs from what the new thread has: a thread that never set one follows
its nice value, and an explicit value would pin it.

Refused: SCHED_DEADLINE (its runtime/deadline/period need sched_getattr and
admission control; not done yet).
"""
from __future__ import annotations

import ctypes
import os

from refcr.errors import RestoreError, UnsupportedObject
from refcr.pb import core_pb2

SCHED_DEADLINE = 6
SCHED_RESET_ON_FORK = 0x40000000
IOPRIO_WHO_PROCESS = 1
NR_IOPRIO_SET, NR_IOPRIO_GET = 251, 252
_libc = ctypes.CDLL(None, use_errno=True)


def ioprio_get(tid: int) -> int:
    ret = _libc.syscall(NR_IOPRIO_GET, IOPRIO_WHO_PROCESS, tid)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ioprio_get({tid}): {os.strerror(err)}")
    return ret


def ioprio_set(tid: int, value: int) -> None:
    if _libc.syscall(NR_IOPRIO_SET, IOPRIO_WHO_PROCESS, tid, value) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ioprio_set({tid}, {value:#x}): {os.strerror(err)}")


def dump(pid: int, tid: int) -> core_pb2.SchedEntry:
    """pid: the process (for messages), tid: the thread, both as refcr sees them."""
    policy = os.sched_getscheduler(tid)
    if policy & ~SCHED_RESET_ON_FORK == SCHED_DEADLINE:
        raise UnsupportedObject(f"process {pid}: thread {tid} runs under SCHED_DEADLINE: "
                                "refcr cannot dump it")
    return core_pb2.SchedEntry(policy=policy, rt_priority=os.sched_getparam(tid).sched_priority,
                               nice=os.getpriority(os.PRIO_PROCESS, tid),
                               cpus=sorted(os.sched_getaffinity(tid)), ioprio=ioprio_get(tid))


def restore(vpid: int, tid: int, e: core_pb2.SchedEntry) -> None:
    """vpid: the process as the images name it; tid: the new thread as refcr sees it."""
    what = f"process {vpid}: thread {tid}"
    try:
        os.sched_setscheduler(tid, e.policy, os.sched_param(e.rt_priority))
        os.setpriority(os.PRIO_PROCESS, tid, e.nice)
    except OSError as exc:
        raise RestoreError(f"{what}: cannot set scheduling policy {e.policy:#x} priority {e.rt_priority} "
                           f"nice {e.nice}: {exc.strerror}") from exc
    if e.cpus:
        try:
            os.sched_setaffinity(tid, e.cpus)
        except (OverflowError, ValueError):
            raise RestoreError(f"{what}: CPU affinity {list(e.cpus)[:8]} names CPUs no machine has") from None
        except OSError as exc:
            raise RestoreError(f"{what}: cannot set CPU affinity {list(e.cpus)}: {exc.strerror}") from exc
    if ioprio_get(tid) != e.ioprio:
        try:
            ioprio_set(tid, e.ioprio)
        except OSError as exc:
            raise RestoreError(f"{what}: cannot set io priority {e.ioprio:#x}: {exc.strerror}") from exc
