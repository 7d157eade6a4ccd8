"""Files opened by path: regular files, directories and the harmless
character devices (/dev/null, zero, full, random, urandom).

Three kinds share this module:

* ``reg``: a file reopened by its path.
* ``locked``: the same, for a regular file that holds locks or has an owner
  (F_SETOWN); those are set again inside the task after its fds are in.
* ``ghost``: a regular file that is no longer at its path: unlinked, or
  replaced by another file renamed over it (the inode at the path is not the
  one the task has open).  Its contents go into the images, up to
  --ghost-limit bytes; restore recreates it next to its old path, opens it
  for every description and unlinks it again.
"""
from __future__ import annotations

import ctypes
import os
import stat as stat_mod

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs import fown, locks, namei
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, check_type, describe
from refcr.log import log
from refcr.pb import filekinds_pb2, files_pb2
from refcr.ptrace import proc

MEM_MAJOR = 1                      # /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom
MEM_MINORS = {3, 5, 7, 8, 9}
NOT_ON_REOPEN = os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_NOCTTY


def reopen_kept(kept: int, flags: int, pos: int, what: str) -> int:
    """A new description of the file refcr holds open as *kept* (an object
    it recreated once for many descriptions), with the dumped flags and offset."""
    try:
        fd = os.open(f"/proc/self/fd/{kept}", (flags & ~NOT_ON_REOPEN) | os.O_CLOEXEC)
    except OSError as exc:
        raise RestoreError(f"cannot reopen {what}: {exc.strerror}") from exc
    os.lseek(fd, pos, os.SEEK_SET)
    return fd
DELETED = " (deleted)"
READ_CHUNK = 1 << 20


def _is_mem_device(st: os.stat_result) -> bool:
    return (stat_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == MEM_MAJOR
            and os.minor(st.st_rdev) in MEM_MINORS)


def _gone(t: FdTarget) -> bool:
    """True if t's regular file is not what its path names any more."""
    if not t.link.startswith("/"):
        return False
    if t.link.endswith(DELETED):
        return True
    try:
        now = os.stat(proc.path(t.pid, "root") + t.link)
    except OSError:
        return True
    return (now.st_dev, now.st_ino) != (t.st.st_dev, t.st.st_ino)


def _reopen(e, ctx: RestoreFiles) -> int:
    try:
        fd = ctx.root.open(e.path, e.flags & ~NOT_ON_REOPEN, "file", {stat_mod.S_IFMT(e.mode)})
    except OSError as exc:
        raise RestoreError(f"cannot reopen {e.path}: {exc.strerror}") from exc
    try:
        check_type(e.path, fd, e.mode)
        st = os.fstat(fd)
        if stat_mod.S_ISREG(e.mode) and st.st_size != e.size:
            log.warning("%s: size changed since the dump (%d -> %d)", e.path, e.size, st.st_size)
        if e.pos and not stat_mod.S_ISCHR(e.mode):
            os.lseek(fd, e.pos, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


class RegFileKind:
    field = "reg"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return (stat_mod.S_ISREG(t.st.st_mode) or stat_mod.S_ISDIR(t.st.st_mode)
                or _is_mem_device(t.st))

    def dump(self, t: FdTarget, ctx: DumpFiles) -> files_pb2.RegFileEntry:
        if not t.link.startswith("/") or t.link.endswith(DELETED):
            raise UnsupportedObject(f"{describe(t)}: the file is not reachable by its path")
        locks.dump(t, ctx)         # fails if a lock is held without --file-locks
        return files_pb2.RegFileEntry(path=t.link, flags=t.flags, pos=int(t.info.get("pos", "0")),
                                      mode=t.st.st_mode, size=t.st.st_size, rdev=t.st.st_rdev)

    def open(self, e: files_pb2.RegFileEntry, ctx: RestoreFiles) -> int:
        return _reopen(e, ctx)


class LockedFileKind:
    """A regular file with locks (under --file-locks), an owner or O_ASYNC."""

    field = "locked"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not stat_mod.S_ISREG(t.st.st_mode) or _gone(t):
            return False
        held = locks.held(t)
        return (bool(held and ctx.opts.file_locks) or bool(t.flags & os.O_ASYNC)
                or fown.dump(t) is not None)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> filekinds_pb2.LockedFileEntry:
        e = filekinds_pb2.LockedFileEntry(path=t.link, flags=t.flags, pos=int(t.info.get("pos", "0")),
                                          mode=t.st.st_mode, size=t.st.st_size)
        e.locks.extend(locks.dump(t, ctx))
        fown.record(t, e)
        return e

    def open(self, e: filekinds_pb2.LockedFileEntry, ctx: RestoreFiles) -> int:
        return _reopen(e, ctx)

    def after_install(self, e, fd: int, puppet, ctx: RestoreFiles) -> None:
        fown.restore(e, fd, puppet)
        locks.restore(e.locks, fd, puppet, e.path)


def read_runs(fd: int, size: int) -> list[filekinds_pb2.DataRun]:
    """The data of a file, holes left out (SEEK_DATA / SEEK_HOLE)."""
    runs, off = [], 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:            # ENXIO: only a hole is left
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        pos = start
        while pos < end:
            data = os.pread(fd, min(READ_CHUNK, end - pos), pos)
            if not data:
                break
            runs.append(filekinds_pb2.DataRun(offset=pos, data=data))
            pos += len(data)
        off = end
    return runs


def write_runs(fd: int, runs, size: int) -> None:
    for run in runs:
        view, pos = memoryview(run.data), run.offset
        while view:
            n = os.pwrite(fd, view, pos)
            view, pos = view[n:], pos + n
    os.ftruncate(fd, size)


class GhostFileKind:
    field = "ghost"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return stat_mod.S_ISREG(t.st.st_mode) and _gone(t)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> filekinds_pb2.GhostFileEntry:
        path = t.link[:-len(DELETED)] if t.link.endswith(DELETED) else t.link
        ghosts = ctx.extra.setdefault("ghosts", {})
        key = (t.st.st_dev, t.st.st_ino)
        e = filekinds_pb2.GhostFileEntry(path=path, flags=t.flags, pos=int(t.info.get("pos", "0")),
                                         mode=t.st.st_mode, size=t.st.st_size, uid=t.st.st_uid,
                                         gid=t.st.st_gid)
        if key not in ghosts:
            limit = ctx.opts.ghost_limit
            if t.st.st_size > limit:
                raise UnsupportedObject(f"{describe(t)}: deleted file of {t.st.st_size} bytes is over "
                                        f"the ghost limit of {limit} bytes (--ghost-limit)")
            ghosts[key] = len(ghosts) + 1
            local = os.open(t.proc_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                e.data.extend(read_runs(local, t.st.st_size))
            finally:
                os.close(local)
        e.ghost_id = ghosts[key]
        e.locks.extend(locks.dump(t, ctx))
        fown.record(t, e)
        return e

    def open(self, e: filekinds_pb2.GhostFileEntry, ctx: RestoreFiles) -> int:
        made = ctx.extra.setdefault("ghosts", {})
        if e.ghost_id not in made:
            made[e.ghost_id] = ctx.keep(_recreate(e, ctx))
        return reopen_kept(made[e.ghost_id], e.flags, e.pos, f"the deleted file {e.path}")

    def after_install(self, e, fd: int, puppet, ctx: RestoreFiles) -> None:
        fown.restore(e, fd, puppet)
        locks.restore(e.locks, fd, puppet, e.path)


def _recreate(e: filekinds_pb2.GhostFileEntry, ctx: RestoreFiles) -> int:
    """Create the deleted file again, fill it, and unlink it under its old name.

    If another file took the path meanwhile (a replaced file), the ghost is
    made under a temporary name next to it, swapped with the occupant
    (RENAME_EXCHANGE) and the occupant renamed back over it: the ghost ends
    up deleted under its own name and the occupant is where it was.
    """
    first = next((x.ghost for x in ctx.entries.values()
                  if x.WhichOneof("file") == "ghost" and x.ghost.ghost_id == e.ghost_id and x.ghost.data),
                 e)
    where, base = os.path.split(namei.checked(e.path))
    try:
        dirfd = ctx.keep(ctx.root.lookup(where))     # the directory, found inside the tree's root
    except OSError as exc:
        raise RestoreError(f"cannot recreate the deleted file {e.path}: {exc.strerror}") from exc
    for n in range(100):
        path = base if n == 0 else f"{base}.refcr-ghost-{e.ghost_id}-{n}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600,
                         dir_fd=dirfd)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise RestoreError(f"cannot recreate the deleted file {e.path}: {exc.strerror}") from exc
    else:
        raise RestoreError(f"cannot recreate the deleted file {e.path}: no free name next to it")
    try:
        try:
            write_runs(fd, first.data, e.size)
            try:
                os.fchown(fd, e.uid, e.gid)
            except OSError:
                pass
            os.fchmod(fd, stat_mod.S_IMODE(e.mode))
        finally:
            if path == base or not _swap_away(dirfd, path, base):
                os.unlink(path, dir_fd=dirfd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _swap_away(dirfd: int, tmp: str, path: str) -> bool:
    """Make the file at tmp deleted under the name path, keeping what is at path
    (both names in the directory open as *dirfd*)."""
    if _libc.renameat2(dirfd, os.fsencode(tmp), dirfd, os.fsencode(path), RENAME_EXCHANGE):
        return False
    os.rename(tmp, path, src_dir_fd=dirfd, dst_dir_fd=dirfd)   # the occupant goes back, replacing the ghost
    return True


RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


KINDS = [GhostFileKind(), LockedFileKind(), RegFileKind()]
