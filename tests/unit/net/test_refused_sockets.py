"""Sockets refcr does not restore are refused at dump with one line naming them
(and netlink, ping, raw and packet sockets, which it restores, are dumped
unless messages wait, or, for packet sockets, a ring is set up)."""
from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
import subprocess

import pytest

from refcr.errors import UnsupportedObject
from refcr.fs import files
from refcr.options import Options

IPPROTO_MPTCP = 262
CASES = [
    ((socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP), "MPTCP socket (IPv4"),
    ((socket.AF_INET6, socket.SOCK_STREAM, IPPROTO_MPTCP), "MPTCP socket (IPv6"),
]


CLONE_NEWNET = 0x40000000


def _in_own_netns(args: tuple[int, int, int], then=None) -> socket.socket:
    """The socket made in a child's new network namespace whose ping_group_range
    admits root (this machine's may not: EACCES), and passed back to us."""
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) == 0:
                with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
                    f.write("0 2147483647")
                s = socket.socket(*args)
                if then is not None:
                    then(s)
                socket.send_fds(there, [b"s"], [s.fileno()])
                code = 0
        finally:
            os._exit(code)
    there.close()
    try:
        _, fds, _, _ = socket.recv_fds(here, 1, 1)
    finally:
        here.close()
        os.waitpid(pid, 0)
    assert fds, f"could not make {args} in a network namespace of its own"
    return socket.socket(fileno=fds[0])


@pytest.mark.parametrize("args,says", CASES, ids=[c[1].split(" socket")[0] + f"-{c[0]}" for c in CASES])
def test_refused_by_name(args, says):
    try:
        s = socket.socket(*args)
    except PermissionError:       # ping sockets off by net.ipv4.ping_group_range here
        s = _in_own_netns(args)
    try:
        opts = Options(pid=os.getpid())
        ctx = files.dump_context(opts)
        t = files.fd_target(os.getpid(), s.fileno())
        with pytest.raises(UnsupportedObject) as err:
            ctx.add(t)
        assert says in str(err.value)
        assert "\n" not in str(err.value)
    finally:
        s.close()


def test_netlink_with_queued_messages_refused():
    """A netlink socket is restored (net/netlink.py), but not with messages
    waiting in its queue: here the kernel's reply to an RTM_GETLINK dump."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        req = struct.pack("=IHHII", 32, 18, 0x301, 1, 0) + struct.pack("=BxHiII", 0, 0, 0, 0, 0)   # RTM_GETLINK, dump
        s.send(req)
        select.select([s], [], [], 5)
        ctx = files.dump_context(Options(pid=os.getpid()))
        with pytest.raises(UnsupportedObject) as err:
            ctx.add(files.fd_target(os.getpid(), s.fileno()))
        assert "netlink socket (protocol 0) has messages waiting to be read" in str(err.value)
        assert "\n" not in str(err.value)
    finally:
        s.close()


def test_netlink_dumped_with_groups():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        s.bind((0, 0x20))
        s.setsockopt(270, 1, 33)
        ctx = files.dump_context(Options(pid=os.getpid()))
        ctx.add(files.fd_target(os.getpid(), s.fileno()))
        (e,) = [fe.netlink for fe in ctx.entries if fe.WhichOneof("file") == "netlink"]
        assert (e.portid, list(e.groups)) == (s.getsockname()[0], [6, 33])
    finally:
        s.close()


@pytest.mark.parametrize("family,proto,host,echo", [(socket.AF_INET, socket.IPPROTO_ICMP, "127.0.0.1", 8),
                                                     (socket.AF_INET6, socket.IPPROTO_ICMPV6, "::1", 128)])
def test_ping_with_queued_reply_refused(family, proto, host, echo):
    """A ping socket is restored (net/inet.py), but not with an echo reply
    waiting: it cannot be read past the first without consuming it."""
    def echo_to_self(s: socket.socket) -> None:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        s.sendto(struct.pack("!BBHHH", echo, 0, 0, 0, 1) + b"x", (host, 0))
        select.select([s], [], [], 5)
    s = _in_own_netns((family, socket.SOCK_DGRAM, proto), echo_to_self)
    try:
        assert select.select([s], [], [], 0)[0], "no echo reply queued"
        ctx = files.dump_context(Options(pid=os.getpid()))
        with pytest.raises(UnsupportedObject) as err:
            ctx.add(files.fd_target(os.getpid(), s.fileno()))
        assert "ICMP (ping) socket ping" in str(err.value) and "echo replies waiting" in str(err.value)
    finally:
        s.close()


def test_ping_of_another_netns_refused():
    """A bound ping socket not in its process's /proc/PID/net/icmp belongs to
    another network namespace: its peer cannot be read, the dump says so."""
    s = _in_own_netns((socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), lambda s: s.bind(("0.0.0.0", 4242)))
    try:
        ctx = files.dump_context(Options(pid=os.getpid()))
        with pytest.raises(UnsupportedObject) as err:
            ctx.add(files.fd_target(os.getpid(), s.fileno()))
        assert "ICMP (ping) socket ping 0.0.0.0:4242 is not in its process's network namespace" in str(err.value)
    finally:
        s.close()


@pytest.mark.parametrize("family,proto,host", [(socket.AF_INET, socket.IPPROTO_ICMP, "127.0.0.1"),
                                                (socket.AF_INET6, 253, "::1")])
def test_raw_with_queued_packet_refused(family, proto, host):
    """A raw socket is restored (net/inet.py), but not with a packet waiting:
    it cannot be read without consuming it."""
    def send_to_self(s: socket.socket) -> None:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        s.sendto(struct.pack("!BBHHH", 8, 0, 0xf7fe, 0, 1) if proto == socket.IPPROTO_ICMP else b"data", (host, 0))
        select.select([s], [], [], 5)
    s = _in_own_netns((family, socket.SOCK_RAW, proto), send_to_self)
    try:
        assert select.select([s], [], [], 0)[0], "no packet queued"
        ctx = files.dump_context(Options(pid=os.getpid()))
        with pytest.raises(UnsupportedObject) as err:
            ctx.add(files.fd_target(os.getpid(), s.fileno()))
        assert f"raw{'6' if family == socket.AF_INET6 else ''} proto {proto}" in str(err.value)
        assert "has packets waiting to be read" in str(err.value)
    finally:
        s.close()


def test_raw_of_another_netns_refused():
    """A raw socket not in its process's /proc/PID/net/raw belongs to another
    network namespace: its peer cannot be read, the dump says so."""
    s = _in_own_netns((socket.AF_INET, socket.SOCK_RAW, 253))
    try:
        ctx = files.dump_context(Options(pid=os.getpid()))
        with pytest.raises(UnsupportedObject) as err:
            ctx.add(files.fd_target(os.getpid(), s.fileno()))
        assert "raw socket raw proto 253 * is not in its process's network namespace" in str(err.value)
    finally:
        s.close()


def _packet_refusal(s: socket.socket) -> str:
    ctx = files.dump_context(Options(pid=os.getpid()))
    with pytest.raises(UnsupportedObject) as err:
        ctx.add(files.fd_target(os.getpid(), s.fileno()))
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("ring,name", [(5, "PACKET_RX_RING"), (13, "PACKET_TX_RING")])
def test_packet_ring_refused(ring, name):
    """A packet socket with a ring (tpacket_req: block size, blocks, frame size, frames)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
        s.setsockopt(263, ring, struct.pack("IIII", 4096, 1, 2048, 2))
        says = _packet_refusal(s)
        assert f"packet socket (SOCK_RAW, protocol 0x0000, device any) has a {name}" in says


def test_packet_with_queued_frames_refused():
    with socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0) as s, \
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as tx:
        s.bind(("lo", 0x88B5))
        tx.sendto(b"\1" * 12 + b"\x88\xb5" + b"queued", ("lo", 0))
        assert select.select([s], [], [], 5)[0]
        says = _packet_refusal(s)
        assert "packet socket (SOCK_DGRAM, protocol 0x88b5, device lo) has packets waiting to be read" in says


def test_packet_dumped():
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
        s.bind(("lo", 0x88B6))
        s.setsockopt(263, 8, 1)
        ctx = files.dump_context(Options(pid=os.getpid()))
        ctx.add(files.fd_target(os.getpid(), s.fileno()))
        (e,) = [fe.packet for fe in ctx.entries if fe.WhichOneof("file") == "packet"]
        assert (e.type, e.protocol, e.ifname) == (socket.SOCK_RAW, 0x88B6, "lo")
        assert any(o.level == 263 and o.name == 8 and o.value[0] == 1 for o in e.opts.opts)


def test_syn_sent_needs_tcp_established():
    """A connect() in progress is a connection: without --tcp-established the
    dump refuses it by name (with it, tcp_syn_sent00 restores it)."""
    def connecting(s: socket.socket) -> None:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "route", "add", "10.9.9.0/24", "dev", "lo"], check=True)
        s.setblocking(False)
        assert s.connect_ex(("10.9.9.9", 7012)) == errno.EINPROGRESS
    s = _in_own_netns((socket.AF_INET, socket.SOCK_STREAM, 0), connecting)
    try:
        ctx = files.dump_context(Options(pid=os.getpid()))
        with pytest.raises(UnsupportedObject) as err:
            ctx.add(files.fd_target(os.getpid(), s.fileno()))
        assert "in progress (SYN_SENT)" in str(err.value) and "--tcp-established" in str(err.value)
    finally:
        s.close()
