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

A watch on a deleted file or a removed directory watches its ghost after
restore (fs/regfile.py): the inode the tree's fds, areas or cwd of it get
(a removed directory is made again with mkdir and removed once every
process is in).  The kernel keeps such a watch only while something pins
the dentry: a watch alone does not (rmdir of a directory nothing else
holds, or the last close of an unlinked file, gives IN_DELETE_SELF and
IN_IGNORED at once), and open_by_handle_at finds the inode only then
(ESTALE otherwise).  So a watch whose deleted inode no fd, area or cwd of
the tree holds (something outside the tree pins it) is refused by the dump,
naming it: after restore nothing would hold it.

Events queued but not yet read at dump time are not restored (fdinfo does
not show them); refcr warns when there are some.  The restored queue starts
empty: once every process is in, refcr closes its own fds of deleted files
and directories (their IN_CLOSE_* would come later otherwise, and its hold
would put off a directory's IN_DELETE_SELF) and reads every instance empty
(settle), so nothing refcr did after adding the watches (reopening the
tree's files, filling, chmod'ing and closing a ghost, the mkdir and rmdir
of a removed directory in a watched parent) reaches the tasks.  Cost: a poll, a
read and an fdinfo read per instance.  An IN_ONESHOT watch that this
fired is gone: the restore is refused naming it.  Deviation: a ghost is a
new inode (another number and file handle in fdinfo, as for its fds).
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import re
import select
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


def _watched(t: FdTarget, ino: int, sdev: int, htype: int, handle: bytes, ctx: DumpFiles,
             what: str = "inotify watch", perm: bool = False) -> tuple[str, int]:
    """(path, ghost file id) of a watched or marked inode: a deleted file or
    removed directory gets a ghost (fs/regfile.py, the inode the fds, areas
    or cwd of it get), found through an O_PATH fd that open_by_handle_at
    gave (the kernel gives one while something pins the dentry, as it
    keeps the watch only then).  perm: a mark with permission events."""
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
            if path.startswith("/") and path.endswith(DELETED):
                return path[:-len(DELETED)], regfile.dump_watched(t, fd, ctx, what, perm)
        finally:
            os.close(fd)
        if path.startswith("/"):
            return path, 0
    raise UnsupportedObject(f"{describe(t)}: the {what} on inode {ino} of device "
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
        ctx.extra.setdefault("inotify-settle", {})[fd] = [w.wd for w in e.watches]
        return fd


def settle(ctx: RestoreFiles) -> None:
    """Before the tasks run, every instance's queue is read empty: what
    refcr did after adding the watches queued events on them (its opens,
    closes, chmod and times of a ghost; the mkdir and rmdir of a removed
    directory in a watched parent; a reopened file's IN_OPEN), and the
    restored queue must hold none (the dumped events are not kept).  refcr's
    own fds of deleted files and directories are closed first, so that their
    closes are read off too.  An IN_ONESHOT watch that this fired is gone:
    refused, naming it."""
    instances = ctx.extra.get("inotify-settle", {})
    if instances:
        regfile.close_deleted(ctx)
    for fd, wds in instances.items():
        _drain(fd)
        _check_kept(fd, wds)


def _check_kept(fd: int, wds: list[int]) -> None:
    """Every watch of the instance still there (fdinfo)."""
    with open(f"/proc/self/fdinfo/{fd}") as f:
        have = {int(m.group(1), 16) for line in f if (m := _WATCH.match(line))}
    if lost := [wd for wd in wds if wd not in have]:
        raise RestoreError(f"inotify watch {lost[0]} went away before the tasks ran (an IN_ONESHOT watch that "
                           "refcr's own opening or closing of its file fired)")


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
    """Throw away what is queued (polled first: the restored instance may be a blocking one)."""
    ready = select.poll()
    ready.register(fd, select.POLLIN)
    while ready.poll(0):
        os.read(fd, 65536)


KINDS = [InotifyKind()]
