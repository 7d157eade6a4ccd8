"""A network namespace's contents: links, addresses, routes and sysctls,
through rtnetlink (pyroute2) inside the namespace (net/nsenter.py), plus the
plugins' DUMP_EXT_LINK and the --external veth links (see the section below),
and its nftables ruleset (net/netfilter.py).
"""
from __future__ import annotations

import errno
import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from refcr.errors import DumpError, OptionError, RestoreError, UnsupportedObject
from refcr.external import ExtVeth, check_ifname, ext_veths
from refcr.log import log
from refcr.net import netfilter, netlock
from refcr.net.nsenter import entered
from refcr.pb import netns_pb2
from refcr.plugins import host


def NetlinkError() -> type:  # noqa: N802  (used as `except NetlinkError():`, evaluated only on an exception)
    """pyroute2's error class, imported lazily: pyroute2 takes long to import,
    and this module is imported by every socket kind."""
    from pyroute2.netlink.exceptions import NetlinkError as cls

    return cls


# ------------------------------------------------------------------------
# The namespace's contents: links, addresses, routes, sysctls (rtnetlink
# through pyroute2, inside the namespace).
#
# Dump: every link must be one refcr recreates (lo; a veth whose peer is in
# the same namespace), one named by --external veth[NAME], or one a plugin's
# DUMP_EXT_LINK claims (it is then recreated by an action script at
# setup-namespaces); anything else fails the dump naming the link.
#
# Restore, in this order (restore_links, then the setup-namespaces action
# scripts, then restore_config):
#   sysctls of the namespace (all/default first), links (with their ifindex),
#   the plugin-claimed links looked up by name, per-link attributes and
#   sysctls, links up, addresses (IPv6 without DAD), routes.
# ------------------------------------------------------------------------

ARPHRD_LOOPBACK = 772
IFF_UP = 0x1
RTPROT_KERNEL, RTPROT_RA = 2, 9
RTM_F_CLONED = 0x200
RT_TABLE_COMPAT, RT_TABLE_MAIN = 252, 254
IFA_F_KEPT = 0x02 | 0x10 | 0x100 | 0x200 | 0x400     # NODAD HOMEADDRESS MANAGETEMPADDR NOPREFIXROUTE MCAUTOJOIN
OUTSIDE_WAIT = 10.0       # seconds an external veth's outside name may stay taken by the dumped pair
# The sysctls refcr saves: every file under /proc/sys/net that root may read
# and write in the namespace (core, ipv4, ipv6 with their conf/ and neigh/
# directories per link, unix, netfilter, mptcp, ...; about 560 with one link),
# in os.walk order: a directory's files before its subdirectories, so
# ipv4/ip_forward comes before conf/all/forwarding, which it also sets.
SYSCTL_ROOT = "/proc/sys/net"
SYSCTL_NAME = re.compile(r"[A-Za-z0-9_.:@+-]+")       # one component of an image's sysctl name
# what Linux puts in /proc/sys/net (an image naming another top directory is refused)
SYSCTL_TOPS = frozenset({"appletalk", "ax25", "bridge", "can", "core", "ieee802154", "ipv4", "ipv6", "llc",
                         "mpls", "mptcp", "netfilter", "phonet", "rds", "rose", "sctp", "smc", "tipc", "unix",
                         "vrf", "x25"})
SYSCTL_VALUE_MAX = 4096


def _mac(text: str | None) -> bytes:
    return bytes.fromhex(text.replace(":", "")) if text else b""


def _ip(family: int, text: str | None) -> bytes:
    return socket.inet_pton(family, text) if text else b""


def _text(family: int, raw: bytes) -> str:
    return socket.inet_ntop(family, raw)


def _ipr(pid: int):  # noqa: ANN202  (pyroute2.IPRoute)
    """An rtnetlink socket of pid's network namespace (a socket keeps the
    namespace it was made in)."""
    from pyroute2 import IPRoute

    with entered(pid):
        return IPRoute()


@contextmanager
def _netlink_errors(error: type, what: str) -> Iterator[None]:
    """A netlink failure not handled closer to it becomes one clear error."""
    try:
        yield
    except NetlinkError() as exc:
        raise error(f"{what}: netlink: {os.strerror(exc.code)}") from None


def _request(ipr, msg, msg_type: int, flags: int) -> None:  # noqa: ANN001
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST

    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
    ipr.nlm_request_batch([msg])


# ------------------------------------------------------------------ dump --

def _dump_link(l, ext: dict[str, ExtVeth], pid: int) -> netns_pb2.NetLink:  # noqa: ANN001
    kind = l.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or ""
    link = netns_pb2.NetLink(index=l["index"], name=l.get_attr("IFLA_IFNAME"), type=l["ifi_type"], kind=kind,
                             flags=l["flags"], mtu=l.get_attr("IFLA_MTU") or 0,
                             address=_mac(l.get_attr("IFLA_ADDRESS")), txqlen=l.get_attr("IFLA_TXQLEN") or 0)
    what = f"network link {link.name} (index {link.index}, {kind or 'type %d' % link.type})"
    if link.type == ARPHRD_LOOPBACK and link.name == "lo":
        return link
    if kind == "veth" and l.get_attr("IFLA_LINK_NETNSID") is None and l.get_attr("IFLA_LINK"):
        link.peer_index = l.get_attr("IFLA_LINK")
        return link
    if kind == "veth" and link.name in ext:
        ext[link.name].used = True
        link.external = netns_pb2.EXT_OPTION
        return link
    name = _dump_ext_link(pid, link.index, link.type, kind)
    if name is None:
        raise UnsupportedObject(f"{what}: refcr cannot dump it (its peer or lower link is outside the "
                                "namespace?); name it with --external veth[NAME] or load a plugin that "
                                "claims it (DUMP_EXT_LINK)")
    log.info("%s: claimed by plugin %s", what, name)
    link.external, link.plugin = netns_pb2.EXT_PLUGIN, name
    return link


def _dump_ext_link(pid: int, index: int, type_: int, kind: str) -> str | None:
    """DUMP_EXT_LINK(index, type, kind) through the chain, run in the link's
    namespace (as CRIU does; a plugin's host runs a hook in the namespace
    refcr's thread is in): the name of the plugin that took it, or None."""
    ps = host.active()
    if ps is None:
        return None
    with entered(pid):
        got = ps.run(host.HOOK["DUMP_EXT_LINK"], [index, type_], [kind])
    if got is None:
        return None
    p, reply, _ = got
    if reply["ret"] < 0:
        raise host.PluginError(f"plugin {p.name}: DUMP_EXT_LINK({index}, {type_}, {kind}) failed: "
                          f"{os.strerror(-reply['ret'])}")
    ps.mark_used(p)
    return p.name


def _dump_addr(a) -> netns_pb2.NetAddr:  # noqa: ANN001
    fam = a["family"]
    local = a.get_attr("IFA_LOCAL") if fam == socket.AF_INET else a.get_attr("IFA_ADDRESS")
    e = netns_pb2.NetAddr(family=fam, prefixlen=a["prefixlen"], index=a["index"],
                          flags=a.get_attr("IFA_FLAGS") or a["flags"], scope=a["scope"], local=_ip(fam, local),
                          label=a.get_attr("IFA_LABEL") or "")
    if fam == socket.AF_INET:
        peer = a.get_attr("IFA_ADDRESS")
        if peer and peer != local:
            e.peer = _ip(fam, peer)
        e.broadcast = _ip(fam, a.get_attr("IFA_BROADCAST"))
    return e


def _dump_route(r) -> netns_pb2.NetRoute | None:  # noqa: ANN001
    if r["proto"] in (RTPROT_KERNEL, RTPROT_RA) or r["flags"] & RTM_F_CLONED:
        return None
    fam = r["family"]
    e = netns_pb2.NetRoute(family=fam, dst_len=r["dst_len"], src_len=r["src_len"], tos=r["tos"],
                           table=r.get_attr("RTA_TABLE") or r["table"], protocol=r["proto"], scope=r["scope"],
                           type=r["type"], flags=r["flags"], dst=_ip(fam, r.get_attr("RTA_DST")),
                           gateway=_ip(fam, r.get_attr("RTA_GATEWAY")),
                           prefsrc=_ip(fam, r.get_attr("RTA_PREFSRC")), oif=r.get_attr("RTA_OIF") or 0)
    if r.get_attr("RTA_MULTIPATH") is not None:
        raise UnsupportedObject(f"multipath route to {_text(fam, e.dst) if e.dst else 'default'}/{e.dst_len}: "
                                "not supported")
    prio = r.get_attr("RTA_PRIORITY")
    if prio is not None:
        e.priority, e.has_priority = prio, True
    return e


def _kernel_route_links(routes) -> list[int]:  # noqa: ANN001
    """Links in the order the main table's kernel-made routes name them."""
    out: list[int] = []
    for r in routes:
        oif = r.get_attr("RTA_OIF")
        table = r.get_attr("RTA_TABLE") or r["table"]
        if r["proto"] == RTPROT_KERNEL and table == RT_TABLE_MAIN and oif and oif not in out:
            out.append(oif)
    return out


def _by_order(order: list[int], index: int) -> int:
    return order.index(index) if index in order else len(order) + index


def _read_sysctls() -> list[netns_pb2.NetSysctl]:
    """Every sysctl of the namespace that can be set again, inside it
    (/proc/sys/net is the opener's namespace's).  Files root may not read
    (route/flush) or write (tcp_available_congestion_control) are left out,
    and so are those that say EIO (an IPv6 stable_secret never set)."""
    out = []
    for top, dirs, files in os.walk(SYSCTL_ROOT):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            try:
                if not os.stat(path).st_mode & stat.S_IWUSR:
                    continue
                with open(path) as f:
                    value = f.read()
            except OSError:
                continue
            out.append(netns_pb2.NetSysctl(name=path[len(SYSCTL_ROOT) + 1:], value=value.rstrip("\n")))
    return out


def _read_sysctls_named(names: list[str]) -> list[netns_pb2.NetSysctl]:
    out = []
    for name in names:
        try:
            with open(f"{SYSCTL_ROOT}/{name}") as f:
                out.append(netns_pb2.NetSysctl(name=name, value=f.read().rstrip("\n")))
        except FileNotFoundError:
            continue        # e.g. no ipv6 directory for a link with IPv6 off
    return out


def dump(pid: int, opts) -> netns_pb2.NetNsEntry:  # noqa: ANN001  (refcr.options.Options)
    """The network namespace of pid (frozen, and locked)."""
    ext = ext_veths(opts.external, restore=False)
    e = netns_pb2.NetNsEntry()
    ipr = _ipr(pid)
    try:
        for l in sorted(ipr.get_links(), key=lambda l: l["index"]):
            e.links.append(_dump_link(l, ext, pid))
        e.addrs.extend(_dump_addr(a) for a in ipr.get_addr())
        for fam, order in ((socket.AF_INET, e.kernel_route_links4), (socket.AF_INET6, e.kernel_route_links6)):
            routes = ipr.get_routes(family=fam, table=None)
            e.routes.extend(r for r in (_dump_route(r) for r in routes) if r)
            order.extend(_kernel_route_links(routes))
    except NetlinkError() as exc:
        raise DumpError(f"network namespace of {pid}: netlink: {os.strerror(exc.code)}") from None
    finally:
        ipr.close()
    unused = [x.option for x in ext.values() if not x.used]
    if unused:
        raise OptionError(f"--external {unused[0]}: the namespace has no veth of that name")
    with entered(pid):
        e.sysctls.extend(_read_sysctls())
    e.nft_ruleset = netfilter.dump(pid, netlock.is_lock_table)
    log.info("network namespace: %d links, %d addresses, %d routes, %d lines of nftables rules", len(e.links),
             len(e.addrs), len(e.routes), len(e.nft_ruleset.splitlines()))
    return e


# --------------------------------------------------------------- restore --

@dataclass
class NetRestore:
    """A restore of one namespace between its two halves."""

    pid: int
    entry: netns_pb2.NetNsEntry
    ext: dict[str, ExtVeth]
    index: dict[int, int] = field(default_factory=dict)     # dumped ifindex -> ifindex now


def _check_entry(e: netns_pb2.NetNsEntry) -> None:
    """Image data is untrusted: names are interface names, sysctls are paths
    below /proc/sys/net (no "..", no empty or odd component: nothing outside
    it can be named, and only files that exist there are written)."""
    try:
        for l in e.links:
            check_ifname(l.name, "netns.img")
    except OptionError as exc:
        raise RestoreError(str(exc)) from None
    for s in e.sysctls:
        parts = s.name.split("/")
        if parts[0] not in SYSCTL_TOPS or len(parts) < 2 or \
                not all(SYSCTL_NAME.fullmatch(p) and p not in (".", "..") for p in parts) or \
                "\n" in s.value or len(s.value) > SYSCTL_VALUE_MAX:
            raise RestoreError(f"netns.img: sysctl {s.name!r} is not one refcr restores")
    size = {socket.AF_INET: 4, socket.AF_INET6: 16}
    for what, fam, raws in [("address", a.family, (a.local, a.peer, a.broadcast)) for a in e.addrs] + \
            [("route", r.family, (r.dst, r.gateway, r.prefsrc)) for r in e.routes]:
        if fam not in size or any(raw and len(raw) != size[fam] for raw in raws):
            raise RestoreError(f"netns.img: an {what} of family {fam} has a malformed address")
    if any(not a.local for a in e.addrs):
        raise RestoreError("netns.img: an address without its address")


def _namespace_wide(name: str) -> bool:
    """A global sysctl or one of conf/all, conf/default (not of one link)."""
    parts = name.split("/")
    return len(parts) < 4 or parts[2] in ("all", "default")


def _write_sysctls(sysctls: list[netns_pb2.NetSysctl]) -> None:
    """Each value that differs from the namespace's now (a write may have side
    effects, and a value the new namespace has already needs none)."""
    for s in sysctls:
        path = f"{SYSCTL_ROOT}/{s.name}"
        try:
            with open(path) as f:
                if f.read().split() == s.value.split():
                    continue
            with open(path, "w") as f:
                f.write(s.value + "\n")
        except OSError as exc:
            raise RestoreError(f"network namespace: cannot set net.{s.name.replace('/', '.')} = {s.value}: "
                               f"{exc.strerror}") from None


def _create_veth(ipr, link: netns_pb2.NetLink, peer_attrs: list, peer_index: int = 0) -> None:  # noqa: ANN001
    from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
    from pyroute2.netlink.rtnl import RTM_NEWLINK
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    peer = {"attrs": peer_attrs}
    if peer_index:
        peer["index"] = peer_index
    msg = ifinfmsg()
    msg["index"] = link.index
    msg["attrs"] = [["IFLA_IFNAME", link.name], ["IFLA_LINKINFO", {"attrs": [
        ["IFLA_INFO_KIND", "veth"], ["IFLA_INFO_DATA", {"attrs": [["VETH_INFO_PEER", peer]]}]]}]]
    _request(ipr, msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)


def _create_links(ipr, r: NetRestore) -> None:  # noqa: ANN001
    by_index = {l.index: l for l in r.entry.links}
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for link in r.entry.links:
            what = f"network link {link.name}"
            try:
                if link.type == ARPHRD_LOOPBACK and link.name == "lo":
                    continue
                if link.peer_index:
                    peer = by_index.get(link.peer_index)
                    if peer is None or peer.peer_index != link.index:
                        raise RestoreError(f"netns.img: {what}: its veth peer {link.peer_index} is not in the image")
                    if link.index < peer.index:
                        _create_veth(ipr, link, [["IFLA_IFNAME", peer.name]], peer.index)
                elif link.external == netns_pb2.EXT_OPTION:
                    x = r.ext.get(link.name)
                    if x is None:
                        raise RestoreError(f"{what} has its peer outside the namespace: give "
                                           f"--external veth[{link.name}]:OUTNAME[@BRIDGE]")
                    x.used = True
                    _create_outside_veth(ipr, link, x, own)
            except NetlinkError() as exc:
                raise RestoreError(f"cannot create {what}: {os.strerror(exc.code)}") from None
    finally:
        os.close(own)
    unused = [x.option for x in r.ext.values() if not x.used]
    if unused:
        raise RestoreError(f"--external {unused[0]}: the images have no external veth of that name")


def _create_outside_veth(ipr, link: netns_pb2.NetLink, x: ExtVeth, own: int) -> None:  # noqa: ANN001
    """The pair with its other end in refcr's namespace.  The pair of the dumped
    (killed) tree may still exist for a moment while the kernel tears its
    namespace down, so a name clash outside is retried for a while."""
    deadline = time.monotonic() + OUTSIDE_WAIT
    while True:
        try:
            _create_veth(ipr, link, [["IFLA_IFNAME", x.outside], ["IFLA_NET_NS_FD", own]])
            break
        except NetlinkError() as exc:
            if exc.code != errno.EEXIST or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    _attach_outside(x)


def _attach_outside(x: ExtVeth) -> None:
    """The outside end, in refcr's namespace: into its bridge, and up."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=x.outside)
        if not idx:
            raise RestoreError(f"--external {x.option}: {x.outside} was not created")
        master = {}
        if x.bridge:
            br = ipr.link_lookup(ifname=x.bridge)
            if not br:
                raise RestoreError(f"--external {x.option}: no bridge {x.bridge} in refcr's network namespace")
            master = {"master": br[0]}
        ipr.link("set", index=idx[0], state="up", **master)


def check_options(images, opts) -> None:  # noqa: ANN001
    """Before anything is created: every --external veth[...] of a restore is
    well formed and names an external veth of the images, and every such
    veth of the images has one."""
    ext = ext_veths(opts.external, restore=True)
    links = [l for l in images.read_single("netns").links if l.external == netns_pb2.EXT_OPTION] \
        if images.exists("netns") else []
    for x in ext.values():
        if not any(l.name == x.name for l in links):
            raise OptionError(f"--external {x.option}: the images have no external veth {x.name}")
    for l in links:
        if l.name not in ext:
            raise OptionError(f"network link {l.name} has its peer outside the namespace: give "
                              f"--external veth[{l.name}]:OUTNAME[@BRIDGE]")


def restore_links(pid: int, images, opts) -> NetRestore | None:  # noqa: ANN001
    """First half: the namespace's sysctls and the links refcr creates itself."""
    if not images.exists("netns"):
        return None
    r = NetRestore(pid, images.read_single("netns"), ext_veths(opts.external, restore=True))
    _check_entry(r.entry)
    with entered(pid):
        _write_sysctls([s for s in r.entry.sysctls if _namespace_wide(s.name)])
    ipr = _ipr(pid)
    try:
        with _netlink_errors(RestoreError, "network namespace: links"):
            _create_links(ipr, r)
    finally:
        ipr.close()
    return r


def _map_links(ipr, r: NetRestore) -> None:  # noqa: ANN001
    now = {l.get_attr("IFLA_IFNAME"): l for l in ipr.get_links()}
    for link in r.entry.links:
        got = now.get(link.name)
        if got is None:
            by = f" (claimed by plugin {link.plugin}: its action script creates it at setup-namespaces)" \
                if link.external == netns_pb2.EXT_PLUGIN else ""
            raise RestoreError(f"network link {link.name} does not exist after setup-namespaces{by}")
        r.index[link.index] = got["index"]


def _set_link(ipr, link: netns_pb2.NetLink, index: int) -> None:  # noqa: ANN001
    attrs: dict = {}
    if link.mtu:
        attrs["mtu"] = link.mtu
    if link.address and link.type != ARPHRD_LOOPBACK:
        attrs["address"] = ":".join(f"{b:02x}" for b in link.address)
    if link.txqlen and link.type != ARPHRD_LOOPBACK:
        attrs["txqlen"] = link.txqlen
    if attrs:
        ipr.link("set", index=index, **attrs)


def _add_addr(ipr, a: netns_pb2.NetAddr, index: int) -> None:  # noqa: ANN001
    from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
    from pyroute2.netlink.rtnl import RTM_NEWADDR
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    fam = a.family
    flags = a.flags & IFA_F_KEPT
    msg = ifaddrmsg()
    msg["family"], msg["prefixlen"], msg["scope"], msg["index"] = fam, a.prefixlen, a.scope, index
    msg["flags"] = flags & 0xFF
    attrs = [["IFA_LOCAL", _text(fam, a.local)], ["IFA_ADDRESS", _text(fam, a.peer or a.local)],
             ["IFA_FLAGS", flags]]
    if a.broadcast:
        attrs.append(["IFA_BROADCAST", _text(fam, a.broadcast)])
    if a.label:
        attrs.append(["IFA_LABEL", a.label])
    msg["attrs"] = attrs
    _request(ipr, msg, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL)


def _add_route(ipr, rt: netns_pb2.NetRoute, index: dict[int, int]) -> None:  # noqa: ANN001
    from pyroute2.netlink import NLM_F_CREATE, NLM_F_EXCL
    from pyroute2.netlink.rtnl import RTM_NEWROUTE
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    fam = rt.family
    msg = rtmsg()
    for k, v in (("family", fam), ("dst_len", rt.dst_len), ("src_len", rt.src_len), ("tos", rt.tos),
                 ("table", rt.table if rt.table < 256 else RT_TABLE_COMPAT), ("proto", rt.protocol),
                 ("scope", rt.scope), ("type", rt.type), ("flags", rt.flags & ~RTM_F_CLONED)):
        msg[k] = v
    attrs: list = [["RTA_TABLE", rt.table]]
    for name, raw in (("RTA_DST", rt.dst), ("RTA_GATEWAY", rt.gateway), ("RTA_PREFSRC", rt.prefsrc)):
        if raw:
            attrs.append([name, _text(fam, raw)])
    if rt.oif:
        if rt.oif not in index:
            raise RestoreError(f"netns.img: a route uses link index {rt.oif}, which the image does not have")
        attrs.append(["RTA_OIF", index[rt.oif]])
    if rt.has_priority:
        attrs.append(["RTA_PRIORITY", rt.priority])
    msg["attrs"] = attrs
    _request(ipr, msg, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)


def _exists_ok(what: str, fn, *args) -> None:  # noqa: ANN001
    try:
        fn(*args)
    except NetlinkError() as exc:
        if exc.code == errno.EEXIST:
            log.debug("%s: already there", what)
            return
        raise RestoreError(f"network namespace: cannot restore {what}: {os.strerror(exc.code)}") from None


@contextmanager
def _no_dad(pid: int, links: list[str]) -> Iterator[None]:
    """IPv6 duplicate address detection off (all and every link) while links go
    up and addresses are added: the addresses were in use already, and a
    tentative one could not be bound by the sockets restored next.  The
    restored values are put back afterwards (no address gets IFA_F_NODAD)."""
    names = [f"ipv6/conf/{c}/accept_dad" for c in ["all", *links]]
    with entered(pid):
        saved = _read_sysctls_named(names)
        _write_sysctls([netns_pb2.NetSysctl(name=x.name, value="0") for x in saved])
    try:
        yield
    finally:
        with entered(pid):
            _write_sysctls(saved)


IFA_F_TENTATIVE = 0x40
TENTATIVE_WAIT = 5.0          # seconds; the DAD work of an address without DAD runs at once


def _wait_not_tentative(ipr, up: dict[int, str]) -> None:  # noqa: ANN001
    """Every IPv6 address on a link that is up stays tentative until the kernel's
    DAD work has run for it (a workqueue item, even with accept_dad 0 and on lo:
    only IFA_F_NODAD skips it), and a socket cannot be bound to it until then
    (EADDRNOTAVAIL): wait for that before the sockets are restored.  Addresses
    on links that are down stay tentative until the link goes up, as they were."""
    deadline = time.monotonic() + TENTATIVE_WAIT
    while True:
        waiting = [(m["index"], m.get_attr("IFA_ADDRESS")) for m in ipr.get_addr(family=socket.AF_INET6)
                   if m["index"] in up and (m.get_attr("IFA_FLAGS") or m["flags"]) & IFA_F_TENTATIVE]
        if not waiting:
            return
        if time.monotonic() > deadline:
            index, addr = waiting[0]
            raise RestoreError(f"network namespace: address {addr} on {up[index]} is still tentative "
                               f"after {TENTATIVE_WAIT:.0f} s (IPv6 duplicate address detection)")
        time.sleep(0.005)


def restore_config(r: NetRestore | None) -> None:
    """Second half, once every link exists: attributes, up, addresses, routes."""
    if r is None:
        return
    ipr = _ipr(r.pid)
    try:
        with _netlink_errors(RestoreError, "network namespace"):
            _configure(ipr, r)
    finally:
        ipr.close()
    e = r.entry
    log.info("network namespace restored: %d links, %d addresses, %d routes",
             len(e.links), len(e.addrs), len(e.routes))


def _configure(ipr, r: NetRestore) -> None:  # noqa: ANN001
    e = r.entry
    _map_links(ipr, r)
    names = {l.index: l.name for l in e.links}
    for link in e.links:
        _exists_ok(f"attributes of link {link.name}", _set_link, ipr, link, r.index[link.index])
    with entered(r.pid):        # after the MTUs: ipv6/conf/LINK/mtu may not exceed its link's
        _write_sysctls([s for s in e.sysctls if not _namespace_wide(s.name)])
    up6 = list(e.kernel_route_links6)
    with _no_dad(r.pid, [l.name for l in e.links]):
        for link in sorted(e.links, key=lambda l: (l.type != ARPHRD_LOOPBACK, _by_order(up6, l.index))):
            if link.flags & IFF_UP:
                ipr.link("set", index=r.index[link.index], state="up")
        order = {socket.AF_INET: list(e.kernel_route_links4), socket.AF_INET6: up6}
        for a in sorted(e.addrs, key=lambda a: (a.family, _by_order(order.get(a.family, []), a.index))):
            if a.index not in r.index:
                raise RestoreError(f"netns.img: an address is on link index {a.index}, which the image lacks")
            what = f"address {_text(a.family, a.local)}/{a.prefixlen} on {names[a.index]}"
            _exists_ok(what, _add_addr, ipr, a, r.index[a.index])
        _wait_not_tentative(ipr, {r.index[l.index]: l.name for l in e.links if l.flags & IFF_UP})
    for rt in sorted(e.routes, key=lambda x: -x.scope):      # host and link routes before gateways
        what = f"route {_text(rt.family, rt.dst) if rt.dst else 'default'}/{rt.dst_len}"
        _exists_ok(what, _add_route, ipr, rt, r.index)
    netfilter.restore(r.pid, e.nft_ruleset)                  # rules may name links and addresses
