"""Netlink sockets (AF_NETLINK): their port id, groups, destination and options.

Dump looks at a pidfd_getfd copy of the task's socket: getsockname gives the
port id (the one bound by hand or autobound at the first send; 0 when never
bound), NETLINK_LIST_MEMBERSHIPS every multicast group joined (those above
32 too), getpeername a connect()ed destination, getsockopt the SOL_SOCKET
and SOL_NETLINK options (net/sockopts.py).  Restore makes the socket in the
tree's network namespace, sets the options, binds the same port id, joins
each group (NETLINK_ADD_MEMBERSHIP) and connects the destination, as CRIU's
sk-netlink.c does.

Refused by the dump, naming the socket: bytes waiting to be read (SO_MEMINFO's
receive memory is not 0: replies and notifications in the queue, or a dump
the kernel is still producing: they cannot be queued again from user space).
Restore fails in one line when the port id is taken (EADDRINUSE: another
socket of the namespace has it).  Not kept: the kernel's per-socket state of
a protocol (e.g. an NETLINK_AUDIT registration, a genetlink family's
per-socket data, a nf_queue binding), which the socket interface does not
show; the protocol's subscription checks run again (as root, they pass).
Cost: a dozen getsockopt calls per socket.
"""
from __future__ import annotations

import fcntl
import os
import socket
import stat as stat_mod
import struct

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.net import nsenter, sockopts
from refcr.pb import netlink_pb2
from refcr.ptrace import native

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_LIST_MEMBERSHIPS = 1, 9
STATUS_FLAGS = os.O_NONBLOCK | os.O_ASYNC
MAX_GROUP_WORDS = 256           # 8192 groups (getsockopt buffers stop at 1 KiB), far above any protocol's


def _family(fd: int) -> int:
    s = socket.socket(fileno=os.dup(fd))
    try:
        return int(s.family)
    finally:
        s.close()


def memberships(s: socket.socket) -> list[int]:
    """The group numbers s has joined (bit n-1 of the list is group n)."""
    raw = s.getsockopt(SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, 4 * MAX_GROUP_WORDS)
    out = []
    for i, (word,) in enumerate(struct.iter_unpack("I", raw[:len(raw) // 4 * 4])):
        out.extend(32 * i + b + 1 for b in range(32) if word >> b & 1)
    return out


def _unread(s: socket.socket) -> int:
    """Receive memory in use: anything queued."""
    return sockopts.receive_memory(s)


class NetlinkKind:
    field = "netlink"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not (stat_mod.S_ISSOCK(t.st.st_mode) and t.link.startswith("socket:[")):
            return False
        fd = native.copy_fd(t.pid, t.fd)
        try:
            return _family(fd) == socket.AF_NETLINK
        finally:
            os.close(fd)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> netlink_pb2.NetlinkSkEntry:
        s = socket.socket(fileno=native.copy_fd(t.pid, t.fd))
        try:
            what = f"{describe(t)}: netlink socket (protocol {s.proto})"
            e = netlink_pb2.NetlinkSkEntry(type=s.type, protocol=s.proto, flags=t.flags)
            e.portid = s.getsockname()[0]
            e.groups.extend(memberships(s))
            e.dst_portid, e.dst_group = s.getpeername()
            unread = _unread(s)
            if unread:
                raise UnsupportedObject(f"{what} has messages waiting to be read ({unread} bytes of receive "
                                        f"memory), which cannot be queued again")
            e.opts.CopyFrom(sockopts.dump(s, what))
            return e
        finally:
            s.close()

    def open(self, e: netlink_pb2.NetlinkSkEntry, ctx: RestoreFiles) -> int:
        what = f"netlink socket (protocol {e.protocol}, port id {e.portid})"
        with nsenter.entered(ctx.root_pid):
            s = socket.socket(socket.AF_NETLINK, e.type, e.protocol)
        try:
            sockopts.restore(s, e.opts, what)
            if e.portid:
                s.bind((e.portid, 0))
            for g in e.groups:
                s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g)
            if e.dst_portid or e.dst_group:
                s.connect((e.dst_portid, e.dst_group))
            fcntl.fcntl(s.fileno(), fcntl.F_SETFL, e.flags & STATUS_FLAGS)
        except OSError as exc:
            s.close()
            raise RestoreError(f"cannot restore the {what}: {exc.strerror or exc}") from None
        except BaseException:
            s.close()
            raise
        return s.detach()


KINDS = [NetlinkKind()]
