"""timerfd descriptions: clock, armed state, period and pending expirations.

fdinfo gives the time left until the next expiry (relative even for an
absolute timer), the period, the settime flags and the expirations not yet
read.  refcr computes the expiry at dump ("clock now + time left") and
re-arms the timer for that same moment: an absolute one (TFD_TIMER_ABSTIME)
with it, a relative one with the time left until it at restore.  Expirations
that fell between dump and restore are added to the pending ones.  The pending expirations are
put back with the TFD_IOC_SET_TICKS ioctl (a kernel interface meant for
exactly this), after arming, since arming clears them.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import re
import time

from refcr.errors import RestoreError
from refcr.fs.eventfd import created, is_anon, set_status_flags, syscall
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles
from refcr.log import log
from refcr.pb import anon_fds_pb2

NR_TIMERFD_CREATE, NR_TIMERFD_SETTIME = 283, 286
TFD_TIMER_ABSTIME = 1
TFD_IOC_SET_TICKS = 0x40085400          # _IOW('T', 0, u64)
NS = 1_000_000_000
_PAIR = re.compile(r"\(\s*(\d+),\s*(\d+)\)")


def _ns(text: str) -> int:
    m = _PAIR.match(text)
    if m is None:
        raise ValueError(f"bad timespec {text!r} in timerfd fdinfo")
    return int(m.group(1)) * NS + int(m.group(2))


class _Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("interval", _Timespec), ("value", _Timespec)]


def _ts(ns: int) -> _Timespec:
    return _Timespec(ns // NS, ns % NS)


class TimerfdKind:
    field = "timerfd"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return is_anon(t, "[timerfd]")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> anon_fds_pb2.TimerfdEntry:
        info = t.info
        e = anon_fds_pb2.TimerfdEntry(
            flags=t.flags, clockid=int(info["clockid"]), ticks=int(info["ticks"]),
            settime_flags=int(info["settime flags"], 8), value_ns=_ns(info["it_value"]),
            interval_ns=_ns(info["it_interval"]))
        if e.value_ns:
            e.abs_value_ns = time.clock_gettime_ns(_base_clock(e.clockid)) + e.value_ns
        return e

    def open(self, e: anon_fds_pb2.TimerfdEntry, ctx: RestoreFiles) -> int:
        fd = created(f"a timerfd on clock {e.clockid}",
                     lambda: syscall("timerfd_create", NR_TIMERFD_CREATE, e.clockid, os.O_CLOEXEC))
        try:
            ticks = self._arm(fd, e) + e.ticks
            if ticks:
                try:
                    fcntl.ioctl(fd, TFD_IOC_SET_TICKS, ticks.to_bytes(8, "little"))
                except OSError as exc:
                    log.warning("timerfd: %d pending expiration(s) lost: TFD_IOC_SET_TICKS: %s",
                                ticks, exc.strerror)
            set_status_flags(fd, e.flags)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _arm(fd: int, e: anon_fds_pb2.TimerfdEntry) -> int:
        """Arm the timer to expire when it would have; returns the expirations
        that fell into the time between dump and restore."""
        now = time.clock_gettime_ns(_base_clock(e.clockid))
        if e.value_ns:
            expiry = e.abs_value_ns or now + e.value_ns
        elif e.interval_ns:
            # An expired periodic timer shows 0 left until someone reads it
            # (the kernel moves it on only then): still armed; its phase is
            # not in fdinfo, so the next expiry is one period from now.
            expiry = now + e.interval_ns
        else:
            return 0
        missed = 0
        if expiry <= now:
            if not e.interval_ns:
                return 1                # it expired during C/R: a tick, and disarmed
            missed = (now - expiry) // e.interval_ns + 1
            expiry += missed * e.interval_ns
        if e.settime_flags & TFD_TIMER_ABSTIME:
            value = expiry
        else:
            # Relative timers stay relative (CLOCK_REALTIME ones must not
            # follow clock changes), with the time left until the same moment.
            value = expiry - time.clock_gettime_ns(_base_clock(e.clockid))
            if value <= 0:
                value = 1
        spec = _Itimerspec(_ts(e.interval_ns), _ts(value))
        try:
            syscall("timerfd_settime", NR_TIMERFD_SETTIME, fd, e.settime_flags, ctypes.byref(spec), 0)
        except OSError as exc:
            raise RestoreError(f"cannot arm a timerfd on clock {e.clockid}: {exc.strerror}") from exc
        return missed


def _base_clock(clockid: int) -> int:
    """The clock to read for a timerfd clock (the _ALARM clocks read as their base)."""
    return {8: time.CLOCK_REALTIME, 9: time.CLOCK_BOOTTIME}.get(clockid, clockid)


KINDS = [TimerfdKind()]
