"""The mount namespace of a tree that has its own: its whole mount tree.

Dump reads /proc/ROOT/mountinfo (every mount: ids, parent, root within its
file system, mount point, per-mount and superblock options, type, source,
propagation) and decides for each mount how restore will make it (the
``How`` of proto/mntns.proto), in this order:

* ``--external mnt[MOUNTPOINT]:KEY`` names it: restore binds the PATH given
  by ``--external mnt[KEY]:PATH`` (a key without a mapping, or a mapping
  that matches no key, is an error naming it);
* it is a bind of a file system made inside the namespace (an earlier
  ``CREATE`` mount of the same superblock shows its root): a bind of that one;
* its file system is one refcr sees in its own namespace and the mount is a
  whole file system, or the same as one of refcr's (the private copy of the
  host's mounts a container starts with), or reachable through such a mount
  of the namespace or through the namespace's root mount: a bind from refcr's
  namespace ("old root" in CRIU's words);
* a whole file system (root ``/``) of a kind refcr can make (tmpfs, proc,
  sysfs, devpts, mqueue, ramfs) that refcr does not see: a new one with the
  same superblock options; a tmpfs's files go to ``tmpfs-MNT_ID.tar``
  (modes, owners, times, symlinks, hard links, devices);
* anything else comes from outside the namespace's visible tree: a plugin's
  DUMP_EXT_MOUNT(mountpoint, mnt_id) may take it (its RESTORE_EXT_MOUNT makes
  it again), or the dump fails naming the mount.

Restore builds the tree in a forked helper that enters the new mount (and
pid, IPC and net: a new proc, mqueue or sysfs belongs to its maker's)
namespaces of the root puppet: every mount is made detached (open_tree,
fsopen/fsmount), given its flags (mount_setattr) and attached in the
dump's tree order (parents first; a hidden mount before the one over it)
below a staging directory; then peer groups and masters are set
again (MOVE_MOUNT_SET_GROUP, so peers are peers of each other and slaves
slaves of the same master), and the helper pivots the namespace's root into
the new tree and detaches the old one.  Binds from refcr's namespace are
cloned by refcr before (a hidden source mount is reached in a throw-away
copy of the namespace); files a restore opens later go through
/proc/ROOT/root, i.e. the new tree.

Limits: a tmpfs mounted only below its root (its root mount gone) is
external; a mount over the namespace's root itself is not supported.
"""
from __future__ import annotations

import array
import errno
import fcntl
import os
import re
import socket
import stat as stat_mod
import tarfile     # at import, not where used: a mount tree is restored where refcr's files may be out of reach
import tempfile
from dataclasses import dataclass, field
from typing import Any

from refcr.errors import DumpError, OptionError, RefcrError, RestoreError
from refcr.images.imagedir import ImageDir
from refcr.log import log
from refcr.ns import mountapi as mapi
from refcr.options import Options
from refcr.pb import mntns_pb2
from refcr.plugins import host
from refcr.ptrace import native, proc

How = mntns_pb2.MountEntry
CREATABLE = {"tmpfs", "ramfs", "proc", "sysfs", "devpts", "mqueue"}
WITH_CONTENTS = {"tmpfs", "ramfs"}
PEER_RE = re.compile(r"^(shared|master):(\d+)$")
EXT_MNT_RE = re.compile(r"^mnt\[([^\]]+)\]:(.+)$")


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def _under(path: str, root: str) -> str | None:
    """path relative to root ("" if equal), or None if path is not below root."""
    if root == "/":
        return path.lstrip("/")
    if path == root:
        return ""
    if path.startswith(root + "/"):
        return path[len(root) + 1:]
    return None


@dataclass
class Mount:
    """One line of a mountinfo file."""

    mnt_id: int
    parent_id: int
    dev: str
    root: str
    mountpoint: str
    options: str
    optional: list[str]
    fstype: str
    source: str
    super_options: str

    def tag(self, kind: str) -> int:
        for opt in self.optional:
            m = PEER_RE.match(opt)
            if m and m.group(1) == kind:
                return int(m.group(2))
        return 0


def parse_mountinfo(text: str) -> list[Mount]:
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        out.append(Mount(int(lf[0]), int(lf[1]), lf[2], _unescape(lf[3]), _unescape(lf[4]), lf[5], lf[6:],
                         rf[0], _unescape(rf[1]) if len(rf) > 1 else "", rf[2] if len(rf) > 2 else ""))
    return out


def read_mountinfo(pid: int | str = "self", dir_fd: int | None = None) -> list[Mount]:
    """pid's mountinfo; with dir_fd (an fd of a /proc/PID directory), that one's."""
    with open("mountinfo" if dir_fd is not None else f"/proc/{pid}/mountinfo", opener=(
            lambda p, fl: os.open(p, fl, dir_fd=dir_fd)) if dir_fd is not None else None) as f:
        return parse_mountinfo(f.read())


def chain(m: Mount, by_id: dict[int, Mount]) -> list[str]:
    """Mount points from the root mount down to m: names one mount even when
    mounts are stacked (a parent has one child per mount point)."""
    out = []
    seen = set()
    while m is not None and m.mnt_id not in seen:
        seen.add(m.mnt_id)
        out.append(m.mountpoint)
        m = by_id.get(m.parent_id)
    return out[::-1]


def tree_order(ns: list[Mount]) -> list[Mount]:
    """The mounts parents first, each followed by its subtree; of the mounts
    on one parent, one at a deeper mount point first (a sibling at a shorter
    path over it can only have come later: it hides it).  This is an order
    they can be made in again, whatever order mountinfo lists them in (it
    lists them by allocation, which a restore does not keep)."""
    ids = {m.mnt_id for m in ns}
    roots = [m for m in ns if m.parent_id not in ids or m.parent_id == m.mnt_id]
    if len(roots) != 1:
        raise DumpError(f"the mount namespace has {len(roots)} root mounts")
    kids: dict[int, list[tuple[int, Mount]]] = {}
    for n, m in enumerate(ns):
        if m is not roots[0]:
            kids.setdefault(m.parent_id, []).append((n, m))
    out: list[Mount] = []
    todo = [roots[0]]
    while todo:
        m = todo.pop()
        out.append(m)
        below = sorted(kids.get(m.mnt_id, []), key=lambda t: (-t[1].mountpoint.count("/"), t[0]))
        todo.extend(k for _, k in reversed(below))
    return out


# ------------------------------------------------------------------ dump -----

@dataclass
class Classifier:
    """Decides the How of each mount of the dumped namespace."""

    ns: list[Mount]
    host: list[Mount]
    ext_keys: dict[str, str]                 # mount point -> key (--external mnt[MP]:KEY)
    created: dict[str, Mount] = field(default_factory=dict)   # dev -> the CREATE mount of it

    def __post_init__(self) -> None:
        self.host_by_id = {m.mnt_id: m for m in self.host}
        self.host_devs = {m.dev for m in self.host}
        # (dev, root) of namespace mounts identical to one of refcr's: their trees are visible
        same = {(m.dev, m.root, m.mountpoint) for m in self.host}
        self.visible = [(m.dev, m.root) for m in self.ns if (m.dev, m.root, m.mountpoint) in same]
        if self.ns:       # the namespace's root (first in tree order) is its visible tree, wherever it comes from
            self.visible.append((self.ns[0].dev, self.ns[0].root))

    def host_source(self, m: Mount) -> Mount | None:
        """A mount of refcr's through which m's root can be reached."""
        best = None
        for h in self.host:
            if h.dev == m.dev and _under(m.root, h.root) is not None:
                if best is None or len(h.root) > len(best.root) or (h.mountpoint == m.mountpoint and h.root == m.root):
                    best = h
        return best

    def classify(self, m: Mount, e: mntns_pb2.MountEntry) -> None:
        if m.mountpoint in self.ext_keys:
            e.how, e.ext_key = How.EXTERNAL_KEY, self.ext_keys[m.mountpoint]
            return
        made = self.created.get(m.dev)
        if made is not None:
            e.how, e.bind_of = How.BIND_INTERNAL, made.mnt_id
            return
        h = self.host_source(m)
        if h is not None and (m.root == "/" or any(d == m.dev and _under(m.root, r) is not None
                                                   for d, r in self.visible)):
            sub = _under(m.root, h.root) or ""
            e.how = How.BIND_HOST
            e.host_path = os.path.join(h.mountpoint, sub) if sub else h.mountpoint
            e.host_chain.extend(chain(h, self.host_by_id))
            e.host_subpath = sub
            return
        if m.root == "/" and m.fstype in CREATABLE and m.dev not in self.host_devs:
            e.how = How.CREATE
            self.created[m.dev] = m
            return
        name = host.dump_ext_mount(m.mountpoint, m.mnt_id)
        if name is None:
            raise DumpError(f"mount {m.mountpoint} ({m.fstype} {m.source}, root {m.root}) comes from outside "
                            f"the namespace's visible tree: name it with --external mnt[{m.mountpoint}]:KEY "
                            "or load a plugin that handles it (DUMP_EXT_MOUNT)")
        e.how, e.plugin = How.EXTERNAL_PLUGIN, name


def ext_keys(externals: list[str]) -> dict[str, str]:
    """--external mnt[MOUNTPOINT]:KEY of a dump."""
    out = {}
    for opt in externals:
        m = EXT_MNT_RE.match(opt)
        if m:
            out[os.path.normpath(m.group(1))] = m.group(2)
    return out


def ext_paths(externals: list[str]) -> dict[str, str]:
    """--external mnt[KEY]:PATH of a restore."""
    return {m.group(1): m.group(2) for opt in externals if (m := EXT_MNT_RE.match(opt))}


def check_no_namespace(externals: list[str]) -> None:
    """--external mnt[...] for a tree without a mount namespace of its own names nothing."""
    for opt in externals:
        if EXT_MNT_RE.match(opt):
            raise OptionError(f"--external {opt}: the tree has no mount namespace of its own, so no "
                              "mount is external")


def dump(pid: int, images: ImageDir, opts: Options) -> mntns_pb2.MntNsEntry:
    ns = tree_order(read_mountinfo(pid))
    keys = ext_keys(opts.external)
    unknown = set(keys) - {m.mountpoint for m in ns}
    if unknown:
        mp = sorted(unknown)[0]
        raise OptionError(f"--external mnt[{mp}]:{keys[mp]}: no mount at {mp} in the namespace")
    cls = Classifier(ns, read_mountinfo(), keys)
    out = mntns_pb2.MntNsEntry()
    for m in ns:
        e = out.mounts.add(mnt_id=m.mnt_id, parent_id=m.parent_id, dev=m.dev, root=m.root,
                           mountpoint=m.mountpoint, options=m.options, shared=m.tag("shared"),
                           master=m.tag("master"), unbindable="unbindable" in m.optional, fstype=m.fstype,
                           source=m.source, super_options=m.super_options)
        cls.classify(m, e)
        log.debug("mount %d %s (%s): %s", m.mnt_id, m.mountpoint, m.fstype, How.How.Name(e.how))
    if out.mounts and out.mounts[0].how not in (How.BIND_HOST, How.EXTERNAL_KEY):
        raise DumpError(f"the namespace's root mount ({ns[0].fstype} {ns[0].source}) is not a file system "
                        "refcr can reach: name it with --external mnt[/]:KEY")
    tmpfs = [m for m, e in zip(ns, out.mounts, strict=True) if e.how == How.CREATE and m.fstype in WITH_CONTENTS]
    if tmpfs:
        fds = clone_mounts(pid, ns, [(m.mnt_id, "") for m in tmpfs])
        try:
            for m, fd in zip(tmpfs, fds, strict=True):
                dump_contents(fd, m, images, opts.tmpfs_limit)
                next(e for e in out.mounts if e.mnt_id == m.mnt_id).has_contents = True
        finally:
            for fd in fds:
                os.close(fd)
    return out


def dump_contents(fd: int, m: Mount, images: ImageDir, limit: int) -> None:
    """The files of the detached copy fd of tmpfs m, as a tar archive image."""
    top = f"/proc/self/fd/{fd}/."
    total = 0
    for dirpath, _, names in os.walk(top):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            if stat_mod.S_ISREG(st.st_mode):
                total += st.st_size
    if total > limit:
        raise DumpError(f"tmpfs {m.mountpoint} holds {total} bytes of files, more than --tmpfs-limit "
                        f"({limit})")
    with images.open_raw("tmpfs", id=m.mnt_id, mode="wb") as f, \
            tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(top, arcname=".", recursive=True)
    log.info("tmpfs %s: %d bytes of files dumped", m.mountpoint, total)


# ---------------------------------------------- helpers in other namespaces -----

PTY_ROOT = re.compile(r"/[0-9]+")       # the root of a bind of one pty slave, in its devpts
TIOCGPTN = 0x80045430


def native_pty_index(fd: int) -> int:
    return int.from_bytes(fcntl.ioctl(fd, TIOCGPTN, bytes(4)), "little")


def _take_ptys(sock: socket.socket, ptys: dict[int, int]) -> None:
    """The pty masters the mount helper made (Builder.make_pty), still queued on sock."""
    while True:
        try:
            msg, fds = _recv_fds(sock, 64, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if not msg:
            return
        _pty_message(msg, fds, ptys)


def _recv_fds(sock: socket.socket, size: int, flags: int = 0) -> tuple[bytes, list[int]]:
    """One message and at most one fd (socket.recv_fds of Python 3.11 drops *flags*)."""
    fds = array.array("i")
    msg, anc, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(fds.itemsize), flags)
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def _pty_message(msg: bytes, fds: list[int], ptys: dict[int, int]) -> bool:
    """Keep a "pty N" message's master; False for any other message."""
    text = msg.decode("utf-8", "replace")
    if text.startswith("pty ") and text[4:].isdigit() and len(fds) == 1:
        ptys[int(text[4:])] = fds[0]
        return True
    for fd in fds:
        os.close(fd)
    return False


def _in_child(body, what: str) -> None:  # noqa: ANN001  (body: () -> None, runs in a fork)
    """Run body in a fork of refcr; an exception there becomes RefcrError here."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            body()
            code = 0
        except BaseException as exc:  # noqa: B036  (nothing may escape into refcr's code)
            try:
                os.write(w, str(exc).encode("utf-8", "replace")[:4000])
            except BaseException:  # noqa: B036
                pass
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RefcrError(f"{what}: {msg or f'helper failed (status {status:#x})'}")


def clone_mounts(pid: int | None, mounts: list[Mount], wanted: list[tuple[int, str]]) -> list[int]:
    """Detached copies (open_tree clones, not recursive) of paths inside mounts:
    `wanted` holds (mount id in `mounts`, path relative to that mount's root);
    `mounts` is the mountinfo of pid's namespace, or of refcr's own if pid is
    None.  Hidden mounts too: a fork enters a private copy of the namespace
    and unmounts, newest first, until each is on top.  Nothing changes in the
    namespace itself.  Returns the fds in the order of `wanted`."""
    by_id = {m.mnt_id: m for m in mounts}
    want: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    for n, (mnt_id, sub) in enumerate(wanted):
        want.setdefault(tuple(chain(by_id[mnt_id], by_id)), []).append((n, sub))
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)

    user_ns = _own_userns(pid) if pid else None

    def body() -> None:
        parent.close()
        own = os.open(f"/proc/{os.getpid()}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # its /proc may differ
        if user_ns is not None:     # the copy is then the user namespace's: a copy into another one
            native.setns(user_ns, native.CLONE_NEWUSER)    # locks every mount (MNT_LOCKED)
        with open(f"/proc/{pid or 'self'}/ns/mnt") as ns:
            native.setns(ns.fileno(), native.CLONE_NEWNS)
        native.unshare(native.CLONE_NEWNS)
        mapi.mount(None, "/", None, mapi.MS_REC | mapi.MS_PRIVATE)
        copy = read_mountinfo(dir_fd=own)
        cby_id = {m.mnt_id: m for m in copy}
        for m in reversed(copy):
            for n, sub in want.pop(tuple(chain(m, cby_id)), []):
                if os.stat(m.mountpoint).st_dev != os.makedev(*map(int, m.dev.split(":"))):
                    raise RefcrError(f"mount {m.mountpoint} cannot be reached (another mount hides it)")
                fd = mapi.open_tree(mapi.AT_FDCWD, os.path.join(m.mountpoint, sub) if sub else m.mountpoint)
                socket.send_fds(child, [str(n).encode()], [fd])
                os.close(fd)
            if m.parent_id in cby_id:
                try:
                    mapi.umount(m.mountpoint)
                except OSError as exc:      # what it hid stays hidden: the st_dev check above says so
                    log.debug("copy of the namespace: %s", exc)
        if want:
            raise RefcrError(f"mount(s) {', '.join(k[-1] for k in want)} not found")

    got: dict[int, int] = {}
    try:
        _in_child(body, "cloning mounts")
    finally:
        if user_ns is not None:
            os.close(user_ns)
        child.close()
        parent.setblocking(False)
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(parent, 64, 1)
            except BlockingIOError:
                break
            if not data:
                break
            got[int(data)] = fds[0]
        parent.close()
    return [got[n] for n in range(len(wanted))]


# --------------------------------------------------------------- restore -----

@dataclass
class Builder:
    """What the restore helper needs, prepared in refcr before it forks."""

    entries: list[mntns_pb2.MountEntry]
    images: ImageDir
    sources: dict[int, int]           # mnt_id -> detached mount (BIND_HOST, EXTERNAL_KEY)
    stage: str
    sock: socket.socket | None = None  # to refcr, for plugin mounts
    # the tree's own user namespace's (uid map, gid map): the helper makes the mounts
    # inside it, where ids in options (uid=, gid=) and file owners are the inner ones
    id_maps: tuple[proc.IdMap, proc.IdMap] | None = None
    # tmpfs-MNT_ID.tar, opened by refcr before the helper forks: inside a user namespace
    # where refcr's uid is not mapped the helper could not reach the image directory
    tars: dict[int, Any] = field(default_factory=dict)

    def inner_options(self, opts: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
        """uid=N / gid=N as refcr saw them -> the ids inside the user namespace."""
        if self.id_maps is None:
            return opts
        out = []
        for key, value in opts:
            if key in ("uid", "gid") and value is not None and value.isdigit():
                inner = self.id_maps[key == "gid"].inner(int(value))
                if inner is None:
                    raise RefcrError(f"mount option {key}={value} is not mapped in the tree's user namespace")
                value = str(inner)
            out.append((key, value))
        return out

    def build(self) -> None:
        """In the helper, inside the new namespaces: make, attach, propagate, pivot."""
        fds: dict[int, int] = {}
        pristine: dict[int, int] = {}      # CREATE mnt_id -> an unattached clone of its root
        early: dict[int, int] = {}         # BIND_INTERNAL mnt_id -> its clone, where pristine is -1
        root_fd = -1
        for e in self.entries:
            if e.how == How.EXTERNAL_PLUGIN:
                self.plugin_mount(e)
                fds[e.mnt_id] = os.open(os.path.join(self.stage, e.mountpoint.lstrip("/")),
                                        os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
                continue
            fd = early.pop(e.mnt_id) if e.mnt_id in early else self.make(e, pristine)
            if e.how != How.CREATE:
                mapi.setattr_fd(fd, mapi.attrs_of(e.options))
            if root_fd < 0:
                mapi.move_mount(fd, mapi.AT_FDCWD, self.stage)
                root_fd = fd
            else:
                mapi.move_mount(fd, root_fd, e.mountpoint.lstrip("/") or ".")
            fds[e.mnt_id] = fd
            if pristine.get(e.mnt_id) == -1:
                early.update(self.clone_binds(e.mnt_id, fd))
        propagate(self.entries, fds)
        os.fchdir(root_fd)
        mapi.pivot_root(".", ".")
        mapi.umount(".")
        os.chdir("/")

    def make(self, e: mntns_pb2.MountEntry, pristine: dict[int, int]) -> int:
        what = f"mount {e.mountpoint} ({e.fstype})"
        try:
            if e.how in (How.BIND_HOST, How.EXTERNAL_KEY):
                return self.sources[e.mnt_id]
            if e.how == How.BIND_INTERNAL:
                if e.fstype == "devpts" and PTY_ROOT.fullmatch(e.root):
                    self.make_pty(pristine[e.bind_of], int(e.root[1:]))
                return mapi.open_tree(pristine[e.bind_of], e.root.lstrip("/"))
            opts, attrs = self.inner_options(fs_options(e.super_options)), mapi.attrs_of(e.options)
            ro = ("ro", None) in opts and e.has_contents      # read-only once filled
            if ro:
                opts.remove(("ro", None))
            fd = mapi.new_fs(e.fstype, e.source, opts, attrs & ~mapi.ATTR_RDONLY if e.has_contents else attrs)
            if e.has_contents:
                extract(fd, self.tars[e.mnt_id], e, self.id_maps)
                if ro:
                    mapi.make_sb_readonly(fd)
                mapi.setattr_fd(fd, attrs)
            pristine[e.mnt_id] = self.clone_detached(fd)
            return fd
        except KeyError:
            raise RestoreError(f"{what}: mntns.img names a source it does not hold") from None
        except OSError as exc:
            raise RestoreError(f"{what}: {exc.filename}: {exc.strerror}") from None

    @staticmethod
    def clone_detached(fd: int) -> int:
        """A clone of the new (detached) mount fd, or -1 where the kernel
        cannot clone a detached mount (before 6.15: EINVAL); build() then
        clones its binds from it right after attaching it, before anything
        is mounted over it."""
        try:
            return mapi.open_tree(fd, "")
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            return -1

    def clone_binds(self, mnt_id: int, fd: int) -> dict[int, int]:
        """Clones of the just attached mount fd for every bind of it."""
        out = {}
        for b in self.entries:
            if b.how == How.BIND_INTERNAL and b.bind_of == mnt_id:
                try:
                    out[b.mnt_id] = mapi.open_tree(fd, b.root.lstrip("/"))
                except OSError as exc:
                    raise RestoreError(f"mount {b.mountpoint} ({b.fstype}): {exc.filename}: {exc.strerror}") from None
        return out

    def make_pty(self, devpts: int, index: int) -> None:
        """A bind of one pty's slave (runc's /dev/console is /dev/pts/0 bound
        there): the slave exists only while its master is open, so the pty is
        made first in the new devpts (ptmx opened until the kernel hands out
        *index*) and its master sent to refcr, whose tty restore uses it for
        that pty instead of opening another (drivers/tty.py)."""
        held: list[int] = []
        try:
            for _ in range(index + 1):
                fd = os.open(f"/proc/self/fd/{devpts}/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
                held.append(fd)
                if native_pty_index(fd) == index:
                    assert self.sock is not None
                    socket.send_fds(self.sock, [f"pty {index}".encode()], [fd])
                    return
            raise RestoreError(f"devpts: the new instance does not hand out pty {index}")
        finally:
            for fd in held:
                os.close(fd)

    def plugin_mount(self, e: mntns_pb2.MountEntry) -> None:
        """Ask refcr to have the plugin make it (the plugin's host enters this namespace)."""
        assert self.sock is not None
        self.sock.send(f"{e.mnt_id}".encode())
        reply = self.sock.recv(4096).decode("utf-8", "replace")
        if reply != "ok":
            raise RestoreError(reply or f"mount {e.mountpoint}: refcr gave no answer for the plugin's mount")


def fs_options(super_options: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for opt in super_options.split(","):
        if not opt or opt == "rw":
            continue
        key, eq, value = opt.partition("=")
        out.append((key, value if eq else None))
    return out


def extract(fd: int, f: Any, e: mntns_pb2.MountEntry,
            id_maps: tuple[proc.IdMap, proc.IdMap] | None = None) -> None:
    """Unpack tmpfs-MNT_ID.tar into the new tmpfs fd, chrooted into it (no
    name in the archive can reach outside).  With id_maps (the helper is in
    the tree's user namespace) the owners, refcr's view, become inner ids (an
    unmapped one fails the restore)."""
    def body() -> None:
        os.fchdir(fd)
        os.chroot(".")
        with tarfile.open(fileobj=f, mode="r:") as tar:
            tar.errorlevel = 2          # a failed chown/chmod/utime fails the restore (1: debug output only)
            members = tar.getmembers()
            for m in members if id_maps else ():
                m.uid, m.gid = _inner_id(id_maps[0], m.uid, m.name), _inner_id(id_maps[1], m.gid, m.name)
            tar.extractall(".", members=members, numeric_owner=True)
    _in_child(body, f"tmpfs {e.mountpoint}: unpacking tmpfs-{e.mnt_id}.tar")


def _inner_id(m: proc.IdMap, outer: int, name: str) -> int:
    inner = m.inner(outer)
    if inner is None:
        raise RefcrError(f"{name}: its owner {outer} is not mapped in the tree's user namespace")
    return inner


def propagate(entries: list[mntns_pb2.MountEntry], fds: dict[int, int]) -> None:
    """Shared, slave and unbindable mounts, with peer groups kept: the first
    member (shortest root) of each group is made shared, the others join it;
    a slave joins a member of its master's group and is then made a slave."""
    groups: dict[int, list[mntns_pb2.MountEntry]] = {}
    for e in entries:
        if e.shared:
            groups.setdefault(e.shared, []).append(e)
    rep: dict[int, int] = {}                          # group -> fd of its established member
    todo = _sort_groups([e for e in entries if e.shared or e.master])
    while todo:
        left = []
        for e in todo:
            if e.master and e.master in groups and e.master not in rep:
                left.append(e)                       # its master group is not made yet
                continue
            fd = fds[e.mnt_id]
            if e.shared and e.shared in rep:
                mapi.set_group(rep[e.shared], fd)
                continue
            if e.master:
                if e.master in rep:
                    mapi.set_group(rep[e.master], fd)
                    mapi.setattr_fd(fd, propagation=mapi.MS_SLAVE)
                else:
                    log.warning("mount %s: its master group %d is outside the namespace; it is restored "
                                "private", e.mountpoint, e.master)
            if e.shared:
                mapi.setattr_fd(fd, propagation=mapi.MS_SHARED)
                rep[e.shared] = fd
        if len(left) == len(todo):
            raise RestoreError(f"mount {left[0].mountpoint}: master group {left[0].master} is never made")
        todo = left
    for e in entries:
        if e.unbindable:
            mapi.setattr_fd(fds[e.mnt_id], propagation=mapi.MS_UNBINDABLE)


def _sort_groups(entries: list[mntns_pb2.MountEntry]) -> list[mntns_pb2.MountEntry]:
    """Members of a peer group with the shortest root first (the one others can join)."""
    return sorted(entries, key=lambda e: (e.shared == 0, len(e.root)))


def _clean(path: str, absolute: bool) -> bool:
    """A normalized path without "..": an image path cannot climb out of where it is used."""
    if not path:
        return not absolute
    if path.startswith("/") != absolute or "\0" in path:
        return False
    return os.path.normpath(path) == path and ".." not in path.split("/")


def check_entries(entries: list[mntns_pb2.MountEntry]) -> None:
    """mntns.img is untrusted: every path clean, every reference to an earlier mount."""
    made: dict[int, mntns_pb2.MountEntry] = {}
    for n, e in enumerate(entries):
        what = f"mntns.img: mount {e.mnt_id} ({e.mountpoint!r})"
        if not (_clean(e.mountpoint, True) and _clean(e.root, True) and _clean(e.host_subpath, False)
                and all(_clean(c, True) for c in e.host_chain)):
            raise RestoreError(f"{what}: a path is not clean")
        if e.mnt_id in made or (n and e.parent_id not in made):
            raise RestoreError(f"{what}: not in tree order")
        if e.how == How.BIND_INTERNAL and made.get(e.bind_of, How()).how != How.CREATE:
            raise RestoreError(f"{what}: bind of {e.bind_of}, which is no file system made before it")
        if e.how == How.CREATE and e.fstype not in CREATABLE:
            raise RestoreError(f"{what}: refcr does not make {e.fstype!r} file systems")
        made[e.mnt_id] = e
    if entries[0].how not in (How.BIND_HOST, How.EXTERNAL_KEY):
        raise RestoreError("mntns.img: the root mount is neither a bind nor external")


def prepare_sources(entries: list[mntns_pb2.MountEntry], externals: list[str],
                    new_root: str | None = None) -> dict[int, int]:
    """Detached copies of every bind source in refcr's namespace; with
    new_root (--root, the RPC's `root`) the namespace's root mount is a bind
    of that directory instead of the dumped one (a container's rootfs moved)."""
    host = read_mountinfo()
    host_by_id = {h.mnt_id: h for h in host}
    by_chain = {tuple(chain(m, host_by_id)): m for m in host}
    paths = ext_paths(externals)
    keys = {e.ext_key for e in entries if e.how == How.EXTERNAL_KEY}
    for key in keys - set(paths):
        mp = next(e.mountpoint for e in entries if e.ext_key == key)
        raise OptionError(f"mount {mp} is external (key {key!r}): give --external mnt[{key}]:PATH")
    for key in set(paths) - keys:
        raise OptionError(f"--external mnt[{key}]:{paths[key]}: matches no external mount in the images")
    binds = [e for e in entries if e.how == How.BIND_HOST and not (new_root and e.mountpoint == "/")]
    want = []
    for e in binds:
        h = by_chain.get(tuple(e.host_chain))
        if h is None:
            raise RestoreError(f"mount {e.mountpoint}: its source {e.host_path} (a mount at "
                               f"{e.host_chain[-1] if e.host_chain else '?'}) is not in refcr's namespace")
        want.append((h.mnt_id, e.host_subpath))
    out: dict[int, int] = {}
    try:
        if new_root:
            try:
                out[entries[0].mnt_id] = mapi.open_tree(mapi.AT_FDCWD, new_root)
            except OSError as exc:
                raise RestoreError(f"--root {new_root}: {exc.strerror}") from None
        for e, fd in zip(binds, clone_mounts(None, host, want) if want else [], strict=True):
            out[e.mnt_id] = fd
        for e in entries:
            if e.how == How.EXTERNAL_KEY:
                try:
                    out[e.mnt_id] = mapi.open_tree(mapi.AT_FDCWD, paths[e.ext_key])
                except OSError as exc:
                    raise RestoreError(f"--external mnt[{e.ext_key}]:{paths[e.ext_key]}: {exc.strerror}") from None
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    return out


def _own_userns(pid: int) -> int | None:
    """An fd of pid's user namespace if it is not refcr's (kernel/userns.py), else None."""
    if os.stat(f"/proc/{pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino:
        return None
    return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)


def _stage_owner(root_pid: int, stage: str) -> int | None:
    """The tree's user namespace (an fd) if it has its own, the staging
    directory then given to the namespace's root, who builds the tree."""
    user_ns = _own_userns(root_pid)
    if user_ns is None:
        return None
    try:
        root_ids = proc.IdMap.of(root_pid, "uid").outer(0), proc.IdMap.of(root_pid, "gid").outer(0)
        if None in root_ids:
            raise RestoreError("the tree's user namespace maps no root")
        os.chown(stage, *root_ids)
    except OSError as exc:
        os.close(user_ns)
        raise RestoreError(f"cannot give the mount tree's staging directory {stage} to the user namespace's "
                           f"root: {exc.strerror}") from None
    except BaseException:
        os.close(user_ns)
        raise
    return user_ns


def restore(root_pid: int, images: ImageDir, externals: list[str], new_root: str | None = None) -> dict[int, int]:
    """Rebuild the mount tree in the new mount namespace of root_pid (the root
    puppet, pid 1 of its pid namespace if it has one).  Returns the masters of
    the ptys made for binds of their slaves (index -> fd), which the caller owns."""
    ptys: dict[int, int] = {}
    e = images.read_single("mntns")
    entries = list(e.mounts)
    if not entries:
        raise RestoreError("mntns.img lists no mount")
    check_entries(entries)
    sources = prepare_sources(entries, externals, new_root)
    try:
        stage = tempfile.mkdtemp(prefix=".refcr-mnt-")
    except OSError as exc:
        for fd in sources.values():
            os.close(fd)
        where = tempfile.tempdir or os.environ.get("TMPDIR") or "/tmp"    # gettempdir() may fail again
        raise RestoreError(f"cannot make the mount tree's staging directory in {where}: "
                           f"{exc.strerror} (TMPDIR names another place)") from None
    try:
        user_ns = _stage_owner(root_pid, stage)
    except BaseException:
        for fd in sources.values():
            os.close(fd)
        os.rmdir(stage)
        raise
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    b = Builder(entries, images, sources, stage, child,
                id_maps=(proc.IdMap.of(root_pid, "uid"), proc.IdMap.of(root_pid, "gid")) if user_ns is not None
                else None,
                tars={e.mnt_id: images.open_raw("tmpfs", id=e.mnt_id) for e in entries if e.has_contents})
    try:
        with open(f"/proc/{root_pid}/ns/mnt") as mnt_ns, open(f"/proc/{root_pid}/ns/pid") as pid_ns:
            def body() -> None:          # a fork of refcr: the next fork is in the tree's pid namespace
                parent.close()
                native.setns(pid_ns.fileno(), native.CLONE_NEWPID)
                for kind in ("ipc", "net"):  # a new mqueue / sysfs belongs to the caller's
                    with open(f"/proc/{root_pid}/ns/{kind}") as ns:
                        native.setns(ns.fileno(), 0)
                if user_ns is not None:      # then the mounts are the user namespace's (kernel/userns.py);
                    native.setns(user_ns, native.CLONE_NEWUSER)   # after net: that one may be outside it
                    os.setresgid(0, 0, 0)    # as its root: files made in its tmpfs need a mapped owner
                    os.setresuid(0, 0, 0)
                _in_child(in_ns, "building the mount tree")

            def in_ns() -> None:
                native.setns(mnt_ns.fileno(), native.CLONE_NEWNS)
                mapi.mount(None, "/", None, mapi.MS_REC | mapi.MS_PRIVATE)
                b.build()

            if any(x.how == How.EXTERNAL_PLUGIN for x in entries):
                _serve_plugins(parent, child, entries, stage, mnt_ns.fileno(), body, ptys)
            else:
                _in_child(body, "restoring the mount namespace")
                _take_ptys(parent, ptys)
    except RefcrError as exc:
        for fd in ptys.values():
            os.close(fd)
        raise RestoreError(str(exc)) from None
    finally:
        if user_ns is not None:
            os.close(user_ns)
        for f in b.tars.values():
            f.close()
        child.close()
        parent.close()
        for fd in sources.values():
            os.close(fd)
        try:
            os.rmdir(stage)
        except OSError as exc:
            log.warning("cannot remove %s: %s", stage, exc.strerror)
    return ptys


def _serve_plugins(parent: socket.socket, child: socket.socket, entries: list[mntns_pb2.MountEntry],
                   stage: str, ns_fd: int, body, ptys: dict[int, int]) -> None:  # noqa: ANN001
    """Run the helper from a waiting fork; meanwhile make the plugin mounts the
    builder asks for (by mount id), answering "ok" or the error.  The waiter
    sends "!" (done) or "!" + the helper's error last."""
    by_id = {e.mnt_id: e for e in entries}
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                _in_child(body, "restoring the mount namespace")
                child.send(b"!")
                code = 0
            except BaseException as exc:  # noqa: B036  (nothing may escape into refcr's code)
                child.send(b"!" + str(exc).encode("utf-8", "replace")[:4000])
        finally:
            os._exit(code)
    msg = "!no answer from the mount helper"
    try:
        while True:
            data, fds = _recv_fds(parent, 4096)
            if _pty_message(data, fds, ptys):
                continue
            msg = data.decode("utf-8", "replace") if data else msg
            if not data or msg.startswith("!"):
                break
            e = by_id.get(int(msg)) if msg.isdigit() else None
            if e is None or e.how != How.EXTERNAL_PLUGIN:
                parent.send(b"not a plugin mount")
                continue
            try:
                path = os.path.join(stage, e.mountpoint.lstrip("/"))
                is_file = host.restore_ext_mount(e.plugin, e.mnt_id, path, "/", ns_fd)
                log.info("plugin %s made mount %s (is_file %d)", e.plugin, e.mountpoint, is_file)
                parent.send(b"ok")
            except RefcrError as exc:
                parent.send(str(exc).encode("utf-8", "replace"))
    finally:
        parent.shutdown(socket.SHUT_RDWR)     # a builder still waiting for an answer gets EOF and ends
        os.waitpid(pid, 0)
    if msg != "!":
        raise RestoreError(msg[1:])


def resolver(root_pid: int | None):
    """A function mapping a dumped absolute path to the path refcr opens."""
    prefix = f"/proc/{root_pid}/root" if root_pid else ""

    def resolve(path: str) -> str:
        norm = os.path.normpath(path)
        if not norm.startswith("/") or norm.startswith("//"):
            raise RestoreError(f"image path {path!r} is not absolute")
        return prefix + norm
    return resolve
