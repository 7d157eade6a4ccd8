"""The owner of a file description: who gets SIGIO (F_SETOWN_EX) and which
signal (F_SETSIG).  O_ASYNC itself is a status flag and travels with them.

Dump reads them through a copy of the description (pidfd_getfd), so they
are the owner as refcr's pid namespace sees it; the pid is turned into the
one the tree sees.  Restore sets them, and O_ASYNC, in the task with
injected fcntl()s, so the pid is again taken in the tree's own namespace.
"""
from __future__ import annotations

import fcntl
import os
import struct

from refcr.fs.fd import FdTarget
from refcr.pb import filekinds_pb2
from refcr.ptrace import native, proc

F_GETFL, F_SETFL, F_SETSIG, F_GETSIG = 3, 4, 10, 11
F_SETOWN_EX, F_GETOWN_EX = 15, 16
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
O_PATH = 0o10000000
_OWNER = struct.Struct("<ii")


def _inner_pid(host: int) -> int:
    """host pid -> the pid the innermost namespace of that process sees."""
    try:
        nspid = proc.status(host).get("NSpid", str(host)).split()
    except OSError:
        return host
    return int(nspid[-1]) if nspid else host


def dump(t: FdTarget) -> filekinds_pb2.FownEntry | None:
    if t.flags & O_PATH:        # a path fd has no owner (fcntl(F_GETOWN_EX) is EBADF on it)
        return None
    local = native.copy_fd(t.pid, t.fd)
    try:
        kind, pid = _OWNER.unpack(fcntl.fcntl(local, F_GETOWN_EX, bytes(_OWNER.size)))
        sig = fcntl.fcntl(local, F_GETSIG)
    finally:
        os.close(local)
    if pid == 0 and sig == 0:
        return None
    return filekinds_pb2.FownEntry(pid_type=kind, pid=_inner_pid(pid) if pid > 0 else 0, signum=sig)


def record(t: FdTarget, entry) -> None:
    """entry.fown = t's owner and signal, when it has any."""
    owner = dump(t)
    if owner is not None:
        entry.fown.CopyFrom(owner)


def restore(entry, fd: int, puppet) -> None:
    """entry.fown's owner and signal, then O_ASYNC from entry.flags: set in the
    task, because the kernel reports the fd number that turned O_ASYNC on as
    the signal's si_fd."""
    r = puppet.remote
    if entry.HasField("fown"):
        _set_owner(entry.fown, r, fd)
    if entry.flags & os.O_ASYNC:
        r.check("fcntl", fd, F_SETFL, r.check("fcntl", fd, F_GETFL) | os.O_ASYNC)


def _set_owner(e: filekinds_pb2.FownEntry, r, fd: int) -> None:
    if e.pid:
        addr, = r.put(_OWNER.pack(e.pid_type, e.pid))
        r.check("fcntl", fd, F_SETOWN_EX, addr)
    if e.signum:
        r.check("fcntl", fd, F_SETSIG, e.signum)
