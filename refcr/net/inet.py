"""Inet sockets (IPv4 and IPv6): TCP listeners, UDP, and established TCP.

Dump looks at the socket through a pidfd_getfd copy of it (the same open
file description as the task's): getsockname/getpeername give the
addresses, TCP_INFO the TCP state (and, for a listener, its backlog and the
length of its accept queue), getsockopt the options.  refcr never consumes
anything from the task's socket.

* A TCP listener comes back bound and listening with its backlog.  A
  connection waiting in its accept queue cannot be restored: the dump fails
  (with --skip-in-flight it is dropped, with a warning).
* --tcp-close: connections are dumped without repair state and restored as
  new sockets, neither bound nor connected (CRIU's meaning).
* A UDP socket comes back bound and connected as it was.  Datagrams queued
  for reading are dumped with their senders (peeked one after the other with
  SO_PEEK_OFF) and sent again at restore from a raw socket bound to the
  sender's address, with the sender's port in the UDP header
  (:func:`_requeue_udp`), so they read back with the same source.
* UDP-Lite (IPPROTO_UDPLITE) sockets are UDP sockets to the kernel: the same
  bind, connect, queue and shutdown handling, plus their checksum coverage
  (UDPLITE_SEND_CSCOV / UDPLITE_RECV_CSCOV, net/sockopts.py).  Queued
  datagrams are sent again as UDP-Lite from the raw socket, with full
  coverage and the checksum computed here (a zero UDP-Lite checksum is
  invalid); the receiver's RECV_CSCOV admits full coverage.
* ICMP echo ("ping") sockets (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6)
  come back bound with their echo identifier as the port (getsockname
  shows it), connected as they were, with their options.  Their creation
  needs net.ipv4.ping_group_range to admit the restoring user in the
  tree's namespace (namespaced sysctl, restored with the namespace).
  Echo replies waiting to be read cannot be restored: a ping socket has no
  SO_PEEK_OFF, so the queue cannot be read past its first reply without
  consuming it; the dump refuses such a socket by name (CRIU drops inet
  datagram queues altogether).  inet_diag has no ping sockets: their
  shutdown bits come from poll() like those of a never-bound socket.
* Raw sockets (SOCK_RAW, any IP protocol 1-255) come back bound to their
  local address and connected to their peer as they were (the peer from
  /proc/PID/net/raw[6]: getpeername() says ENOTCONN, a raw socket has no
  peer port), with their options, among them IP_HDRINCL, IP_NODEFRAG and
  ICMP_FILTER, IPV6_HDRINCL, IPV6_CHECKSUM and ICMPV6_FILTER (net/sockopts.py).
  Their creation needs CAP_NET_RAW in the owner of the tree's network
  namespace.  Packets waiting to be read are refused by name, as on ping
  sockets: a raw socket has no SO_PEEK_OFF, and the packets are copies of
  others' traffic, which cannot be sent again without being delivered to
  every other socket as well.  A raw socket's SEND_SHUTDOWN alone shows
  nowhere (raw_diag is not built here; poll() shows only both bits) and has
  no effect on sending either: it is not carried.
* shutdown(): the bits (sk_shutdown) come from inet_diag (net/sockdiag.py)
  and are set again with shutdown() once the socket is rebuilt (after the
  requeued datagrams, after repair mode for a connection).  A socket never
  bound is not in inet_diag's tables: poll() still shows a shut-down read
  side, but SEND_SHUTDOWN alone on such a socket is seen nowhere and lost
  (no socket option reads sk_shutdown; a send to probe it would autobind the
  socket even when it fails with EDESTADDRREQ).
* An established TCP connection needs --tcp-established (without it the
  dump fails naming the connection).  The copy is put into repair mode
  (TCP_REPAIR): the sequence numbers and the unread / unacknowledged bytes
  of both queues, the negotiated options (MSS, window scale, SACK,
  timestamps), the timestamp clock and the windows are read.  The socket
  stays in repair mode until the dumped task is dead and refcr's copy is
  closed: a repair-mode socket goes away without sending FIN or RST, so the
  peer notices nothing.  If the task runs on (--leave-running, a failed
  dump) repair mode is left first (end_repair).  Restore creates the
  socket in repair mode inside the tree's network namespace, sets both
  sequence numbers, binds, connects (no SYN is sent in repair mode), sets
  the options, refills the queues, sets the windows and leaves repair mode;
  bytes that were never sent are then sent normally.
* Half-closed connections (FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, and
  CLOSING: both FINs sent, ours not yet acknowledged), as
  CRIU's soccr does them: dumped like established ones with the FINs left
  out of the sequence numbers and queue lengths, rebuilt ESTABLISHED in
  repair mode, then the FINs are replayed (:func:`_replay_fins`): ours with
  shutdown(), the peer's FIN and ACK as segments sent to the socket from the
  peer's address through a raw socket.  After the restore TCP carries on: a
  window the receiver had closed may open again (TCP_REPAIR does not restore
  the receiver's MSS estimate), so a FIN that waited behind it may go out.
* A connect() in progress (SYN_SENT, with --tcp-established) as soccr does
  it: the dump reads its initial sequence number in repair mode and its peer
  from inet_diag (getpeername() says ENOTCONN before the handshake); the
  restore binds the new socket, sets the sequence number in repair mode and
  connects again with repair mode off, so the SYN goes out anew with the same
  sequence number and the handshake goes on (a task blocked in connect()
  waits for it on the restarted call).  Data queued behind the SYN (TCP fast
  open) is refused.
  A closed TCP socket (CLOSE) comes back as a new
  unconnected one, refused if it still has bytes to read.

A peer that keeps sending while the tree is down is held off by the network
lock (net/netlock.py): the whole namespace of a tree that has its own, or
else each dumped connection by its 4-tuple, locked just before its queues
are read (:func:`_lock_connection`) and unlocked by the restore, so the peer
sees no RST and retransmits what was dropped.
"""
from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import stat as stat_mod
import struct
import time

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.log import log
from refcr.net import netlock, nsenter, sockdiag, sockopts
from refcr.pb import inet_pb2
from refcr.ptrace import native

SOL_TCP = 6
TCP_NODELAY, TCP_MAXSEG, TCP_CORK, TCP_INFO = 1, 2, 3, 11
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS = 19, 20, 21, 22
TCP_TIMESTAMP, TCP_REPAIR_WINDOW = 24, 29
TCP_REPAIR_ON, TCP_REPAIR_OFF, TCP_REPAIR_OFF_NO_WP = 1, 0, -1
TCP_NO_QUEUE, TCP_RECV_QUEUE, TCP_SEND_QUEUE = 0, 1, 2
TCPOPT_MSS, TCPOPT_WINDOW, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP = 2, 3, 4, 8
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN = 1, 7, 10
TCP_SYN_SENT, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_CLOSE_WAIT, TCP_LAST_ACK = 2, 4, 5, 8, 9
TCP_CLOSING = 11
# Connections rebuilt in repair mode; the half-closed ones get their FINs replayed.
REPAIRED_STATES = (TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_CLOSING)
CONNECTION_STATES = REPAIRED_STATES + (TCP_SYN_SENT,)        # what --tcp-close drops
FIN_SENT = (TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_LAST_ACK, TCP_CLOSING)     # our FIN is in write_seq
FIN_SENT_UNACKED = (TCP_FIN_WAIT1, TCP_LAST_ACK, TCP_CLOSING)            # ... and in SIOCOUTQ
FIN_RECEIVED = (TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_CLOSING)              # the peer's FIN is in rcv_nxt
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}
UDP_CORK = 1
IPPROTO_UDPLITE = 136
# The datagram kinds restored like UDP (ping only in its own family).
DGRAM_PROTOS = {socket.AF_INET: (socket.IPPROTO_UDP, IPPROTO_UDPLITE, socket.IPPROTO_ICMP),
                socket.AF_INET6: (socket.IPPROTO_UDP, IPPROTO_UDPLITE, socket.IPPROTO_ICMPV6)}
PING_PROTOS = (socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6)
RAW_PROTOS = range(1, 256)          # socket(AF_INET*, SOCK_RAW, 0) is EPROTONOSUPPORT
UDP_PROTOS = (socket.IPPROTO_UDP, IPPROTO_UDPLITE)
SO_PEEK_OFF = 42
SIOCINQ, SIOCOUTQ, SIOCOUTQNSD = 0x541B, 0x5411, 0x894B
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
STATUS_FLAGS = os.O_NONBLOCK | os.O_ASYNC
CHUNK = 16384
V4MAPPED = b"\0" * 10 + b"\xff\xff"
REPAIR_NOTE = "tcp-repair"      # the guardian's note: [[pid, fd], ...] in repair mode

# Copies of dumped sockets held in repair mode (see end_repair).
_repaired: list[socket.socket] = []


def end_repair(resume: bool) -> None:
    """After the dump.  resume=True: the tasks run on, so their sockets
    leave repair mode (quietly, no window probe).  resume=False: the tasks
    are dead; closing the repair-mode copies drops the connections silently."""
    while _repaired:
        s = _repaired.pop()
        if resume:
            try:
                s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
            except OSError as exc:
                log.error("cannot take a dumped TCP socket out of repair mode: %s", exc.strerror)
        s.close()


# ------------------------------------------------------------------ dump --

def _ioctl_int(s: socket.socket, req: int) -> int:
    return struct.unpack("i", fcntl.ioctl(s.fileno(), req, b"\0" * 4))[0]


def _getint(s: socket.socket, level: int, opt: int) -> int:
    return s.getsockopt(level, opt)


def _addr(family: int, sockaddr: tuple) -> tuple[bytes, int, int]:
    packed = socket.inet_pton(family, sockaddr[0].split("%")[0])
    scope = sockaddr[3] if family == socket.AF_INET6 else 0
    return packed, sockaddr[1], scope


def _unpack_addr(family: int, packed: bytes, port: int, scope: int) -> tuple:
    host = socket.inet_ntop(family, packed) if packed else ("::" if family == socket.AF_INET6 else "0.0.0.0")
    return (host, port, 0, scope) if family == socket.AF_INET6 else (host, port)


def connection(e: inet_pb2.InetSocketEntry) -> str:
    if e.type == socket.SOCK_RAW:
        return _raw_connection(e)
    proto = {socket.IPPROTO_TCP: "tcp", IPPROTO_UDPLITE: "udplite", socket.IPPROTO_ICMP: "ping",
             socket.IPPROTO_ICMPV6: "ping"}.get(e.protocol, "udp")
    ver = "6" if e.family == socket.AF_INET6 else ""

    def fmt(packed: bytes, port: int) -> str:
        host = socket.inet_ntop(e.family, packed) if packed else "*"
        return f"[{host}]:{port}" if ver else f"{host}:{port}"
    out = f"{proto}{ver} {fmt(e.src_addr, e.src_port)}"
    if e.dst_port:
        out += f" -> {fmt(e.dst_addr, e.dst_port)}"
    return out


def _raw_connection(e: inet_pb2.InetSocketEntry) -> str:
    """'raw6 proto 58 [::1] -> [::1]': a raw socket has no ports."""
    ver = "6" if e.family == socket.AF_INET6 else ""

    def fmt(packed: bytes) -> str:
        host = socket.inet_ntop(e.family, packed) if len(packed) in (4, 16) else "*"
        return f"[{host}]" if ver else host
    out = f"raw{ver} proto {e.protocol} {fmt(e.src_addr)}"
    return out + (f" -> {fmt(e.dst_addr)}" if e.state == TCP_ESTABLISHED else "")


def _copy(t: FdTarget, ctx: DumpFiles) -> int:
    pidfds = ctx.extra.setdefault("inet-pidfds", {})
    if t.pid not in pidfds:
        pidfds[t.pid] = native.pidfd_open(t.pid)
    return native.pidfd_getfd(pidfds[t.pid], t.fd)


def _family(fd: int) -> int:
    s = socket.socket(fileno=os.dup(fd))
    try:
        return s.family
    finally:
        s.close()


class InetKind:
    field = "inet"

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        if not (stat_mod.S_ISSOCK(t.st.st_mode) and t.link.startswith("socket:[")):
            return False
        fd = _copy(t, ctx)
        try:
            return _family(fd) in (socket.AF_INET, socket.AF_INET6)
        finally:
            os.close(fd)

    def dump(self, t: FdTarget, ctx: DumpFiles) -> inet_pb2.InetSocketEntry:
        s = socket.socket(fileno=_copy(t, ctx))
        keep = False
        try:
            e, keep = _dump_socket(s, t, ctx)
            return e
        finally:
            if not keep:
                s.close()

    def open(self, e: inet_pb2.InetSocketEntry, ctx: RestoreFiles) -> int:
        if not ctx.extra.get("inet-prepared"):
            ctx.extra["inet-prepared"] = True
            _prepare(ctx)
        premade = ctx.extra.setdefault("inet-premade", [])
        key = e.SerializeToString()
        for i, (k, fd) in enumerate(premade):
            if k == key:        # identical entries (SO_REUSEPORT twins) are interchangeable
                del premade[i]
                return fd
        with nsenter.entered(ctx.root_pid):
            s = _restore_socket(e, closed=ctx.opts.tcp_close)
        fcntl.fcntl(s.fileno(), fcntl.F_SETFL, e.flags & STATUS_FLAGS)
        return s.detach()


def _kind_name(stype: int, proto: int) -> str:
    if stype == socket.SOCK_RAW:
        return "raw"
    if proto in (socket.IPPROTO_ICMP, socket.IPPROTO_ICMPV6):
        return "ICMP (ping)"
    if proto == 136:
        return "UDP-Lite"
    if proto == 132:
        return "SCTP"
    if proto == 262:
        return "MPTCP"
    return "inet"


def connection_family(family: int) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"


def _dump_socket(s: socket.socket, t: FdTarget, ctx: DumpFiles) -> tuple[inet_pb2.InetSocketEntry, bool]:
    family, stype, proto = s.family, s.type, s.proto
    e = inet_pb2.InetSocketEntry(family=family, type=stype, protocol=proto, flags=t.flags)
    if not _supported(family, stype, proto):
        raise UnsupportedObject(f"{describe(t)}: {_kind_name(stype, proto)} socket "
                                f"({connection_family(family)}, type {stype}, protocol {proto}): "
                                f"only TCP, UDP, UDP-Lite, ICMP (ping) and raw are supported")
    if stype == socket.SOCK_RAW:
        _dump_raw(s, e, t)
        e.shutdown = _polled_shutdown(s)
        return e, False
    e.src_addr, e.src_port, e.src_scope = _addr(family, s.getsockname())
    if not e.src_port:
        e.src_addr = b""
    try:
        e.dst_addr, e.dst_port, e.dst_scope = _addr(family, s.getpeername())
    except OSError:
        pass
    _dump_options(s, e)
    keep = False
    if proto == socket.IPPROTO_TCP:
        info = s.getsockopt(SOL_TCP, TCP_INFO, 104)
        e.state = info[0]
        if e.state == TCP_LISTEN:
            accept_queue, e.backlog = struct.unpack_from("II", info, 24)   # tcpi_unacked, tcpi_sacked
            if accept_queue and ctx.opts.skip_in_flight:
                log.warning("%s: %s (listening): %d connection(s) not yet accepted are dropped (--skip-in-flight)",
                            describe(t), connection(e), accept_queue)
            elif accept_queue:
                raise UnsupportedObject(f"{describe(t)}: {connection(e)} (listening) has {accept_queue} "
                                        f"connection(s) waiting in its accept queue (--skip-in-flight drops them)")
        elif e.state in CONNECTION_STATES and ctx.opts.tcp_close:
            pass                # no connection state: it comes back closed (restore --tcp-close)
        elif e.state == TCP_SYN_SENT:
            if not ctx.opts.tcp_established:
                raise UnsupportedObject(f"{describe(t)}: TCP connection {connection(e)} in progress (SYN_SENT); "
                                        f"use --tcp-established to dump it (or --tcp-close to drop it)")
            _dump_syn_sent(s, e, t, ctx)
            keep = True
        elif e.state in REPAIRED_STATES:
            if not ctx.opts.tcp_established:
                what = "established" if e.state == TCP_ESTABLISHED else TCP_STATES[e.state]
                raise UnsupportedObject(f"{describe(t)}: {what} TCP connection {connection(e)}; "
                                        f"use --tcp-established to dump it (or --tcp-close to drop it)")
            _lock_connection(e, ctx)
            _note_repair(t, ctx)
            _dump_repair(s, e, t)
            keep = True
        elif e.state == TCP_CLOSE:
            unread = _ioctl_int(s, SIOCINQ)
            if unread:
                raise UnsupportedObject(f"{describe(t)}: closed TCP connection {connection(e)} with {unread} "
                                        f"unread byte(s) cannot be dumped")
        else:
            raise UnsupportedObject(f"{describe(t)}: TCP socket {connection(e)} in state "
                                    f"{TCP_STATES.get(e.state, e.state)} cannot be dumped")
    elif proto in PING_PROTOS:
        _refuse_queued_replies(s, e, t)
        e.state = _ping_peer(e, t)
    else:
        e.state = TCP_ESTABLISHED if e.dst_port else TCP_CLOSE
        e.udp_msgs.extend(_peek_datagrams(s))
    e.shutdown = _shutdown_bits(s, t, ctx)
    return e, keep


def _supported(family: int, stype: int, proto: int) -> bool:
    if stype == socket.SOCK_RAW:
        return proto in RAW_PROTOS
    if stype == socket.SOCK_STREAM:
        return proto == socket.IPPROTO_TCP
    return stype == socket.SOCK_DGRAM and proto in DGRAM_PROTOS.get(family, ())


def _ping_peer(e: inet_pb2.InetSocketEntry, t: FdTarget) -> int:
    """A connected ping socket's peer and state from /proc/PID/net/icmp[6]
    (getpeername() says ENOTCONN: the peer's port is 0; inet_diag does not list
    ping sockets).  A socket not listed (never bound) is taken as unconnected
    (a connect() without a bind or a send leaves it unhashed: its peer is
    lost); a bound one not listed is another namespace's and refused."""
    return _proc_peer(e, t, "icmp", "ICMP (ping)", hashed=bool(e.src_port))


def _proc_peer(e: inet_pb2.InetSocketEntry, t: FdTarget, table: str, kind: str, hashed: bool) -> int:
    """The state of the socket's row in /proc/PID/net/TABLE[6] (TCP_ESTABLISHED
    when connected, its peer address then put in e.dst_addr); a socket that is
    hashed but not listed lives in another network namespace than its task."""
    table += "6" if e.family == socket.AF_INET6 else ""
    try:
        with open(f"/proc/{t.pid}/net/{table}") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError as exc:
        raise UnsupportedObject(f"{describe(t)}: cannot read /proc/{t.pid}/net/{table}: {exc.strerror}") from None
    for row in rows:
        if len(row) > 9 and row[9] == str(t.st.st_ino):
            state = int(row[3], 16)
            if state == TCP_ESTABLISHED:
                e.dst_addr = _proc_addr(row[2].split(":")[0])
            return state
    if hashed:
        raise UnsupportedObject(f"{describe(t)}: {kind} socket {connection(e)} is not in its "
                                f"process's network namespace (/proc/{t.pid}/net/{table})")
    return TCP_CLOSE


def _dump_raw(s: socket.socket, e: inet_pb2.InetSocketEntry, t: FdTarget) -> None:
    """A raw socket: its local address (getsockname's port is the protocol:
    not kept), its peer and state (/proc/PID/net/raw[6]; a raw socket is
    hashed from its creation on), its options; refused with packets queued."""
    addr, _, e.src_scope = _addr(e.family, s.getsockname())
    e.src_addr = addr if addr.strip(b"\0") else b""
    _dump_options(s, e)
    if sockopts.receive_memory(s):
        raise UnsupportedObject(f"{describe(t)}: {connection(e)} has packets waiting to be read "
                                f"(they cannot be read without consuming them)")
    e.state = _proc_peer(e, t, "raw", "raw", hashed=True)
    if e.state not in (TCP_CLOSE, TCP_ESTABLISHED):
        raise UnsupportedObject(f"{describe(t)}: {connection(e)}: unexpected state {e.state} "
                                f"in /proc/{t.pid}/net/raw")


def _proc_addr(hexaddr: str) -> bytes:
    """An address of /proc/net/{udp,icmp}[6]: 32-bit words in host order."""
    return b"".join(bytes.fromhex(hexaddr[i:i + 8])[::-1] for i in range(0, len(hexaddr), 8))


def _refuse_queued_replies(s: socket.socket, e: inet_pb2.InetSocketEntry, t: FdTarget) -> None:
    """Echo replies waiting on a ping socket cannot be dumped (no SO_PEEK_OFF).
    Receive memory in use (SO_MEMINFO's first word) tells: poll()'s POLLIN is
    also set by a shut-down read side."""
    if sockopts.receive_memory(s):
        raise UnsupportedObject(f"{describe(t)}: ICMP (ping) socket {connection(e)} has echo replies "
                                f"waiting to be read (they cannot be read without consuming them)")


def _note_repair(t: FdTarget, ctx: DumpFiles) -> None:
    """Tell the dump's guardian which task sockets enter repair mode, so it
    takes them out again if refcr dies (end_repair_after_death)."""
    guard = ctx.opts.extra.get("guardian")
    if guard is None:
        return
    noted = ctx.extra.setdefault("inet-repair-noted", {"fds": []})
    noted["fds"].append([t.pid, t.fd])
    guard.note(REPAIR_NOTE, noted["fds"])


def end_repair_after_death(notes: dict[str, object]) -> None:
    """In the guardian, refcr dead and the tasks running on: their sockets
    that refcr put into repair mode leave it (no window probe)."""
    fds = notes.get(REPAIR_NOTE)
    for pid, fd in fds if isinstance(fds, list) else []:
        try:
            pidfd = native.pidfd_open(int(pid))
            try:
                s = socket.socket(fileno=native.pidfd_getfd(pidfd, int(fd)))
            finally:
                os.close(pidfd)
            with s:
                s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
        except OSError as exc:
            log.error("guardian: process %s fd %s: leaving TCP repair mode: %s", pid, fd, exc)


def _lock_connection(e: inet_pb2.InetSocketEntry, ctx: DumpFiles) -> None:
    """Before its queues are read: the peer's packets are dropped from now on
    (net/netlock.py; nothing when the tree's whole namespace is locked).  An
    IPv4-mapped IPv6 connection is IPv4 on the wire."""
    lock = ctx.opts.extra.get("netlock")
    if lock is None:
        return
    family, src, dst = e.family, e.src_addr, e.dst_addr
    if family == socket.AF_INET6 and src.startswith(V4MAPPED) and dst.startswith(V4MAPPED):
        family, src, dst = socket.AF_INET, src[12:], dst[12:]
    lock.lock_connection(family, src, e.src_port, dst, e.dst_port)


RCV_SHUTDOWN, SEND_SHUTDOWN = 1, 2


def _diag(s: socket.socket, t: FdTarget, ctx: DumpFiles) -> sockdiag.InetDiag | None:
    """The socket's inet_diag record (its network namespace's sockets of its
    family and protocol, cached per namespace), None if it is not listed (a
    socket the kernel has not hashed: never bound) or inet_diag is missing."""
    ns = os.stat(f"/proc/{t.pid}/ns/net").st_ino
    key = (ns, s.family, s.proto)
    cache = ctx.extra.setdefault("inet-diag", {})
    if key not in cache:
        try:
            cache[key] = sockdiag.inet_sockets(t.pid, s.family, s.proto)
        except sockdiag.DiagUnavailable as exc:
            log.warning("%s; a socket shut down only for writing is not seen (inet_diag/udp_diag missing)", exc)
            cache[key] = {}
    return cache[key].get(t.st.st_ino)


def _shutdown_bits(s: socket.socket, t: FdTarget, ctx: DumpFiles) -> int:
    """sk_shutdown, from inet_diag.  A socket the kernel has not hashed (never
    bound) is not listed: poll() shows its RCV_SHUTDOWN (POLLRDHUP) and, for
    UDP, both bits (POLLHUP); SEND_SHUTDOWN alone on a never-bound socket shows
    nowhere (README: Status)."""
    if s.proto in PING_PROTOS:
        return _polled_shutdown(s)
    d = _diag(s, t, ctx)
    if d is not None:
        return d.shutdown
    return _polled_shutdown(s)


def _polled_shutdown(s: socket.socket) -> int:
    p = select.poll()
    p.register(s.fileno(), select.POLLRDHUP)
    ev = dict(p.poll(0)).get(s.fileno(), 0)
    bits = RCV_SHUTDOWN if ev & select.POLLRDHUP else 0
    if s.type in (socket.SOCK_DGRAM, socket.SOCK_RAW) and ev & select.POLLHUP:
        bits |= SEND_SHUTDOWN
    return bits


def _dump_options(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    e.reuseaddr = bool(_getint(s, socket.SOL_SOCKET, socket.SO_REUSEADDR))
    e.reuseport = bool(_getint(s, socket.SOL_SOCKET, socket.SO_REUSEPORT))
    e.rcvbuf = _getint(s, socket.SOL_SOCKET, socket.SO_RCVBUF)
    e.sndbuf = _getint(s, socket.SOL_SOCKET, socket.SO_SNDBUF)
    e.keepalive = bool(_getint(s, socket.SOL_SOCKET, socket.SO_KEEPALIVE))
    onoff, secs = struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
    e.linger = secs if onoff else -1
    if e.family == socket.AF_INET6:
        e.v6only = bool(_getint(s, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        e.ttl = _getint(s, socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
    else:
        e.ttl = _getint(s, socket.IPPROTO_IP, socket.IP_TTL)
    if e.type == socket.SOCK_STREAM:
        e.nodelay = bool(_getint(s, SOL_TCP, TCP_NODELAY))
        e.cork = bool(_getint(s, SOL_TCP, TCP_CORK))
    elif e.type == socket.SOCK_DGRAM and e.protocol in UDP_PROTOS:
        e.cork = bool(_getint(s, socket.IPPROTO_UDP, UDP_CORK))
    e.opts.CopyFrom(sockopts.dump(s, connection(e)))


def _peek_datagrams(s: socket.socket) -> list[inet_pb2.UdpDatagram]:
    if _ioctl_int(s, SIOCINQ) == 0:
        return []
    old = _getint(s, socket.SOL_SOCKET, SO_PEEK_OFF)
    out = []
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, 0)
        while True:
            try:
                data, src = s.recvfrom(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            addr, port, _ = _addr(s.family, src)
            out.append(inet_pb2.UdpDatagram(data=data, src_addr=addr, src_port=port))
            if not data:        # an empty datagram does not move the peek offset
                break
    finally:
        s.setsockopt(socket.SOL_SOCKET, SO_PEEK_OFF, old)
    return out


def _peek_queue(s: socket.socket, queue: int, size: int) -> bytes:
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, queue)
    data = b""
    if size:
        data = s.recv(size, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    return data


def _dump_syn_sent(s: socket.socket, e: inet_pb2.InetSocketEntry, t: FdTarget, ctx: DumpFiles) -> None:
    """A connect() in progress: its peer (inet_diag) and, in repair mode, the
    sequence number after its SYN (write_seq) and its MSS clamp."""
    d = _diag(s, t, ctx)
    if d is None or not d.dport:
        raise UnsupportedObject(f"{describe(t)}: TCP connection {connection(e)} in progress: its peer "
                                f"is not in inet_diag")
    e.dst_addr, e.dst_port = d.dst, d.dport
    _lock_connection(e, ctx)
    try:
        s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON)
    except OSError as exc:
        raise UnsupportedObject(f"{describe(t)}: {connection(e)}: cannot enter TCP repair mode: "
                                f"{exc.strerror}") from None
    _note_repair(t, ctx)
    _repaired.append(s)
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
    e.tcp.send_seq = _getint(s, SOL_TCP, TCP_QUEUE_SEQ) & 0xFFFFFFFF
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
    e.tcp.mss_clamp = _getint(s, SOL_TCP, TCP_MAXSEG)
    if _ioctl_int(s, SIOCOUTQNSD):
        raise UnsupportedObject(f"{describe(t)}: {connection(e)}: data queued behind the SYN "
                                f"(TCP fast open) cannot be dumped")


def _dump_repair(s: socket.socket, e: inet_pb2.InetSocketEntry, t: FdTarget) -> None:
    try:
        s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON)
    except OSError as exc:
        raise UnsupportedObject(f"{describe(t)}: {connection(e)}: cannot enter TCP repair mode: "
                                f"{exc.strerror}") from None
    _repaired.append(s)
    r = e.tcp
    inq, outq, unsent = _ioctl_int(s, SIOCINQ), _ioctl_int(s, SIOCOUTQ), _ioctl_int(s, SIOCOUTQNSD)
    fin_sent, fin_received = e.state in FIN_SENT, e.state in FIN_RECEIVED
    if e.state in FIN_SENT_UNACKED:      # the FIN counts in SIOCOUTQ (and SIOCOUTQNSD while unsent)
        outq, unsent = max(outq - 1, 0), max(unsent - 1, 0)
    r.recv_queue = _peek_queue(s, TCP_RECV_QUEUE, inq)
    r.recv_seq = (_getint(s, SOL_TCP, TCP_QUEUE_SEQ) - fin_received) & 0xFFFFFFFF
    r.send_queue = _peek_queue(s, TCP_SEND_QUEUE, outq)
    r.send_seq = (_getint(s, SOL_TCP, TCP_QUEUE_SEQ) - fin_sent) & 0xFFFFFFFF
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
    if len(r.recv_queue) != inq or len(r.send_queue) != outq:
        raise UnsupportedObject(f"{describe(t)}: {connection(e)}: queues changed while being read")
    r.unsent = min(unsent, outq)
    r.mss_clamp = _getint(s, SOL_TCP, TCP_MAXSEG)
    info = s.getsockopt(SOL_TCP, TCP_INFO, 104)
    opts, wscale = info[5], info[6]
    r.timestamps = bool(opts & TCPI_OPT_TIMESTAMPS)
    r.sack = bool(opts & TCPI_OPT_SACK)
    r.has_wscale = bool(opts & TCPI_OPT_WSCALE)
    r.snd_wscale, r.rcv_wscale = wscale & 0xF, wscale >> 4
    r.timestamp = _getint(s, SOL_TCP, TCP_TIMESTAMP) & 0xFFFFFFFF
    try:
        r.window = s.getsockopt(SOL_TCP, TCP_REPAIR_WINDOW, 20)
    except OSError:
        r.window = b""


# --------------------------------------------------------------- restore --

def _prepare(ctx: RestoreFiles) -> None:
    """Before the first inet socket is handed out: loopback up in a tree's own
    network namespace (net devices are not dumped yet, and a new namespace
    has lo down), then every TCP listener, then every established connection
    in repair mode, and only when all of them exist, each leaves repair mode.
    Listeners first: a connection bound to a listener's port cannot then stand
    in its way.  Repair mode left last: the window probe it sends (and any
    unsent bytes) must find the peer already there, when the peer is restored
    too, or the peer's listener would answer with a RST."""
    inet = [e.inet for e in ctx.entries.values() if e.WhichOneof("file") == "inet"]
    if not inet:
        return
    if ctx.root_pid is not None and os.readlink(f"/proc/{ctx.root_pid}/ns/net") != os.readlink("/proc/self/ns/net"):
        with nsenter.entered(ctx.root_pid):
            _loopback_up()
    premade = ctx.extra.setdefault("inet-premade", [])
    tcp = [e for e in inet if e.type == socket.SOCK_STREAM]
    repaired: list[tuple[inet_pb2.InetSocketEntry, socket.socket]] = []
    try:
        with nsenter.entered(ctx.root_pid):
            for e in [e for e in tcp if e.state == TCP_LISTEN]:
                premade.append((e.SerializeToString(), _restore_socket(e).detach()))
            for e in [e for e in tcp if e.state in REPAIRED_STATES and not ctx.opts.tcp_close]:
                s = _restore_socket(e)
                repaired.append((e, s))
        with nsenter.entered(ctx.root_pid):     # segments replayed from the peer (_replay_fins)
            for e, s in repaired:
                try:
                    _leave_repair(s, e)
                except OSError as exc:
                    raise RestoreError(f"cannot restore {connection(e)}: {exc.strerror}") from None
    finally:
        for e, s in repaired:
            premade.append((e.SerializeToString(), s.detach()))
    for key, fd in premade:
        fcntl.fcntl(fd, fcntl.F_SETFL, inet_pb2.InetSocketEntry.FromString(key).flags & STATUS_FLAGS)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("H", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req), 16)[0]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _restore_socket(e: inet_pb2.InetSocketEntry, closed: bool = False) -> socket.socket:
    """One socket as dumped; closed=True (--tcp-close): a connection comes back
    as a new TCP socket that is neither bound nor connected, with its options."""
    what = connection(e)
    connection_ = e.type == socket.SOCK_STREAM and e.state in CONNECTION_STATES
    s = socket.socket(e.family, e.type, e.protocol)
    try:
        _restore_options(s, e)
        if e.HasField("opts"):
            sockopts.restore(s, e.opts, what, connected=connection_)   # its MSS was negotiated
        if connection_ and closed:
            return s
        if connection_:
            if not e.HasField("tcp"):
                raise RestoreError(f"{what}: dumped with --tcp-close (no connection state): "
                                   f"restore it with --tcp-close")
            if e.state == TCP_SYN_SENT:
                _restore_syn_sent(s, e)
            else:
                _restore_established(s, e)
            return s
        if e.src_port or (e.type == socket.SOCK_RAW and e.src_addr):
            s.bind(_local(e))
        if e.type == socket.SOCK_STREAM and e.state == TCP_LISTEN:
            s.listen(e.backlog)
        elif e.type != socket.SOCK_STREAM and e.state == TCP_ESTABLISHED:    # ping and raw: no peer port
            s.connect(_unpack_addr(e.family, e.dst_addr, e.dst_port, e.dst_scope))
        elif e.state not in (TCP_CLOSE, TCP_LISTEN, TCP_ESTABLISHED):
            raise RestoreError(f"{what}: state {e.state} cannot be restored")
    except OSError as exc:
        s.close()
        raise RestoreError(f"cannot restore {what}: {exc.strerror}") from None
    except BaseException:
        s.close()
        raise
    if e.udp_msgs:
        _requeue_udp(s, e)
    _shut(s, e)
    return s


def _shut(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    """shutdown() as dumped.  On a socket that is not connected the kernel
    sets the bits and still says ENOTCONN."""
    how = {RCV_SHUTDOWN: socket.SHUT_RD, SEND_SHUTDOWN: socket.SHUT_WR,
           RCV_SHUTDOWN | SEND_SHUTDOWN: socket.SHUT_RDWR}.get(e.shutdown & 3)
    if how is None:
        return
    try:
        s.shutdown(how)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise RestoreError(f"cannot shut {connection(e)} down again: {exc.strerror}") from None


IP_TRANSPARENT, IPV6_TRANSPARENT, IPV6_CHECKSUM = 19, 75, 7


def _requeue_udp(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    """The receive queue again: each datagram sent to the restored socket from a raw
    socket bound (IP_TRANSPARENT) to the sender's address, with a UDP header naming the
    sender's port, so recvfrom() reports the same sender (a UDP socket could not bind
    that port while the sender holds it).  IPv4 goes without a checksum (allowed); IPv6
    has the kernel compute it (IPV6_CHECKSUM).  To a socket bound to the wildcard
    address the datagrams go to loopback."""
    local = s.getsockname()
    for m in e.udp_msgs:
        if len(m.src_addr) not in (4, 16) or m.src_port > 0xFFFF or len(m.data) > 65507:
            raise RestoreError(f"{connection(e)}: the image has a malformed queued datagram")
        src = bytes(m.src_addr)
        family = socket.AF_INET if len(src) == 4 or src.startswith(V4MAPPED) else socket.AF_INET6
        src = src[12:] if len(src) == 16 and family == socket.AF_INET else src
        dst = socket.inet_pton(e.family, local[0].split("%")[0])
        if e.family == socket.AF_INET6 and family == socket.AF_INET:
            dst = dst[12:] if dst.startswith(V4MAPPED) else b"\x7f\0\0\1"
        if not dst.strip(b"\0"):
            dst = b"\x7f\0\0\1" if family == socket.AF_INET else b"\0" * 15 + b"\1"
        try:
            if e.protocol == IPPROTO_UDPLITE:
                _send_raw_udplite(family, src, m.src_port, dst, local[1], bytes(m.data))
            else:
                _send_raw_udp(family, src, m.src_port, dst, local[1], bytes(m.data))
        except OSError as exc:
            raise RestoreError(f"{connection(e)}: cannot queue a datagram from "
                               f"{socket.inet_ntop(family, src)}:{m.src_port} again: {exc.strerror or exc}") from None


def _send_raw_udp(family: int, src: bytes, sport: int, dst: bytes, dport: int, data: bytes) -> None:
    header = struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
    _send_raw(family, socket.IPPROTO_UDP, src, dst, header + data, checksum_at=6)


def _send_raw_udplite(family: int, src: bytes, sport: int, dst: bytes, dport: int, data: bytes) -> None:
    """A UDP-Lite datagram with full coverage (0) and its checksum computed here
    (both families: IPV6_CHECKSUM would compute the same over the whole packet)."""
    header = struct.pack("!HHHH", sport, dport, 0, 0)
    pseudo = src + dst + (struct.pack("!BBH", 0, IPPROTO_UDPLITE, 8 + len(data)) if family == socket.AF_INET
                          else struct.pack("!I3xB", 8 + len(data), IPPROTO_UDPLITE))
    csum = _checksum(pseudo + header + data) or 0xFFFF
    packet = header[:6] + struct.pack("!H", csum) + data
    _send_raw(family, IPPROTO_UDPLITE, src, dst, packet, checksum_at=6)


def _send_raw(family: int, proto: int, src: bytes, dst: bytes, packet: bytes, checksum_at: int) -> None:
    """A transport segment from src (any address: IP_TRANSPARENT) to dst, past
    the network lock; IPv6 has the kernel fill in the checksum at checksum_at."""
    with socket.socket(family, socket.SOCK_RAW, proto) as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, netlock.REFCR_MARK)   # passes the network lock
        if family == socket.AF_INET:
            raw.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)
        else:
            raw.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
            raw.setsockopt(socket.IPPROTO_IPV6, IPV6_CHECKSUM, checksum_at)
        raw.bind((socket.inet_ntop(family, src), 0))
        raw.sendto(packet, (socket.inet_ntop(family, dst), 0))


def _local(e: inet_pb2.InetSocketEntry) -> tuple:
    """Where to bind.  Binding an IPv6 socket to a specific (not v4-mapped)
    address makes it v6-only; a dual-stack socket with such an address got it
    from connect(), so it is bound to the port only and connect() picks the
    same source address again."""
    packed = e.src_addr
    if (e.family == socket.AF_INET6 and not e.v6only and e.dst_port
            and not packed.startswith(b"\0" * 10 + b"\xff\xff")):
        packed = b""
    return _unpack_addr(e.family, packed, e.src_port, e.src_scope if packed else 0)


def _restore_options(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(e.reuseaddr))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(e.reuseport))
    if e.rcvbuf and e.rcvbuf != _getint(s, socket.SOL_SOCKET, socket.SO_RCVBUF):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, e.rcvbuf // 2)
    if e.sndbuf and e.sndbuf != _getint(s, socket.SOL_SOCKET, socket.SO_SNDBUF):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, e.sndbuf // 2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(e.keepalive))
    if e.linger >= 0:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, e.linger))
    if e.family == socket.AF_INET6:
        if _getint(s, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) != e.v6only:  # EINVAL on a raw socket
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(e.v6only))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, e.ttl)
    elif e.ttl:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, e.ttl)
    if e.type == socket.SOCK_STREAM:
        s.setsockopt(SOL_TCP, TCP_NODELAY, int(e.nodelay))
    elif e.cork:
        s.setsockopt(socket.IPPROTO_UDP, UDP_CORK, 1)


def _fill(s: socket.socket, queue: int, data: bytes) -> None:
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, queue)
    view = memoryview(data)
    while view:
        view = view[s.send(view[:CHUNK]):]


def _restore_established(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    r = e.tcp
    sent = r.send_queue[:len(r.send_queue) - r.unsent]
    s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON)
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
    s.setsockopt(SOL_TCP, TCP_QUEUE_SEQ, _s32(r.send_seq - len(r.send_queue)))
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
    s.setsockopt(SOL_TCP, TCP_QUEUE_SEQ, _s32(r.recv_seq - len(r.recv_queue)))
    if r.timestamps:
        s.setsockopt(SOL_TCP, TCP_TIMESTAMP, _s32(r.timestamp))
    s.bind(_local(e))
    s.connect(_unpack_addr(e.family, e.dst_addr, e.dst_port, e.dst_scope))
    opts = [(TCPOPT_MSS, r.mss_clamp)]
    if r.has_wscale:
        opts.append((TCPOPT_WINDOW, r.snd_wscale | (r.rcv_wscale << 16)))
    if r.sack:
        opts.append((TCPOPT_SACK_PERM, 0))
    if r.timestamps:
        opts.append((TCPOPT_TIMESTAMP, 0))
    s.setsockopt(SOL_TCP, TCP_REPAIR_OPTIONS, b"".join(struct.pack("II", c, v) for c, v in opts))
    _room(s, len(r.send_queue), len(r.recv_queue))     # the unsent bytes too (_leave_repair)
    _fill(s, TCP_SEND_QUEUE, sent)
    _fill(s, TCP_RECV_QUEUE, r.recv_queue)
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
    if len(r.window) == 20:
        window = r.window
        if e.state in FIN_RECEIVED:     # room for the FIN replayed at rcv_nxt, as at the dump
            wl1, wnd, maxw, rwnd, rwup = struct.unpack("5I", window)
            window = struct.pack("5I", wl1, wnd, maxw, rwnd + 1, (rwup - 1) & 0xFFFFFFFF)
        s.setsockopt(SOL_TCP, TCP_REPAIR_WINDOW, window)


def _restore_syn_sent(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    """Bound as it was, write_seq one before the dumped one in repair mode (the
    new SYN takes it again), then a non-blocking connect() without repair mode
    sends that SYN: the handshake goes on where it was."""
    s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON)
    s.bind(_local(e))
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
    s.setsockopt(SOL_TCP, TCP_QUEUE_SEQ, _s32(e.tcp.send_seq - 1))
    s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
    s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(e.reuseaddr))     # repair mode reset it
    s.setblocking(False)
    err = s.connect_ex(_unpack_addr(e.family, e.dst_addr, e.dst_port, e.dst_scope))
    if err not in (0, errno.EINPROGRESS):
        raise OSError(err, os.strerror(err))


def _room(s: socket.socket, send: int, recv: int) -> None:
    """Buffers big enough for the queues about to be refilled (a send queue over
    sk_sndbuf would block in sk_stream_wait_memory, a receive queue over sk_rcvbuf
    fails with ENOMEM); the queue's own skb overhead is about as large again."""
    if send:
        s.setsockopt(socket.SOL_SOCKET, sockopts.SO_SNDBUFFORCE, 2 * send + (1 << 20))
    if recv:
        s.setsockopt(socket.SOL_SOCKET, sockopts.SO_RCVBUFFORCE, 2 * recv + (1 << 20))


def _buffers_back(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    """After the refill and the unsent bytes: the dumped sizes again, and their
    lock bits as dumped (a send queue over the dumped size is kept: the kernel
    only stops taking more)."""
    if e.opts.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, sockopts.SO_SNDBUFFORCE, e.opts.sndbuf // 2)
    if e.opts.rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, sockopts.SO_RCVBUFFORCE, e.opts.rcvbuf // 2)
    sockopts.restore_buffers(s, e.opts, connection(e))


def _leave_repair(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    """The connection goes live: repair mode off, then the bytes never sent.
    A half-closed one gets its FINs first (:func:`_replay_fins`); its unsent
    bytes must then be queued before its own FIN, so they are sent with repair
    mode off for a moment, as CRIU's soccr does."""
    r = e.tcp
    unsent = r.send_queue[len(r.send_queue) - r.unsent:]
    if e.state != TCP_ESTABLISHED:
        if unsent:
            s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF)
            _send_all(s, unsent)
            s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_ON)
            unsent = b""
        _replay_fins(s, e)
    s.setsockopt(SOL_TCP, TCP_REPAIR, TCP_REPAIR_OFF)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(e.reuseaddr))   # repair mode reset it
    if e.cork:
        s.setsockopt(SOL_TCP, TCP_CORK, 1)
    _send_all(s, unsent)
    _buffers_back(s, e)
    if e.state == TCP_ESTABLISHED:
        _shut(s, e)


def _send_all(s: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[s.send(view):]


def _replay_fins(s: socket.socket, e: inet_pb2.InetSocketEntry) -> None:
    """A half-closed connection, rebuilt ESTABLISHED in repair mode, reaches its
    state as it did: our FIN by shutdown(SHUT_WR) (in TCP_SEND_QUEUE mode it
    counts as sent; otherwise it goes out behind the unsent bytes and the peer
    acknowledges it again), the peer's FIN and its ACK of ours by segments sent
    to the socket from the peer's address (:func:`_send_from_peer`).  Every
    segment is one the peer already sent: it changes nothing on the peer."""
    r = e.tcp
    snd_una = (r.send_seq - len(r.send_queue)) & 0xFFFFFFFF
    if e.state == TCP_FIN_WAIT2:
        s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        s.shutdown(socket.SHUT_WR)
        s.setsockopt(SOL_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)
        _send_from_peer(s, e, r.recv_seq, (r.send_seq + 1) & 0xFFFFFFFF, TH_ACK, TCP_FIN_WAIT2)
    elif e.state == TCP_FIN_WAIT1:
        s.shutdown(socket.SHUT_WR)
    elif e.state == TCP_CLOSE_WAIT:
        _send_from_peer(s, e, r.recv_seq, snd_una, TH_ACK | TH_FIN, TCP_CLOSE_WAIT)
    elif e.state == TCP_LAST_ACK:
        _send_from_peer(s, e, r.recv_seq, snd_una, TH_ACK | TH_FIN, TCP_CLOSE_WAIT)
        s.shutdown(socket.SHUT_WR)
    elif e.state == TCP_CLOSING:        # a simultaneous close: the peer's FIN came in FIN_WAIT1
        s.shutdown(socket.SHUT_WR)
        _send_from_peer(s, e, r.recv_seq, snd_una, TH_ACK | TH_FIN, TCP_CLOSING)


TH_FIN, TH_ACK = 0x01, 0x10
FIN_WAIT_S = 2.0


def _send_from_peer(s: socket.socket, e: inet_pb2.InetSocketEntry, seq: int, ack: int, flags: int,
                    expect: int) -> None:
    """One TCP segment without data from the peer's address and port to the
    socket, then wait (up to FIN_WAIT_S) until the socket has processed it and
    is in state `expect`.  The window field is the peer's window as the socket
    knew it at the dump (snd_wnd of TCP_REPAIR_WINDOW), so the segment does not
    open a window the peer had closed."""
    local, peer = s.getsockname(), s.getpeername()
    family = socket.AF_INET6 if e.family == socket.AF_INET6 else socket.AF_INET
    src, dst = socket.inet_pton(family, peer[0].split("%")[0]), socket.inet_pton(family, local[0].split("%")[0])
    if family == socket.AF_INET6 and src.startswith(V4MAPPED) and dst.startswith(V4MAPPED):
        family, src, dst = socket.AF_INET, src[12:], dst[12:]
    window = 0xFFFF
    if len(e.tcp.window) == 20:
        snd_wnd = struct.unpack_from("I", e.tcp.window, 4)[0]
        window = min(snd_wnd >> (e.tcp.snd_wscale if e.tcp.has_wscale else 0), 0xFFFF)
    segment = struct.pack("!HHIIBBHHH", peer[1], local[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, window, 0, 0)
    if family == socket.AF_INET:
        pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
        segment = segment[:16] + struct.pack("!H", _checksum(pseudo + segment)) + segment[18:]
    try:
        _send_raw(family, socket.IPPROTO_TCP, src, dst, segment, checksum_at=16)
    except OSError as exc:
        raise RestoreError(f"{connection(e)}: cannot replay the peer's "
                           f"{'FIN' if flags & TH_FIN else 'ACK'}: {exc.strerror or exc}") from None
    deadline = time.monotonic() + FIN_WAIT_S
    while s.getsockopt(SOL_TCP, TCP_INFO, 8)[0] != expect:
        if time.monotonic() > deadline:
            raise RestoreError(f"{connection(e)}: the replayed {'FIN' if flags & TH_FIN else 'ACK'} "
                               f"from the peer was not taken")
        time.sleep(0.001)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _s32(v: int) -> int:
    """A u32 as the int setsockopt packs."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


KINDS = [InetKind()]
