"""Interval timers (setitimer).  They are per process and not inherited by
fork, so the puppet starts with none and gets the dumped ones re-armed with
the time that was left on them.

An ITIMER_REAL that fired while its SIGALRM is blocked reads 0 left with a
non-zero interval: the kernel re-arms it only when that SIGALRM is
dequeued.  Left disarmed, the restored timer would never fire again (the
requeued SIGALRM is a plain signal, not the timer's); so it is armed to fire
at once (1 us), which puts it in the same state: fired, its signal pending,
re-armed on dequeue."""
from __future__ import annotations

import struct

from refcr.pb import core_pb2
from refcr.ptrace.tracee import Remote

ITIMERVAL = struct.Struct("<qqqq")   # it_interval {sec, usec}, it_value {sec, usec}
WHICH = (0, 1, 2)                    # ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
ITIMER_REAL = 0


def _us(sec: int, usec: int) -> int:
    return sec * 1_000_000 + usec


def dump_itimers(remote: Remote) -> list[core_pb2.ItimerEntry]:
    out = []
    for which in WHICH:
        remote.check("getitimer", which, remote.scratch)
        isec, iusec, vsec, vusec = ITIMERVAL.unpack(remote.get(remote.scratch, ITIMERVAL.size))
        out.append(core_pb2.ItimerEntry(which=which, interval_us=_us(isec, iusec), value_us=_us(vsec, vusec)))
    return out


def _arm(remote: Remote, which: int, interval_us: int, value_us: int) -> int:
    """setitimer, then getitimer: returns the time to expiry the kernel now reports."""
    blob = ITIMERVAL.pack(*divmod(interval_us, 1_000_000), *divmod(value_us, 1_000_000))
    addr, = remote.put(blob)
    remote.check("setitimer", which, addr, 0)
    remote.check("getitimer", which, remote.scratch)
    _, _, vsec, vusec = ITIMERVAL.unpack(remote.get(remote.scratch, ITIMERVAL.size))
    return _us(vsec, vusec)


def restore_itimers(remote: Remote, timers: list[core_pb2.ItimerEntry]) -> None:
    for t in timers:
        if not t.value_us and t.which == ITIMER_REAL and t.interval_us:
            _arm(remote, t.which, t.interval_us, 1)     # fired, waiting for its SIGALRM to be taken
            continue
        if not t.value_us:
            continue    # disarmed: nothing to do in a fresh puppet
        got = _arm(remote, t.which, t.interval_us, t.value_us)
        # The kernel adds a tick when it arms a CPU-time timer (VIRTUAL, PROF);
        # the puppet uses no CPU time while stopped, so take it off once.
        extra = got - t.value_us
        if t.which != 0 and 0 < extra < t.value_us:
            _arm(remote, t.which, t.interval_us, t.value_us - extra)
