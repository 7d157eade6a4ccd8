"""sock_diag netlink: what the kernel tells about sockets from outside.

One NETLINK_SOCK_DIAG dump request lists every unix socket of the network
namespace the netlink socket was created in, with the attributes asked for
(name, bound inode, peer, pending connections, queue lengths, buffer
sizes, shutdown bits).  The reply is parsed into :class:`UnixDiag` records
keyed by socket inode.  The same for inet sockets of one family and
protocol (:func:`inet_sockets`, inet_diag / udp_diag): the TCP state and
the shutdown bits (sk_shutdown), which no getsockopt shows.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass, field

from refcr.errors import DumpError
from refcr.net import nsenter

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3

UDIAG_SHOW_NAME, UDIAG_SHOW_VFS, UDIAG_SHOW_PEER, UDIAG_SHOW_ICONS = 0x1, 0x2, 0x4, 0x8
UDIAG_SHOW_RQLEN, UDIAG_SHOW_MEMINFO, UDIAG_SHOW_UID = 0x10, 0x20, 0x40
UNIX_DIAG_NAME, UNIX_DIAG_VFS, UNIX_DIAG_PEER, UNIX_DIAG_ICONS = 0, 1, 2, 3
UNIX_DIAG_RQLEN, UNIX_DIAG_MEMINFO, UNIX_DIAG_SHUTDOWN = 4, 5, 6

# sk_meminfo indices
SK_MEMINFO_RCVBUF, SK_MEMINFO_SNDBUF = 1, 3

TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN = 1, 7, 10

_NLH = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBHIII II")
_MSG = struct.Struct("=BBBBI II")
_ATTR = struct.Struct("=HH")


class DiagUnavailable(DumpError):
    """The kernel has no sock_diag handler for the family/protocol (module not loaded)."""


@dataclass
class UnixDiag:
    ino: int
    type: int
    state: int
    name: bytes | None = None          # b"\\0..." for abstract names
    vfs_ino: int = 0                   # inode of the socket file it is bound to
    vfs_dev: int = 0
    peer: int = 0
    icons: list[int] = field(default_factory=list)
    rqlen: int = 0                     # listener: pending connections; else bytes received
    wqlen: int = 0                     # listener: backlog; else bytes sent, not yet read
    rcvbuf: int = 0
    sndbuf: int = 0
    shutdown: int = 0


def _attrs(buf: bytes, off: int, end: int):
    while off + 4 <= end:
        alen, atype = _ATTR.unpack_from(buf, off)
        if alen < 4:
            break
        yield atype & 0x3FFF, buf[off + 4:off + alen]
        off += (alen + 3) & ~3


def _parse(payload: bytes) -> UnixDiag:
    family, stype, state, _, ino, _, _ = _MSG.unpack_from(payload)
    d = UnixDiag(ino=ino, type=stype, state=state)
    for atype, val in _attrs(payload, _MSG.size, len(payload)):
        if atype == UNIX_DIAG_NAME:
            d.name = bytes(val)
        elif atype == UNIX_DIAG_VFS:
            d.vfs_ino, d.vfs_dev = struct.unpack_from("=II", val)
        elif atype == UNIX_DIAG_PEER:
            d.peer = struct.unpack_from("=I", val)[0]
        elif atype == UNIX_DIAG_ICONS:
            d.icons = list(struct.unpack(f"={len(val) // 4}I", val[:len(val) // 4 * 4]))
        elif atype == UNIX_DIAG_RQLEN:
            d.rqlen, d.wqlen = struct.unpack_from("=II", val)
        elif atype == UNIX_DIAG_MEMINFO:
            mem = struct.unpack(f"={len(val) // 4}I", val[:len(val) // 4 * 4])
            d.rcvbuf, d.sndbuf = mem[SK_MEMINFO_RCVBUF], mem[SK_MEMINFO_SNDBUF]
        elif atype == UNIX_DIAG_SHUTDOWN:
            d.shutdown = val[0]
    return d


def _request(pid: int | None, req: bytes, what: str) -> list[bytes]:
    """One SOCK_DIAG_BY_FAMILY dump request in pid's network namespace: the
    payload of every reply message."""
    with nsenter.entered(pid):
        sk = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    out: list[bytes] = []
    try:
        seq = os.getpid() & 0xFFFF or 1
        sk.send(_NLH.pack(_NLH.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + req)
        while True:
            buf = sk.recv(1 << 20)
            off = 0
            while off + _NLH.size <= len(buf):
                mlen, mtype, _, mseq, _ = _NLH.unpack_from(buf, off)
                if mlen < _NLH.size:
                    raise DumpError("sock_diag: malformed netlink reply")
                body = buf[off + _NLH.size:off + mlen]
                off += (mlen + 3) & ~3
                if mseq != seq:
                    continue
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", body)[0]
                    if err == errno.ENOENT:
                        raise DiagUnavailable(f"sock_diag of {what}: the kernel has no handler for them")
                    if err:
                        raise DumpError(f"sock_diag of {what} failed: {os.strerror(err)}")
                    continue
                out.append(body)
    finally:
        sk.close()


def unix_sockets(pid: int | None = None) -> dict[int, UnixDiag]:
    """Every unix socket of pid's network namespace (None: refcr's own), by inode."""
    show = (UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS
            | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO)
    req = _REQ.pack(socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, show, 0xFFFFFFFF, 0xFFFFFFFF)
    out: dict[int, UnixDiag] = {}
    for body in _request(pid, req, "unix sockets"):
        d = _parse(body)
        out[d.ino] = d
    return out


# inet_diag: struct inet_diag_req_v2 (family, protocol, ext, pad, states, sockid[48])
# and struct inet_diag_msg (family, state, timer, retrans, sockid[48], expires,
# rqueue, wqueue, uid, inode).
_INET_REQ = struct.Struct("=BBBBI48x")
_INET_MSG = struct.Struct("=BBBB48xIIIII")
_INET_SOCKID = struct.Struct("!HH16s16s")   # sport, dport, src, dst (big-endian, at offset 4)
INET_DIAG_SHUTDOWN = 8


@dataclass
class InetDiag:
    ino: int
    state: int
    shutdown: int = 0                  # RCV_SHUTDOWN 1, SEND_SHUTDOWN 2
    dst: bytes = b""                   # the peer's address (4 or 16 bytes), even where getpeername()
    dport: int = 0                     # says ENOTCONN (a connection in SYN_SENT)


def inet_sockets(pid: int | None, family: int, proto: int) -> dict[int, InetDiag]:
    """Every inet socket of one family and protocol in pid's network namespace, by inode."""
    req = _INET_REQ.pack(family, proto, 0, 0, 0xFFFFFFFF)
    out: dict[int, InetDiag] = {}
    for body in _request(pid, req, f"{'IPv6' if family == socket.AF_INET6 else 'IPv4'} sockets of protocol {proto}"):
        _, state, _, _, _, _, _, _, ino = _INET_MSG.unpack_from(body)
        _, dport, _, dst = _INET_SOCKID.unpack_from(body, 4)
        d = InetDiag(ino=ino, state=state, dst=dst[:4] if family == socket.AF_INET else dst, dport=dport)
        for atype, val in _attrs(body, _INET_MSG.size, len(body)):
            if atype == INET_DIAG_SHUTDOWN and val:
                d.shutdown = val[0]
        out[ino] = d
    return out


PACKET_SHOW_INFO, PACKET_SHOW_MCLIST, PACKET_SHOW_RING_CFG, PACKET_SHOW_FANOUT = 0x1, 0x2, 0x4, 0x8
PACKET_DIAG_INFO, PACKET_DIAG_MCLIST, PACKET_DIAG_RX_RING, PACKET_DIAG_TX_RING = 0, 1, 2, 3
_PACKET_REQ = struct.Struct("=BBHII8s")
_PACKET_MSG = struct.Struct("=BBHI8x")
_PACKET_INFO = struct.Struct("=6I")         # ifindex, version, reserve, copy_thresh, tstamp, flags
_PACKET_MC = struct.Struct("=IIHH32s")      # index, count, type, alen, addr


@dataclass
class PacketDiag:
    ino: int
    type: int
    protocol: int                          # ethertype, host order
    ifindex: int = 0
    mclist: list[tuple[int, int, int, bytes]] = field(default_factory=list)   # (ifindex, count, type, addr)
    rings: list[str] = field(default_factory=list)                             # "PACKET_RX_RING", ...


def packet_sockets(pid: int | None) -> dict[int, PacketDiag]:
    """Every packet socket of pid's network namespace (packet_diag), by inode."""
    req = _PACKET_REQ.pack(socket.AF_PACKET, 0, 0, 0, PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG,
                           b"\xff" * 8)
    out: dict[int, PacketDiag] = {}
    for body in _request(pid, req, "packet sockets"):
        _, stype, num, ino = _PACKET_MSG.unpack_from(body)
        d = PacketDiag(ino=ino, type=stype, protocol=num)    # the kernel sends it in host order
        for atype, val in _attrs(body, _PACKET_MSG.size, len(body)):
            if atype == PACKET_DIAG_INFO and len(val) >= _PACKET_INFO.size:
                d.ifindex = _PACKET_INFO.unpack_from(val)[0]
            elif atype == PACKET_DIAG_MCLIST:
                for off in range(0, len(val) - _PACKET_MC.size + 1, _PACKET_MC.size):
                    index, count, mtype, alen, addr = _PACKET_MC.unpack_from(val, off)
                    d.mclist.append((index, count, mtype, addr[:min(alen, 8)]))
            elif atype in (PACKET_DIAG_RX_RING, PACKET_DIAG_TX_RING):
                d.rings.append("PACKET_RX_RING" if atype == PACKET_DIAG_RX_RING else "PACKET_TX_RING")
        out[ino] = d
    return out
