"""fanotify groups and their marks.

fdinfo shows the group's fanotify_init flags and event-fd flags, and one
line per mark: an inode (number, device, file handle: its path is found as
for inotify watches, fs/inotify.py), a mount (its mount id: the mount point
in the task's mountinfo) or a whole filesystem (its device: a mount point of
it), each with its mask, ignored mask and mark flags.  Restore makes a new
group with the same flags and adds the marks again, oldest first, so that
fdinfo lists them in the same order (the kernel puts the newest first); an
ignored mask is added with FAN_MARK_IGNORED_MASK (or FAN_MARK_IGNORE if the
mark had it), with FAN_MARK_IGNORED_SURV_MODIFY and FAN_MARK_EVICTABLE as
they were.

Not restored: a mark whose masks are both empty (an ignored mask that a
FAN_MODIFY cleared: it has no effect, and the kernel makes no such mark;
a warning says so), events queued and not yet read (fdinfo does not show them;
refcr warns), and permission events waiting for an answer (their waiters
are let through when the dumped group goes away).  Needs CAP_SYS_ADMIN, as
fanotify_init does.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import re

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.eventfd import created, fdinfo_lines, is_anon, set_status_flags
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.fs.inotify import _kernel_dev, _mounts_of, _path_of, _queued_bytes
from refcr.log import log
from refcr.pb import anon_fds_pb2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
AT_FDCWD = -100
FAN_CLOEXEC, FAN_NONBLOCK = 0x1, 0x2
FAN_MARK_ADD, FAN_MARK_MOUNT, FAN_MARK_IGNORED_MASK, FAN_MARK_FILESYSTEM = 0x1, 0x10, 0x20, 0x100
FAN_MARK_IGNORED_SURV_MODIFY, FAN_MARK_EVICTABLE, FAN_MARK_IGNORE = 0x40, 0x200, 0x400
INODE, MOUNT, FILESYSTEM = 0, 1, 2
_GROUP = re.compile(r"fanotify flags:([0-9a-f]+) event-flags:([0-9a-f]+)$")
_INODE = re.compile(r"fanotify ino:([0-9a-f]+) sdev:([0-9a-f]+) mflags:([0-9a-f]+) mask:([0-9a-f]+) "
                    r"ignored_mask:([0-9a-f]+) fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) "
                    r"f_handle:([0-9a-f]*)")
_MOUNT = re.compile(r"fanotify mnt_id:([0-9a-f]+) mflags:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)")
_SB = re.compile(r"fanotify sdev:([0-9a-f]+) mflags:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)")


def _mount_point(t: FdTarget, mnt_id: int) -> str:
    with open(f"/proc/{t.pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            if int(fields[0]) == mnt_id:
                return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
    raise UnsupportedObject(f"{describe(t)}: the fanotify mark on mount {mnt_id}: the mount is not in the "
                            f"process's mount namespace")


def _mark(t: FdTarget, line: str) -> anon_fds_pb2.FanotifyMark | None:
    if m := _INODE.match(line):
        ino, sdev, mflags, mask, ignored, nbytes, htype = (int(m.group(i), 16) for i in range(1, 8))
        handle = bytes.fromhex(m.group(8))[:nbytes]
        return anon_fds_pb2.FanotifyMark(type=INODE, path=_path_of(t, ino, sdev, htype, handle), ino=ino,
                                         mflags=mflags, mask=mask, ignored_mask=ignored)
    if m := _MOUNT.match(line):
        mnt_id, mflags, mask, ignored = (int(m.group(i), 16) for i in range(1, 5))
        return anon_fds_pb2.FanotifyMark(type=MOUNT, path=_mount_point(t, mnt_id), mflags=mflags, mask=mask,
                                         ignored_mask=ignored)
    if m := _SB.match(line):
        sdev, mflags, mask, ignored = (int(m.group(i), 16) for i in range(1, 5))
        points = _mounts_of(t.pid, _kernel_dev(sdev))
        if not points:
            raise UnsupportedObject(f"{describe(t)}: the fanotify mark on filesystem {_kernel_dev(sdev)}: "
                                    f"no mount of it in the process's mount namespace")
        return anon_fds_pb2.FanotifyMark(type=FILESYSTEM, path=points[0], mflags=mflags, mask=mask,
                                         ignored_mask=ignored)
    if line.startswith("fanotify ") and not _GROUP.match(line):
        raise UnsupportedObject(f"{describe(t)}: a fanotify mark refcr does not know: {line!r}")
    return None


class FanotifyKind:
    field = "fanotify"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return is_anon(t, "[fanotify]")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> anon_fds_pb2.FanotifyEntry:
        e = anon_fds_pb2.FanotifyEntry(flags=t.flags)
        for line in fdinfo_lines(t):
            if g := _GROUP.match(line):
                e.init_flags = int(g.group(1), 16)
                e.event_flags = int(g.group(2), 16)
            elif (mark := _mark(t, line)) is not None:
                e.marks.append(mark)
        try:
            queued = _queued_bytes(t)
        except OSError:
            queued = 0
        if queued:
            log.warning("%s: %d bytes of unread fanotify events are not restored", describe(t), queued)
        return e

    def open(self, e: anon_fds_pb2.FanotifyEntry, ctx: RestoreFiles) -> int:
        fd = created("a fanotify group", lambda: _check("fanotify_init", _libc.fanotify_init(
            e.init_flags, e.event_flags)))      # FAN_CLOEXEC/FAN_NONBLOCK as dumped: fdinfo shows them
        try:
            fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            for mark in reversed(e.marks):
                if mark.mask or mark.ignored_mask:
                    _add_mark(fd, mark, ctx)
                else:       # an ignored mask a FAN_MODIFY cleared: the mark does nothing, the kernel takes none such
                    log.warning("fanotify mark on %s: both masks are empty; not made again", mark.path)
            set_status_flags(fd, e.flags)
        except BaseException:
            os.close(fd)
            raise
        return fd


def _check(what: str, ret: int) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)
    return ret


def _add_mark(fd: int, mark: anon_fds_pb2.FanotifyMark, ctx: RestoreFiles) -> None:
    path = ctx.resolve(mark.path)
    if mark.type == INODE:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise RestoreError(f"fanotify mark: cannot find {mark.path}: {exc.strerror}") from None
        if st.st_ino != mark.ino:
            raise RestoreError(f"fanotify mark: {mark.path} is no longer the marked inode")
    where = {INODE: 0, MOUNT: FAN_MARK_MOUNT, FILESYSTEM: FAN_MARK_FILESYSTEM}[mark.type]
    evictable = mark.mflags & FAN_MARK_EVICTABLE
    calls = []
    if mark.mask:
        calls.append((FAN_MARK_ADD | where | evictable, mark.mask))
    if mark.ignored_mask:
        ignore = FAN_MARK_IGNORE if mark.mflags & FAN_MARK_IGNORE else FAN_MARK_IGNORED_MASK
        calls.append((FAN_MARK_ADD | where | evictable | ignore | (mark.mflags & FAN_MARK_IGNORED_SURV_MODIFY),
                      mark.ignored_mask))
    for flags, mask in calls:
        if _libc.fanotify_mark(fd, flags, mask, AT_FDCWD, os.fsencode(path)) < 0:
            err = ctypes.get_errno()
            raise RestoreError(f"fanotify mark on {mark.path}: {os.strerror(err)}")


KINDS = [FanotifyKind()]
