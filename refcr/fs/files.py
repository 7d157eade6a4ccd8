"""The file descriptor engine: fd tables and open file descriptions.

A process's fd table maps numbers to open file descriptions; several
numbers (in one or several processes) can share one description, and then
they share its offset and status flags.  Dump records each description once
(files.img) and each table (fdinfo-PID.img) by reference.  Restore opens or
creates each description once in refcr's own process and hands it to every
puppet that had it, so sharing comes back by construction.

What a description is and how to dump and reopen it is the business of one
small handler class per kind (fs/regfile.py, fs/pipes.py, drivers/tty.py ...), registered
here in the order they are asked whether they claim an fd.
"""
from __future__ import annotations

import functools
import importlib

from refcr.fs.fd import O_CLOEXEC, DumpFiles, FdTarget, FileKind, RestoreFiles, fd_target
from refcr.fs import fanotify, locks
from refcr.images.imagedir import ImageDir
from refcr.mm.track import is_tracking_fd
from refcr.options import Options
from refcr.pb import fdinfo_pb2
from refcr.plugins import host
from refcr.ptrace import proc

# Modules defining the kinds, asked in this order whether they claim an fd
# (more specific kinds first; regfile, the catch-all for paths, last).
# Each module has a KINDS list of FileKind instances.
KIND_MODULES = ["plugins.host", "fs.pipes", "drivers.tty", "fs.eventfd", "fs.timerfd", "fs.inotify", "fs.fanotify",
                "fs.epoll", "net.inet", "net.unix", "net.netlink", "net.packet", "net.othersock", "mm.memfd",
                "fs.fifo", "ns.nsfd", "fs.regfile"]


@functools.cache
def kinds() -> tuple[FileKind, ...]:
    """Every kind, in claiming order (imported on first use; asked once per fd)."""
    out: list[FileKind] = []
    for name in KIND_MODULES:
        out.extend(importlib.import_module(f"refcr.{name}").KINDS)
    return tuple(out)


def claim(t: FdTarget, ctx: DumpFiles) -> FileKind:
    """The kind that dumps a new description: the first that claims it, else
    a plugin's DUMP_EXT_FILE (or UnsupportedObject naming the fd)."""
    kind = next((k for k in kinds() if k.claims(t, ctx)), None)
    return kind if kind is not None else host.fallback_kind(t)


def dump_context(opts: Options, pids: list[int] | None = None) -> DumpFiles:
    return DumpFiles(opts, claim, locks.dump, fanotify.check_no_wait, pids=list(pids or []))


def restore_context(images: ImageDir, opts: Options) -> RestoreFiles:
    ctx = RestoreFiles.load(images, opts, kinds())
    ctx.fd_hook = locks.restore_fd
    return ctx


# ------------------------------------------------------------------ dump --

def dump_fds(pid: int, ctx: DumpFiles) -> list[fdinfo_pb2.FdinfoEntry]:
    table = []
    seen: set[int] = set()                # description ids already in the table
    for fd in proc.fds(pid):
        t = fd_target(pid, fd)
        if is_tracking_fd(t.link, t.info):    # refcr's own dirty-tracking userfaultfd: not the process's
            continue
        cloexec = bool(int(t.info["flags"], 8) & O_CLOEXEC)
        fe = fdinfo_pb2.FdinfoEntry(fd=fd, id=ctx.add(t), cloexec=cloexec)
        if fe.id not in seen:             # the process's POSIX locks, once per description
            seen.add(fe.id)
            fe.locks.extend(locks.dump_posix(t, ctx))
        table.append(fe)
    return table
