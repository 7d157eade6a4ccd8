"""refcr/net/netns.py without a namespace: --external veth[...] parsing, and the
checks that keep untrusted netns.img data from reaching /proc/sys or netlink."""
from __future__ import annotations

import pytest

from refcr.errors import OptionError, RestoreError
from refcr.net import netns
from refcr.pb import netns_pb2


def test_ext_veths_parsed() -> None:
    got = netns.ext_veths(["unix[1]", "veth[eth0]:vout0@br0", "veth[eth1]:vout1"], restore=True)
    assert (got["eth0"].outside, got["eth0"].bridge) == ("vout0", "br0")
    assert (got["eth1"].outside, got["eth1"].bridge) == ("vout1", None)
    assert netns.ext_veths(["veth[eth0]"], restore=False)["eth0"].outside is None


@pytest.mark.parametrize("opts,restore", [
    (["veth[eth0]"], True),                           # a restore needs the outside name
    (["veth[a/b]:x"], True),                          # not an interface name
    (["veth[eth0]:0123456789abcdef"], True),          # longer than IFNAMSIZ-1
    (["veth[..]"], False),
    (["veth[eth0]", "veth[eth0]:x"], False),          # named twice
    (["veth[eth0"], False),
])
def test_ext_veths_refused(opts: list[str], restore: bool) -> None:
    with pytest.raises(OptionError):
        netns.ext_veths(opts, restore)


def _entry() -> netns_pb2.NetNsEntry:
    e = netns_pb2.NetNsEntry()
    e.links.add(index=1, name="lo", type=netns.ARPHRD_LOOPBACK)
    e.links.add(index=2, name="eth0", type=1, kind="veth", peer_index=3)
    e.sysctls.add(name="ipv4/conf/eth0/forwarding", value="1")
    e.addrs.add(family=2, prefixlen=24, index=2, local=bytes([10, 0, 0, 1]))
    return e


def test_check_entry_accepts_a_sane_image() -> None:
    netns._check_entry(_entry())


@pytest.mark.parametrize("spoil", [
    lambda e: e.sysctls.add(name="ipv4/conf/eth0/../../../kernel/core_pattern", value="x"),
    lambda e: e.sysctls.add(name="kernel/core_pattern", value="|/bin/sh"),
    lambda e: e.links.add(index=9, name="../x"),
    lambda e: e.addrs.add(family=2, prefixlen=24, index=2, local=b"\x01\x02"),
    lambda e: e.routes.add(family=10, gateway=b"\x00" * 4),
    lambda e: e.addrs.add(family=99, index=2, local=b"\x01\x02\x03\x04"),
])
def test_check_entry_refuses(spoil) -> None:  # noqa: ANN001
    e = _entry()
    spoil(e)
    with pytest.raises(RestoreError):
        netns._check_entry(e)


def test_sysctls_of_links_come_after_the_namespace_wide_ones() -> None:
    wide = ["ipv4/ip_forward", "core/somaxconn", "ipv4/conf/all/forwarding", "ipv6/conf/default/accept_ra",
            "ipv4/neigh/default/gc_stale_time", "netfilter/nf_log/2"]
    per_link = ["ipv4/conf/eth0/forwarding", "ipv6/conf/eth0/disable_ipv6", "ipv4/neigh/eth0/ucast_solicit"]
    assert all(netns._namespace_wide(n) for n in wide)
    assert not any(netns._namespace_wide(n) for n in per_link)


@pytest.mark.parametrize("name", ["", "ipv4", "ipv4//x", "ipv4/./x", "/ipv4/x", "ipv4/x y", "proc/1/x"])
def test_check_entry_refuses_odd_sysctl_names(name: str) -> None:
    e = _entry()
    e.sysctls.add(name=name, value="1")
    with pytest.raises(RestoreError):
        netns._check_entry(e)
