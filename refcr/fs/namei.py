"""Looking up the paths an image names (the kernel's fs/namei.c), contained.

Images are untrusted and refcr runs as root, so a path from an image is
never handed to ``open`` as it is.  Every one goes through a :class:`Root`:

* it must be absolute, free of NUL bytes, and is normalised (``/a/../b`` is
  ``/b``; ``..`` cannot climb above the root);
* it is resolved with ``openat2(root_fd, path, RESOLVE_IN_ROOT |
  RESOLVE_NO_MAGICLINKS)``: the root is the tree's own root when it has a
  mount namespace (``/proc/ROOT/root``), else refcr's ``/``.  Symlinks met
  on the way resolve inside that root (an absolute link target starts at
  the root, not at refcr's ``/``), and ``/proc/*/fd``-style magic links are
  refused outright, so an image cannot jump to a file refcr has open;
* the file is first opened ``O_PATH`` and its type compared with what the
  object kind expects (a regular file, a FIFO, a directory, ...) before it
  is opened for real: a FIFO or device named where a regular file was
  dumped is refused, not opened (which could block or have side effects);
* the flags come from the image only through a fixed allow-list per object
  kind (:data:`ALLOWED`): ``O_CREAT``, ``O_TRUNC``, ``O_EXCL`` and
  ``O_TMPFILE`` are never among them, so no lookup creates or truncates a
  file.  (The validation layer refuses such flags with one line before the
  restore starts; the mask here is the second wall.)

Design note: RESOLVE_IN_ROOT rather than RESOLVE_BENEATH.  Both keep the
lookup inside the root; BENEATH also refuses every absolute symlink, which
real file systems are full of (``/etc/localtime``), while IN_ROOT resolves
it the way the restored tree itself would, in its own root.

Costs: one ``openat2`` plus one reopen through ``/proc/self/fd`` per file.
The O_PATH probe of a path is kept (the last :data:`PROBES_KEPT` paths):
10,000 fds of one file, or the five areas of a library, are one lookup and
one reopen each, not a lookup, a stat and a reopen each.  A reopen through
the probe opens the very inode that was checked, however the path changes.
"""
from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass, field

from refcr.errors import RestoreError
from refcr.ptrace import native

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
O_PATH = 0o10000000
O_LARGEFILE = 0o100000

_STATUS = os.O_APPEND | os.O_NONBLOCK | os.O_DIRECT | os.O_NOATIME | O_LARGEFILE | os.O_SYNC | os.O_DSYNC

# The open flags an image may choose, per kind of object opened by path.
ALLOWED: dict[str, int] = {
    "area": os.O_ACCMODE,                                   # a mapped file: fmode, read or read-write
    "exe": 0,                                               # /proc/PID/exe: read-only
    "file": os.O_ACCMODE | _STATUS | os.O_DIRECTORY | O_PATH | os.O_NOFOLLOW,   # reg / locked
    "fifo": os.O_ACCMODE | os.O_NONBLOCK,
    "watch": 0,                                             # an inotify watch target (O_PATH)
    "dir": 0,                                               # the directory of a socket name (O_PATH)
}
# flags no lookup ever passes on (O_TMPFILE's own bit: O_TMPFILE includes O_DIRECTORY)
NEVER = os.O_CREAT | os.O_TRUNC | os.O_EXCL | (os.O_TMPFILE & ~os.O_DIRECTORY)

FILE_TYPES = {stat_mod.S_IFREG, stat_mod.S_IFDIR, stat_mod.S_IFCHR, stat_mod.S_IFBLK,
              stat_mod.S_IFIFO, stat_mod.S_IFSOCK, stat_mod.S_IFLNK}
MAPPABLE = {stat_mod.S_IFREG, stat_mod.S_IFCHR, stat_mod.S_IFBLK}
PROBES_KEPT = 64        # O_PATH probes a Root keeps open (fds of refcr's own)


def checked(path: str, what: str = "image path") -> str:
    """*path* normalised; RestoreError unless it is absolute and NUL-free."""
    if "\0" in path:
        raise RestoreError(f"{what} {path!r} holds a NUL byte")
    norm = os.path.normpath(path) if path else ""
    if not norm.startswith("/"):
        raise RestoreError(f"{what} {path!r} is not absolute")
    return "/" + norm.lstrip("/")


@dataclass
class Root:
    """Where a restore looks up the image's paths: refcr's ``/``, or the
    root of the restored tree (host pid *pid*) when it has a mount namespace."""

    pid: int | None = None
    _fd: int = field(default=-1, repr=False)
    # (the image's path, its O_NOFOLLOW bit) -> (O_PATH fd, its file type), oldest first
    _probes: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def prefix(self) -> str:
        return f"/proc/{self.pid}/root" if self.pid else ""

    def fileno(self) -> int:
        if self._fd < 0:
            where = self.prefix or "/"
            self._fd = os.open(where, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._fd

    def close(self) -> None:
        for probe, _ in self._probes.values():
            os.close(probe)
        self._probes.clear()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def path(self, path: str) -> str:
        """The string refcr may use for *path* (for calls that take no fd)."""
        return self.prefix + checked(path)

    def lookup(self, path: str, flags: int = 0) -> int:
        """An O_PATH fd of *path* inside the root (OSError if absent)."""
        rel = checked(path).lstrip("/") or "."
        return native.openat2(self.fileno(), os.fsencode(rel),
                              O_PATH | os.O_CLOEXEC | (flags & os.O_NOFOLLOW), RESOLVE)

    def open(self, path: str, flags: int, kind: str, types: set[int] | frozenset[int] = frozenset()) -> int:
        """Open *path* with the image's *flags*, masked by the kind's allow-list,
        if its type is one of *types* (any, when empty).  OSError as open raises it,
        RestoreError for a refused type."""
        flags &= ALLOWED[kind] & ~NEVER
        probe, kind_now = self._probe(path, flags)
        if types and kind_now not in types:
            raise RestoreError(f"{path} is not the kind of file the images say "
                               f"({_type_name(kind_now)} found)")
        if flags & O_PATH:       # a path-only fd needs no reopening, but its own flags
            return native.openat2(self.fileno(), os.fsencode(checked(path).lstrip("/") or "."),
                                  flags | os.O_CLOEXEC, RESOLVE)
        if flags & os.O_NOFOLLOW:
            return self._open_again(path, flags, probe)
        return os.open(f"/proc/self/fd/{probe}", flags | os.O_CLOEXEC)

    def _probe(self, path: str, flags: int) -> tuple[int, int]:
        """The kept O_PATH probe of *path* and its file type (looked up once)."""
        key = (path, flags & os.O_NOFOLLOW)
        got = self._probes.get(key)
        if got is None:
            probe = self.lookup(path, flags)
            try:
                got = (probe, stat_mod.S_IFMT(os.fstat(probe).st_mode))
            except BaseException:
                os.close(probe)
                raise
            if len(self._probes) >= PROBES_KEPT:
                oldest = next(iter(self._probes))
                os.close(self._probes.pop(oldest)[0])
            self._probes[key] = got
        return got

    def _open_again(self, path: str, flags: int, probe: int) -> int:
        """O_NOFOLLOW stays in a description's flags only when given at open, and a
        reopen through /proc/self/fd (a link) cannot take it: the file is looked up
        once more, and must be the one the probe checked."""
        rel = checked(path).lstrip("/") or "."
        fd = native.openat2(self.fileno(), os.fsencode(rel), flags | os.O_CLOEXEC, RESOLVE)
        a, b = os.fstat(fd), os.fstat(probe)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
            os.close(fd)
            raise RestoreError(f"{path} changed while it was opened")
        return fd


def _type_name(fmt: int) -> str:
    return {stat_mod.S_IFREG: "a regular file", stat_mod.S_IFDIR: "a directory", stat_mod.S_IFCHR:
            "a character device", stat_mod.S_IFBLK: "a block device", stat_mod.S_IFIFO: "a FIFO",
            stat_mod.S_IFSOCK: "a socket", stat_mod.S_IFLNK: "a symlink"}.get(fmt, f"type {fmt:#o}")
