"""Sockets refcr does not restore are refused at dump with one line naming them."""
from __future__ import annotations

import ctypes
import os
import socket

import pytest

from refcr.errors import UnsupportedObject
from refcr.fs import files
from refcr.options import Options

CASES = [
    ((socket.AF_PACKET, socket.SOCK_RAW, 0), "packet (AF_PACKET) socket"),
    ((socket.AF_PACKET, socket.SOCK_DGRAM, 0), "packet (AF_PACKET) socket"),
    ((socket.AF_NETLINK, socket.SOCK_RAW, 0), "netlink (AF_NETLINK) NETLINK_ROUTE socket"),
    ((socket.AF_NETLINK, socket.SOCK_DGRAM, 16), "netlink (AF_NETLINK) NETLINK_GENERIC socket"),
    ((socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP), "raw socket (IPv4"),
    ((socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), "ICMP (ping) socket (IPv4"),
    ((socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_ICMPV6), "ICMP (ping) socket (IPv6"),
    ((socket.AF_INET, socket.SOCK_DGRAM, 136), "UDP-Lite socket (IPv4"),
]


CLONE_NEWNET = 0x40000000


def _in_own_netns(args: tuple[int, int, int]) -> socket.socket:
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
