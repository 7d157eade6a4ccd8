"""Sockets of the families refcr does not restore: refused by name at dump.

inet (net/inet.py), unix (net/unix.py) and netlink (net/netlink.py) sockets
are claimed first; any other socket (packet, vsock, alg, ...) is claimed here so the dump
fails with one line naming its family, type and protocol instead of the
generic "a kind refcr cannot dump".  Nothing of these is restored: their
state lives in kernel objects (packet rings mapped into the task, bound
interfaces and fanout groups, ...) that refcr has no image for yet.
"""
from __future__ import annotations

import os
import socket
import stat as stat_mod

from refcr.errors import RestoreError, UnsupportedObject
from refcr.fs.fd import DumpFiles, FdTarget, RestoreFiles, describe
from refcr.ptrace import native

FAMILIES = {socket.AF_PACKET: "packet (AF_PACKET)", socket.AF_NETLINK: "netlink (AF_NETLINK)",
            40: "vsock (AF_VSOCK)", 38: "crypto (AF_ALG)", 44: "XDP (AF_XDP)", 16: "netlink (AF_NETLINK)"}
NETLINK = {0: "NETLINK_ROUTE", 4: "NETLINK_SOCK_DIAG", 9: "NETLINK_AUDIT", 12: "NETLINK_NETFILTER",
           15: "NETLINK_KOBJECT_UEVENT", 16: "NETLINK_GENERIC"}


def family_of(fd: int) -> tuple[int, int, int]:
    s = socket.socket(fileno=os.dup(fd))
    try:
        return int(s.family), int(s.type), s.proto
    finally:
        s.close()


class OtherSocketKind:
    field = "unix_sk"      # a FileEntry member to satisfy DumpFiles.add; never filled: dump always refuses

    def claims(self, t: FdTarget, ctx: DumpFiles) -> bool:
        return stat_mod.S_ISSOCK(t.st.st_mode) and t.link.startswith("socket:[")

    def dump(self, t: FdTarget, ctx: DumpFiles) -> object:
        fd = native.copy_fd(t.pid, t.fd)
        try:
            family, stype, proto = family_of(fd)
        finally:
            os.close(fd)
        what = FAMILIES.get(family, f"family {family}")
        if family == socket.AF_NETLINK:
            what += f" {NETLINK.get(proto, f'protocol {proto}')}"
        raise UnsupportedObject(f"{describe(t)}: {what} socket (type {stype}): refcr cannot dump "
                                f"sockets of this family")

    def open(self, entry: object, ctx: RestoreFiles) -> int:
        raise RestoreError("other sockets are never in the images")


KINDS = [OtherSocketKind()]
