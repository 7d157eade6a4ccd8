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

An inode mark on a deleted file or removed directory that the tree still
holds (an fd, an area, a cwd) comes back on its ghost (fs/regfile.py, the
inode those get; found as for inotify watches, and refused as those are
when only something outside the tree holds it).  The kernel takes such a
mark through the inode's fd or its /proc/self/fd link (not through an
O_PATH fd as dirfd: EBADF) and drops it, without an event, when the inode
goes.  Every mark is added only once every process is in and refcr's own
fds of deleted files are closed (settle): refcr's opens, writes and closes
of the tree's files and ghosts then reach no mark, so none of refcr's events
is queued and no permission event waits for refcr (whose group fd would be
the only one).  A mark with permission events on a deleted regular file is
refused: reading the file's data at dump would wait for the frozen group.
The same holds for any mark with permission events that covers a deleted
file (its inode, its mount or its filesystem) wherever the group's fd is
in the dump's order: before refcr first reads such a file, the tree's
fanotify groups are looked at once (check_no_wait), and the dump is refused
naming the group, instead of waiting for ever.
Cost: an O_PATH open per marked ghost.  Deviation: a ghost
is a new inode (another number and file handle in fdinfo).

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
from refcr.ptrace import proc
from refcr.fs import regfile
from refcr.fs.inotify import _kernel_dev, _mounts_of, _queued_bytes, _watched
from refcr.log import log
from refcr.pb import anon_fds_pb2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
AT_FDCWD = -100
FAN_CLOEXEC, FAN_NONBLOCK = 0x1, 0x2
FAN_MARK_ADD, FAN_MARK_MOUNT, FAN_MARK_IGNORED_MASK, FAN_MARK_FILESYSTEM = 0x1, 0x10, 0x20, 0x100
FAN_MARK_IGNORED_SURV_MODIFY, FAN_MARK_EVICTABLE, FAN_MARK_IGNORE = 0x40, 0x200, 0x400
FAN_PERM_EVENTS = 0x10000 | 0x20000 | 0x40000 | 0x100000   # FAN_OPEN_PERM, _ACCESS_PERM, _OPEN_EXEC_PERM, PRE_ACCESS
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


def _mark(t: FdTarget, line: str, ctx: DumpFiles) -> anon_fds_pb2.FanotifyMark | None:
    if m := _INODE.match(line):
        ino, sdev, mflags, mask, ignored, nbytes, htype = (int(m.group(i), 16) for i in range(1, 8))
        handle = bytes.fromhex(m.group(8))[:nbytes]
        path, ghost = _watched(t, ino, sdev, htype, handle, ctx, "fanotify mark", bool(mask & FAN_PERM_EVENTS))
        return anon_fds_pb2.FanotifyMark(type=INODE, path=path, ino=ino, mflags=mflags, mask=mask,
                                         ignored_mask=ignored, file_id=ghost)
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
            elif (mark := _mark(t, line, ctx)) is not None:
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
            for mark in e.marks:
                if mark.file_id:        # its ghost made now, with the files of the tree (settle marks it)
                    ctx.open(mark.file_id)
            set_status_flags(fd, e.flags)
        except BaseException:
            os.close(fd)
            raise
        ctx.extra.setdefault("fanotify", {})[fd] = e
        return fd


def settle(ctx: RestoreFiles) -> None:
    """The marks of every group, added once every process is in and before
    the tasks run: refcr's own opens, writes and closes of the tree's files
    (reopening them, filling and closing a ghost) then reach no mark, so no
    event of refcr's is queued.  Run before inotify.settle: the ghosts to
    mark are held here by O_PATH fds (whose closing no mark sees) before
    refcr closes its own descriptions of them."""
    groups: dict[int, anon_fds_pb2.FanotifyEntry] = ctx.extra.get("fanotify", {})
    if not groups:
        return
    held: dict[int, int] = {}       # FileEntry id of a ghost -> refcr's O_PATH fd of it
    try:
        for mark in (m for e in groups.values() for m in e.marks if m.file_id and m.file_id not in held):
            held[mark.file_id] = os.open(f"/proc/self/fd/{ctx.open(mark.file_id)}", os.O_PATH | os.O_CLOEXEC)
        regfile.close_deleted(ctx)      # their FAN_CLOSE_* before the marks are there
        for fd, e in groups.items():
            _add_marks(fd, e, ctx, held)
    finally:
        for fd in held.values():
            os.close(fd)


def _add_marks(fd: int, e: anon_fds_pb2.FanotifyEntry, ctx: RestoreFiles, held: dict[int, int]) -> None:
    """Oldest first, so that fdinfo lists them in the dumped order (the newest first)."""
    for mark in reversed(e.marks):
        if mark.mask or mark.ignored_mask:
            _add_mark(fd, mark, ctx, f"/proc/self/fd/{held[mark.file_id]}" if mark.file_id else None)
        else:       # an ignored mask a FAN_MODIFY cleared: the mark does nothing, the kernel takes none such
            log.warning("fanotify mark on %s: both masks are empty; not made again", mark.path)


def _check(what: str, ret: int) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)
    return ret


def _add_mark(fd: int, mark: anon_fds_pb2.FanotifyMark, ctx: RestoreFiles, ghost: str | None) -> None:
    """ghost: the /proc/self/fd link of an O_PATH fd of the mark's ghost (its
    path names no file: a deleted one's mark is added through that link)."""
    path = ghost or ctx.resolve(mark.path)
    if mark.type == INODE and ghost is None:
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


def _permission_marks(pids: list[int]) -> list[tuple[str, str, int]]:
    """(what, where, key) of every mark with permission events of the tree's
    groups: ("inode", (kernel dev, ino)), ("mount", mnt_id), ("fs", kernel dev)."""
    out: list[tuple[str, str, int]] = []
    for pid in pids:
        for fd in proc.fds(pid):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[fanotify]":
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for line in lines:
                if (m := _INODE.match(line)) and int(m.group(4), 16) & FAN_PERM_EVENTS:
                    out.append(("inode", f"process {pid} fd {fd}", (int(m.group(2), 16), int(m.group(1), 16))))
                elif (m := _MOUNT.match(line)) and int(m.group(3), 16) & FAN_PERM_EVENTS:
                    out.append(("mount", f"process {pid} fd {fd}", int(m.group(1), 16)))
                elif (m := _SB.match(line)) and int(m.group(3), 16) & FAN_PERM_EVENTS:
                    out.append(("fs", f"process {pid} fd {fd}", int(m.group(1), 16)))
    return out


def check_no_wait(t: FdTarget, ctx: DumpFiles) -> None:
    """Before refcr opens and reads t's file at dump: refuse if a fanotify
    group of the (frozen) tree has permission events on it -- its inode, its
    mount or its filesystem -- as the open or read would wait for that group's
    answer for ever.  The groups are looked at once per dump."""
    marks = ctx.extra.setdefault("fanotify-perm", {})
    if "marks" not in marks:
        marks["marks"] = _permission_marks(ctx.pids)
    kdev = (os.major(t.st.st_dev) << 20) | os.minor(t.st.st_dev)
    mnt = int(t.info.get("mnt_id", "-1"))
    for what, where, key in marks["marks"]:
        if (what, key) in (("inode", (kdev, t.st.st_ino)), ("mount", mnt), ("fs", kdev)):
            raise UnsupportedObject(f"{describe(t)}: the fanotify group of {where} has permission events on "
                                    f"its {'filesystem' if what == 'fs' else what}: reading the deleted file's "
                                    "data would wait for that frozen group")
