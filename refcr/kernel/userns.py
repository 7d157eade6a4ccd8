"""The user namespace of the tree: uid/gid maps, setgroups, owner.

The kernel keeps it in kernel/user_namespace.c, next to the credentials it
translates (kernel/creds.py here).  A root may have a user namespace of its
own when that namespace is a child of refcr's; every other namespace the
root has of its own (pid, mnt, net, ipc, uts) must then be owned by it, and
the root must have its own pid namespace (the children are made with
clone3(set_tid), which needs CAP_CHECKPOINT_RESTORE over the pid namespace:
the puppets have it only in the new user namespace).  Anything else (a user
namespace two levels down, a namespace of the tree owned by another user
namespace, a tree without its own pid namespace) is refused by name.

Dump: /proc/ROOT/uid_map, gid_map and setgroups as refcr sees them (ids of
the parent namespace), the owner from NS_GET_OWNER_UID.  Credentials in
core-PID.img are the ids inside the namespace: creds.dump reads the host
view in /proc/PID/status and translates it through the task's own maps
(an identity map when the task shares refcr's namespace).

Restore: as CRIU does (criu/namespaces.c prepare_userns), the other
namespaces are created from inside the user namespace: the root puppet is
made by one clone3(CLONE_NEWUSER | CLONE_NEWPID | ...), so the kernel
creates the user namespace first and makes it the owner of the others; the
root puppet has every capability in it.  refcr, in the parent namespace,
writes setgroups ("deny" first when it was), then uid_map and gid_map of the
puppet before it runs anything that depends on ids.  The owner is the
effective uid of the creator: refcr takes the dumped owner's euid for the
clone3 (keeping its capabilities with SECBIT_NO_SETUID_FIXUP) and goes back.

Deviation from CRIU: CRIU keeps a helper outside (usernsd) for the
operations that need the parent namespace's privileges.  refcr does those
itself (it stays outside); the only thing a puppet cannot do any more is
pidfd_getfd from refcr (ptrace access to a task of the parent namespace
needs CAP_SYS_PTRACE there), so the fds come from FdProxy: a process that
shares refcr's fd table (CLONE_FILES) and has joined the new user
namespace.  It dies with refcr (PR_SET_PDEATHSIG) and at the end of the
restore.

With setgroups denied the puppets cannot call setgroups(2): their groups are
refcr's, inherited through clone3; the restore checks that they are the
dumped ones and refuses otherwise.

Cost: three small /proc reads at dump; three writes, one fork and one
setns at restore.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from refcr.errors import RestoreError, UnsupportedObject
from refcr.log import log
from refcr.pb import userns_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.proc import IdMap

NS_GET_USERNS, NS_GET_PARENT, NS_GET_OWNER_UID = 0xB701, 0xB702, 0xB704
MAX_EXTENTS = 340             # the kernel's limit of lines in uid_map / gid_map
PR_GET_SECUREBITS, PR_SET_SECUREBITS = 27, 28
SECBIT_NO_SETUID_FIXUP = 1 << 2
OVERFLOW_ID = 65534

_libc = ctypes.CDLL(None, use_errno=True)


# ------------------------------------------------------------ id maps ---

def to_inner(pid: int, kind: str, ids: list[int]) -> list[int]:
    """Ids of the parent namespace as /proc/PID/status shows them to refcr ->
    the ids inside the task's user namespace (identity in refcr's own)."""
    m = IdMap.of(pid, kind)
    out = []
    for i in ids:
        inner = m.inner(i)
        if inner is None:
            raise UnsupportedObject(f"process {pid}: {kind} {i} is not mapped in its user namespace")
        out.append(inner)
    return out


def inner_groups(pid: int, groups: list[int]) -> list[int]:
    """Supplementary groups inside the namespace.  With setgroups denied an
    unmapped group (inherited from the creator) is kept as the overflow gid:
    the restore gives the puppets the dumped outer groups (outer_groups)."""
    if setgroups_allowed(pid):
        return to_inner(pid, "gid", groups)
    m = IdMap.of(pid, "gid")
    return [OVERFLOW_ID if m.inner(g) is None else m.inner(g) for g in groups]


def setgroups_allowed(pid: int) -> bool:
    with open(f"/proc/{pid}/setgroups") as f:
        return f.read().strip() == "allow"


# --------------------------------------------------------------- dump ---

def _ns_ino(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _ioctl_fd(fd: int, request: int) -> int:
    """An NS_GET_USERNS / NS_GET_PARENT ioctl: a new fd of that namespace."""
    return fcntl.ioctl(fd, request)


def owner_uid(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, NS_GET_OWNER_UID, buf)
    return struct.unpack("<I", buf)[0]


def own(pid: int) -> bool:
    """The process is in another user namespace than refcr."""
    return os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino


def check_tree(pid: int, own_kinds: list[str]) -> None:
    """The user namespace of the root is a child of refcr's and owns every
    namespace of the root's own; the root has its own pid namespace."""
    with open(f"/proc/{pid}/ns/user") as user, open("/proc/self/ns/user") as mine:
        parent = _ioctl_fd(user.fileno(), NS_GET_PARENT)
        try:
            if _ns_ino(parent) != _ns_ino(mine.fileno()):
                raise UnsupportedObject(f"process {pid} is in a user namespace nested two or more levels "
                                        "below refcr's; not supported")
        finally:
            os.close(parent)
        for kind in own_kinds:
            with open(f"/proc/{pid}/ns/{kind}") as ns:
                owner = _ioctl_fd(ns.fileno(), NS_GET_USERNS)
                try:
                    if _ns_ino(owner) != _ns_ino(user.fileno()):
                        raise UnsupportedObject(f"process {pid}: its {kind} namespace is not owned by its user "
                                                "namespace; not supported")
                finally:
                    os.close(owner)
    if "pid" not in own_kinds:
        raise UnsupportedObject(f"process {pid} is in a user namespace of its own without a pid namespace "
                                "of its own; not supported")


def dump(pid: int) -> userns_pb2.UsernsEntry:
    e = userns_pb2.UsernsEntry()
    for kind, field in (("uid", e.uid_map), ("gid", e.gid_map)):
        for first, lower, count in IdMap.of(pid, kind).extents:
            field.add(first=first, lower_first=lower, count=count)
    e.setgroups_allowed = setgroups_allowed(pid)
    if not e.setgroups_allowed:
        e.outer_groups.extend(int(x) for x in proc.status(pid).get("Groups", "").split())
    with open(f"/proc/{pid}/ns/user") as user:
        e.owner_uid = owner_uid(user.fileno())
    if not e.uid_map or not e.gid_map:
        raise UnsupportedObject(f"process {pid}: its user namespace has no "
                                f"{'uid' if not e.uid_map else 'gid'} map yet; not supported")
    return e


# ------------------------------------------------------------ restore ---

def idmap(extents: Iterable[userns_pb2.IdMapExtent]) -> IdMap:
    return IdMap(tuple((x.first, x.lower_first, x.count) for x in extents))


def write_maps(pid: int, e: userns_pb2.UsernsEntry) -> None:
    """setgroups, uid_map, gid_map of the fresh user namespace of *pid*."""
    steps = [("uid_map", idmap(e.uid_map).text()), ("gid_map", idmap(e.gid_map).text())]
    if not e.setgroups_allowed:
        steps.insert(0, ("setgroups", "deny"))
    for name, text in steps:
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as exc:
            raise RestoreError(f"cannot write the user namespace's {name} ({text.strip()!r}): "
                               f"{exc.strerror}") from None
    log.info("user namespace of %d: uid_map %s, gid_map %s, setgroups %s", pid,
             idmap(e.uid_map).extents, idmap(e.gid_map).extents, "allow" if e.setgroups_allowed else "deny")


def check_groups(puppet: int, e: userns_pb2.UsernsEntry) -> None:
    """With setgroups denied, the puppet's inherited groups must be the dumped ones."""
    have = sorted(int(x) for x in proc.status(puppet).get("Groups", "").split())
    if have != sorted(e.outer_groups):
        raise RestoreError(f"setgroups is denied in the user namespace and process {puppet} has "
                           f"the groups {have}, not the dumped {sorted(e.outer_groups)}")


def _prctl(option: int, arg: int = 0) -> int:
    ret = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


@contextmanager
def as_creator(e: userns_pb2.UsernsEntry | None) -> Iterator[None]:
    """refcr's effective uid is the owner's inside (capabilities kept): the
    user namespace a clone3(CLONE_NEWUSER) makes then is owned by it.  With
    setgroups denied refcr also takes the dumped groups, which the puppets
    inherit and can never change."""
    if e is None:
        yield
        return
    euid, groups = os.geteuid(), os.getgroups()
    bits = _prctl(PR_GET_SECUREBITS)
    try:
        if not e.setgroups_allowed:
            os.setgroups(list(e.outer_groups))
        if e.owner_uid != euid:
            _prctl(PR_SET_SECUREBITS, bits | SECBIT_NO_SETUID_FIXUP)
            os.setresuid(-1, e.owner_uid, -1)
    except OSError as exc:
        os.setgroups(groups)
        raise RestoreError(f"cannot take the user namespace creator's uid {e.owner_uid} and groups: "
                           f"{exc.strerror}") from None
    try:
        yield
    finally:
        if e.owner_uid != euid:
            os.setresuid(-1, euid, -1)
            _prctl(PR_SET_SECUREBITS, bits)
        os.setgroups(groups)


@dataclass
class FdProxy:
    """A process sharing refcr's fd table inside the tree's user namespace:
    the puppets' pidfd_getfd source (module docstring)."""

    pid: int
    pidfd: int                 # what the puppets get instead of refcr's pidfd
    ctl: socket.socket         # refcr's end of the control socket
    theirs: socket.socket      # the proxy's end (in the shared table: closed when it is gone)

    @classmethod
    def start(cls) -> "FdProxy":
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            pid = native.fd_proxy(theirs.fileno())
        except OSError as exc:
            mine.close()
            theirs.close()
            raise RestoreError(f"cannot start the fd proxy: {exc.strerror}") from None
        return cls(pid, os.pidfd_open(pid), mine, theirs)

    def join(self, puppet: int) -> None:
        """Into the user namespace of *puppet*."""
        fd = os.open(f"/proc/{puppet}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.ctl.send(struct.pack("<i", fd))
            self.ctl.settimeout(10)
            ret = struct.unpack("<q", self.ctl.recv(8))[0]
        except (OSError, struct.error) as exc:
            raise RestoreError(f"the fd proxy did not join the user namespace: {exc}") from None
        finally:
            os.close(fd)
        if ret != 0:
            raise RestoreError(f"the fd proxy cannot join the user namespace: {os.strerror(-ret)}")

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.pidfd)
        self.ctl.close()
        self.theirs.close()
