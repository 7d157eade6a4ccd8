"""epoll descriptions and their interest lists.

An epoll watches (fd number, file) pairs: the number is the one the owner
passed to epoll_ctl, and later EPOLL_CTL_MOD/DEL calls look the target up by
both.  So the targets are registered again inside the restored task, with
injected epoll_ctl(ADD) calls on its own fd numbers, once its whole fd table
is installed (after_install), with the dumped events and data.  Targets may
be any file refcr restores, other epolls included.

At dump every target is checked with kcmp(KCMP_EPOLL_TFD): the fd number
must still hold the registered file in the owner's table.  A target whose
fd was closed (or reused) after it was added lives on in the epoll but
cannot be named any more; such an epoll is reported as unsupported.
"""
from __future__ import annotations

import ctypes
import os
import re
import struct

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.eventfd import created, fdinfo_lines, is_anon, set_status_flags, syscall
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.pb import anon_fds_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.tracee import RemoteError

NR_EPOLL_CREATE1 = 291
EPOLL_CTL_ADD = 1
KCMP_EPOLL_TFD = 7
EPOLL_EVENT = struct.Struct("<IQ")          # struct epoll_event is packed on x86_64
_TARGET = re.compile(r"tfd:\s*(\d+) events:\s*([0-9a-f]+) data:\s*([0-9a-f]+)")


class _Slot(ctypes.Structure):
    _fields_ = [("efd", ctypes.c_uint32), ("tfd", ctypes.c_uint32), ("toff", ctypes.c_uint32)]


def _check_target(t: FdTarget, tfd: int, toff: int) -> None:
    """Raise UnsupportedObject unless fd tfd of t.pid is the registered file."""
    slot = _Slot(t.fd, tfd, toff)
    try:
        same = native.kcmp(t.pid, t.pid, KCMP_EPOLL_TFD, tfd, ctypes.addressof(slot)) == 0
    except OSError:
        same = False
    if not same:
        raise UnsupportedObject(f"{describe(t)}: epoll target fd {tfd} was closed or replaced after "
                                "it was added (the epoll still watches the old file)")


def _vpid(pid: int) -> int:
    return int(proc.status(pid)["NSpid"].split()[-1])


class EpollKind:
    field = "epoll"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return is_anon(t, "[eventpoll]")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> anon_fds_pb2.EpollEntry:
        e = anon_fds_pb2.EpollEntry(flags=t.flags, owner=_vpid(t.pid))
        seen: dict[int, int] = {}
        for line in fdinfo_lines(t):
            m = _TARGET.match(line)
            if m is None:
                continue
            tfd = int(m.group(1))
            toff = seen.get(tfd, 0)
            seen[tfd] = toff + 1
            if toff:
                raise UnsupportedObject(f"{describe(t)}: epoll watches two files under fd {tfd}")
            _check_target(t, tfd, toff)
            e.targets.append(anon_fds_pb2.EpollTarget(tfd=tfd, events=int(m.group(2), 16),
                                                      data=int(m.group(3), 16)))
        return e

    def open(self, e: anon_fds_pb2.EpollEntry, ctx: RestoreFiles) -> int:
        fd = created("an epoll instance", lambda: syscall("epoll_create1", NR_EPOLL_CREATE1, os.O_CLOEXEC))
        set_status_flags(fd, e.flags)
        return fd

    def after_install(self, e: anon_fds_pb2.EpollEntry, fd: int, puppet, ctx: RestoreFiles) -> None:
        # Register once per description (it may be shared or dup'ed), in the
        # process whose fd numbers the targets are; the message object is
        # the description's own for the whole restore.
        done = ctx.extra.setdefault("epoll-registered", set())
        if id(e) in done or (e.owner and puppet.vpid != e.owner):
            return
        done.add(id(e))
        r = puppet.remote
        for tg in e.targets:
            (ev,) = r.put(EPOLL_EVENT.pack(tg.events, tg.data))
            try:
                r.check("epoll_ctl", fd, EPOLL_CTL_ADD, tg.tfd, ev)
            except RemoteError as exc:
                raise RestoreError(f"process {puppet.vpid}: epoll fd {fd}: cannot add target fd "
                                   f"{tg.tfd}: {os.strerror(exc.errno)}") from exc


KINDS = [EpollKind()]
