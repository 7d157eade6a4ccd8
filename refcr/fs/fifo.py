"""Named FIFOs: reopened by path, with the bytes queued in them.

The queue is copied without consuming it, as for pipes (tee(2) from a
reader opened through /proc/PID/fd/N), and lands in pipes-data.img under
the FIFO's id.  Restore first opens the FIFO O_RDWR (which never blocks and
keeps a reader and a writer around), puts the bytes back through it, and
then opens every dumped description with O_NONBLOCK, which the kernel then
grants at once; the dumped status flags are set afterwards.

A FIFO unlinked while open is made again at its old path (mkfifo, with its
mode and owner), opened O_RDWR, and unlinked at once: every description is
then opened through /proc/self/fd of that holder, which reaches the same
inode without a name, so the restored fds show "PATH (deleted)" as before.
A path taken meanwhile by something else is refused (nothing is moved).
"""
from __future__ import annotations

import fcntl
import os
import stat as stat_mod
import struct
import termios

from refcr.errors import RestoreError
from refcr.fs import fown, pipes
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, check_type
from refcr.fs.regfile import contained, dir_times_kept
from refcr.fs.pipes import F_GETPIPE_SZ, F_SETPIPE_SZ, STATUS_FLAGS, _queued
from refcr.pb import filekinds_pb2, pipes_data_pb2

DELETED = " (deleted)"


def fifo_id(st: os.stat_result) -> int:
    """An id for a FIFO inode that cannot collide with a pipe's (pipefs) inode number."""
    return (1 << 63) | ((st.st_dev & 0x7FFFFFFF) << 32) | (st.st_ino & 0xFFFFFFFF)


def read_queued(t: FdTarget, key: int) -> pipes_data_pb2.PipeDataEntry:
    """A FIFO's queue is read like a pipe's (pipes.read_queued), keyed by fifo_id."""
    return pipes.read_queued(t, key)


class FifoKind:
    field = "fifo"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return stat_mod.S_ISFIFO(t.st.st_mode) and t.link.startswith("/")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> filekinds_pb2.FifoEntry:
        deleted = t.link.endswith(DELETED)
        key = fifo_id(t.st)
        queued = ctx.extra.setdefault("pipes", {})      # written with the pipes' queues
        if key not in queued:
            queued[key] = read_queued(t, key)
        e = filekinds_pb2.FifoEntry(path=t.link[:-len(DELETED)] if deleted else t.link, flags=t.flags,
                                    fifo_id=key, deleted=deleted, mode=t.st.st_mode, uid=t.st.st_uid,
                                    gid=t.st.st_gid, atime_ns=t.st.st_atime_ns, mtime_ns=t.st.st_mtime_ns)
        # (times are set again after the queue is refilled, which changes them)
        fown.record(t, e)
        return e

    def open(self, e: filekinds_pb2.FifoEntry, ctx: RestoreFiles) -> int:
        path = e.path
        holders = ctx.extra.setdefault("fifos", {})
        if e.fifo_id not in holders:
            holders[e.fifo_id] = ctx.keep(_refill(e, path, ctx))
        access = (e.flags & os.O_ACCMODE) | os.O_NONBLOCK
        try:
            if e.deleted:       # through refcr's own holder: no name to look up any more
                fd = os.open(f"/proc/self/fd/{holders[e.fifo_id]}", access | os.O_CLOEXEC)
            else:
                fd = ctx.root.open(path, access, "fifo", {stat_mod.S_IFIFO})
        except OSError as exc:
            raise RestoreError(f"cannot reopen the FIFO {e.path}: {exc.strerror}") from exc
        try:
            check_type(e.path, fd, stat_mod.S_IFIFO)
            fcntl.fcntl(fd, fcntl.F_SETFL, e.flags & STATUS_FLAGS & ~os.O_ASYNC)   # O_ASYNC: in the task
        except BaseException:
            os.close(fd)
            raise
        return fd

    def after_install(self, e, fd: int, puppet, ctx: RestoreFiles) -> None:
        fown.restore(e, fd, puppet)


def _holder(e: filekinds_pb2.FifoEntry, path: str, ctx: RestoreFiles) -> int:
    """The FIFO opened O_RDWR; a deleted one made again at its path first
    (mkfifo, mode, owner) and unlinked once open."""
    if not e.deleted:
        return ctx.root.open(path, os.O_RDWR | os.O_NONBLOCK, "fifo", {stat_mod.S_IFIFO})
    path = contained(ctx, path)         # made in its directory found inside the tree's root
    with dir_times_kept(path):
        os.mkfifo(path, 0o600)
        try:
            try:
                os.chown(path, e.uid, e.gid, follow_symlinks=False)
            except OSError:
                pass
            os.chmod(path, stat_mod.S_IMODE(e.mode))
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        finally:
            os.unlink(path)
    return fd


def _refill(e: filekinds_pb2.FifoEntry, path: str, ctx: RestoreFiles) -> int:
    try:
        holder = _holder(e, path, ctx)
    except OSError as exc:
        what = "recreate the deleted" if e.deleted else "reopen the"
        raise RestoreError(f"cannot {what} FIFO {e.path}: {exc.strerror}") from exc
    try:
        check_type(e.path, holder, stat_mod.S_IFIFO)
        if "pipes-data" not in ctx.extra:
            ctx.extra["pipes-data"] = _queued(ctx.images)
        data = ctx.extra["pipes-data"].get(e.fifo_id)
        if data is not None:
            want = max(data.pipe_size, len(data.data))
            if fcntl.fcntl(holder, F_GETPIPE_SZ) != want:
                fcntl.fcntl(holder, F_SETPIPE_SZ, want)
            queued = struct.unpack("i", fcntl.ioctl(holder, termios.FIONREAD, bytes(4)))[0]
            if queued:
                raise RestoreError(f"the FIFO {e.path} already holds {queued} bytes of someone else")
            view = memoryview(data.data)
            while view:
                view = view[os.write(holder, view):]
        if e.mtime_ns:            # after the refill, which sets them to now
            os.utime(holder, ns=(e.atime_ns, e.mtime_ns))
    except BaseException:
        os.close(holder)
        raise
    return holder


KINDS = [FifoKind()]
