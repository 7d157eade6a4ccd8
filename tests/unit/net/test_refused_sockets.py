"""Sockets refcr does not restore are refused at dump with one line naming them."""
from __future__ import annotations

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


@pytest.mark.parametrize("args,says", CASES, ids=[c[1].split(" socket")[0] + f"-{c[0]}" for c in CASES])
def test_refused_by_name(args, says):
    try:
        s = socket.socket(*args)
    except OSError as exc:        # e.g. ping sockets off by net.ipv4.ping_group_range
        pytest.skip(f"cannot create {args}: {exc}")
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
