"""What every kind of open file shares: the types the fd registry
(fs/files.py) and the kinds (one module each) both use.

FdTarget is one fd of a frozen process; FileKind the protocol a kind
implements (claims/dump/open, optional after_install and adopt); DumpFiles
and RestoreFiles the per-run contexts that collect descriptions on dump and
open each one once on restore.  The contexts get the registry's choices
(which kind claims an fd, the list of kinds) from fs/files.py when it makes
them, so this module imports no kind and every kind can import it.
"""
from __future__ import annotations

import array
import functools
import os
import stat as stat_mod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol

from refcr.errors import RestoreError
from refcr.external import InheritTable
from refcr.fs.namei import Root
from refcr.images.imagedir import ImageDir
from refcr.options import Options
from refcr.pb import files_pb2
from refcr.ptrace import native, proc

O_CLOEXEC = 0o2000000


KCMP_FILE = 0


@dataclass
class FdTarget:
    """What refcr knows about one fd of a frozen process."""

    pid: int
    fd: int
    link: str                  # readlink of /proc/PID/fd/N
    st: os.stat_result         # stat through the link
    flags: int                 # open flags from fdinfo, without O_CLOEXEC
    info: dict[str, str]       # the whole fdinfo

    @property
    def proc_path(self) -> str:
        return proc.path(self.pid, "fd", str(self.fd))


@dataclass
class LinkTarget(FdTarget):
    """A file a process holds by another link than an fd: an area's
    /proc/PID/map_files/START-END or its /proc/PID/cwd (fd is -1; flags are
    the open mode refcr gives the file)."""

    where: str = ""            # the /proc link that stands where the fd's would
    what: str = ""             # for messages: "mapping START-END", "cwd"

    @property
    def proc_path(self) -> str:
        return self.where


def link_target(pid: int, where: str, what: str, flags: int) -> LinkTarget:
    return LinkTarget(pid=pid, fd=-1, link=os.readlink(where), st=os.stat(where), flags=flags, info={},
                      where=where, what=what)


def fd_target(pid: int, fd: int) -> FdTarget:
    """What /proc tells about fd N of process PID (refcr's own pid: a descriptor
    refcr holds for the tree, e.g. one received from a socket's queue)."""
    info = proc.fdinfo(pid, fd)
    p = proc.path(pid, "fd", str(fd))
    return FdTarget(pid=pid, fd=fd, link=os.readlink(p), st=os.stat(p),
                    flags=int(info["flags"], 8) & ~O_CLOEXEC, info=info)


class FileKind(Protocol):
    """One kind of open file description (see the registry below).

    A kind may also define ``after_install(entry, fd, puppet, ctx)``: called
    once the whole fd table of a puppet is installed, for each fd of this
    kind, with the fd number inside the puppet.  That is where state that
    only the owning task can set goes (epoll targets by fd number, locks,
    file owners): `puppet.remote` injects syscalls into it.
    """

    field: ClassVar[str]       # name of its member of the FileEntry oneof

    def claims(self, t: FdTarget, ctx: "DumpFiles") -> bool: ...
    def dump(self, t: FdTarget, ctx: "DumpFiles") -> object: ...
    def open(self, entry: object, ctx: "RestoreFiles") -> int: ...


def resource_of(entry: files_pb2.FileEntry, kind: FileKind) -> str:
    """The resource name --inherit-fd uses for a description (as /proc spells it)."""
    which = entry.WhichOneof("file")
    if which == "pipe":
        return f"pipe:[{entry.pipe.pipe_id}]"
    if which == "reg":
        return os.path.normpath(entry.reg.path)
    if which == "shell_tty":
        return f"tty[{os.major(entry.shell_tty.rdev)}:{os.minor(entry.shell_tty.rdev)}]"
    custom = getattr(kind, "resource", None)
    return custom(getattr(entry, which)) if custom else ""


@functools.cache
def _by_field(kinds: tuple[FileKind, ...]) -> dict[str, FileKind]:
    """The kind of each FileEntry field (the first kind of a field, in claiming order)."""
    out: dict[str, FileKind] = {}
    for k in kinds:
        out.setdefault(k.field, k)
    return out


def kind_of(entry: files_pb2.FileEntry, kinds: tuple[FileKind, ...]) -> "tuple[FileKind, object]":
    which = entry.WhichOneof("file")
    kind = _by_field(kinds).get(which)
    if kind is None:
        raise RestoreError(f"file id {entry.id}: unknown kind {which!r}")
    return kind, getattr(entry, which)


def describe(t: FdTarget) -> str:
    if isinstance(t, LinkTarget):
        return f"process {t.pid}: {t.what} ({t.link})"
    return f"process {t.pid}: fd {t.fd} ({t.link})"


@dataclass
class _Descriptions:
    """The open file descriptions of one inode seen so far, one fd of each,
    sorted in kcmp's order: arrays, for native.kcmp_file_search."""

    pids: array.array = field(default_factory=lambda: array.array("i"))
    fds: array.array = field(default_factory=lambda: array.array("i"))
    ids: list[int] = field(default_factory=list)      # their FileEntry ids

    def insert(self, at: int, pid: int, fd: int, file_id: int) -> None:
        self.pids.insert(at, pid)
        self.fds.insert(at, fd)
        self.ids.insert(at, file_id)


@dataclass
class DumpFiles:
    """Collects open file descriptions while fd tables are dumped."""

    opts: Options
    claim: Callable[[FdTarget, "DumpFiles"], FileKind]     # the kind of a new description (fs/files.py)
    # flock/OFD/lease locks of a description whose kind keeps none in its entry (fs/locks.py)
    description_locks: Callable[[FdTarget, "DumpFiles"], list] = staticmethod(lambda t, ctx: [])
    # before refcr reads a file of the tree: refuse if that would wait for a frozen
    # fanotify group with permission events (fs/fanotify.py)
    before_read: Callable[[FdTarget, "DumpFiles"], None] = staticmethod(lambda t, ctx: None)
    entries: list[files_pb2.FileEntry] = field(default_factory=list)
    extra: dict[str, dict] = field(default_factory=dict)     # per-kind side data (e.g. pipe contents)
    pids: list[int] = field(default_factory=list)      # host pids of the dumped tree, root first
    # per inode: its descriptions seen so far, sorted in kcmp's order
    _by_inode: dict[tuple[int, int], "_Descriptions"] = field(default_factory=dict)

    def add_linked(self, t: LinkTarget, dump: Callable[[FdTarget, "DumpFiles"], object]) -> int:
        """The FileEntry id for a file held by no fd (a deleted file's
        mapping, a deleted cwd): one per inode and open mode, dumped by *dump*
        (a ghost entry) the first time; no description any fd shares."""
        mapped = self.extra.setdefault("linked", {})
        key = (t.st.st_dev, t.st.st_ino, t.flags)
        if key not in mapped:
            entry = files_pb2.FileEntry()
            entry.ghost.CopyFrom(dump(t, self))
            mapped[key] = entry.id = len(self.entries) + 1
            self.entries.append(entry)
        return mapped[key]

    def holds(self, dev: int, ino: int) -> bool:
        """Whether an fd of the tree (or one in flight) seen so far has this inode open."""
        return (dev, ino) in self._by_inode

    def _find(self, t: FdTarget) -> tuple[int, int | None]:
        """Where t's description is (or goes) among its inode's descriptions,
        and its file id if it was seen: a binary search (in C), as kcmp orders
        descriptions (10,000 fds of one file would be 50 million kcmp calls
        if compared with each other)."""
        reps = self._by_inode.get((t.st.st_dev, t.st.st_ino))
        if reps is None:
            return 0, None
        found = native.kcmp_file_search(t.pid, t.fd, reps.pids, reps.fds)
        if found is None:   # no order (kernel without pointer ordering): compare with each
            return len(reps.ids), next((i for p, f, i in zip(reps.pids, reps.fds, reps.ids, strict=True)
                                        if native.kcmp(t.pid, p, KCMP_FILE, t.fd, f) == 0), None)
        at, same = found
        return at, reps.ids[at] if same else None

    def add(self, t: FdTarget) -> int:
        """The FileEntry id of t's description, dumping it the first time."""
        at, file_id = self._find(t)
        if file_id is None:
            known = len(self.entries)
            kind = self.claim(t, self)
            entry = files_pb2.FileEntry()
            msg = kind.dump(t, self)
            getattr(entry, kind.field).CopyFrom(msg)
            if "locks" not in msg.DESCRIPTOR.fields_by_name:     # the kind does not keep them itself
                entry.locks.extend(self.description_locks(t, self))
            # numbered after its kind's dump, which may have added descriptions (a peer, a target);
            # a plugin's DUMP_EXT_FILE was told this id (len + 1): plugin kinds add none
            file_id = entry.id = len(self.entries) + 1
            self.entries.append(entry)
            if len(self.entries) != known + 1:      # dumping it added descriptions: look again
                at = self._find(t)[0]
            self._by_inode.setdefault((t.st.st_dev, t.st.st_ino), _Descriptions()).insert(at, t.pid, t.fd, file_id)
        return file_id


@dataclass
class RestoreFiles:
    """Opens each dumped description once, in refcr, on demand."""

    images: ImageDir
    opts: Options
    kinds: tuple[FileKind, ...] = ()    # every kind (fs/files.py), to find an entry's
    root: Root = field(default_factory=Root)   # where the image's paths are looked up (fs/namei.py)
    root_pid: int | None = None     # host pid of the root puppet: its namespaces are the tree's (net/nsenter.py)
    inherited: InheritTable = field(default_factory=InheritTable)   # --inherit-fd
    # pid in the tree -> its puppet (ptrace/puppet.py): calls a restored task must make itself
    # (net/unix.py: the socket calls that give SO_PEERCRED its pid)
    puppets: dict[int, Any] = field(default_factory=dict)
    entries: dict[int, files_pb2.FileEntry] = field(default_factory=dict)
    extra: dict[str, dict] = field(default_factory=dict)
    # per fd of a table once its kinds' hooks ran: the process's own POSIX locks (fs/files.py)
    # per installed fd, after the kinds' hooks: its locks (fs/locks.py restore_fd)
    fd_hook: Callable[[object, object, "RestoreFiles"], None] = staticmethod(lambda puppet, fe, ctx: None)
    installing: int = 0         # FileEntry.id whose after_install hook runs now (install_table)
    opening: int = 0            # FileEntry.id whose kind's open() runs now (open)
    undo: list[Callable[[], None]] = field(default_factory=list)   # what a failed restore takes back
    _local: dict[int, int] = field(default_factory=dict)
    _owned: list[int] = field(default_factory=list)
    _once: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def load(cls, images: ImageDir, opts: Options, kinds: tuple[FileKind, ...]) -> "RestoreFiles":
        ctx = cls(images, opts, kinds, inherited=InheritTable.from_options(opts.inherit_fd))
        if images.exists("files"):
            ctx.entries = {e.id: e for e in images.read("files")}
        return ctx

    def check_inherited(self, more: tuple[str, ...] = ()) -> None:
        """Every --inherit-fd names a resource of the images (or one of *more*,
        e.g. an external net namespace): checked before anything is created
        (a refused restore must not touch the world)."""
        if not self.inherited.items:
            return
        have = {resource_of(e, kind_of(e, self.kinds)[0]) for e in self.entries.values()} | set(more)
        for item in self.inherited.items:
            if item.resource not in have:
                raise RestoreError(f"--inherit-fd {item.option}: matches nothing in the images")

    def resolve(self, path: str) -> str:
        """A dumped absolute path as refcr may name it (for calls that take no fd)."""
        return self.root.path(path)

    def keep(self, fd: int) -> int:
        """Close fd when the restore is over."""
        self._owned.append(fd)
        return fd

    def open(self, file_id: int) -> int:
        if file_id not in self._local:
            entry = self.entry(file_id)
            kind, msg = kind_of(entry, self.kinds)
            fd = self.inherited.take(resource_of(entry, kind)) if self.inherited.items else None
            if fd is not None:
                self._local[file_id] = self.keep(fd)
                adopt = getattr(kind, "adopt", None)    # checks and settings of a handed-in fd (tty.ExtTtyKind)
                if adopt is not None:
                    adopt(msg, fd)
                return fd
            outer, self.opening = self.opening, file_id     # a kind may open others first
            try:
                self._local[file_id] = self.keep(kind.open(msg, self))
            finally:
                self.opening = outer
        return self._local[file_id]

    def entry(self, file_id: int) -> files_pb2.FileEntry:
        entry = self.entries.get(file_id)
        if entry is None:
            raise RestoreError(f"fdinfo refers to file id {file_id}, which files.img lacks")
        return entry

    def install_table(self, puppet, table: list) -> None:
        """Install a process's fd table, then run the kinds' after_install hooks."""
        puppet.install_fds([(self.open(fe.id), fe.fd, fe.cloexec) for fe in table])
        for fe in table:
            kind, msg = kind_of(self.entry(fe.id), self.kinds)
            hook = getattr(kind, "after_install", None)
            if hook is not None:
                self.installing = fe.id
                hook(msg, fe.fd, puppet, self)
        for fe in table:
            self.installing = fe.id
            self.fd_hook(puppet, fe, self)
        self.installing = 0

    def once(self, what: str) -> bool:
        """True the first time an after_install hook asks about `what` for the
        description it runs for (by FileEntry.id: the message objects a hook
        gets are made anew on every access, so their identity means nothing)."""
        key = (what, self.installing)
        if key in self._once:
            return False
        self._once.add(key)
        return True

    def close_if(self, pred: Callable[[os.stat_result], bool]) -> None:
        """Close now the fds refcr holds whose file *pred* picks (the rest at close_all)."""
        kept = []
        for fd in self._owned:
            try:
                if pred(os.fstat(fd)):
                    os.close(fd)
                    continue
            except OSError:
                pass
            kept.append(fd)
        self._owned = kept
        self._local = {k: v for k, v in self._local.items() if v in kept}

    def rollback(self) -> None:
        """A failed restore: take back what was made on the host (socket files), newest first."""
        while self.undo:
            self.undo.pop()()

    def close_all(self) -> None:
        for fd in self._owned:
            try:
                os.close(fd)
            except OSError:
                pass
        self._owned.clear()
        self._local.clear()
        self.root.close()


def check_type(path: str, fd: int, mode: int) -> os.stat_result:
    """Refuse a reopened file whose type differs from the dumped one; its stat."""
    st = os.fstat(fd)
    if stat_mod.S_IFMT(st.st_mode) != stat_mod.S_IFMT(mode):
        raise RestoreError(f"{path} is no longer the same kind of file as at dump time")
    return st
