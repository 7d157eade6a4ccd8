"""epoll descriptions and their interest lists.

An epoll watches (fd number, file) pairs: the number is the one the owner
passed to epoll_ctl, and later EPOLL_CTL_MOD/DEL calls look the target up by
both.  So the targets are registered again inside the restored task, with
injected epoll_ctl(ADD) calls on its own fd numbers, once its whole fd table
is installed (after_install), with the dumped events and data (EPOLLET,
EPOLLONESHOT, EPOLLEXCLUSIVE, EPOLLWAKEUP included: a oneshot target that
has fired is registered disabled, as the kernel keeps it).  Targets may be
any file refcr restores, other epolls included.  Registration happens once
per description (ctx.once: several epolls per process, an epoll shared by
fork), in the owner: the process whose fd numbers the tfds are.

A target whose fd was closed, dup'ed away or replaced after EPOLL_CTL_ADD
still lives in the epoll under its old number.  At dump every target is
checked with kcmp(KCMP_EPOLL_TFD) against the owner's fd tfd; when that is
not the file, every fd of the tree (the owner's first) is compared with the
watched file the same way, and the description found is recorded by its
FileEntry id.  Restore then puts that file at tfd in the owner just for the
EPOLL_CTL_ADD (whatever the task has at tfd is moved aside and put back
with its close-on-exec flag).  The same number may thus be registered twice
(two files, "toff" in kcmp's terms).  Costs: one kcmp per target, and one
per fd of the tree for each moved target only.  A watched file that no fd
of the tree holds any more (kept open only by a mapping, or by a process
outside the tree) is refused, naming the epoll and the number.
"""
from __future__ import annotations

import ctypes
import os
import re
import struct

from refcr.log import log
from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.eventfd import created, fdinfo_lines, is_anon, set_status_flags, syscall
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe, fd_target
from refcr.pb import anon_fds_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.tracee import RemoteError

NR_EPOLL_CREATE1 = 291
EPOLL_CTL_ADD = 1
# What epoll keeps of a oneshot target's events once it fired (EP_PRIVATE_BITS:
# EPOLLWAKEUP, EPOLLONESHOT, EPOLLET, EPOLLEXCLUSIVE), and every poll event.
EP_PRIVATE_BITS = (1 << 29) | (1 << 30) | (1 << 31) | (1 << 28)
ALL_POLL_BITS = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000
F_GETFD, FD_CLOEXEC, F_DUPFD_CLOEXEC = 1, 1, 1030
KCMP_EPOLL_TFD = 7
EPOLL_EVENT = struct.Struct("<IQ")          # struct epoll_event is packed on x86_64
_TARGET = re.compile(r"tfd:\s*(\d+) events:\s*([0-9a-f]+) data:\s*([0-9a-f]+)")


class _Slot(ctypes.Structure):
    _fields_ = [("efd", ctypes.c_uint32), ("tfd", ctypes.c_uint32), ("toff", ctypes.c_uint32)]


def _watches(t: FdTarget, tfd: int, toff: int, pid: int, fd: int) -> bool:
    """Whether fd of pid is the file t's epoll watches as its toff-th target under tfd."""
    slot = _Slot(t.fd, tfd, toff)
    try:
        return native.kcmp(pid, t.pid, KCMP_EPOLL_TFD, fd, ctypes.addressof(slot)) == 0
    except OSError:
        return False


def _moved_target(t: FdTarget, tfd: int, toff: int, ctx: DumpFiles) -> int:
    """The FileEntry id of a watched file that fd tfd of the owner no longer holds."""
    for pid in [t.pid] + [p for p in ctx.pids if p != t.pid]:
        for fd in proc.fds(pid):
            if _watches(t, tfd, toff, pid, fd):
                return ctx.add(fd_target(pid, fd))
    raise UnsupportedObject(f"{describe(t)}: epoll target fd {tfd} was closed after it was added and "
                            "no fd of the tree holds its file any more")


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
            moved = 0 if _watches(t, tfd, toff, t.pid, tfd) else _moved_target(t, tfd, toff, ctx)
            e.targets.append(anon_fds_pb2.EpollTarget(tfd=tfd, events=int(m.group(2), 16),
                                                      data=int(m.group(3), 16), file_id=moved))
        return e

    def open(self, e: anon_fds_pb2.EpollEntry, ctx: RestoreFiles) -> int:
        fd = created("an epoll instance", lambda: syscall("epoll_create1", NR_EPOLL_CREATE1, os.O_CLOEXEC))
        set_status_flags(fd, e.flags)
        return fd

    def after_install(self, e: anon_fds_pb2.EpollEntry, fd: int, puppet, ctx: RestoreFiles) -> None:
        # Once per description (it may be shared or dup'ed), in the process
        # whose fd numbers the targets are.
        if (e.owner and puppet.vpid != e.owner) or not ctx.once("epoll"):
            return
        fired = [tg for tg in e.targets if not tg.events & ~EP_PRIVATE_BITS]
        for tg in fired + [tg for tg in e.targets if tg.events & ~EP_PRIVATE_BITS]:
            try:
                if tg.file_id:
                    _add_moved(puppet, fd, tg, ctx)
                else:
                    _add(puppet.remote, fd, tg)
                if tg in fired:
                    _disarm(puppet, fd, tg)
            except RemoteError as exc:
                raise RestoreError(f"process {puppet.vpid}: epoll fd {fd}: cannot add target fd "
                                   f"{tg.tfd}: {os.strerror(exc.errno)}") from exc


def _add(r, fd: int, tg: anon_fds_pb2.EpollTarget) -> None:
    events = tg.events if tg.events & ~EP_PRIVATE_BITS else tg.events | ALL_POLL_BITS
    (ev,) = r.put(EPOLL_EVENT.pack(events, tg.data))
    r.check("epoll_ctl", fd, EPOLL_CTL_ADD, tg.tfd, ev)


def _disarm(puppet, fd: int, tg: anon_fds_pb2.EpollTarget) -> None:
    """A oneshot target that had fired: added listening for every event (ADD
    always adds EPOLLERR|EPOLLHUP, so it cannot be added disabled) and made
    to fire once by an epoll_wait, which leaves only its flag bits, as the
    kernel had them.  Fired targets are added before the others, so the
    wait takes exactly this one.  A target that is not ready for anything
    stays armed (it fires on its next event): a warning says so."""
    r = puppet.remote
    n = r.check("epoll_wait", fd, r.scratch, 1, 0)
    if n != 1:
        log.warning("process %d: epoll fd %d: fired oneshot target fd %d is armed again (it is not "
                    "ready for any event, so it could not be made to fire)", puppet.vpid, fd, tg.tfd)


def _add_moved(puppet, fd: int, tg: anon_fds_pb2.EpollTarget, ctx: RestoreFiles) -> None:
    """Register a file under a number the task uses for something else (or not at all)."""
    r = puppet.remote
    local = ctx.open(tg.file_id)
    fdflags = r.call("fcntl", tg.tfd, F_GETFD, 0)
    saved = r.check("fcntl", tg.tfd, F_DUPFD_CLOEXEC, 0) if fdflags >= 0 else -1
    try:
        puppet.install_fd(local, tg.tfd)
        _add(r, fd, tg)
    finally:
        if saved >= 0:
            r.check("dup3", saved, tg.tfd, os.O_CLOEXEC if fdflags & FD_CLOEXEC else 0)
            r.call("close", saved)
        else:
            r.call("close", tg.tfd)


KINDS = [EpollKind()]
