"""POSIX timers (timer_create(2)): per process, by id.

Dump: /proc/PID/timers lists every timer (id, signal and sigev_value, how it
notifies and whom, clock); an injected timer_gettime gives the time to the
next expiry and the interval, timer_getoverrun the overrun of the last
delivery.  The pid /proc shows for the notified task is refcr's view of it
and is translated to the inner tid.

Restore, through the main thread once every thread exists (a
SIGEV_THREAD_ID timer names one): with PR_TIMER_CREATE_RESTORE_IDS on,
timer_create takes the id to use from the timer_t it is given, so every
timer gets its dumped id; then it is armed with the remaining time
(relative: an absolute timer would have the same expiry).  They are made
oldest first, as /proc lists them newest first, so the list comes back in
its order; in restore mode the kernel continues its id counter after the id
just given, so the next timer_create of the process gets the id after its
newest timer's, as it would have (unless it had deleted its newest ones,
which /proc cannot show).  A CLOCK_THREAD_CPUTIME_ID timer
measures the thread that created it, which /proc does not show: it is
created in the thread it notifies (SIGEV_THREAD_ID), else in the main thread.

Not restorable, by nature, and harmless: the overrun count of the last
delivery (timer_getoverrun reads 0 after restore until the timer fires
again; a timer signal still queued keeps its si_overrun).
"""
from __future__ import annotations

import struct

from refcr.errors import DumpError, RestoreError
from refcr.pb import core_pb2
from refcr.ptrace import proc
from refcr.ptrace.tracee import Remote

PR_TIMER_CREATE_RESTORE_IDS = 77
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
NOTIFY_WORDS = {"signal": SIGEV_SIGNAL, "none": SIGEV_NONE, "thread": SIGEV_THREAD}
CLOCK_THREAD_CPUTIME_ID = 3
CPUCLOCK_PERTHREAD = 4               # in a CPU clock id: ~pid << 3 | perthread | which
ITIMERSPEC = struct.Struct("<qqqq")      # it_interval {sec, nsec}, it_value {sec, nsec}
SIGEVENT_SIZE = 64


def _ns(sec: int, nsec: int) -> int:
    return sec * 1_000_000_000 + nsec


def _timespec(ns: int) -> tuple[int, int]:
    return divmod(ns, 1_000_000_000)


def parse_proc_timers(text: str) -> list[dict[str, str]]:
    """The blocks of /proc/PID/timers (ID, signal, notify, ClockID), as dicts."""
    out: list[dict[str, str]] = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "ID":
            out.append({})
        if out:
            out[-1][key] = value.strip()
    return out


def _entry(pid: int, block: dict[str, str], inner_tid: dict[int, int]) -> core_pb2.PosixTimerEntry:
    try:
        signo, _, sigval = block["signal"].partition("/")
        how, _, whom = block["notify"].partition("/")
        kind, _, num = whom.partition(".")
        notify = NOTIFY_WORDS[how] | (SIGEV_THREAD_ID if kind == "tid" else 0)
        e = core_pb2.PosixTimerEntry(id=int(block["ID"]), clockid=int(block["ClockID"]), notify=notify,
                                     signo=int(signo), sigval=int(sigval, 16))
    except (KeyError, ValueError) as exc:
        raise DumpError(f"process {pid}: cannot parse /proc/{pid}/timers: {block!r}") from exc
    if notify & SIGEV_THREAD_ID:
        if int(num) not in inner_tid:
            raise DumpError(f"process {pid}: POSIX timer {e.id} notifies task {num}, not one of its threads")
        e.tid = inner_tid[int(num)]
    return e


def dump(pid: int, remote: Remote, inner_tid: dict[int, int]) -> list[core_pb2.PosixTimerEntry]:
    """inner_tid: refcr's tid -> the tid in the images, for every thread."""
    with open(proc.path(pid, "timers")) as f:
        blocks = parse_proc_timers(f.read())
    out = []
    for block in blocks:
        e = _entry(pid, block, inner_tid)
        remote.check("timer_gettime", e.id, remote.scratch)
        isec, insec, vsec, vnsec = ITIMERSPEC.unpack(remote.get(remote.scratch, ITIMERSPEC.size))
        e.interval_ns, e.value_ns = _ns(isec, insec), _ns(vsec, vnsec)
        e.overrun = remote.check("timer_getoverrun", e.id)
        out.append(e)
    return out


def own_thread_clock(clockid: int) -> bool:
    """A clock of the CPU time of the calling thread (as glibc passes it: pid 0)."""
    if clockid == CLOCK_THREAD_CPUTIME_ID:
        return True
    return clockid < 0 and bool(clockid & CPUCLOCK_PERTHREAD) and ~(clockid >> 3) == 0


def _sigevent(e: core_pb2.PosixTimerEntry) -> bytes:
    head = struct.pack("<QiiI", e.sigval, e.signo, e.notify, e.tid)
    return head + bytes(SIGEVENT_SIZE - len(head))


def _create(remote: Remote, e: core_pb2.PosixTimerEntry) -> None:
    sev, idp, its = remote.put(_sigevent(e), struct.pack("<i", e.id),
                               ITIMERSPEC.pack(*_timespec(e.interval_ns), *_timespec(e.value_ns)))
    remote.check("timer_create", e.clockid & 0xFFFFFFFF, sev, idp)
    got = struct.unpack("<i", remote.get(idp, 4))[0]
    if got != e.id:
        raise RestoreError(f"task {remote.tid}: POSIX timer {e.id} came back as {got}")
    if e.value_ns:
        remote.check("timer_settime", e.id, 0, its, 0)


def restore(main: Remote, threads: dict[int, Remote], timers: list[core_pb2.PosixTimerEntry]) -> None:
    """threads: inner tid -> the puppet thread's Remote; timers in /proc's order."""
    if not timers:
        return
    if main.call("prctl", PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) < 0:
        raise RestoreError(f"task {main.tid}: this kernel cannot create POSIX timers with given ids "
                           "(PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15+)")
    try:
        for e in reversed(timers):      # /proc lists the newest first: recreate the oldest first
            by = threads.get(e.tid, main) if own_thread_clock(e.clockid) else main
            _create(by, e)
    finally:
        main.check("prctl", PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0)
