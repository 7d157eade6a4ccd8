"""Socket options of every socket kind: read at dump, set again at restore.

One table (:data:`TABLE`) names the options refcr carries, by level, with
the size of their value and whether they apply to a family/protocol.  Dump
stores each one's raw getsockopt value (proto/sockopts.proto); restore sets
only the ones whose value differs from what the new socket already has, so
a default is never turned into an explicit setting (an explicit SO_RCVBUF
would lock the buffer size, for instance).  Images are untrusted: an option
not in the table, or a value of the wrong size, is refused.

Special cases:

* SO_RCVBUF/SO_SNDBUF: restored (with the FORCE variants, as root) only when
  the dumped socket's size was locked by hand (SO_BUF_LOCK bits), then the
  lock bits are set exactly as dumped; an unlocked size is the kernel's to
  tune.
* Classic BPF filters (SO_ATTACH_FILTER): read back with SO_GET_FILTER and
  attached again, then SO_LOCK_FILTER.  An eBPF program attached with
  SO_ATTACH_BPF reads back the same way only if the kernel translated it,
  otherwise SO_GET_FILTER fails and the dump refuses it.
* Raw sockets: IP_HDRINCL (a new IPPROTO_RAW socket has it already),
  IP_NODEFRAG and the ICMP type filter (SOL_RAW ICMP_FILTER, IPPROTO_ICMP
  only); IPv6: IPV6_HDRINCL, IPV6_CHECKSUM (fixed at offset 2 for ICMPv6,
  where it cannot be set and so never differs) and ICMPV6_FILTER (256 bits).
* SO_SNDLOWAT cannot be set on Linux (always 1) and is not carried.
* TCP_MAXSEG of a connected TCP socket is the negotiated MSS: carried by the
  repair state (net/inet.py), not here.

Cost: about 40 getsockopt calls per socket at dump, as many at restore.
"""
from __future__ import annotations

import ctypes
import os
import socket
import struct
from dataclasses import dataclass

from refcr.errors import RestoreError, UnsupportedObject
from refcr.pb import sockopts_pb2

SOL_SOCKET, IPPROTO_IP, IPPROTO_IPV6, SOL_TCP, SOL_NETLINK, SOL_UDPLITE, SOL_PACKET = 1, 0, 41, 6, 270, 136, 263
SOL_RAW, SOL_ICMPV6 = 255, 58
SO_ATTACH_FILTER, SO_DETACH_FILTER, SO_GET_FILTER, SO_LOCK_FILTER = 26, 27, 26, 44
SO_RCVBUF, SO_SNDBUF, SO_RCVBUFFORCE, SO_SNDBUFFORCE, SO_BUF_LOCK = 8, 7, 33, 32, 72
SOCK_SNDBUF_LOCK, SOCK_RCVBUF_LOCK = 1, 2
BPF_MAXINSNS = 4096

_libc = ctypes.CDLL(None, use_errno=True)

INET, INET6, TCP, NETLINK, UDPLITE, PACKET, ANY = "inet", "inet6", "tcp", "netlink", "udplite", "packet", "any"
RAW, RAW6 = "raw", "raw6"


@dataclass(frozen=True)
class Opt:
    level: int
    num: int
    name: str
    size: int          # bytes of the value (getsockopt buffer)
    applies: str       # ANY, INET (AF_INET), INET6, TCP / UDPLITE (either family), NETLINK, PACKET,
                       # RAW / RAW6 (SOCK_RAW of AF_INET / AF_INET6)
    connected: bool = True   # also set on a connected (established) socket


TABLE: tuple[Opt, ...] = (
    Opt(SOL_SOCKET, 12, "SO_PRIORITY", 4, ANY),
    Opt(SOL_SOCKET, 18, "SO_RCVLOWAT", 4, ANY),
    Opt(SOL_SOCKET, 36, "SO_MARK", 4, ANY),
    Opt(SOL_SOCKET, 16, "SO_PASSCRED", 4, ANY),
    Opt(SOL_SOCKET, 34, "SO_PASSSEC", 4, ANY),
    Opt(SOL_SOCKET, 5, "SO_DONTROUTE", 4, ANY),
    Opt(SOL_SOCKET, 11, "SO_NO_CHECK", 4, ANY),
    Opt(SOL_SOCKET, 10, "SO_OOBINLINE", 4, ANY),
    Opt(SOL_SOCKET, 6, "SO_BROADCAST", 4, ANY),
    Opt(SOL_SOCKET, 9, "SO_KEEPALIVE", 4, ANY),
    Opt(SOL_SOCKET, 13, "SO_LINGER", 8, ANY),
    Opt(SOL_SOCKET, 2, "SO_REUSEADDR", 4, ANY),
    Opt(SOL_SOCKET, 15, "SO_REUSEPORT", 4, ANY),
    Opt(SOL_SOCKET, 25, "SO_BINDTODEVICE", 16, ANY),
    Opt(SOL_SOCKET, 20, "SO_RCVTIMEO", 16, ANY),
    Opt(SOL_SOCKET, 21, "SO_SNDTIMEO", 16, ANY),
    Opt(SOL_SOCKET, 29, "SO_TIMESTAMP", 4, ANY),
    Opt(IPPROTO_IP, 1, "IP_TOS", 4, INET),
    Opt(IPPROTO_IP, 2, "IP_TTL", 4, INET),
    Opt(IPPROTO_IP, 15, "IP_FREEBIND", 4, INET),
    Opt(IPPROTO_IP, 19, "IP_TRANSPARENT", 4, INET),
    Opt(IPPROTO_IP, 11, "IP_RECVERR", 4, INET),
    Opt(IPPROTO_IP, 10, "IP_MTU_DISCOVER", 4, INET),
    Opt(IPPROTO_IP, 8, "IP_PKTINFO", 4, INET),
    Opt(IPPROTO_IPV6, 26, "IPV6_V6ONLY", 4, INET6),
    Opt(IPPROTO_IPV6, 16, "IPV6_UNICAST_HOPS", 4, INET6),
    Opt(IPPROTO_IPV6, 67, "IPV6_TCLASS", 4, INET6),
    Opt(IPPROTO_IPV6, 25, "IPV6_RECVERR", 4, INET6),
    Opt(IPPROTO_IPV6, 78, "IPV6_FREEBIND", 4, INET6),
    Opt(IPPROTO_IPV6, 75, "IPV6_TRANSPARENT", 4, INET6),
    Opt(IPPROTO_IP, 3, "IP_HDRINCL", 4, RAW),
    Opt(IPPROTO_IP, 22, "IP_NODEFRAG", 4, RAW),
    Opt(SOL_RAW, 1, "ICMP_FILTER", 4, RAW),
    Opt(IPPROTO_IPV6, 36, "IPV6_HDRINCL", 4, RAW6),
    Opt(IPPROTO_IPV6, 7, "IPV6_CHECKSUM", 4, RAW6),
    Opt(SOL_ICMPV6, 1, "ICMPV6_FILTER", 32, RAW6),
    Opt(SOL_TCP, 1, "TCP_NODELAY", 4, TCP),
    Opt(SOL_TCP, 2, "TCP_MAXSEG", 4, TCP, connected=False),
    Opt(SOL_TCP, 3, "TCP_CORK", 4, TCP, connected=False),
    Opt(SOL_TCP, 4, "TCP_KEEPIDLE", 4, TCP),
    Opt(SOL_TCP, 5, "TCP_KEEPINTVL", 4, TCP),
    Opt(SOL_TCP, 6, "TCP_KEEPCNT", 4, TCP),
    Opt(SOL_TCP, 18, "TCP_USER_TIMEOUT", 4, TCP),
    Opt(SOL_TCP, 13, "TCP_CONGESTION", 16, TCP),
    Opt(SOL_TCP, 7, "TCP_SYNCNT", 4, TCP),
    Opt(SOL_TCP, 8, "TCP_LINGER2", 4, TCP),
    Opt(SOL_TCP, 25, "TCP_NOTSENT_LOWAT", 4, TCP),
    Opt(SOL_UDPLITE, 10, "UDPLITE_SEND_CSCOV", 4, UDPLITE),
    Opt(SOL_UDPLITE, 11, "UDPLITE_RECV_CSCOV", 4, UDPLITE),
    Opt(SOL_PACKET, 10, "PACKET_VERSION", 4, PACKET),
    Opt(SOL_PACKET, 8, "PACKET_AUXDATA", 4, PACKET),
    Opt(SOL_PACKET, 9, "PACKET_ORIGDEV", 4, PACKET),
    Opt(SOL_PACKET, 15, "PACKET_VNET_HDR", 4, PACKET),
    Opt(SOL_PACKET, 17, "PACKET_TIMESTAMP", 4, PACKET),
    Opt(SOL_PACKET, 12, "PACKET_RESERVE", 4, PACKET),
    Opt(SOL_PACKET, 14, "PACKET_LOSS", 4, PACKET),
    Opt(SOL_PACKET, 20, "PACKET_QDISC_BYPASS", 4, PACKET),
    Opt(SOL_PACKET, 23, "PACKET_IGNORE_OUTGOING", 4, PACKET),
    Opt(SOL_NETLINK, 3, "NETLINK_PKTINFO", 4, NETLINK),
    Opt(SOL_NETLINK, 4, "NETLINK_BROADCAST_ERROR", 4, NETLINK),
    Opt(SOL_NETLINK, 5, "NETLINK_NO_ENOBUFS", 4, NETLINK),
    Opt(SOL_NETLINK, 8, "NETLINK_LISTEN_ALL_NSID", 4, NETLINK),
    Opt(SOL_NETLINK, 10, "NETLINK_CAP_ACK", 4, NETLINK),
    Opt(SOL_NETLINK, 11, "NETLINK_EXT_ACK", 4, NETLINK),
    Opt(SOL_NETLINK, 12, "NETLINK_GET_STRICT_CHK", 4, NETLINK),
)
BY_KEY = {(o.level, o.num): o for o in TABLE}


def _applies(o: Opt, family: int, stype: int, proto: int) -> bool:
    if o.applies == ANY:
        return True
    if o.applies == INET:
        return family == socket.AF_INET
    if o.applies == INET6:
        return family == socket.AF_INET6
    if o.applies == NETLINK:
        return family == socket.AF_NETLINK
    if o.applies == PACKET:
        return family == socket.AF_PACKET
    if o.applies == RAW:
        return family == socket.AF_INET and stype == socket.SOCK_RAW
    if o.applies == RAW6:
        return family == socket.AF_INET6 and stype == socket.SOCK_RAW
    if family not in (socket.AF_INET, socket.AF_INET6) or stype == socket.SOCK_RAW:
        return False
    if o.applies == UDPLITE:
        return proto == SOL_UDPLITE
    return proto == socket.IPPROTO_TCP


SO_MEMINFO = 55


def receive_memory(sk: socket.socket) -> int:
    """Receive memory in use (SO_MEMINFO's first word, sk_rmem_alloc): nonzero
    while anything is queued for reading, whatever poll() says."""
    return struct.unpack_from("I", sk.getsockopt(SOL_SOCKET, SO_MEMINFO, 36))[0]


def _read_filter(sk: socket.socket) -> bytes:
    """SO_GET_FILTER: the classic BPF program, 8 bytes per instruction."""
    ln = ctypes.c_uint(0)
    if _libc.getsockopt(sk.fileno(), SOL_SOCKET, SO_GET_FILTER, None, ctypes.byref(ln)) != 0:
        err = ctypes.get_errno()
        if err in (0, 2):          # ENOENT: nothing attached
            return b""
        raise OSError(err, "SO_GET_FILTER")
    if ln.value == 0:
        return b""
    buf = ctypes.create_string_buffer(8 * ln.value)
    if _libc.getsockopt(sk.fileno(), SOL_SOCKET, SO_GET_FILTER, buf, ctypes.byref(ln)) != 0:
        raise OSError(ctypes.get_errno(), "SO_GET_FILTER")
    return buf.raw[:8 * ln.value]


def dump(sk: socket.socket, what: str) -> sockopts_pb2.SockOpts:
    """The options of sk (a copy of the task's socket), for its entry."""
    out = sockopts_pb2.SockOpts()
    family, stype, proto = sk.family, sk.type, sk.proto
    for o in TABLE:
        if not _applies(o, family, stype, proto):
            continue
        try:
            val = sk.getsockopt(o.level, o.num, o.size)
        except OSError:
            continue                # not this socket's (e.g. TCP_MAXSEG of some states)
        out.opts.add(level=o.level, name=o.num, value=val)
    try:
        out.filter = _read_filter(sk)
    except OSError as exc:
        raise UnsupportedObject(f"{what}: its socket filter cannot be read back ({exc.strerror or exc}; "
                                f"an eBPF program, SO_ATTACH_BPF?)") from None
    out.lock_filter = bool(sk.getsockopt(SOL_SOCKET, SO_LOCK_FILTER))
    try:
        out.buf_lock = sk.getsockopt(SOL_SOCKET, SO_BUF_LOCK)
    except OSError:
        out.buf_lock = 0
    out.rcvbuf = sk.getsockopt(SOL_SOCKET, SO_RCVBUF)
    out.sndbuf = sk.getsockopt(SOL_SOCKET, SO_SNDBUF)
    return out


def _check(opts: sockopts_pb2.SockOpts, what: str) -> None:
    for so in opts.opts:
        o = BY_KEY.get((so.level, so.name))
        if o is None or len(so.value) > o.size:
            raise RestoreError(f"{what}: the image has an unknown socket option {so.level}/{so.name}")
    if len(opts.filter) % 8 or len(opts.filter) > 8 * BPF_MAXINSNS:
        raise RestoreError(f"{what}: the image's socket filter is malformed")
    if opts.buf_lock & ~(SOCK_SNDBUF_LOCK | SOCK_RCVBUF_LOCK):
        raise RestoreError(f"{what}: the image has unknown SO_BUF_LOCK bits {opts.buf_lock:#x}")


def restore(sk: socket.socket, opts: sockopts_pb2.SockOpts, what: str, connected: bool = False) -> None:
    """Set on sk the dumped options that differ from its current ones.

    connected: sk is an established TCP connection (its MSS comes from the
    repair state)."""
    _check(opts, what)
    for so in opts.opts:
        o = BY_KEY[(so.level, so.name)]
        if connected and not o.connected:
            continue
        try:
            if sk.getsockopt(o.level, o.num, o.size) == so.value:
                continue
            sk.setsockopt(o.level, o.num, so.value)
        except OSError as exc:
            raise RestoreError(f"{what}: cannot set {o.name} again: {exc.strerror or exc}") from None
    restore_buffers(sk, opts, what)
    if opts.filter:
        _attach_filter(sk, bytes(opts.filter), what)
    if opts.lock_filter:
        sk.setsockopt(SOL_SOCKET, SO_LOCK_FILTER, 1)


def restore_buffers(sk: socket.socket, opts: sockopts_pb2.SockOpts, what: str) -> None:
    """Locked buffer sizes as dumped, then the lock bits exactly as dumped."""
    try:
        if opts.buf_lock & SOCK_RCVBUF_LOCK and opts.rcvbuf:
            sk.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, opts.rcvbuf // 2)
        if opts.buf_lock & SOCK_SNDBUF_LOCK and opts.sndbuf:
            sk.setsockopt(SOL_SOCKET, SO_SNDBUFFORCE, opts.sndbuf // 2)
        if sk.getsockopt(SOL_SOCKET, SO_BUF_LOCK) != opts.buf_lock:
            sk.setsockopt(SOL_SOCKET, SO_BUF_LOCK, opts.buf_lock)
    except OSError as exc:
        raise RestoreError(f"{what}: cannot set its buffer sizes again: {exc.strerror or exc}") from None


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _attach_filter(sk: socket.socket, prog: bytes, what: str) -> None:
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if _libc.setsockopt(sk.fileno(), SOL_SOCKET, SO_ATTACH_FILTER, ctypes.byref(fprog),
                        ctypes.sizeof(fprog)) != 0:
        err = ctypes.get_errno()
        raise RestoreError(f"{what}: cannot attach its socket filter again: {os.strerror(err)}")
