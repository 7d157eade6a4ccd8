"""timerfd descriptions: clock, armed state, period and pending expirations.

fdinfo gives the time left until the next expiry (relative even for an
absolute timer), the period, the settime flags and the expirations not yet
read.  A relative timer is re-armed with the time it had left; an absolute
one (TFD_TIMER_ABSTIME) with its original expiry on its clock, which refcr
computes at dump as "clock now + time left".  The pending expirations are
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
from refcr.eventfd import created, is_anon, set_status_flags, syscall
from refcr.files import DumpFiles, FdTarget, RestoreFiles
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
        if e.settime_flags & TFD_TIMER_ABSTIME and e.value_ns:
            e.abs_value_ns = time.clock_gettime_ns(_base_clock(e.clockid)) + e.value_ns
        return e

    def open(self, e: anon_fds_pb2.TimerfdEntry, ctx: RestoreFiles) -> int:
        fd = created(f"a timerfd on clock {e.clockid}",
                     lambda: syscall("timerfd_create", NR_TIMERFD_CREATE, e.clockid, os.O_CLOEXEC))
        try:
            if e.value_ns or e.interval_ns:
                self._arm(fd, e)
            if e.ticks:
                try:
                    fcntl.ioctl(fd, TFD_IOC_SET_TICKS, e.ticks.to_bytes(8, "little"))
                except OSError as exc:
                    log.warning("timerfd: %d pending expiration(s) lost: TFD_IOC_SET_TICKS: %s",
                                e.ticks, exc.strerror)
            set_status_flags(fd, e.flags)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _arm(fd: int, e: anon_fds_pb2.TimerfdEntry) -> None:
        # A periodic timer shows 0 left once it expired and nobody read it
        # (the kernel moves it on only at read): it is still armed, and its
        # next expiry is taken one period from now (the phase is lost).
        left = e.value_ns or e.interval_ns
        if e.settime_flags & TFD_TIMER_ABSTIME:
            value = e.abs_value_ns or time.clock_gettime_ns(_base_clock(e.clockid)) + left
        else:
            value = left
        spec = _Itimerspec(_ts(e.interval_ns), _ts(value))
        try:
            syscall("timerfd_settime", NR_TIMERFD_SETTIME, fd, e.settime_flags, ctypes.byref(spec), 0)
        except OSError as exc:
            raise RestoreError(f"cannot arm a timerfd on clock {e.clockid}: {exc.strerror}") from exc


def _base_clock(clockid: int) -> int:
    """The clock to read for a timerfd clock (the _ALARM clocks read as their base)."""
    return {8: time.CLOCK_REALTIME, 9: time.CLOCK_BOOTTIME}.get(clockid, clockid)


KINDS = [TimerfdKind()]
