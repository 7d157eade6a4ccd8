"""Unix sockets (both ends inside the dumped tree, or one connected outside it).

Dump: sock_diag (net/sockdiag.py) lists every unix socket of the tree's network
namespace with its name, peer, pending connections, shutdown bits and
buffer sizes; the receive queue of each socket is read without consuming
it through a pidfd_getfd copy (MSG_PEEK walking with SO_PEEK_OFF: one
message per peek for datagrams, with the sender's address).  Descriptors in
flight (SCM_RIGHTS) arrive in refcr with the peek; once every fd table is
dumped they are dumped like any open file (:func:`dump_in_flight`), so a
socket queued in itself or its peer is found again, not copied, and the
message records their file ids.  Restore sends such a message again with
SCM_RIGHTS (a stream chunk carrying descriptors is sent on its own, so
they arrive with the same bytes).  A unix socket that exists only in flight
and is connected to one of the tree's is refused (its peer looks outside the
tree); SCM_CREDENTIALS of queued messages are kept (:func:`_keep_creds`;
refused when the receiver reads them and the sender is not in the tree).  A socket whose
peer is not held by the tree is decided in one place, :func:`outside_peer`:
refused, or dumped as external (a plugin's DUMP_UNIX_SK, or --ext-unix-sk;
restore connects it to the recorded peer address again, or takes it from
the plugin or from --inherit-fd socket:[INO]).

Restore builds every unix socket of the images at once, the first time one
is asked for, inside the tree's network namespace: listeners are bound and
listen; a connection to a dumped listener is connect()ed and accept()ed
again, so the accept queue ends with the connections that were pending at
dump; other connected pairs come from socketpair() (or a temporary listener
when an end is named); queued data is sent again from the peer end, one
send per datagram; then datagram connects, shutdowns, options, and the
unlinking of names that were deleted.  The calls that give SO_PEERCRED its
pid (socketpair, listen, connect) are made by the restored process that
SO_PEERCRED named at dump (:class:`_AsTask`); a pending connection (not yet
accepted) is still connected by refcr, so the end the server will accept
names refcr's pid (its client's pid cannot be read before accept()).  Path names are used exactly as they
were bound (relative ones from the owner's cwd), in the tree's mount
namespace (a short-lived helper process does the path operations there).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat as stat_mod
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable

from refcr.errors import OptionError, RestoreError, UnsupportedObject
from refcr.fs import namei
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe, fd_target
from refcr.log import log
from refcr.net import nsenter, sockdiag, sockopts
from refcr.pb import unix_pb2
from refcr.plugins import host
from refcr.ptrace import native, proc
from refcr.ptrace.proc import IdMap
from refcr.ptrace.tracee import RemoteError

SO_PEEK_OFF = 42
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
ESTABLISHED, LISTEN = sockdiag.TCP_ESTABLISHED, sockdiag.TCP_LISTEN
RCV_SHUTDOWN, SEND_SHUTDOWN = 1, 2
STATUS_FLAGS = os.O_APPEND | os.O_NONBLOCK | os.O_ASYNC
PEEK_BUF = 1 << 20


@contextlib.contextmanager
def _as_listener(e: unix_pb2.UnixSkEntry, root_pid: int) -> Iterator[None]:
    """listen() with the euid/egid the listener had, which the kernel takes
    as its SO_PEERCRED (a server's identity for its clients: a daemon that
    dropped privileges must not come back root).  The saved ids stay 0, so
    root comes back afterwards (as ipc/sysv.py creates objects as their
    creator).  Used when refcr listens itself; _AsTask.listen does the same
    in the restored process."""
    if not e.has_listen_cred:
        yield
        return
    uid, gid = _outer_id(root_pid, "uid", e.listen_uid), _outer_id(root_pid, "gid", e.listen_gid)
    if (uid, gid) == (os.geteuid(), os.getegid()):
        yield
        return
    os.setresgid(-1, gid, -1)
    try:
        os.setresuid(-1, uid, -1)
        try:
            yield
        finally:
            os.setresuid(-1, 0, -1)
    finally:
        os.setresgid(-1, 0, -1)


def _outer_id(root_pid: int, kind: str, inner: int) -> int:
    """An id of the tree's user namespace (the restored root's maps are
    written before any socket is made) as refcr, outside, must use it."""
    outer = IdMap.of(root_pid, kind).outer(inner)
    if outer is None:
        raise RestoreError(f"unix socket listener {kind} {inner} is not mapped in the tree's user namespace")
    return outer


def _inner_id(t: FdTarget, kind: str, outer: int) -> int:
    """refcr's view of an id -> the task's user namespace's (as core-PID.img)."""
    inner = IdMap.of(t.pid, kind).inner(outer)
    if inner is None:
        raise UnsupportedObject(f"{describe(t)}: unix socket listener {kind} {outer} is not mapped "
                                f"in its process's user namespace")
    return inner


def _label(name: bytes) -> str:
    if not name:
        return "unnamed"
    if name[:1] == b"\0":
        return "@" + name[1:].decode(errors="replace")
    return name.decode(errors="replace")


# ------------------------------------------------------------------ dump --

def _diag(ctx: DumpFiles, pid: int) -> dict[int, sockdiag.UnixDiag]:
    if pid == os.getpid() and ctx.extra.get("unix-inflight"):
        pid = ctx.opts.pid          # a socket in flight, received by refcr: it is of the tree's namespace
    ns = os.stat(f"/proc/{pid}/ns/net").st_ino
    cache = ctx.extra.setdefault("unix-diag", {})
    if ns not in cache:
        cache[ns] = sockdiag.unix_sockets(pid)
    return cache[ns]


def _tree_sockets(ctx: DumpFiles) -> set[int]:
    """Inodes of the sockets held by any process of the dumped tree."""
    cache = ctx.extra.setdefault("unix-tree", {})
    if "inodes" not in cache:
        inodes: set[int] = set()
        todo, seen = [ctx.opts.pid], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        todo.extend(int(c) for c in f.read().split())
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(int(link[8:-1]))
            except OSError:
                continue
        cache["inodes"] = inodes
        cache["pids"] = seen
    return cache["inodes"]


def _cred_pid(ctx: DumpFiles, host_pid: int) -> int | None:
    """SO_PEERCRED's pid as the tree knows it, if it is a process of the tree."""
    _tree_sockets(ctx)
    if host_pid <= 0 or host_pid not in ctx.extra["unix-tree"]["pids"]:
        return None
    try:
        return _inner_pid(host_pid)
    except (OSError, KeyError, ValueError):
        return None


def outside_peer(t: FdTarget, d: sockdiag.UnixDiag, peer: int, how: str,
                 ctx: DumpFiles | None = None, e: unix_pb2.UnixSkEntry | None = None) -> None:
    """The peer of a dumped socket is not in the tree (external connection).

    A connected socket (ctx and e given) may still be dumped as external: a
    plugin takes it (DUMP_UNIX_SK), or --ext-unix-sk allows it (bare: a
    datagram socket; ``--ext-unix-sk ID``: this socket, stream too).  The
    outside peer's address is recorded so restore can connect to it again.
    Anything else is refused here.
    """
    if ctx is not None and e is not None:
        if _plugin_takes(t, d, e):
            return
        ids, bare = ext_options(ctx.opts.ext_unix_sk)
        if d.ino in ids or (bare and d.type == SOCK_DGRAM):
            p = _diag(ctx, t.pid).get(peer)
            if p is None:       # a peer in refcr's own net namespace (the tree has one of its own)
                p = _diag(ctx, os.getpid()).get(peer)
            name = bytes(p.name or b"") if p is not None else b""
            if name[:1] != b"\0":
                name = name.split(b"\0", 1)[0]
            if d.type == SOCK_DGRAM and not name.startswith((b"/", b"\0")):
                raise UnsupportedObject(f"{describe(t)}: unix socket {d.ino} {how} socket {peer} outside "
                                        f"the dumped tree, whose address ({_label(name)}) cannot be "
                                        f"connected to again")
            e.external = True
            e.ext_peer_name = name
            log.info("%s: unix socket %d is external (peer %s)", describe(t), d.ino, _label(name))
            return
    hint = f" (--ext-unix-sk {d.ino} allows it)" if ctx is not None else ""
    raise UnsupportedObject(f"{describe(t)}: unix socket {d.ino} ({_label(d.name or b'')}) {how} "
                            f"socket {peer}, which is outside the dumped tree{hint}")


def _plugin_takes(t: FdTarget, d: sockdiag.UnixDiag, e: unix_pb2.UnixSkEntry) -> bool:
    fd = native.copy_fd(t.pid, t.fd)
    try:
        if not host.dump_unix_sk(fd, d.ino):
            return False
    finally:
        os.close(fd)
    e.external = True
    e.ext_plugin = host.dumped_by() or ""
    log.info("%s: unix socket %d dumped by plugin %s", describe(t), d.ino, e.ext_plugin)
    if d.rqlen:
        log.warning("%s: unix socket %d: %d unread bytes are left to plugin %s (refcr does not queue them "
                    "again)", describe(t), d.ino, d.rqlen, e.ext_plugin)
    return True


def ext_options(options: list[str]) -> tuple[dict[int, str], bool]:
    """--ext-unix-sk options: {ID: PATH or ""}, and whether the bare flag was given."""
    ids: dict[int, str] = {}
    bare = False
    for opt in options:
        if opt == "":
            bare = True
            continue
        head, sep, path = opt.partition(":")
        if not head.isdigit() or (sep and not path):
            raise OptionError(f"--ext-unix-sk {opt}: expected ID or ID:PATH (ID: the socket's inode)")
        ids[int(head)] = path
    return ids, bare


def check_ext_dump(ctx: DumpFiles) -> None:
    """Every --ext-unix-sk ID of a dump named a socket that was dumped as external."""
    ids, _ = ext_options(ctx.opts.ext_unix_sk)
    dumped = {fe.unix_sk.ino for fe in ctx.entries if fe.WhichOneof("file") == "unix_sk" and fe.unix_sk.external}
    for ino in ids:
        if ino not in dumped:
            raise OptionError(f"--ext-unix-sk {ino}: the tree holds no unix socket {ino} connected outside it")


def check_ext_restore(ctx: RestoreFiles) -> None:
    """Every --ext-unix-sk ID of a restore names an external socket of the images."""
    ids, _ = ext_options(ctx.opts.ext_unix_sk)
    ext = {fe.unix_sk.ino for fe in ctx.entries.values() if fe.WhichOneof("file") == "unix_sk" and fe.unix_sk.external}
    for ino in ids:
        if ino not in ext:
            raise OptionError(f"--ext-unix-sk {ino}: the images have no external unix socket {ino}")


def _name(t: FdTarget, d: sockdiag.UnixDiag, e: unix_pb2.UnixSkEntry,
          diag: dict[int, sockdiag.UnixDiag]) -> None:
    if not d.name:
        return
    if d.name[:1] == b"\0":
        e.name = d.name
        return
    name = d.name.split(b"\0", 1)[0]
    e.name = name
    e.vfs_ino = d.vfs_ino
    path = os.fsdecode(name)
    root = proc.path(t.pid, "root")
    if not path.startswith("/"):
        e.bind_dir = os.readlink(proc.path(t.pid, "cwd"))
        path = os.path.join(e.bind_dir, path)
    try:
        st = os.lstat(root + path)
        e.deleted = not (stat_mod.S_ISSOCK(st.st_mode) and st.st_ino == d.vfs_ino)
    except OSError:
        e.deleted = True
        e.missing_dirs = _missing_levels(root, path)
    if e.deleted:
        found = _renamed_file(root, e.bind_dir, d, diag)
        if found is not None:
            e.file_path, st = found
    if not e.deleted or e.file_path:
        e.has_file = True
        e.file_mode, e.file_uid, e.file_gid = stat_mod.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def _renamed_file(root: str, cwd: str, d: sockdiag.UnixDiag,
                  diag: dict[int, sockdiag.UnixDiag]) -> tuple[bytes, os.stat_result] | None:
    """The socket file of d renamed to the name another socket was bound to (a
    server replacing its socket file atomically: bind to P.tmp, rename over P),
    else to another name of its directory."""
    for x in diag.values():
        if x.ino == d.ino or not x.name or x.name[:1] == b"\0":
            continue
        name = x.name.split(b"\0", 1)[0]
        path = os.fsdecode(name)
        try:
            st = os.lstat(root + (path if path.startswith("/") else os.path.join(cwd, path)))
        except OSError:
            continue
        if stat_mod.S_ISSOCK(st.st_mode) and st.st_ino == d.vfs_ino:
            return name, st
    return _renamed_in_dir(root, cwd, d)


def _renamed_in_dir(root: str, cwd: str, d: sockdiag.UnixDiag) -> tuple[bytes, os.stat_result] | None:
    """The socket file of d renamed to a new name in the directory it was
    bound in (bind to P.tmp, rename to P: the JVM's attach listener does
    this), found by its inode among the directory's entries (one readdir)."""
    bound = os.fsdecode(d.name.split(b"\0", 1)[0])  # type: ignore[union-attr]
    folder = os.path.dirname(bound)
    where = folder if bound.startswith("/") else os.path.join(cwd, folder)
    try:
        with os.scandir(root + (where or ".")) as entries:
            for entry in entries:
                if entry.inode() != d.vfs_ino:
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat_mod.S_ISSOCK(st.st_mode) and st.st_ino == d.vfs_ino:
                    return os.fsencode(os.path.join(folder, entry.name)), st
    except OSError:
        pass
    return None


def _missing_levels(root: str, path: str) -> int:
    """How many directories above path are gone (path seen from the task's root)."""
    levels = 0
    for d in _parents(path, 64):
        if os.path.lexists(root + d):
            break
        levels += 1
    return levels


@dataclass
class _InFlight:
    """Descriptors in flight (SCM_RIGHTS) with message `index` of socket `ino`'s
    queue, as refcr received them by peeking: dumped once every fd table is."""
    ino: int
    index: int
    fds: list[int]


def _in_flight(ctx: DumpFiles) -> list[_InFlight]:
    return ctx.extra.setdefault("unix-inflight", {}).setdefault("pending", [])


def dump_in_flight(ctx: DumpFiles) -> None:
    """The descriptors queued in unix sockets, dumped like any other open file
    (the kinds see them as refcr's own fds), so a message gets the file ids of
    what it carries.  Dumped after every fd table: a description the tree also
    holds (a socket queued in itself or its peer) is then found, not dumped
    again.  The copies stay open until refcr exits: the registry compares
    descriptions by (pid, fd), which a reused fd number would confuse."""
    pending = _in_flight(ctx)
    kept = ctx.extra["unix-inflight"].setdefault("kept", [])
    while pending:
        item = pending.pop(0)
        entry = next(fe.unix_sk for fe in ctx.entries
                     if fe.WhichOneof("file") == "unix_sk" and fe.unix_sk.ino == item.ino)
        for fd in item.fds:
            kept.append(fd)
            entry.queue[item.index].fds.append(ctx.add(fd_target(os.getpid(), fd)))


def _read_queue(t: FdTarget, sk: socket.socket, d: sockdiag.UnixDiag, e: unix_pb2.UnixSkEntry,
                ctx: DumpFiles) -> None:
    e.peek_off = sk.getsockopt(socket.SOL_SOCKET, SO_PEEK_OFF)
    if d.state == LISTEN:
        return
    stream = d.type == SOCK_STREAM
    if stream and d.rqlen == 0:
        return
    sk.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, 0)
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)     # each message's SCM_CREDENTIALS, and a
    try:                                                          # stream's chunks split where the writer changes
        got = 0
        while True:
            try:
                data, anc, mflags, addr = sk.recvmsg(PEEK_BUF, socket.CMSG_SPACE(4 * 253) + socket.CMSG_SPACE(12),
                                                     socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.ENOTCONN, errno.EINVAL):   # unconnected / released seqpacket
                    break
                raise
            fds = [int.from_bytes(payload[i:i + 4], "little")
                   for level, kind, payload in anc if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
                   for i in range(0, len(payload) - len(payload) % 4, 4)]
            creds = next((struct.unpack("iII", payload[:12]) for level, kind, payload in anc
                          if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12),
                         None)
            if mflags & socket.MSG_CTRUNC:
                for fd in fds:
                    os.close(fd)
                raise UnsupportedObject(f"{describe(t)}: unix socket {d.ino} holds a message with more "
                                        f"descriptors in flight than refcr reads at once (253)")
            if fds:
                _in_flight(ctx).append(_InFlight(d.ino, len(e.queue), fds))
            if mflags & socket.MSG_TRUNC:
                raise UnsupportedObject(f"{describe(t)}: unix socket {d.ino} holds a message over "
                                        f"{PEEK_BUF} bytes")
            if not data and (stream or d.shutdown & RCV_SHUTDOWN):
                break                    # end of stream (or of a shut down datagram queue)
            m = e.queue.add(data=data)
            if creds is not None:
                _keep_creds(t, d, e, m, creds, ctx)
            if d.type == SOCK_DGRAM and addr:
                m.has_sender = True
                m.sender = os.fsencode(addr) if isinstance(addr, str) else bytes(addr)
                if m.sender[:1] != b"\0":
                    m.sender = m.sender.split(b"\0", 1)[0]
            got += len(data)
            if stream and got >= d.rqlen:
                break
    finally:
        sk.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, e.peek_off)
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, int(e.passcred))


def _keep_creds(t: FdTarget, d: sockdiag.UnixDiag, e: unix_pb2.UnixSkEntry, m: unix_pb2.UnixQueuedMsg,
                creds: tuple[int, int, int], ctx: DumpFiles) -> None:
    """The credentials a queued message carries (SCM_CREDENTIALS: pid, uid,
    gid of its sender at send time, refcr's pid namespace).  The pid is kept
    as the tree sees it when the sender is a process of the tree; otherwise a
    receiver that reads credentials (SO_PASSCRED) would see another pid after
    the restore, so the dump is refused; one that does not gets refcr's pid.
    A message sent while neither end had SO_PASSCRED carries none (it reads
    as pid 0, the overflow uid and gid) and is sent again without them (the
    ends get their SO_PASSCRED after their queues are refilled)."""
    pid, uid, gid = creds
    if pid == 0:            # none attached (neither end had SO_PASSCRED when it was sent)
        return
    m.has_creds, m.cred_uid, m.cred_gid = True, uid, gid
    if pid in ctx.pids:
        m.cred_pid = _inner_pid(pid)
    elif e.passcred:
        sender = f"process {pid}, which is not in the dumped tree" if pid > 0 else "a process that is gone"
        raise UnsupportedObject(f"{describe(t)}: unix socket {d.ino} (SO_PASSCRED) holds a message with the "
                                f"credentials (SCM_CREDENTIALS) of {sender}")


def _inner_pid(pid: int) -> int:
    """A process's pid in its own (innermost) pid namespace."""
    return int(proc.status(pid)["NSpid"].split()[-1])


def _pid_ns(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")


class UnixKind:
    field = "unix_sk"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return stat_mod.S_ISSOCK(t.st.st_mode) and t.st.st_ino in _diag(ctx, t.pid)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> unix_pb2.UnixSkEntry:
        diag = _diag(ctx, t.pid)
        d = diag[t.st.st_ino]
        if d.type not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
            raise UnsupportedObject(f"{describe(t)}: unix socket of type {d.type}")
        e = unix_pb2.UnixSkEntry(ino=d.ino, type=d.type, state=d.state, flags=t.flags & STATUS_FLAGS,
                                 shutdown=d.shutdown, rcvbuf=d.rcvbuf, sndbuf=d.sndbuf)
        _name(t, d, e, diag)
        tree = _tree_sockets(ctx)
        if d.state == LISTEN:
            e.backlog = d.wqlen
            for client in d.icons:
                if client not in tree:
                    outside_peer(t, d, client, "has a pending connection from")
                c = diag.get(client)
                if c is not None and c.wqlen:
                    raise UnsupportedObject(f"{describe(t)}: unix socket {d.ino}: the pending connection "
                                            f"from socket {client} already carries data")
            e.icons.extend(d.icons)
        elif d.peer:
            if d.peer not in tree:
                outside_peer(t, d, d.peer, "is connected to", ctx, e)
            else:
                e.peer = d.peer
        elif d.state == ESTABLISHED and d.type != SOCK_DGRAM:
            listener = next((x for x in diag.values() if x.state == LISTEN and d.ino in x.icons), None)
            if listener is None:
                e.peer_closed = True
            elif listener.ino not in tree:
                outside_peer(t, d, listener.ino, "waits in the accept queue of")
        sk = socket.socket(fileno=native.copy_fd(t.pid, t.fd))
        try:
            e.passcred = bool(sk.getsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED))
            cred_pid, uid, gid = struct.unpack("3i", sk.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if d.state == LISTEN:       # SO_PEERCRED shows refcr's view: the task's is kept
                e.listen_uid = _inner_id(t, "uid", uid)
                e.listen_gid = _inner_id(t, "gid", gid)
                e.has_listen_cred = True
            vpid = _cred_pid(ctx, cred_pid)
            if vpid is not None:
                e.cred_pid, e.has_cred_pid = vpid, True
            e.opts.CopyFrom(sockopts.dump(sk, f"{describe(t)}: unix socket {d.ino}"))
            if not e.ext_plugin:
                _read_queue(t, sk, d, e, ctx)
            else:
                e.peek_off = sk.getsockopt(socket.SOL_SOCKET, SO_PEEK_OFF)
            if e.external and e.queue:
                raise UnsupportedObject(f"{describe(t)}: unix socket {d.ino}, connected outside the tree, "
                                        f"has unread data, which cannot be queued again")
        finally:
            sk.close()
        return e

    def resource(self, e: unix_pb2.UnixSkEntry) -> str:
        """--inherit-fd socket:[INO] may stand for a socket connected outside the tree."""
        return f"socket:[{e.ino}]" if e.external else ""

    def open(self, e: unix_pb2.UnixSkEntry, ctx: RestoreFiles) -> int:
        return build(ctx).take(e.ino)


def build(ctx: RestoreFiles) -> "_Builder":
    """Every unix socket of the images, built once (restore calls it before the
    first process gets its fds, so each puppet can still make its calls)."""
    builder = ctx.extra.get("unix")
    if builder is None:
        builder = ctx.extra["unix"] = _Builder(ctx)
        if any(fe.WhichOneof("file") == "unix_sk" for fe in ctx.entries.values()):
            builder.build()
    return builder


# --------------------------------------------------------------- restore --

def _in_tree(ctx: RestoreFiles, cwd_fd: int, fn: Callable[[], object]) -> None:
    """fn() with path names meaning what they mean to the tree (its mount namespace,
    and the directory open as *cwd_fd* as cwd when it is not -1)."""
    own = os.readlink("/proc/self/ns/mnt")
    mnt = ctx.root_pid is not None and os.readlink(f"/proc/{ctx.root_pid}/ns/mnt") != own
    if not mnt and cwd_fd < 0:
        fn()
        return
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:                                        # pragma: no cover (child)
        code = 255
        try:
            os.close(r)
            if mnt:
                native.setns(os.open(f"/proc/{ctx.root_pid}/ns/mnt", os.O_RDONLY), native.CLONE_NEWNS)
            if cwd_fd >= 0:
                os.fchdir(cwd_fd)
            fn()
            code = 0
        except OSError as exc:
            code = exc.errno or 255
        finally:
            os.write(w, code.to_bytes(4, "little"))
            os._exit(0)
    os.close(w)
    try:
        data = os.read(r, 4)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    code = int.from_bytes(data, "little") if len(data) == 4 else 255
    if code:
        raise OSError(code, os.strerror(code))


def _parents(path: str, levels: int) -> list[str]:
    """The directories above path, innermost first, at most levels of them."""
    out, parent = [], os.path.dirname(os.path.abspath(path))
    while len(out) < levels and parent not in ("/", ""):
        out.append(parent)
        parent = os.path.dirname(parent)
    return out


def _remove_made_parents(path: str, levels: int) -> None:
    """Remove again what _make_parents made (empty directories only)."""
    for d in _parents(path, levels):
        try:
            os.rmdir(d)
        except OSError:
            break


def _sendmsg_all(sk: socket.socket, data: bytes, anc: list[tuple[int, int, bytes]]) -> None:
    """One stream chunk with its descriptors: they go with the first byte, the rest follows."""
    sent = sk.sendmsg([data], anc, socket.MSG_DONTWAIT)
    if sent < len(data):
        sk.sendall(data[sent:], socket.MSG_DONTWAIT)


def _same_dir(name: bytes, dirfd: int) -> None:
    """The directory *name* is in, as the caller resolves it, is the one open as
    *dirfd* (looked up inside the tree's root): a symlink on the way cannot make
    a bind or unlink land outside it."""
    here = os.stat(os.path.dirname(name) or b".")
    there = os.fstat(dirfd)
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
        raise OSError(errno.EXDEV, "the name leads out of the tree's root")


@dataclass
class _AsTask:
    """The socket calls whose caller the kernel records as SO_PEERCRED's pid
    (socketpair, listen, connect), made by the restored process the image
    names (cred_pid) through its puppet's injected syscalls, as CRIU makes
    unix sockets in the restored task itself.  The puppet takes refcr's
    socket (pidfd_getfd of refcr), calls, and closes its copy; refcr takes a
    puppet's socketpair with pidfd_getfd.  The puppet is root at this point:
    a listener's euid/egid are set around its listen() as _as_listener does.
    Without a puppet (no cred_pid, or the process is not in the images) refcr
    makes the call itself."""

    ctx: RestoreFiles
    pidfds: dict[int, int] = field(default_factory=dict)

    def puppet(self, e: unix_pb2.UnixSkEntry | None) -> object | None:
        if e is None or not e.has_cred_pid:
            return None
        p = self.ctx.puppets.get(e.cred_pid)
        return p if p is not None and p.pidfd_slot >= 0 else None

    def _take(self, p, fd: int) -> socket.socket:      # type: ignore[no-untyped-def]
        if p.pid not in self.pidfds:
            self.pidfds[p.pid] = native.pidfd_open(p.pid)
        try:
            return socket.socket(fileno=native.pidfd_getfd(self.pidfds[p.pid], fd))
        finally:
            p.remote.call("close", fd)

    def socketpair(self, stype: int, e: unix_pb2.UnixSkEntry, peer: unix_pb2.UnixSkEntry | None
                   ) -> tuple[socket.socket, socket.socket]:
        p = self.puppet(e)
        if p is None or peer is None or (peer.has_cred_pid, peer.cred_pid) != (True, e.cred_pid):
            return socket.socketpair(socket.AF_UNIX, stype)
        r = p.remote
        addr = r.put(b"\0" * 8)[0]
        r.check("socketpair", socket.AF_UNIX, stype | socket.SOCK_CLOEXEC, 0, addr)
        a, b = struct.unpack("ii", r.read(addr, 8))
        sa = self._take(p, a)
        return sa, self._take(p, b)

    def listen(self, sk: socket.socket, backlog: int, by: unix_pb2.UnixSkEntry,
               creds: unix_pb2.UnixSkEntry | None) -> None:
        """listen() by the process by.cred_pid names, as creds' euid/egid."""
        p = self.puppet(by)
        if p is None:
            with _as_listener(creds or unix_pb2.UnixSkEntry(), self.ctx.root_pid):
                sk.listen(backlog)
            return
        r = p.remote
        fd = p.install_fd(sk.fileno())
        ids = creds is not None and creds.has_listen_cred and (creds.listen_uid, creds.listen_gid) != (0, 0)
        try:
            if ids:
                r.check("setresgid", -1, creds.listen_gid, -1)
                r.check("setresuid", -1, creds.listen_uid, -1)
            r.check("listen", fd, backlog)
        finally:
            if ids:
                r.call("setresuid", -1, 0, -1)
                r.call("setresgid", -1, 0, -1)
            r.call("close", fd)

    def connect(self, sk: socket.socket, accepted: unix_pb2.UnixSkEntry | None,
                dirfd: int, name: bytes) -> bool:
        """connect() by the process that made the connection (the accepted end's
        cred_pid); a path name through the contained directory fd (as
        /proc/self/fd/N/BASE in the puppet).  False: refcr must do it."""
        p = self.puppet(accepted)
        if p is None:
            return False
        r = p.remote
        fds = [p.install_fd(sk.fileno())]
        try:
            if name[:1] != b"\0":
                fds.append(p.install_fd(dirfd))
                name = f"/proc/self/fd/{fds[1]}/".encode() + os.path.basename(name)
            if len(name) > 107:
                return False
            addr = struct.pack("H", socket.AF_UNIX) + name + (b"" if name[:1] == b"\0" else b"\0")
            ret = r.call("connect", fds[0], r.put(addr)[0], len(addr))
            if ret < 0:
                log.warning("unix socket %d: connect as process %d failed (%s); SO_PEERCRED will name refcr",
                            accepted.ino, accepted.cred_pid, os.strerror(-ret))
            return ret == 0
        finally:
            for fd in fds:
                r.call("close", fd)

    def close(self) -> None:
        for fd in self.pidfds.values():
            os.close(fd)
        self.pidfds.clear()


@dataclass
class _Builder:
    ctx: RestoreFiles
    es: dict[int, unix_pb2.UnixSkEntry] = field(default_factory=dict)
    socks: dict[int, socket.socket] = field(default_factory=dict)
    closers: dict[int, socket.socket] = field(default_factory=dict)   # partners to close: peer_closed
    pairs: set[int] = field(default_factory=set)                      # connected by socketpair / accept
    to_unlink: list[unix_pb2.UnixSkEntry] = field(default_factory=list)
    ours: set[tuple[str, str]] = field(default_factory=set)            # paths a deleted socket was bound to

    ext: dict[int, unix_pb2.UnixSkEntry] = field(default_factory=dict)  # connected outside the tree
    inherited: set[int] = field(default_factory=set)                    # ... handed in by --inherit-fd
    as_task: _AsTask | None = None

    def __post_init__(self) -> None:
        self.as_task = _AsTask(self.ctx)
        given = {i.resource for i in self.ctx.inherited.items}
        for fe in self.ctx.entries.values():
            if fe.WhichOneof("file") != "unix_sk":
                continue
            e = fe.unix_sk
            if not e.external:
                self.es[e.ino] = e
            elif f"socket:[{e.ino}]" in given:
                self.inherited.add(e.ino)       # RestoreFiles.open hands the caller's fd in
            else:
                self.ext[e.ino] = e

    def take(self, ino: int) -> int:
        sk = self.socks.pop(ino, None)
        if sk is None:
            raise RestoreError(f"unix socket {ino} was not rebuilt")
        return sk.detach()

    # -- names
    def _place(self, e: unix_pb2.UnixSkEntry) -> tuple[int, int, str]:
        """A path name's place inside the tree's root: O_PATH fds of the cwd it
        was bound from (-1 for an absolute name) and of its directory, and its
        last component.  Only absolute places are accepted (fs/namei.py)."""
        name = os.fsdecode(bytes(e.name))
        rel = not name.startswith("/")
        full = namei.checked(os.path.join(e.bind_dir, name) if rel else name, f"unix socket {e.ino}: name")
        where, base = os.path.split(full)
        try:
            cwd_fd = self.ctx.keep(self.ctx.root.lookup(e.bind_dir)) if rel else -1
            dirfd = self.ctx.keep(self.ctx.root.lookup(where))
        except OSError as exc:
            raise RestoreError(f"unix socket {e.ino}: no directory {where}: {exc.strerror}") from None
        return cwd_fd, dirfd, base

    def _make_missing_dirs(self, e: unix_pb2.UnixSkEntry) -> None:
        """The directories above a deleted socket's name that were removed too,
        made again inside the tree's root (mode 0700, for the time of the
        restore; unlink_deleted removes them), each with an undo."""
        name = os.fsdecode(bytes(e.name))
        full = namei.checked(name if name.startswith("/") else os.path.join(e.bind_dir, name),
                             f"unix socket {e.ino}: name")
        for d in reversed(_parents(full, e.missing_dirs)):
            try:
                os.close(self.ctx.root.lookup(d))
                continue
            except FileNotFoundError:
                pass
            up = self.ctx.keep(self.ctx.root.lookup(os.path.dirname(d)))
            os.mkdir(os.path.basename(d), 0o700, dir_fd=up)
            self.ctx.undo.append(lambda up=up, d=d: _rmdir(up, os.path.basename(d)))

    def _path_op(self, e: unix_pb2.UnixSkEntry, fn: Callable[[], object]) -> None:
        name = bytes(e.name)
        if name[:1] == b"\0":
            fn()
            return
        cwd_fd, dirfd, _ = self._place(e)

        def guarded() -> None:
            _same_dir(name, dirfd)
            fn()
        _in_tree(self.ctx, cwd_fd, guarded)

    def bind(self, sk: socket.socket, e: unix_pb2.UnixSkEntry) -> None:
        name = bytes(e.name)
        if name[:1] == b"\0":
            sk.bind(name)
            return
        path = os.fsdecode(name)
        aside = path + ".refcr-aside"
        key = (e.bind_dir, path)
        if e.deleted and e.missing_dirs:
            self._make_missing_dirs(e)             # its directory is gone too
        _, dirfd, base = self._place(e)

        def do() -> None:
            if os.path.lexists(path):
                st = os.lstat(path)
                if e.deleted:
                    os.rename(path, aside)
                elif stat_mod.S_ISSOCK(st.st_mode) and (st.st_ino == e.vfs_ino or key in self.ours):
                    os.unlink(path)                   # our own stale socket file, or one a deleted socket bound
                else:
                    raise OSError(98, "the path is taken by another file")
            sk.bind(name)
            if e.has_file:                            # (a renamed file: moved after the unlinks)
                os.chmod(path, e.file_mode)
                os.lchown(path, e.file_uid, e.file_gid)
        self.ctx.undo.append(lambda: _put_back(dirfd, base, base + ".refcr-aside"))
        self._path_op(e, do)
        ino = os.lstat(base, dir_fd=dirfd).st_ino
        self.ctx.undo.append(lambda: _unbind(dirfd, base, ino))
        if e.deleted and not e.file_path:
            self.ours.add(key)
            self.to_unlink.append(e)
        elif key in self.ours:
            self.ours.discard(key)
            self.to_unlink = [x for x in self.to_unlink if (x.bind_dir, os.fsdecode(bytes(x.name))) != key]

    def unlink_deleted(self) -> None:
        for e in self.to_unlink:
            path = os.fsdecode(bytes(e.name))

            def do(path: str = path, levels: int = e.missing_dirs) -> None:
                os.unlink(path)
                if os.path.lexists(path + ".refcr-aside"):
                    os.rename(path + ".refcr-aside", path)
                _remove_made_parents(path, levels)
            self._path_op(e, do)

    def move_renamed(self) -> None:
        """Socket files that were renamed over another name go there again."""
        for e in self.es.values():
            if not e.file_path:
                continue
            if e.file_path[:1] in (b"", b"\0"):
                raise RestoreError(f"unix socket {e.ino}: the image's file_path is not a path")
            src, dst = os.fsdecode(bytes(e.name)), os.fsdecode(bytes(e.file_path))
            self._path_op(e, lambda src=src, dst=dst: os.rename(src, dst))

    def connect(self, sk: socket.socket, target: unix_pb2.UnixSkEntry,
                accepted: unix_pb2.UnixSkEntry | None = None) -> None:
        """sk connects to target's name; by the process that made the connection
        when *accepted* (the end that accept() gives) names one (_AsTask)."""
        name = bytes(target.name)
        if not name:
            raise RestoreError(f"unix socket {target.ino} has no name to connect to")
        dirfd = -1 if name[:1] == b"\0" else self._place(target)[1]
        if accepted is not None and self.as_task.connect(sk, accepted, dirfd, name):
            return
        self._path_op(target, lambda: sk.connect(name))

    def new(self, e: unix_pb2.UnixSkEntry) -> socket.socket:
        sk = socket.socket(socket.AF_UNIX, e.type)
        if e.name:
            self.bind(sk, e)
        return sk

    # -- the steps
    def build(self) -> None:
        try:
            with nsenter.entered(self.ctx.root_pid):
                self._build()
        except RemoteError as exc:
            for sk in list(self.socks.values()) + list(self.closers.values()):
                sk.close()
            raise RestoreError(f"unix sockets: {exc}") from None
        except OSError as exc:
            for sk in list(self.socks.values()) + list(self.closers.values()):
                sk.close()
            raise RestoreError(f"unix sockets: {exc.strerror or exc}") from None

    def _build(self) -> None:
        es = self.es
        listeners = {bytes(e.name): e for e in es.values() if e.state == LISTEN}
        pending = {c for e in listeners.values() for c in e.icons}
        for e in listeners.values():
            sk = self.socks[e.ino] = self.new(e)
            self.as_task.listen(sk, max(e.backlog, 0), e, e)
        temp: dict[bytes, socket.socket] = {}
        for e in sorted(es.values(), key=lambda x: x.ino):
            if e.ino in self.socks or e.ino in self.pairs or e.ino in pending:
                continue
            if e.type == SOCK_DGRAM:
                p = es.get(e.peer)
                if p is not None and p.peer == e.ino and not e.name and not p.name:
                    a, b = self.as_task.socketpair(SOCK_DGRAM, e, p)
                    self.socks[e.ino], self.socks[p.ino] = a, b
                    self.pairs |= {e.ino, p.ino}
                else:
                    self.socks[e.ino] = self.new(e)
            elif e.state == ESTABLISHED and e.peer_closed:
                a, b = self.as_task.socketpair(e.type, e, e)
                if e.name:
                    self.bind(a, e)
                self.socks[e.ino], self.closers[e.ino] = a, b
            elif e.state == ESTABLISHED and e.peer in es:
                self._connected_pair(e, es[e.peer], listeners, temp)
            else:
                self.socks[e.ino] = self.new(e)
        for sk in temp.values():
            sk.close()
        for e in listeners.values():                    # the accept queues, in order
            for c in e.icons:
                ce = es.get(c)
                if ce is None:
                    raise RestoreError(f"unix socket {c}, pending on {_label(bytes(e.name))}, is not in the images")
                sk = self.socks[c] = self.new(ce)
                sk.setblocking(False)
                self.connect(sk, e)
        for e in es.values():
            self._buffers(e)
        for e in es.values():
            self._requeue(e)
        for e in es.values():
            if e.type == SOCK_DGRAM and e.peer and e.ino not in self.pairs:
                p = es.get(e.peer)
                if p is None:
                    raise RestoreError(f"unix socket {e.ino}: its peer {e.peer} is not in the images")
                self.connect(self.socks[e.ino], p)
        for sk in self.closers.values():
            sk.close()
        self.closers.clear()
        self.unlink_deleted()
        self.move_renamed()
        for e in es.values():
            self._finish(e)
        for e in self.ext.values():
            self._external(e)
        self.as_task.close()

    def _external(self, e: unix_pb2.UnixSkEntry) -> None:
        """A socket connected outside the tree: from its plugin, or connected again."""
        if e.ext_plugin:
            fd = host.restore_unix_sk(e.ino, e.ext_plugin, self.ctx.root_pid)
            os.set_inheritable(fd, False)
            self.socks[e.ino] = socket.socket(fileno=fd)
            self._finish(e)         # the task's own settings (flags, buffers, ...) on the plugin's socket
            return
        ids, _ = ext_options(self.ctx.opts.ext_unix_sk)
        where = f"unix socket {e.ino} ({_label(bytes(e.name))})"
        if e.type != SOCK_DGRAM and e.ino not in ids:
            raise RestoreError(f"{where} was connected outside the tree: give --ext-unix-sk {e.ino}[:PATH] "
                               f"or --inherit-fd fd[N]:socket:[{e.ino}]")
        target = os.fsencode(ids[e.ino]) if ids.get(e.ino) else bytes(e.ext_peer_name)
        if not target.startswith((b"/", b"\0")):
            raise RestoreError(f"{where}: its outside peer's address ({_label(target)}) cannot be connected "
                               f"to: give --ext-unix-sk {e.ino}:PATH")
        sk = self.socks[e.ino] = self.new(e)
        try:
            if target[:1] == b"\0":
                sk.connect(target)
            else:
                _in_tree(self.ctx, -1, lambda: sk.connect(target))
        except OSError as exc:
            raise RestoreError(f"{where}: cannot connect to {_label(target)} again: "
                               f"{exc.strerror or exc}") from None
        self._finish(e)

    def _connected_pair(self, e, p, listeners, temp) -> None:
        acc, cli = None, None
        if e.name and bytes(e.name) in listeners and e.name != p.name:
            acc, cli = e, p
        elif p.name and bytes(p.name) in listeners and e.name != p.name:
            acc, cli = p, e
        elif e.name or p.name:
            acc, cli = (e, p) if (e.name and (not p.name or e.ino > p.ino)) else (p, e)
        if acc is None:
            a, b = self.as_task.socketpair(e.type, e, p)
            self.socks[e.ino], self.socks[p.ino] = a, b
        else:
            name = bytes(acc.name)
            if name in listeners:
                lsk = self.socks[listeners[name].ino]
            else:
                lsk = temp.get(name)
                if lsk is None:
                    lsk = temp[name] = socket.socket(socket.AF_UNIX, e.type)
                    self.bind(lsk, acc)
                    self.as_task.listen(lsk, 64, cli, None)     # the client's SO_PEERCRED: its listener's
            c = self.new(cli)
            self.connect(c, acc, accepted=acc)
            self.socks[acc.ino], _ = lsk.accept()
            self.socks[cli.ino] = c
        self.pairs |= {e.ino, p.ino}

    def _buffers(self, e: unix_pb2.UnixSkEntry) -> None:
        sk = self.socks[e.ino]
        if e.rcvbuf:
            sk.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, e.rcvbuf // 2)
        if e.sndbuf:
            sk.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, e.sndbuf // 2)

    @staticmethod
    def _send(sender: socket.socket, total: int, send: Callable[[], object]) -> None:
        """One non-blocking send, with the sender's buffer made room for the whole queue."""
        if sender.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < 4 * total + (1 << 20):
            sender.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 2 * total + (1 << 19))
        try:
            send()
        except BlockingIOError:
            raise OSError(11, "the receiver's queue is full (net.unix.max_dgram_qlen?)") from None

    def _requeue(self, e: unix_pb2.UnixSkEntry) -> None:
        if not e.queue:
            return
        where = f"unix socket {e.ino} ({_label(bytes(e.name))})"
        if e.type != SOCK_DGRAM:
            sender = self.closers.get(e.ino) or self.socks.get(e.peer)
            if sender is None:
                raise RestoreError(f"{where}: no peer to requeue its data from")
            total = sum(len(m.data) for m in e.queue)
            for m in e.queue:
                anc = self._rights(m)
                if anc:
                    self._send(sender, total, lambda d=m.data, a=anc: _sendmsg_all(sender, d, a))
                else:
                    self._send(sender, total, lambda d=m.data: sender.sendall(d, socket.MSG_DONTWAIT))
            return
        named = {bytes(x.name): self.socks[x.ino] for x in self.es.values() if x.name}
        total = sum(len(m.data) for m in e.queue)
        for m in e.queue:
            peer = self.es.get(e.peer)
            via_pair = e.ino in self.pairs and peer is not None
            anc = self._rights(m)
            if via_pair and (not m.has_sender or bytes(m.sender) == bytes(peer.name)):
                psk = self.socks[peer.ino]
                self._send(psk, total, lambda d=m.data, s=psk, a=anc: s.sendmsg([d], a, socket.MSG_DONTWAIT))
                continue
            if not e.name:
                raise RestoreError(f"{where}: cannot requeue a datagram from {_label(bytes(m.sender))}")
            sender = named.get(bytes(m.sender)) if m.has_sender else None
            tmp = None
            if sender is None:
                tmp = sender = socket.socket(socket.AF_UNIX, SOCK_DGRAM)
                if m.has_sender and m.sender[:1] == b"\0":
                    try:
                        tmp.bind(bytes(m.sender))
                    except OSError:
                        log.warning("%s: a queued datagram loses its sender %s", where, _label(bytes(m.sender)))
                elif m.has_sender:
                    log.warning("%s: a queued datagram loses its sender %s", where, _label(bytes(m.sender)))
            try:
                self._send(sender, total, lambda s=sender, d=m.data, a=anc: self._path_op(
                    e, lambda: s.sendmsg([d], a, socket.MSG_DONTWAIT, bytes(e.name))))
            finally:
                if tmp is not None:
                    tmp.close()

    def _rights(self, m: unix_pb2.UnixQueuedMsg) -> list[tuple[int, int, bytes]]:
        """The ancillary data of m: SCM_RIGHTS that puts its descriptors in flight
        again, SCM_CREDENTIALS with its sender's credentials (refcr, as root,
        may name any live pid, uid and gid)."""
        anc = []
        if m.fds:
            fds = [self._fd_of(i) for i in m.fds]
            anc.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, b"".join(fd.to_bytes(4, "little") for fd in fds)))
        if m.has_creds:
            pid = self._host_pid(m.cred_pid) if m.cred_pid else os.getpid()
            anc.append((socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("iII", pid, m.cred_uid, m.cred_gid)))
        return anc

    def _host_pid(self, vpid: int) -> int:
        """The pid in refcr's namespace of the restored process vpid (the tree's)."""
        root = self.ctx.root_pid
        if root is None or _pid_ns(root) == _pid_ns("self"):
            return vpid
        found = self.ctx.extra.setdefault("unix-host-pids", {})
        if not found:
            ns = _pid_ns(root)
            for name in os.listdir("/proc"):
                try:
                    if name.isdigit() and _pid_ns(name) == ns:
                        found[_inner_pid(int(name))] = int(name)
                except (OSError, KeyError):
                    continue
        if vpid not in found:
            raise RestoreError(f"the sender {vpid} of a queued unix message is not restored")
        return found[vpid]

    def _fd_of(self, file_id: int) -> int:
        """A descriptor in flight: a unix socket of this build as it is, anything else opened
        through the registry (which keeps it for the task that may also hold it)."""
        fe = self.ctx.entry(file_id)
        if fe.WhichOneof("file") == "unix_sk" and fe.unix_sk.ino in self.socks:
            return self.socks[fe.unix_sk.ino].fileno()
        return self.ctx.open(file_id)

    def _finish(self, e: unix_pb2.UnixSkEntry) -> None:
        sk = self.socks[e.ino]
        self._buffers(e)
        if e.shutdown and not e.peer_closed:
            how = {RCV_SHUTDOWN: socket.SHUT_RD, SEND_SHUTDOWN: socket.SHUT_WR}.get(e.shutdown, socket.SHUT_RDWR)
            try:
                sk.shutdown(how)
            except OSError as exc:
                if exc.errno != 107:               # ENOTCONN: an unconnected datagram socket
                    raise
        if e.passcred:
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if e.HasField("opts"):
            sockopts.restore(sk, e.opts, f"unix socket {e.ino} ({_label(bytes(e.name))})")
        if e.peek_off != -1:
            sk.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, e.peek_off)
        fl = fcntl.fcntl(sk.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(sk.fileno(), fcntl.F_SETFL, (fl & ~STATUS_FLAGS) | (e.flags & STATUS_FLAGS))


def _unbind(dirfd: int, base: str, ino: int) -> None:
    """Undo of a bind (a failed restore): remove the socket file refcr made, if it is still there."""
    try:
        st = os.lstat(base, dir_fd=dirfd)
        if stat_mod.S_ISSOCK(st.st_mode) and st.st_ino == ino:
            os.unlink(base, dir_fd=dirfd)
    except OSError:
        pass


def _rmdir(dirfd: int, base: str) -> None:
    """Undo of a directory made for a deleted socket (empty ones only)."""
    try:
        os.rmdir(base, dir_fd=dirfd)
    except OSError:
        pass


def _put_back(dirfd: int, base: str, aside: str) -> None:
    """Undo of moving a file aside for a deleted socket's bind."""
    try:
        os.lstat(aside, dir_fd=dirfd)
        os.rename(aside, base, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    except OSError:
        pass


KINDS = [UnixKind()]
