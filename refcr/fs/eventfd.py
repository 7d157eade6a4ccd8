"""eventfd and signalfd descriptions, plus the raw-syscall helper the other
anon-inode kinds (timerfd, inotify, epoll) share.

Both keep their whole state in fdinfo: an eventfd its counter and whether it
is a semaphore, a signalfd the set of signals it reads.  Restore creates a
new object with that state; the status flags (O_NONBLOCK) come with it.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import struct

from refcr.errors import RestoreError
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles
from refcr.pb import anon_fds_pb2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

NR_SIGNALFD4 = 289
EFD_SEMAPHORE = 1
STATUS_FLAGS = os.O_NONBLOCK | os.O_ASYNC


def syscall(what: str, nr: int, *args: "int | ctypes._CData") -> int:
    """Run syscall nr in refcr; OSError naming `what` if it fails."""
    cargs = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    ret = _libc.syscall(ctypes.c_long(nr), *cargs)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)
    return ret


def set_status_flags(fd: int, flags: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & STATUS_FLAGS)


def is_anon(t: FdTarget, name: str) -> bool:
    return t.link == f"anon_inode:{name}"


def fdinfo_lines(t: FdTarget) -> list[str]:
    """The raw fdinfo (kinds with repeated lines: epoll targets, inotify watches)."""
    with open(f"/proc/{t.pid}/fdinfo/{t.fd}") as f:
        return f.read().splitlines()


def created(what: str, make) -> int:
    try:
        return make()
    except OSError as exc:
        raise RestoreError(f"cannot create {what}: {exc.strerror}") from exc


class EventfdKind:
    field = "eventfd"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return is_anon(t, "[eventfd]")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> anon_fds_pb2.EventfdEntry:
        return anon_fds_pb2.EventfdEntry(flags=t.flags, counter=int(t.info["eventfd-count"], 16),
                                         semaphore=t.info.get("eventfd-semaphore", "0") == "1")

    def open(self, e: anon_fds_pb2.EventfdEntry, ctx: RestoreFiles) -> int:
        flags = os.EFD_CLOEXEC | (EFD_SEMAPHORE if e.semaphore else 0)
        fd = created("an eventfd", lambda: os.eventfd(0, flags))
        if e.counter:
            # The initial-value argument is 32-bit; a write takes the whole u64.
            os.write(fd, struct.pack("=Q", e.counter))
        set_status_flags(fd, e.flags)
        return fd


class SignalfdKind:
    field = "signalfd"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return is_anon(t, "[signalfd]")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> anon_fds_pb2.SignalfdEntry:
        return anon_fds_pb2.SignalfdEntry(flags=t.flags, sigmask=int(t.info["sigmask"], 16))

    def open(self, e: anon_fds_pb2.SignalfdEntry, ctx: RestoreFiles) -> int:
        mask = ctypes.c_uint64(e.sigmask)
        fd = created("a signalfd", lambda: syscall("signalfd4", NR_SIGNALFD4, -1, ctypes.byref(mask), 8,
                                                   os.O_CLOEXEC))
        set_status_flags(fd, e.flags)
        return fd


KINDS = [EventfdKind(), SignalfdKind()]
