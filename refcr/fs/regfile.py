"""Files opened by path: regular files, directories, the harmless
character devices (/dev/null, zero, full, random, urandom) and symlinks
held with O_PATH|O_NOFOLLOW (reopened so, after checking at the dump that
the path still names the same symlink); and files no longer at their path,
device nodes of any device included.

Three kinds share this module:

* ``reg``: a file reopened by its path.
* ``locked``: the same, for a regular file that holds locks or has an owner
  (F_SETOWN); those are set again inside the task after its fds are in.
* ``ghost``: a regular file that is no longer at its path: unlinked, or
  replaced by another file renamed over it (the inode at the path is not the
  one the task has open).  Its contents go into the images (only its data,
  SEEK_DATA/SEEK_HOLE; every byte with --no-ghost-fiemap), up to
  --ghost-limit bytes of data; restore recreates it next to its old path,
  opens it for every description and unlinks it again, with its mode,
  owner, atime and mtime.  An O_TMPFILE file (glibc's tmpfile()) is made
  again with O_TMPFILE in its directory.  A deleted file that still has
  links elsewhere (a hard link under another name) must stay that inode:
  with --link-remap it is hard-linked at dump to ".refcr-link-remap.INO.N"
  next to its old path (nothing is copied), restore links it back, opens it
  and removes the name; without the option it is refused, naming the option
  (CRIU's behaviour).  The remap name is removed by a failed dump and by a
  successful restore.  A mapping of a deleted file (MAP_PRIVATE or
  MAP_SHARED) names a ghost entry of its own (VmaEntry.file_id, one per
  inode and open mode, made from /proc/PID/map_files) with the ghost_id of
  the inode, as CRIU's VMAs name a reg-file: restore maps the one recreated
  inode that the file's fds get too, so MAP_SHARED writes show through
  them.  A removed directory (an fd of it, or a process's cwd) and a
  removed device node, character or block, are ghosts too, as in CRIU:
  made again with mkdir / mknod (of the node's type and number) at the old
  name, held by an O_PATH fd; a node is unlinked at once, a directory only
  once every process is in (deleted files that were in it are made inside
  it first; a failed restore removes it).  An inotify watch or a fanotify
  mark on a deleted file or removed directory names its ghost too
  (dump_watched), if an fd, area, cwd or root of the tree holds it
  (check_watched).  mmap() moves a file's atime: the ghosts' times are set
  again once every process is in place (ghost_times); refcr's own fds of
  them are closed before the tasks run (close_deleted).  Cost: a mapped
  ghost counts against --ghost-limit like any other; a device node has no
  data and counts nothing.

Removed device nodes.  refcr runs as root and images are untrusted, so a
node is made again only if /dev of refcr's mount namespace has a node of
the same type and number (images/devnodes.py): the restored process gets
nothing an image could not give it anyway by naming that /dev path in an
fd reopened by path.  The validator refuses any other (before anything is
created), and so does the dump, naming the fd and the device number, so
that no images are made that this host would refuse.  The dump also
refuses a node whose fdinfo has a driver's line that a fresh open of the
device shows otherwise (tun's "iff:" once attached to an interface): the
restore opens the remade node afresh, and that state would be lost.  A
mapping of a removed device is refused (device memory is a plugin's
business; a MAP_SHARED one of /dev/zero is shared anonymous memory, mm/,
and is not concerned).  Cost: one walk of /dev per run that meets such a
node, and at dump one open of the device if its fdinfo has driver lines.
Deviations: per-open driver state that fdinfo does not show (a FUSE
connection, a loop device's O_EXCL claim, ...) is not carried, as for an
fd reopened by path.  CRIU's own fd dump goes further only for tun (a kind
of its own, attachment kept): it takes the memory (and autofs) character
devices as files and hands every other device, block ones too, to
plugins; refcr remakes those its /dev offers and refuses an attached tun.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import os
import stat as stat_mod
from typing import Iterator

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs import fown, locks, namei
from refcr.fs.fd import DumpFiles, FdTarget, LinkTarget, RestoreFiles, check_type, describe, link_target
from refcr.images import devnodes
from refcr.log import log
from refcr.pb import filekinds_pb2, files_pb2
from refcr.ptrace import proc

MEM_MAJOR = 1                      # /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom
MEM_MINORS = {3, 5, 7, 8, 9}
STATUS_FLAGS = os.O_APPEND | os.O_NONBLOCK | os.O_DIRECT | os.O_NOATIME   # what F_SETFL sets here
TMPFILE_BIT = os.O_TMPFILE & ~os.O_DIRECTORY      # what marks an O_TMPFILE file in its flags
O_PATH = 0o10000000
# Kept in f_flags, given only at open (F_SETFL cannot): Python's tempfile opens with O_NOFOLLOW.
OPEN_ONLY = os.O_NOFOLLOW | os.O_SYNC | os.O_DSYNC
NOT_ON_REOPEN = os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_NOCTTY | TMPFILE_BIT


def reopen_kept(kept: int, flags: int, pos: int, what: str) -> int:
    """A new description of the file refcr holds open as *kept* (an object
    it recreated once for many descriptions), with the dumped flags and offset."""
    try:
        if flags & TMPFILE_BIT:         # O_TMPFILE is O_DIRECTORY too
            flags &= ~os.O_DIRECTORY
        # O_NOCTTY: a remade device node must never become refcr's controlling terminal
        fd = os.open(f"/proc/self/fd/{kept}", (flags & ~NOT_ON_REOPEN) | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise RestoreError(f"cannot reopen {what}: {exc.strerror}") from exc
    if pos:                             # none for an O_PATH fd (lseek: EBADF) or a device
        os.lseek(fd, pos, os.SEEK_SET)
    return fd
DELETED = " (deleted)"
READ_CHUNK = 1 << 20


@contextlib.contextmanager
def dir_times_kept(path: str) -> Iterator[None]:
    """Put the atime and mtime of path's directory back after names were
    made and removed in it (a ghost made again, a link-remap name)."""
    parent = os.path.dirname(path) or "."
    try:
        before = os.stat(parent)
    except OSError:
        before = None
    try:
        yield
    finally:
        if before is not None:
            try:
                os.utime(parent, ns=(before.st_atime_ns, before.st_mtime_ns))
            except OSError:
                pass


def _is_mem_device(st: os.stat_result) -> bool:
    return (stat_mod.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == MEM_MAJOR
            and os.minor(st.st_rdev) in MEM_MINORS)


def _is_path_symlink(t: FdTarget) -> bool:
    """An O_PATH|O_NOFOLLOW fd of the symlink itself: reopened the same way."""
    return stat_mod.S_ISLNK(t.st.st_mode) and bool(t.flags & O_PATH)


def _gone(t: FdTarget, ctx: DumpFiles) -> bool:
    """True if t's regular file is not what its path names any more.  What a
    path names is looked up once per process and path (the tree is frozen):
    10,000 fds of one file are one stat, not 10,000."""
    if not t.link.startswith("/"):
        return False
    if t.link.endswith(DELETED):
        return True
    follow = not stat_mod.S_ISLNK(t.st.st_mode)
    named = ctx.extra.setdefault("path_names", {})
    key = (t.pid, t.link, follow)
    if key not in named:
        try:
            now = os.stat(proc.path(t.pid, "root") + t.link, follow_symlinks=follow)
            named[key] = (now.st_dev, now.st_ino)
        except OSError:
            named[key] = None
    return named[key] != (t.st.st_dev, t.st.st_ino)


def _reopen(e, ctx: RestoreFiles) -> int:
    try:
        fd = ctx.root.open(e.path, e.flags & ~NOT_ON_REOPEN, "file", {stat_mod.S_IFMT(e.mode)})
    except OSError as exc:
        raise RestoreError(f"cannot reopen {e.path}: {exc.strerror}") from exc
    try:
        st = check_type(e.path, fd, e.mode)
        if stat_mod.S_ISREG(e.mode) and st.st_size != e.size:
            if ctx.opts.file_validation == "filesize":
                raise RestoreError(f"{e.path}: its size changed since the dump ({e.size} -> {st.st_size}; "
                                   "--file-validation filesize)")
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
                or _is_mem_device(t.st) or _is_path_symlink(t))

    def dump(self, t: FdTarget, ctx: DumpFiles) -> files_pb2.RegFileEntry:
        if not t.link.startswith("/") or t.link.endswith(DELETED):
            raise UnsupportedObject(f"{describe(t)}: the file is not reachable by its path")
        if _is_path_symlink(t) and _gone(t, ctx):
            raise UnsupportedObject(f"{describe(t)}: the symlink at its path is another one now")
        return files_pb2.RegFileEntry(path=t.link, flags=t.flags, pos=int(t.info.get("pos", "0")),
                                      mode=t.st.st_mode, size=t.st.st_size, rdev=t.st.st_rdev)

    def open(self, e: files_pb2.RegFileEntry, ctx: RestoreFiles) -> int:
        return _reopen(e, ctx)


class LockedFileKind:
    """A regular file or directory with locks (under --file-locks), an owner or O_ASYNC."""

    field = "locked"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not (stat_mod.S_ISREG(t.st.st_mode) or stat_mod.S_ISDIR(t.st.st_mode)):
            return False
        held = locks.held(t)
        wanted = (bool(held and ctx.opts.file_locks) or bool(t.flags & os.O_ASYNC)
                  or fown.dump(t) is not None)
        return wanted and not _gone(t, ctx)      # the stat through the path last: rarely needed

    def dump(self, t: FdTarget, ctx: DumpFiles) -> filekinds_pb2.LockedFileEntry:
        e = filekinds_pb2.LockedFileEntry(path=t.link, flags=t.flags, pos=int(t.info.get("pos", "0")),
                                          mode=t.st.st_mode, size=t.st.st_size)
        e.locks.extend(locks.dump(t, ctx))
        fown.record(t, e)
        return e

    def open(self, e: filekinds_pb2.LockedFileEntry, ctx: RestoreFiles) -> int:
        return _reopen(e, ctx)

    def after_install(self, e, fd: int, puppet, ctx: RestoreFiles) -> None:
        locks.restore(e.locks, fd, puppet, e.path, ctx)
        fown.restore(e, fd, puppet)       # after the locks: a lease makes its taker the owner


def read_runs(fd: int, size: int, holes: bool = True) -> list[filekinds_pb2.DataRun]:
    """The data of a file, holes left out (SEEK_DATA / SEEK_HOLE), or all of it."""
    runs, off = [], 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA) if holes else off
        except OSError:            # ENXIO: only a hole is left
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size) if holes else size
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


def _is_device(mode: int) -> bool:
    return stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode)


def _deleted_node(st: os.stat_result, link: str) -> bool:
    """A removed directory or device node (made again on restore; a device
    only if /dev has its node, which GhostFileKind.dump checks)."""
    return link.endswith(DELETED) and (stat_mod.S_ISDIR(st.st_mode) or _is_device(st.st_mode))


GENERIC_FDINFO = {"pos", "flags", "mnt_id", "ino", "lock"}     # what every file's fdinfo shows


def _driver_state(t: FdTarget) -> str | None:
    """A line the device's driver adds to t's fdinfo that a fresh open of
    the device shows otherwise (tun's "iff:" once attached to an interface),
    or None.  The remade node is opened afresh, so such per-open state would
    be lost without a word; a fresh open is made only if there is a line."""
    own = {k: v for k, v in t.info.items() if k not in GENERIC_FDINFO}
    if not own:
        return None
    try:        # O_NONBLOCK, O_NOCTTY: as for a mapped device (mm/memory.py), no waiting, no terminal
        fd = os.open(t.proc_path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        return f"{next(iter(own))}: (no fresh open to compare with: {exc.strerror})"
    try:
        fresh = proc.fdinfo(os.getpid(), fd)
    finally:
        os.close(fd)
    return next((f"{k}: {v}" for k, v in own.items() if fresh.get(k) != v), None)


def _check_device(t: FdTarget) -> None:
    """Refuse, naming the fd and the device, a removed device node the
    restore could not make again here or whose open carries driver state."""
    why = devnodes.refusal(t.st.st_mode, t.st.st_rdev)
    if why is not None:
        raise UnsupportedObject(f"{describe(t)}: {why}")
    state = _driver_state(t)
    if state is not None:
        raise UnsupportedObject(f"{describe(t)}: the removed {devnodes.kind_name(t.st.st_mode)} device "
                                f"{devnodes.number(t.st.st_rdev)} holds per-open driver state ({state!r}) "
                                "that a new open of the remade node would not have")


class GhostFileKind:
    field = "ghost"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return (stat_mod.S_ISREG(t.st.st_mode) and _gone(t, ctx)) or _deleted_node(t.st, t.link)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> filekinds_pb2.GhostFileEntry:
        if _is_device(t.st.st_mode):
            _check_device(t)
        e = ghost_entry(t, ctx)
        e.locks.extend(locks.dump(t, ctx))
        fown.record(t, e)
        return e

    def open(self, e: filekinds_pb2.GhostFileEntry, ctx: RestoreFiles) -> int:
        made = ctx.extra.setdefault("ghosts", {})
        if e.ghost_id not in made:
            made[e.ghost_id] = ctx.keep(_recreate(e, ctx))
            if e.flags & TMPFILE_BIT:       # the description O_TMPFILE made: the only one with its flags
                return _first_tmpfile(made[e.ghost_id], e)
        return reopen_kept(made[e.ghost_id], e.flags, e.pos, f"the deleted file {e.path}")

    def after_install(self, e, fd: int, puppet, ctx: RestoreFiles) -> None:
        locks.restore(e.locks, fd, puppet, e.path, ctx)
        fown.restore(e, fd, puppet)       # after the locks: a lease makes its taker the owner


def ghost_entry(t: FdTarget, ctx: DumpFiles) -> filekinds_pb2.GhostFileEntry:
    """A description (or mapping) of a deleted file: one ghost_id per inode
    over the whole tree, its data (or --link-remap name) in the first entry."""
    path = t.link[:-len(DELETED)] if t.link.endswith(DELETED) else t.link
    ghosts = ctx.extra.setdefault("ghosts", {})
    key = (t.st.st_dev, t.st.st_ino)
    e = filekinds_pb2.GhostFileEntry(path=path, flags=t.flags, pos=int(t.info.get("pos", "0")),
                                     mode=t.st.st_mode, size=t.st.st_size, uid=t.st.st_uid,
                                     gid=t.st.st_gid)
    e.atime_ns, e.mtime_ns = t.st.st_atime_ns, t.st.st_mtime_ns
    if _is_device(t.st.st_mode):
        e.rdev = t.st.st_rdev
    if key not in ghosts:
        ghosts[key] = len(ghosts) + 1
        if stat_mod.S_ISREG(t.st.st_mode) and t.st.st_nlink:
            e.remap = link_remap(t, path, ghosts[key], ctx)
        elif stat_mod.S_ISREG(t.st.st_mode):
            e.data.extend(ghost_data(t, ctx))
    e.ghost_id = ghosts[key]
    return e


def dump_mapped(pid: int, area: str, fmode: int, ctx: DumpFiles) -> int:
    """The FileEntry id of a mapped deleted file (as CRIU does, the area
    names a ghost of the file's inode: the same one its fds get, so the
    restored mapping and fds share one inode and MAP_SHARED writes show
    through the fds)."""
    t = link_target(pid, proc.path(pid, "map_files", area), f"mapping {area}", fmode)
    # a ghost node is remade for fds only: device memory is a plugin's business (mm/memory.py), and
    # an area is mapped again only from a regular ghost file
    if _is_device(t.st.st_mode):
        raise UnsupportedObject(f"{describe(t)}: a mapping of the removed {devnodes.kind_name(t.st.st_mode)} "
                                f"device {devnodes.number(t.st.st_rdev)} is not restored")
    if not stat_mod.S_ISREG(t.st.st_mode):
        raise UnsupportedObject(f"{describe(t)}: a deleted {stat_mod.filemode(t.st.st_mode)[0]} file "
                                "cannot be mapped again")
    where = proc.path(pid, "root") + os.path.dirname(t.link.removesuffix(DELETED))
    try:
        home = os.stat(where).st_dev
    except OSError:
        home = None
    if home != t.st.st_dev:      # no directory of its file system to make it again in (hugetlbfs's
        raise UnsupportedObject(f"{describe(t)}: the deleted file's directory is not on its "
                                "file system: it cannot be made again there")   # /anon_hugepage)
    return _pinned(t, ctx)


def dump_watched(t: FdTarget, fd: int, ctx: DumpFiles, what: str, perm: bool = False) -> int:
    """The FileEntry id of a deleted file or removed directory that *what*
    (an inotify watch, a fanotify mark: *perm* if it asks for permission
    events) of t is on, found as refcr's own fd *fd* (open_by_handle_at):
    its ghost, the inode the tree's fds, areas or cwd of it get
    (check_watched makes sure there is one)."""
    is_dir = stat_mod.S_ISDIR(os.fstat(fd).st_mode)
    flags = os.O_RDONLY | (os.O_DIRECTORY if is_dir else 0)     # a directory's: dump_removed_dir's entry
    w = link_target(t.pid, f"/proc/self/fd/{fd}", f"{what} of fd {t.fd}", flags)
    if not (stat_mod.S_ISREG(w.st.st_mode) or is_dir):
        raise UnsupportedObject(f"{describe(w)}: a {what} on a deleted {stat_mod.filemode(w.st.st_mode)} "
                                "is not restored")
    if perm and not is_dir:     # ghost_data's open and reads would wait for the group's answer
        raise UnsupportedObject(f"{describe(w)}: the {what} asks for permission events on the deleted file: "
                                "reading its data, refcr would wait for an answer from the frozen group")
    if not w.st.st_nlink:       # gone for good: it lives only while pinned (one linked elsewhere lives on)
        ctx.extra.setdefault("watched", {})[(w.st.st_dev, w.st.st_ino)] = \
            f"{describe(w)}: nothing of the tree but the {what} holds the {'directory' if is_dir else 'file'}"
    return ctx.add_linked(w, ghost_entry)


def check_watched(ctx: DumpFiles) -> None:
    """Once the whole tree is dumped: refuse a watch or mark on a deleted
    inode that no fd, area or cwd of the tree holds.  The kernel keeps a
    watch on an unlinked inode only while something pins its dentry (a watch
    alone does not: rmdir or the last close ends it with IN_DELETE_SELF), so
    here something outside the tree does, and after restore nothing would."""
    pinned = ctx.extra.get("pinned", {})
    for key, where in ctx.extra.get("watched", {}).items():
        if key not in pinned and not ctx.holds(*key):
            raise UnsupportedObject(f"{where} (something outside the tree pins it): it would not outlive "
                                    "the restore")


def _pinned(t: LinkTarget, ctx: DumpFiles) -> int:
    """add_linked for a holder of the file (an area, a cwd), noted for check_watched."""
    ctx.extra.setdefault("pinned", {})[(t.st.st_dev, t.st.st_ino)] = True
    return ctx.add_linked(t, ghost_entry)


def dump_removed_dir(pid: int, which: str, ctx: DumpFiles) -> int:
    """The FileEntry id of a process's deleted working directory or root
    (*which*: "cwd" or "root"): a ghost directory, the same inode as the fds
    of it get (fs_struct.py fchdirs / chroots into it)."""
    t: LinkTarget = link_target(pid, proc.path(pid, which), which, os.O_RDONLY | os.O_DIRECTORY)
    if not _deleted_node(t.st, t.link):
        raise UnsupportedObject(f"{describe(t)}: the directory is not reachable by its path")
    return _pinned(t, ctx)


def close_deleted(ctx: RestoreFiles) -> None:
    """Close refcr's own fds of deleted files and removed directories once
    every process is in, before the tasks run (at most once): a description
    only refcr holds would give its IN_CLOSE_* / FAN_CLOSE_* to the tree's
    watches and marks when refcr exits, and refcr's hold on a removed
    directory would put off its IN_DELETE_SELF past the tree's last close."""
    done = ctx.extra.setdefault("deleted-closed", {})
    if done or not ctx.extra.get("ghosts"):
        return
    done[True] = True
    ctx.close_if(lambda st: st.st_nlink == 0 and (stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISDIR(st.st_mode)))


def ghost_times(ctx: RestoreFiles) -> None:
    """The atime and mtime of every recreated deleted file, set again once
    every process is in place: mapping one (mmap's file_accessed) moved its
    atime."""
    remove_ghost_dirs(ctx)
    made = ctx.extra.get("ghosts", {})
    ghosts = [x.ghost for x in ctx.entries.values() if x.WhichOneof("file") == "ghost"]
    done = {g.ghost_id for g in ghosts if g.remap}      # linked back: the file's own times
    for g in ghosts:
        if g.ghost_id in made and g.ghost_id not in done and g.mtime_ns:
            # by the /proc link: a directory's or device's ghost is held by an O_PATH fd
            os.utime(f"/proc/self/fd/{made[g.ghost_id]}", ns=(g.atime_ns, g.mtime_ns))
            done.add(g.ghost_id)


def ghost_data(t: FdTarget, ctx: DumpFiles) -> list[filekinds_pb2.DataRun]:
    """The contents of a deleted file, up to --ghost-limit bytes: the data
    only (SEEK_DATA/SEEK_HOLE, the FIEMAP of CRIU's --ghost-fiemap, which is
    the default), or every byte with --no-ghost-fiemap."""
    ctx.before_read(t, ctx)
    local = os.open(t.proc_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOATIME)
    try:
        runs = read_runs(local, t.st.st_size, holes=ctx.opts.ghost_fiemap)
    finally:
        os.close(local)
    size = sum(len(r.data) for r in runs)
    if size > ctx.opts.ghost_limit:
        raise UnsupportedObject(f"{describe(t)}: deleted file with {size} bytes of data is over the "
                                f"ghost limit of {ctx.opts.ghost_limit} bytes (--ghost-limit, or "
                                "--link-remap to keep it by a link instead)")
    return runs


def link_remap(t: FdTarget, path: str, ghost_id: int, ctx: DumpFiles) -> str:
    """Keep a deleted file by a hard link next to its old path (--link-remap):
    needed for one still linked elsewhere (a copy would split it from its
    other names).  The link is recorded in ctx.extra["link-remap"] so that a
    failed dump removes it (remove_link_remaps)."""
    if not ctx.opts.link_remap:
        raise UnsupportedObject(f"{describe(t)}: deleted file still has {t.st.st_nlink} link(s) "
                                "elsewhere: dump with --link-remap to keep it by a link")
    name = os.path.join(os.path.dirname(path), f".refcr-link-remap.{t.st.st_ino}.{ghost_id}")
    where = proc.path(t.pid, "root") + name
    try:
        with dir_times_kept(where):
            _link_fd(t.proc_path, where)
    except OSError as exc:
        raise UnsupportedObject(f"{describe(t)}: --link-remap cannot link it at {name}: "
                                f"{exc.strerror}") from exc
    ctx.extra.setdefault("link-remap", {})[where] = True
    return name


def _link_fd(proc_path: str, where: str) -> None:
    """linkat(AT_EMPTY_PATH) of the file behind a /proc fd link (following
    the link with AT_SYMLINK_FOLLOW fails with EXDEV on this kernel)."""
    fd = os.open(proc_path, os.O_PATH | os.O_CLOEXEC)
    try:
        if _libc.linkat(fd, b"", AT_FDCWD, os.fsencode(where), AT_EMPTY_PATH):
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def remove_link_remaps(ctx: DumpFiles | RestoreFiles) -> None:
    """Remove the --link-remap links of a dump that failed, or of a restore
    that succeeded (a failed restore leaves them for the next try)."""
    for where in ctx.extra.pop("link-remap", {}):
        try:
            with dir_times_kept(where):
                os.unlink(where)
        except OSError:
            pass


def _relink(e: filekinds_pb2.GhostFileEntry, ctx: RestoreFiles) -> int:
    """A --link-remap file: linked back at its old path, opened, both names
    removed (the fds then show "PATH (deleted)" as at dump)."""
    if (os.path.dirname(e.remap) != os.path.dirname(e.path)
            or not os.path.basename(e.remap).startswith(".refcr-link-remap.")):
        raise RestoreError(f"files.img: {e.remap!r} is not a link-remap name")
    remap, base = contained(ctx, e.remap), contained(ctx, e.path)
    with dir_times_kept(base):
        try:
            os.link(remap, base, follow_symlinks=False)
        except OSError as exc:
            raise RestoreError(f"cannot link the deleted file {e.path} back from {e.remap}: "
                               f"{exc.strerror}") from exc
        try:
            fd = os.open(base, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOATIME)
        finally:
            os.unlink(base)
    try:
        check_type(e.path, fd, e.mode)
    except BaseException:
        os.close(fd)
        raise
    ctx.extra.setdefault("link-remap", {})[remap] = True     # removed once the restore succeeded
    return fd


def _recreate(e: filekinds_pb2.GhostFileEntry, ctx: RestoreFiles) -> int:
    """Create the deleted file again, fill it, and unlink it under its old name.

    If another file took the path meanwhile (a replaced file), the ghost is
    made under a temporary name next to it, swapped with the occupant
    (RENAME_EXCHANGE) and the occupant renamed back over it: the ghost ends
    up deleted under its own name and the occupant is where it was.
    """
    first = next((x.ghost for x in ctx.entries.values()
                  if x.WhichOneof("file") == "ghost" and x.ghost.ghost_id == e.ghost_id
                  and (x.ghost.data or x.ghost.remap)), e)
    if first.remap:
        return _relink(first, ctx)
    base = contained(ctx, e.path)
    if not stat_mod.S_ISREG(e.mode):
        return _make_node(e, base, ctx)
    if e.flags & TMPFILE_BIT:
        return _fill(_tmpfile(e, base), first, e)
    with dir_times_kept(base):
        return _create_unlinked(e, first, base)


def contained(ctx: RestoreFiles, path: str) -> str:
    """A name for *path* that refcr may create, link or remove: its directory
    looked up inside the tree's root (fs/namei.py) and kept open, then the
    last component under that directory's /proc/self/fd link.  Every later
    call resolves only that one component (O_NOFOLLOW where it opens), so a
    symlink on the way cannot lead it out of the root."""
    where, base = os.path.split(namei.checked(path, "deleted file"))
    if not base:
        raise RestoreError(f"deleted file {path!r} names no file")
    made = _ghost_dir(ctx, where)
    if made is not None:            # inside a removed directory, made again until the end (_make_node)
        return f"/proc/self/fd/{made}/{base}"
    try:
        dirfd = ctx.keep(ctx.root.lookup(where))
    except OSError as exc:
        raise RestoreError(f"cannot recreate the deleted file {path}: no directory {where}: "
                           f"{exc.strerror}") from None
    return f"/proc/self/fd/{dirfd}/{base}"


def _ghost_dir(ctx: RestoreFiles, where: str) -> int | None:
    """refcr's fd of the directory *where* if it is a removed directory of
    the images (made again now if it was not yet: its deleted files are
    made inside it), else None."""
    dirs = ctx.extra.setdefault("ghost-dirs", {})
    if where not in dirs:
        ghost = next((x for x in ctx.entries.values() if x.WhichOneof("file") == "ghost"
                      and stat_mod.S_ISDIR(x.ghost.mode) and x.ghost.path == where), None)
        if ghost is None:
            return None
        ctx.open(ghost.id)          # _make_node records it
    return dirs[where].fd


@dataclasses.dataclass
class GhostNode:
    """A directory made again for a removed one: it stays (so that its
    deleted files can be made in it) until every process is restored
    (remove_ghost_dirs), or a failed restore takes it back."""

    fd: int                         # refcr's O_PATH fd of it
    name: str                       # where it is (a contained /proc/self/fd/DIR/NAME path)
    base: str                       # its own name (name is a temporary one if another file took it)
    is_dir: bool
    gone: bool = False

    def remove(self) -> None:
        """Remove its name.  Deviation: if another file took the old name,
        the node was made under a temporary one, which its fds then show
        (unlike a regular ghost, it is not swapped with the occupant: that
        would leave the occupant's name to an empty directory for a moment)."""
        if self.gone:
            return
        self.gone = True
        if self.name != self.base:
            log.warning("%s was taken: the removed %s comes back as %s", os.path.basename(self.base),
                        "directory" if self.is_dir else "device node", os.path.basename(self.name))
        with dir_times_kept(self.name):
            (os.rmdir if self.is_dir else os.unlink)(self.name)


def _make_node(e: filekinds_pb2.GhostFileEntry, base: str, ctx: RestoreFiles) -> int:
    """A removed directory (mkdir) or device node (mknod of its type and
    rdev, if /dev has such a node: images/devnodes.py) made again at its old
    name (or next to it if that is taken), with its owner and mode, held by
    an O_PATH fd (reopen_kept gives every description).  A device node is
    unlinked at once; a directory only at the end (GhostNode), as CRIU does."""
    is_dir = stat_mod.S_ISDIR(e.mode)
    why = None if is_dir else devnodes.refusal(e.mode, e.rdev)
    if why is not None:             # the validator refused it already, unless /dev changed since
        raise RestoreError(f"cannot make the removed device {e.path} again: {why}")
    with dir_times_kept(base):
        for n in range(100):
            path = base if n == 0 else f"{base}.refcr-ghost-{e.ghost_id}-{n}"
            try:
                if is_dir:
                    os.mkdir(path, 0o700)
                else:
                    os.mknod(path, stat_mod.S_IFMT(e.mode) | 0o600, e.rdev)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise RestoreError(f"cannot make the removed {'directory' if is_dir else 'device'} "
                                   f"{e.path} again: {exc.strerror}") from exc
        else:
            raise RestoreError(f"cannot make {e.path} again: no free name next to it")
        node = GhostNode(os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC), path, base, is_dir)
        if is_dir:
            ctx.undo.append(node.remove)
            ctx.extra.setdefault("ghost-dirs", {})[e.path] = node
        try:
            check_type(e.path, node.fd, e.mode)
            _set_owner(node.fd, e)
        finally:
            if not is_dir:
                node.remove()
    return node.fd


def _set_owner(fd: int, e: filekinds_pb2.GhostFileEntry) -> None:
    """Owner and mode of an inode refcr holds by an O_PATH fd (through its /proc link)."""
    link = f"/proc/self/fd/{fd}"
    try:
        os.chown(link, e.uid, e.gid)
    except OSError:
        pass
    os.chmod(link, stat_mod.S_IMODE(e.mode))


def remove_ghost_dirs(ctx: RestoreFiles) -> None:
    """Remove the directories made again for removed ones, deepest first."""
    for _, node in sorted(ctx.extra.get("ghost-dirs", {}).items(), key=lambda kv: -kv[0].count("/")):
        try:
            node.remove()
        except OSError as exc:
            raise RestoreError(f"cannot remove the remade directory {node.base}: {exc.strerror}") from exc


def _create_unlinked(e: filekinds_pb2.GhostFileEntry, first: filekinds_pb2.GhostFileEntry, base: str) -> int:
    for n in range(100):
        path = base if n == 0 else f"{base}.refcr-ghost-{e.ghost_id}-{n}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise RestoreError(f"cannot recreate the deleted file {e.path}: {exc.strerror}") from exc
    else:
        raise RestoreError(f"cannot recreate the deleted file {e.path}: no free name next to it")
    try:
        _fill(fd, first, e)
    finally:
        if path == base or not _swap_away(path, base):
            os.unlink(path)
    return fd


def _tmpfile(e: filekinds_pb2.GhostFileEntry, base: str) -> int:
    """An O_TMPFILE file is made again as one, in its directory (its name is
    "#INODE", which names no directory entry; it stays linkable)."""
    try:
        access = os.O_WRONLY if e.flags & os.O_ACCMODE == os.O_WRONLY else os.O_RDWR
        # "DIR/.": O_NOFOLLOW (kept from the dump) then concerns ".", not the /proc/self/fd
        # link that names the contained directory (contained())
        return os.open(os.path.dirname(base) + "/.", os.O_TMPFILE | access | os.O_CLOEXEC | (e.flags & OPEN_ONLY),
                       0o600)
    except OSError as exc:
        raise RestoreError(f"cannot recreate the O_TMPFILE file {e.path}: {exc.strerror}") from exc


def _first_tmpfile(kept: int, e: filekinds_pb2.GhostFileEntry) -> int:
    """The O_TMPFILE description itself (its flags keep O_TMPFILE, which no
    reopen gives), with the dumped status flags and offset.  Further
    descriptions of the same file are reopened without it."""
    fd = os.dup(kept)
    fcntl.fcntl(fd, fcntl.F_SETFL, e.flags & STATUS_FLAGS)
    os.lseek(fd, e.pos, os.SEEK_SET)
    return fd


def _fill(fd: int, first: filekinds_pb2.GhostFileEntry, e: filekinds_pb2.GhostFileEntry) -> int:
    """Contents, owner, mode and times of a recreated deleted file (fd closed on failure)."""
    try:
        write_runs(fd, first.data, e.size)
        try:
            os.fchown(fd, e.uid, e.gid)
        except OSError:
            pass
        os.fchmod(fd, stat_mod.S_IMODE(e.mode))
        if e.mtime_ns:
            os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _swap_away(tmp: str, path: str) -> bool:
    """Make the file at tmp deleted under the name path, keeping what is at path."""
    if _libc.renameat2(AT_FDCWD, os.fsencode(tmp), AT_FDCWD, os.fsencode(path), RENAME_EXCHANGE):
        return False
    os.rename(tmp, path)          # the occupant goes back, replacing (unlinking) the ghost
    return True


AT_FDCWD, RENAME_EXCHANGE, AT_EMPTY_PATH = -100, 2, 0x1000
_libc = ctypes.CDLL(None, use_errno=True)


KINDS = [GhostFileKind(), LockedFileKind(), RegFileKind()]
