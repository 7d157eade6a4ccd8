"""Packet sockets (AF_PACKET, SOCK_RAW and SOCK_DGRAM): device, protocol,
memberships, fanout group and SOL_PACKET options.

Dump reads a pidfd_getfd copy of the task's socket and packet_diag
(net/sockdiag.py, the socket's network namespace): the protocol (ethertype)
it receives, the device it is bound to (getsockname's name: resolved in the
socket's own namespace), every PACKET_ADD_MEMBERSHIP with its count
(PACKET_DIAG_MCLIST; devices kept by name), PACKET_FANOUT (getsockopt) and the
SOL_SOCKET and SOL_PACKET options (PACKET_VERSION, AUXDATA, ORIGDEV,
VNET_HDR, TIMESTAMP, RESERVE, LOSS, QDISC_BYPASS, IGNORE_OUTGOING;
net/sockopts.py).  Restore makes the socket in the tree's network namespace
with no protocol (so nothing is received yet), sets the options, binds the
device and protocol (or, bound to no device, creates it with the protocol
instead: it then receives on every device), adds each membership as many
times as it was added (device index looked up by name again), and joins the
fanout group, as CRIU's sk-packet.c does.

Refused by the dump, naming the socket: a PACKET_RX_RING or PACKET_TX_RING
(the ring is memory the kernel maps into the task; bringing it back needs
the ring set up again before the task's mapping of it is restored, which
refcr's memory restore cannot do yet; a ring the task has mapped is refused
first, by the memory dump, naming it: mm/memory.py), and packets waiting to be read
(SO_MEMINFO: they cannot be queued on a packet socket again from user space;
CRIU drops them).  Not kept: PACKET_COPY_THRESH (no getsockopt reads it),
statistics (PACKET_STATISTICS, which reading resets), a fanout group's
steering program (PACKET_FANOUT_DATA).  Cost: one packet_diag dump per
network namespace and a dozen getsockopt calls per socket.
"""
from __future__ import annotations

import fcntl
import os
import socket
import stat as stat_mod
import struct

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.net import nsenter, sockdiag, sockopts
from refcr.pb import packet_pb2
from refcr.ptrace import native

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_FANOUT = 1, 18
SIOCGIFNAME, SIOCGIFINDEX = 0x8910, 0x8933
STATUS_FLAGS = os.O_NONBLOCK | os.O_ASYNC
_MREQ = struct.Struct("=iHH8s")


def _family(fd: int) -> int:
    s = socket.socket(fileno=os.dup(fd))
    try:
        return s.family
    finally:
        s.close()


def ifname(s: socket.socket, index: int) -> str:
    """The name of device `index` in the socket's network namespace."""
    req = struct.pack("16si20x", b"", index)
    return fcntl.ioctl(s.fileno(), SIOCGIFNAME, req)[:16].split(b"\0", 1)[0].decode()


def ifindex(s: socket.socket, name: str) -> int:
    req = struct.pack("16si20x", name.encode(), 0)
    return struct.unpack_from("i", fcntl.ioctl(s.fileno(), SIOCGIFINDEX, req), 16)[0]


def describe_entry(e: packet_pb2.PacketSkEntry) -> str:
    kind = {socket.SOCK_RAW: "SOCK_RAW", socket.SOCK_DGRAM: "SOCK_DGRAM"}.get(e.type, f"type {e.type}")
    return f"packet socket ({kind}, protocol {e.protocol:#06x}, device {e.ifname or 'any'})"


def _diag(t: FdTarget, ctx: DumpFiles) -> sockdiag.PacketDiag:
    ns = os.stat(f"/proc/{t.pid}/ns/net").st_ino
    cache = ctx.extra.setdefault("packet-diag", {})
    if ns not in cache:
        try:
            cache[ns] = sockdiag.packet_sockets(t.pid)
        except sockdiag.DiagUnavailable as exc:
            raise UnsupportedObject(f"{describe(t)}: packet socket: {exc} (module packet_diag)") from None
    d = cache[ns].get(t.st.st_ino)
    if d is None:
        raise UnsupportedObject(f"{describe(t)}: packet socket not in packet_diag of process {t.pid}'s "
                                f"network namespace (it belongs to another one)")
    return d


class PacketKind:
    field = "packet"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not (stat_mod.S_ISSOCK(t.st.st_mode) and t.link.startswith("socket:[")):
            return False
        fd = native.copy_fd(t.pid, t.fd)
        try:
            return _family(fd) == socket.AF_PACKET
        finally:
            os.close(fd)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> packet_pb2.PacketSkEntry:
        s = socket.socket(fileno=native.copy_fd(t.pid, t.fd))
        try:
            d = _diag(t, ctx)
            e = packet_pb2.PacketSkEntry(type=s.type, protocol=d.protocol, flags=t.flags)
            e.ifname = ifname(s, d.ifindex) if d.ifindex else ""
            what = f"{describe(t)}: {describe_entry(e)}"
            if d.rings:
                raise UnsupportedObject(f"{what} has a {' and a '.join(d.rings)} (a ring mapped into the "
                                        f"process): not restored")
            unread = sockopts.receive_memory(s)
            if unread:
                raise UnsupportedObject(f"{what} has packets waiting to be read ({unread} bytes of receive "
                                        f"memory), which cannot be queued again")
            for index, count, mtype, addr in d.mclist:
                e.mclist.add(ifname=ifname(s, index), type=mtype, addr=addr, count=count)
            e.fanout = s.getsockopt(SOL_PACKET, PACKET_FANOUT) & 0xFFFFFFFF
            e.opts.CopyFrom(sockopts.dump(s, what))
            return e
        finally:
            s.close()

    def open(self, e: packet_pb2.PacketSkEntry, ctx: RestoreFiles) -> int:
        what = describe_entry(e)
        with nsenter.entered(ctx.root_pid):
            proto = socket.htons(e.protocol) if not e.ifname else 0
            s = socket.socket(socket.AF_PACKET, e.type, proto)
        try:
            _restore(s, e, what)
            fcntl.fcntl(s.fileno(), fcntl.F_SETFL, e.flags & STATUS_FLAGS)
        except OSError as exc:
            s.close()
            raise RestoreError(f"cannot restore the {what}: {exc.strerror or exc}") from None
        except BaseException:
            s.close()
            raise
        return s.detach()


def _restore(s: socket.socket, e: packet_pb2.PacketSkEntry, what: str) -> None:
    sockopts.restore(s, e.opts, what)
    if e.ifname:
        s.bind((e.ifname, e.protocol))
    for m in e.mclist:
        mreq = _MREQ.pack(ifindex(s, m.ifname), m.type, len(m.addr), bytes(m.addr))
        for _ in range(m.count):
            s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    if e.fanout:
        s.setsockopt(SOL_PACKET, PACKET_FANOUT, e.fanout & 0xFFFFFFFF)


KINDS = [PacketKind()]
