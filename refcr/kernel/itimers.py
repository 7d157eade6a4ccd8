"""Interval timers (setitimer).  They are per process and not inherited by
fork, so the puppet starts with none and gets the dumped ones re-armed with
the time that was left on them.

An ITIMER_REAL that fired while SIGALRM is blocked reads value 0 with its
interval kept: the kernel re-arms it only when the SIGALRM is dequeued
(dequeue_signal).  setitimer cannot make that state (value 0 disarms and
drops the interval), so such a timer is armed to expire in 1 us while the
puppet blocks every signal: it fires at once, its SIGALRM merges with the
requeued pending one, and the timer is left exactly so -- fired, waiting
for its signal to be taken.  (Dumping it as disarmed lost the timer: the
flake of itimer00 when dump and restore took longer than its 1.1 s.)"""
from __future__ import annotations

import struct
import time

from refcr.pb import core_pb2
from refcr.ptrace.tracee import Remote

ITIMERVAL = struct.Struct("<qqqq")   # it_interval {sec, usec}, it_value {sec, usec}
WHICH = (0, 1, 2)                    # ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
ITIMER_REAL = 0


def _us(sec: int, usec: int) -> int:
    return sec * 1_000_000 + usec


def dump_itimers(remote: Remote) -> list[core_pb2.ItimerEntry]:
    """The three timers in one batch (read at the same moment, near enough)."""
    base, = remote.put(bytes(ITIMERVAL.size * len(WHICH)))
    remote.check_batch([("getitimer", (which, base + i * ITIMERVAL.size)) for i, which in enumerate(WHICH)])
    raw = remote.get(base, ITIMERVAL.size * len(WHICH))
    return [core_pb2.ItimerEntry(which=which, interval_us=_us(isec, iusec), value_us=_us(vsec, vusec))
            for which, (isec, iusec, vsec, vusec) in zip(WHICH, ITIMERVAL.iter_unpack(raw), strict=True)]


def _arm(remote: Remote, which: int, interval_us: int, value_us: int) -> int:
    """setitimer, then getitimer: returns the time to expiry the kernel now reports."""
    blob = ITIMERVAL.pack(*divmod(interval_us, 1_000_000), *divmod(value_us, 1_000_000))
    addr, = remote.put(blob)
    remote.check("setitimer", which, addr, 0)
    remote.check("getitimer", which, remote.scratch)
    _, _, vsec, vusec = ITIMERVAL.unpack(remote.get(remote.scratch, ITIMERVAL.size))
    return _us(vsec, vusec)


ITIMER_REAL = 0


def _fired_real(remote: Remote, interval_us: int) -> None:
    """A REAL timer that fired and waits for its SIGALRM to be dequeued."""
    got = _arm(remote, ITIMER_REAL, interval_us, 1)
    deadline = time.monotonic() + 1.0
    while got and time.monotonic() < deadline:
        time.sleep(0.0001)
        remote.check("getitimer", ITIMER_REAL, remote.scratch)
        _, _, vsec, vusec = ITIMERVAL.unpack(remote.get(remote.scratch, ITIMERVAL.size))
        got = _us(vsec, vusec)


def restore_itimers(remote: Remote, timers: list[core_pb2.ItimerEntry]) -> None:
    for t in timers:
        if not t.value_us and t.which == ITIMER_REAL and t.interval_us:
            _fired_real(remote, t.interval_us)
            continue
        if not t.value_us:
            continue    # disarmed: nothing to do in a fresh puppet
        got = _arm(remote, t.which, t.interval_us, t.value_us)
        # The kernel adds a tick when it arms a CPU-time timer (VIRTUAL, PROF);
        # the puppet uses no CPU time while stopped, so take it off once.
        extra = got - t.value_us
        if t.which != 0 and 0 < extra < t.value_us:
            _arm(remote, t.which, t.interval_us, t.value_us - extra)
