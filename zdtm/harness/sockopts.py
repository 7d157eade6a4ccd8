"""The socket-level state of one socket fd, for the harness's state check.

The harness takes a pidfd_getfd copy of the task's socket (the same open
file description) and reads, without consuming anything: the socket
options of every level that applies to its family and protocol, the
classic BPF filter (SO_GET_FILTER, as a digest of its instructions), the
addresses (inet: both ends; unix: the bound name), the receive queue
length (SIOCINQ, not for TCP), for inet sockets the shutdown bits poll()
shows and the TCP state, for a netlink socket its SOL_NETLINK options and
every group joined, for a packet socket its SOL_PACKET options and, from
packet_diag, its protocol, device index, memberships and rings, for a ping
socket its peer and state (/proc/PID/net/icmp[6]), for a raw socket its
IP_HDRINCL, IP_NODEFRAG, ICMP filter (IPv6: IPV6_HDRINCL, IPV6_CHECKSUM,
ICMPv6 filter), peer and state (/proc/PID/net/raw[6]), for a UDP-Lite socket
its checksum coverage, for a unix socket SO_PEERCRED (uid, gid and the
pid in the owner's pid namespace: restored sockets must name the same
process of the tree), and, for a unix socket
bound to a path, the socket file's mode, owner and group.  Everything is
rendered as ``key=value`` pairs appended to the fd's fdinfo pairs, so a
restore that loses an option shows up as a one-line difference.

Not compared: values the kernel derives from the moment (queue lengths,
TCP sequence numbers, TCP_MAXSEG of a connection (the kernel's mss_cache,
which TCP_REPAIR_OPTIONS does not recompute: a repaired connection starts at
the default segment size and grows it again on path-MTU events), and the inode of the socket
file (a restored file is a new one).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import select
import socket
import stat
import struct

_libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD = 438
SOL_TCP, SOL_UDP = 6, 17

# (level, name, option number, how to render: "i" int, "linger", "timeval", "str", "bool")
SOL_SOCKET_OPTS = (
    ("priority", 12, "i"), ("rcvlowat", 18, "i"), ("sndlowat", 19, "i"), ("mark", 36, "i"),
    ("passcred", 16, "i"), ("passsec", 34, "i"), ("dontroute", 5, "i"), ("no_check", 11, "i"),
    ("oobinline", 10, "i"), ("broadcast", 6, "i"), ("keepalive", 9, "i"), ("linger", 13, "linger"),
    ("reuseaddr", 2, "i"), ("reuseport", 15, "i"), ("bindtodevice", 25, "str"),
    ("rcvbuf", 8, "i"), ("sndbuf", 7, "i"), ("rcvtimeo", 20, "timeval"), ("sndtimeo", 21, "timeval"),
    ("peek_off", 42, "i"), ("acceptconn", 30, "i"), ("lock_filter", 44, "i"), ("buf_lock", 72, "i"),
    ("timestamp", 29, "i"), ("busy_poll", 46, "i")
)
IP_OPTS = (
    ("ip_tos", 1, "i"), ("ip_ttl", 2, "i"), ("ip_freebind", 15, "i"), ("ip_transparent", 19, "i"),
    ("ip_recverr", 11, "i"), ("ip_mtu_discover", 10, "i"), ("ip_pktinfo", 8, "i"),
)
IPV6_OPTS = (
    ("ipv6_v6only", 26, "i"), ("ipv6_unicast_hops", 16, "i"), ("ipv6_tclass", 67, "i"),
    ("ipv6_recverr", 25, "i"), ("ipv6_freebind", 78, "i"), ("ipv6_transparent", 75, "i"),
)
TCP_OPTS = (
    ("tcp_nodelay", 1, "i"), ("tcp_cork", 3, "i"), ("tcp_maxseg", 2, "i"), ("tcp_keepidle", 4, "i"),
    ("tcp_keepintvl", 5, "i"), ("tcp_keepcnt", 6, "i"), ("tcp_user_timeout", 18, "i"),
    ("tcp_congestion", 13, "str"), ("tcp_syncnt", 7, "i"), ("tcp_linger2", 8, "i"),
    ("tcp_defer_accept", 9, "i"),
    ("tcp_notsent_lowat", 25, "i"),
)
UDP_OPTS = (("udp_cork", 1, "i"),)
SOL_RAW, SOL_ICMPV6 = 255, 58
RAW_IP_OPTS = (("ip_hdrincl", 3, "i"), ("ip_nodefrag", 22, "i"))
RAW_OPTS = (("icmp_filter", 1, "hex"),)
RAW_IPV6_OPTS = (("ipv6_hdrincl", 36, "i"), ("ipv6_checksum", 7, "i"))
ICMPV6_OPTS = (("icmp6_filter", 1, "hex"),)
SOL_UDPLITE = 136
UDPLITE_OPTS = (("udplite_send_cscov", 10, "i"), ("udplite_recv_cscov", 11, "i"))


def _getsockopt(fd: int, level: int, opt: int, size: int) -> bytes | None:
    buf = ctypes.create_string_buffer(size)
    ln = ctypes.c_uint(size)
    if _libc.getsockopt(fd, level, opt, buf, ctypes.byref(ln)) != 0:
        return None
    return buf.raw[:ln.value]


def _render(raw: bytes | None, how: str) -> str | None:
    if raw is None:
        return None
    if how == "i":
        return str(int.from_bytes(raw[:4].ljust(4, b"\0"), "little", signed=True))
    if how == "linger":
        on, secs = struct.unpack("ii", raw[:8].ljust(8, b"\0"))
        return f"{secs}s" if on else "off"
    if how == "hex":
        return raw.hex()
    if how == "timeval":
        sec, usec = struct.unpack("qq", raw[:16].ljust(16, b"\0"))
        return f"{sec}.{usec:06d}"
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _filter(fd: int) -> str:
    """SO_GET_FILTER: 'none' or the instruction count and a digest."""
    ln = ctypes.c_uint(0)
    if _libc.getsockopt(fd, socket.SOL_SOCKET, 26, None, ctypes.byref(ln)) != 0 or ln.value == 0:
        return "none"
    raw = _getsockopt(fd, socket.SOL_SOCKET, 26, 8 * ln.value)
    if raw is None:
        return "unreadable"
    return f"{ln.value}:{hashlib.sha1(raw[:8 * ln.value]).hexdigest()[:12]}"


SOL_NETLINK = 270
NETLINK_OPTS = (
    ("nl_pktinfo", 3, "i"), ("nl_broadcast_error", 4, "i"), ("nl_no_enobufs", 5, "i"),
    ("nl_listen_all_nsid", 8, "i"), ("nl_cap_ack", 10, "i"), ("nl_ext_ack", 11, "i"),
    ("nl_get_strict_chk", 12, "i"),
)


SOL_PACKET = 263
CLONE_NEWNET = 0x40000000
PACKET_OPTS = (
    ("pk_version", 10, "i"), ("pk_auxdata", 8, "i"), ("pk_origdev", 9, "i"), ("pk_vnet_hdr", 15, "i"),
    ("pk_timestamp", 17, "i"), ("pk_reserve", 12, "i"), ("pk_loss", 14, "i"), ("pk_fanout", 18, "i"),
    ("pk_qdisc_bypass", 20, "i"), ("pk_ignore_outgoing", 23, "i"),
)


def _packet_diag(pid: int, ino: int) -> list[tuple[str, str]]:
    """A packet socket's bound device index, protocol, memberships and rings,
    from packet_diag in the task's network namespace (the harness enters it)."""
    req = struct.pack("=BBHII8s", socket.AF_PACKET, 0, 0, 0, 0x1 | 0x2 | 0x4, b"\xff" * 8)
    nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(nsfd, CLONE_NEWNET) != 0:
            return []
        try:
            nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise RuntimeError("harness: cannot setns back to its own network namespace")
    except OSError:
        return []
    finally:
        os.close(nsfd)
        os.close(own)
    with nl:
        nl.send(struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0) + req)
        while True:
            buf = nl.recv(1 << 20)
            off = 0
            while off + 16 <= len(buf):
                mlen, mtype = struct.unpack_from("=IH", buf, off)
                body = buf[off + 16:off + mlen]
                off += (mlen + 3) & ~3
                if mtype in (2, 3) or mlen < 16:       # NLMSG_ERROR, NLMSG_DONE
                    return []
                if struct.unpack_from("=I", body, 4)[0] == ino:
                    return _packet_attrs(body)


def _packet_attrs(body: bytes) -> list[tuple[str, str]]:
    out = [("pk_num", f"{struct.unpack_from('=H', body, 2)[0]:#06x}")]
    off, mc, rings = 16, [], []
    while off + 4 <= len(body):
        alen, atype = struct.unpack_from("=HH", body, off)
        if alen < 4:
            break
        val = body[off + 4:off + alen]
        off += (alen + 3) & ~3
        if atype == 0:
            out.append(("pk_ifindex", str(struct.unpack_from("=I", val)[0])))
        elif atype == 1:
            for i in range(0, len(val) - 43, 44):
                index, count, mtype, maddr_len = struct.unpack_from("=IIHH", val, i)
                mc.append(f"{index}:{mtype}:{val[i + 12:i + 12 + min(maddr_len, 8)].hex()}x{count}")
        elif atype in (2, 3):
            rings.append("rx" if atype == 2 else "tx")
    out.append(("pk_mclist", ",".join(sorted(mc)) or "-"))
    out.append(("pk_rings", ",".join(rings) or "-"))
    return out


def _netlink_groups(fd: int) -> list[tuple[str, str]]:
    """Every multicast group joined (NETLINK_LIST_MEMBERSHIPS), above 32 too."""
    raw = _getsockopt(fd, SOL_NETLINK, 9, 1024)
    if raw is None:
        return []
    words = struct.unpack(f"{len(raw) // 4}I", raw[:len(raw) // 4 * 4])
    groups = [32 * i + b + 1 for i, w in enumerate(words) for b in range(32) if w >> b & 1]
    return [("nl_groups", ",".join(map(str, groups)) or "-")]


def _levels(family: int, stype: int, proto: int) -> list[tuple[int, tuple]]:
    out: list[tuple[int, tuple]] = [(socket.SOL_SOCKET, SOL_SOCKET_OPTS)]
    if family == socket.AF_NETLINK:
        out.append((SOL_NETLINK, NETLINK_OPTS))
    if family == socket.AF_PACKET:
        out.append((SOL_PACKET, PACKET_OPTS))
    if family == socket.AF_INET:
        out.append((socket.IPPROTO_IP, IP_OPTS))
    elif family == socket.AF_INET6:
        out.append((socket.IPPROTO_IPV6, IPV6_OPTS))
    if family == socket.AF_INET and stype == socket.SOCK_RAW:
        out.extend([(socket.IPPROTO_IP, RAW_IP_OPTS), (SOL_RAW, RAW_OPTS)])
    elif family == socket.AF_INET6 and stype == socket.SOCK_RAW:
        out.extend([(socket.IPPROTO_IPV6, RAW_IPV6_OPTS), (SOL_ICMPV6, ICMPV6_OPTS)])
    elif family in (socket.AF_INET, socket.AF_INET6):
        if proto == socket.IPPROTO_TCP:
            out.append((SOL_TCP, TCP_OPTS))
        elif proto == socket.IPPROTO_UDP:
            out.append((SOL_UDP, UDP_OPTS))
        elif proto == SOL_UDPLITE:
            out.extend([(SOL_UDP, UDP_OPTS), (SOL_UDPLITE, UDPLITE_OPTS)])
    return out


def _unix_file(pid: int, name: bytes) -> list[tuple[str, str]]:
    """A unix socket bound to a path: its file's mode and owner (as the task sees it)."""
    if not name or name[:1] == b"\0":
        return []
    path = os.fsdecode(name)
    base = f"/proc/{pid}/root" if path.startswith("/") else f"/proc/{pid}/cwd"
    try:
        st = os.lstat(os.path.join(base, path.lstrip("/")))
    except OSError:
        return [("sock_file", "absent")]
    if not stat.S_ISSOCK(st.st_mode):
        return [("sock_file", "not-a-socket")]
    return [("sock_file", f"{stat.S_IMODE(st.st_mode):o}:{st.st_uid}:{st.st_gid}")]


def _names(sk: socket.socket) -> list[tuple[str, str]]:
    out = []
    for key, fn in (("sockname", sk.getsockname), ("peername", sk.getpeername)):
        try:
            addr = fn()
        except OSError:
            continue
        if isinstance(addr, bytes):
            addr = addr.decode(errors="replace").replace("\0", "@")
        out.append((key, repr(addr)))
    return out


def _queues(fd: int, family: int, stype: int) -> list[tuple[str, str]]:
    """Bytes waiting to be read (SIOCINQ: a unix stream's total, a datagram
    socket's first message).  Not for TCP, whose bytes legitimately move from
    the sender's queue to the receiver's when a restored window opens, and no
    SIOCOUTQ (memory accounting, which depends on how the bytes were sent)."""
    if family in (socket.AF_INET, socket.AF_INET6) and stype == socket.SOCK_STREAM:
        return []
    buf = ctypes.c_int(0)
    if _libc.ioctl(fd, 0x541B, ctypes.byref(buf)) != 0:
        return []
    return [("inq", str(buf.value))]


def _hangup(fd: int, proto: int) -> list[tuple[str, str]]:
    """The shutdown bits poll() shows (POLLRDHUP: reading shut down; POLLHUP:
    both, or a TCP socket not connected) and a TCP socket's state (TCP_INFO)."""
    p = select.poll()
    p.register(fd, select.POLLRDHUP)
    ev = dict(p.poll(0)).get(fd, 0)
    out = [("hup", ("rdhup" if ev & select.POLLRDHUP else "-") + ("+hup" if ev & select.POLLHUP else ""))]
    if proto == SOL_TCP:
        info = _getsockopt(fd, SOL_TCP, 11, 8)
        if info:
            out.append(("tcp_state", str(info[0])))
    return out


def _proc_peer(pid: int, fd: int, family: int, table: str) -> list[tuple[str, str]]:
    """A ping, raw or TCP socket's state and peer from /proc/PID/net/TABLE[6]
    (getpeername() says ENOTCONN on a connected ping or raw socket, which has
    no peer port, and on a TCP socket in SYN_SENT)."""
    ino = str(os.fstat(fd).st_ino)
    try:
        with open(f"/proc/{pid}/net/{table}{'6' if family == socket.AF_INET6 else ''}") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return []
    return [(f"{table}_peer", f"{r[2]}/{r[3]}") for r in rows if len(r) > 9 and r[9] == ino]


def _cred_pid(owner: int, cpid: int) -> str:
    """SO_PEERCRED's pid as the fd's owner's pid namespace knows it: the same
    across C/R when it names a process of the tree; 'none' for no peer,
    'other' for a process gone or in another pid namespace (refcr's, when
    refcr made the pair itself)."""
    if cpid <= 0:
        return "none"
    try:
        if os.readlink(f"/proc/{cpid}/ns/pid") != os.readlink(f"/proc/{owner}/ns/pid"):
            return "other"
        with open(f"/proc/{cpid}/status") as f:
            return next(line.split()[-1] for line in f if line.startswith("NSpid:"))
    except (OSError, StopIteration):
        return "other"


def _connected(sk: socket.socket) -> bool:
    try:
        sk.getpeername()
        return True
    except OSError:
        return False


def socket_state(pid: int, fd: int) -> list[tuple[str, str]]:
    """key=value pairs for the socket at /proc/PID/fd/FD ([] if it cannot be copied)."""
    pidfd = -1
    try:
        pidfd = os.pidfd_open(pid)
        copy = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
    except OSError:
        return []
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    if copy < 0:
        return []
    sk = socket.socket(fileno=copy)
    try:
        family, stype, proto = sk.family, sk.type, sk.proto
        out: list[tuple[str, str]] = [("sock", f"{int(family)}/{int(stype)}/{proto}")]
        connected = _connected(sk)
        for level, opts in _levels(family, stype, proto):
            for name, num, how in opts:
                if name == "tcp_maxseg" and connected:
                    continue        # the negotiated MSS (mss_cache): a repaired connection computes it again
                val = _render(_getsockopt(copy, level, num, 64), how)
                if val is not None:
                    out.append((name, val))
        out.append(("filter", _filter(copy)))
        out.extend(_queues(copy, family, stype))
        if family in (socket.AF_INET, socket.AF_INET6):
            out.extend(_hangup(copy, proto))
        if stype == socket.SOCK_DGRAM and proto in (socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6):
            out.extend(_proc_peer(pid, copy, family, "icmp"))
        if stype == socket.SOCK_RAW and family in (socket.AF_INET, socket.AF_INET6):
            out.extend(_proc_peer(pid, copy, family, "raw"))
        if stype == socket.SOCK_STREAM and family in (socket.AF_INET, socket.AF_INET6):
            out.extend(_proc_peer(pid, copy, family, "tcp"))   # a SYN_SENT socket's peer too
        if family == socket.AF_NETLINK:
            out.extend(_netlink_groups(copy))
        if family == socket.AF_PACKET:
            out.extend(_packet_diag(pid, os.fstat(copy).st_ino))
        if family == socket.AF_UNIX:
            cred = _getsockopt(copy, socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            if cred is not None:
                cpid, uid, gid = struct.unpack("iii", cred)
                out.append(("peercred", f"{uid}:{gid}:{_cred_pid(pid, cpid)}"))
        names = _names(sk)
        out.extend(names)
        if family == socket.AF_UNIX:
            try:
                bound = sk.getsockname()
            except OSError:
                bound = ""
            out.extend(_unix_file(pid, os.fsencode(bound) if isinstance(bound, str) else bound))
        return out
    finally:
        sk.close()

