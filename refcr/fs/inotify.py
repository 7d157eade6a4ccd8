"""inotify descriptions and their watches.

fdinfo lists each watch: its wd, mask, the watched inode (number, device)
and a file handle for it.  Dump turns the handle into a path: the handle is
opened with open_by_handle_at(2) against a mount of that device in the
task's mount namespace, and the path read back from /proc/self/fd (a path
as the task sees it, like every path refcr dumps).  Restore adds the watches
again in wd order.  The kernel hands out wds cyclically (last + 1 even if
freed), so a gap is reproduced by adding and removing a watch until the
next wd is the wanted one; the IN_IGNORED events that leaves behind are
read off the queue before the task gets the descriptor.

A watch on a deleted file (still open, so the kernel keeps the inode and
its marks) watches the file's ghost after restore (fs/regfile.py): the
inode the tree's fds of the file get.

Events queued but not yet read at dump time are not restored (fdinfo does
not show them); refcr warns when there are some.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import re
import stat as stat_mod
import termios

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.eventfd import created, fdinfo_lines, is_anon, set_status_flags, syscall
from refcr.fs import regfile
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.log import log
from refcr.pb import anon_fds_pb2
from refcr.ptrace import native

NR_INOTIFY_ADD_WATCH, NR_INOTIFY_RM_WATCH, NR_INOTIFY_INIT1 = 254, 255, 294
NR_OPEN_BY_HANDLE_AT = 304
O_PATH = 0o10000000
_WATCH = re.compile(r"inotify wd:([0-9a-f]+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) "
                    r"ignored_mask:[0-9a-f]+ fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) "
                    r"f_handle:([0-9a-f]*)")
MAX_GAP = 1 << 16
DELETED = " (deleted)"


def _kernel_dev(sdev: int) -> tuple[int, int]:
    """The kernel's internal dev_t (major << 20 | minor) as (major, minor)."""
    return sdev >> 20, sdev & 0xFFFFF


def _mounts_of(pid: int, dev: tuple[int, int]) -> list[str]:
    """Mount points (as pid sees them) of the filesystem dev, whole-fs mounts first."""
    out = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            major, minor = (int(x) for x in fields[2].split(":"))
            if (major, minor) == dev:
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                out.append((fields[3] != "/", point))
    return [p for _, p in sorted(out)]


def _path_of(t: FdTarget, ino: int, sdev: int, htype: int, handle: bytes) -> str:
    """The path of a marked inode (fanotify): a deleted one is refused."""
    return _watched(t, ino, sdev, htype, handle, None)[0]


def _watched(t: FdTarget, ino: int, sdev: int, htype: int, handle: bytes,
             ctx: DumpFiles | None) -> tuple[str, int]:
    """(path, ghost file id) of a watched inode: a deleted file gets a ghost
    (fs/regfile.py, the inode the fds of it get), found through an O_PATH
    fd that open_by_handle_at gave (with ctx None it is refused)."""
    buf = ctypes.create_string_buffer(8 + len(handle))
    ctypes.memmove(buf, len(handle).to_bytes(4, "little") + htype.to_bytes(4, "little", signed=True)
                   + handle, 8 + len(handle))
    for point in _mounts_of(t.pid, _kernel_dev(sdev)):
        try:
            mnt = os.open(f"/proc/{t.pid}/root{point}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fd = syscall("open_by_handle_at", NR_OPEN_BY_HANDLE_AT, mnt, buf, O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        finally:
            os.close(mnt)
        try:
            if os.fstat(fd).st_ino != ino:
                continue
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.startswith("/") and path.endswith(DELETED) and ctx is not None:
                return path[:-len(DELETED)], regfile.dump_watched(t, fd, ctx)
        finally:
            os.close(fd)
        if path.startswith("/") and not path.endswith(DELETED):
            return path, 0
    raise UnsupportedObject(f"{describe(t)}: the inotify watch on inode {ino} of device "
                            f"{_kernel_dev(sdev)[0]}:{_kernel_dev(sdev)[1]} has no reachable path")


def _queued_bytes(t: FdTarget) -> int:
    fd = native.copy_fd(t.pid, t.fd)
    try:
        return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4), "little")
    finally:
        os.close(fd)


class InotifyKind:
    field = "inotify"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return is_anon(t, "inotify")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> anon_fds_pb2.InotifyEntry:
        e = anon_fds_pb2.InotifyEntry(flags=t.flags)
        for line in fdinfo_lines(t):
            m = _WATCH.match(line)
            if m is None:
                continue
            wd, ino, sdev, mask, nbytes, htype = (int(m.group(i), 16) for i in range(1, 7))
            handle = bytes.fromhex(m.group(7))[:nbytes]
            path, ghost = _watched(t, ino, sdev, htype, handle, ctx)
            e.watches.append(anon_fds_pb2.InotifyWatch(wd=wd, mask=mask, ino=ino, path=path, file_id=ghost))
        e.watches.sort(key=lambda w: w.wd)
        try:
            queued = _queued_bytes(t)
        except OSError:
            queued = 0
        if queued:
            log.warning("%s: %d bytes of unread inotify events are not restored", describe(t), queued)
        return e

    def open(self, e: anon_fds_pb2.InotifyEntry, ctx: RestoreFiles) -> int:
        fd = created("an inotify instance",
                     lambda: syscall("inotify_init1", NR_INOTIFY_INIT1, os.O_CLOEXEC | os.O_NONBLOCK))
        try:
            for w in e.watches:
                _add_watch(fd, w, ctx)
            _drain(fd)
            set_status_flags(fd, e.flags)
        except BaseException:
            os.close(fd)
            raise
        if any(w.file_id for w in e.watches):
            ctx.extra.setdefault("inotify-settle", {})[fd] = True
        return fd


def settle(ctx: RestoreFiles) -> None:
    """Before the tasks run: refcr's own descriptions of deleted files are
    closed (their IN_CLOSE_* and the IN_ATTRIB of their times would reach a
    watch on them), then the events that refcr's work queued are read off
    the instances that watch such files."""
    instances = ctx.extra.get("inotify-settle", {})
    if not instances:
        return
    ctx.close_if(lambda st: stat_mod.S_ISREG(st.st_mode) and st.st_nlink == 0)
    for fd in instances:
        _drain(fd)


def _add_watch(fd: int, w: anon_fds_pb2.InotifyWatch, ctx: RestoreFiles) -> None:
    if w.file_id:           # a deleted file: its ghost, made once for its fds, areas and watches
        target = ctx.open(w.file_id)
    else:
        try:
            target = ctx.keep(ctx.root.lookup(w.path))
        except OSError as exc:
            raise RestoreError(f"inotify watch {w.wd}: cannot find {w.path}: {exc.strerror}") from exc
    if not w.file_id and os.fstat(target).st_ino != w.ino:
        raise RestoreError(f"inotify watch {w.wd}: {w.path} is no longer the watched inode")
    cpath = os.fsencode(f"/proc/self/fd/{target}")      # the inode found inside the tree's root
    for _ in range(MAX_GAP):
        try:
            wd = syscall("inotify_add_watch", NR_INOTIFY_ADD_WATCH, fd, cpath, w.mask)
        except OSError as exc:
            raise RestoreError(f"inotify watch {w.wd} on {w.path}: {exc.strerror}") from exc
        if wd == w.wd:
            return
        if wd > w.wd:
            raise RestoreError(f"inotify watch on {w.path}: got wd {wd}, wanted {w.wd} "
                               "(two watches on one inode, or wds out of order)")
        syscall("inotify_rm_watch", NR_INOTIFY_RM_WATCH, fd, wd)
    raise RestoreError(f"inotify watch on {w.path}: cannot reach wd {w.wd}")


def _drain(fd: int) -> None:
    """Throw away the IN_IGNORED events of the placeholder watches."""
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except BlockingIOError:
            return


KINDS = [InotifyKind()]
