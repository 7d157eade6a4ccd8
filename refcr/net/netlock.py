"""The network lock: no packet in or out of a tree's network namespace while
the tree is frozen (dump) or being rebuilt (restore).

Two forms, as CRIU's (criu/net.c, criu/netfilter.c):

* The tree has its own network namespace (dumped with it): an nftables
  table `inet refcr_lock` in that namespace with input, output and forward
  chains at the lowest priority whose policy is drop, loaded when the tree
  is frozen (restore: when its root exists).  The table is per namespace, so
  it goes away with the namespace when the dumped tree is killed.
* The tree lives in a namespace it shares (the host's, or one given with
  --external net[INO]) and has TCP connections dumped with --tcp-established:
  only the dumped connections are locked, by their 4-tuples.  Before the
  first connection enters repair mode a table `inet refcr_tcp_PID_RANDOM`
  (PID: the dumped root; its name goes into the inventory) is made with two sets of 4-tuples (IPv4
  and IPv6) and input and output chains dropping what matches them (input
  matched reversed); each connection's tuple is added just before its queues
  are read, so nothing the peer sends after that is acknowledged by the
  dumped socket.  The table outlives the dump (the tree is killed, its
  sockets go away silently) and is deleted by the restore once the restored
  tasks run, in the namespace they were restored into.  A dump that fails or
  leaves the tree running deletes it; when refcr itself is killed before the
  images are complete, its guardian (ptrace/guardian.py, told the table as a
  note) deletes it.  A restore that fails keeps it: the images can be
  restored again and the peer must not see a RST meanwhile.

Dropped packets are simply lost, nothing answers them: a TCP peer sees no RST
and retransmits once the lock is gone (after its retransmission timeout,
which backs off while the lock holds), so connections survive.  Packets
refcr sends itself during a restore (queued UDP datagrams, replayed FINs,
marked with REFCR_MARK) pass.  Links are left as they are (taking them down
would flush routes and IPv6 addresses and tell peers nothing useful).

Limits: it needs nft (Debian package nftables) and nf_tables in the kernel
(one nft run per locked connection, a few ms each); traffic that never
reaches the netfilter hooks of the namespace (e.g. AF_PACKET sockets of the
tree itself) is not stopped, but those sockets are frozen with their owners
anyway.  The table of a dump never restored stays until it is deleted by
hand (`nft delete table inet refcr_tcp_...`), as CRIU's does.  The `network-lock` /
`network-unlock` action scripts run too (refcr/actions.py): lock runs them
before the table is loaded, unlock after it is removed.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Protocol

from refcr import actions
from refcr.errors import NoSuchProcess, RefcrError
from refcr.log import log
from refcr.net import netfilter

TABLE = "refcr_lock"
# SO_MARK of the packets refcr itself sends while the lock holds (queued UDP
# datagrams sent again, FINs replayed, net/inet.py): let through.
REFCR_MARK = 0x72656663
LOWEST = -2147483648
RULES = f"""table inet {TABLE} {{
  chain input {{ type filter hook input priority {LOWEST}; policy drop;
    iifname "lo" meta mark {REFCR_MARK:#x} accept; }}
  chain output {{ type filter hook output priority {LOWEST}; policy drop;
    oifname "lo" meta mark {REFCR_MARK:#x} accept; }}
  chain forward {{ type filter hook forward priority {LOWEST}; policy drop; }}
}}
"""
NOTE = "netlock"            # the guardian's note: [pid, table]


def conn_table(pid: int) -> str:
    """A name of its own for each dump (images/validate.py checks its form)."""
    return f"refcr_tcp_{pid}_{os.urandom(4).hex()}"


def conn_rules(table: str) -> str:
    """The per-connection lock: sets of 4-tuples (local first), dropped both ways."""
    sets, out, inp = [], [], []
    for ver, ip, addr in (("4", "ip", "ipv4_addr"), ("6", "ip6", "ipv6_addr")):
        sets.append(f"  set conns{ver} {{ type {addr} . inet_service . {addr} . inet_service; }}")
        out.append(f"    {ip} saddr . tcp sport . {ip} daddr . tcp dport @conns{ver} drop")
        inp.append(f"    {ip} daddr . tcp dport . {ip} saddr . tcp sport @conns{ver} drop")
    head = "type filter hook {} priority " + str(LOWEST) + f"; policy accept; meta mark {REFCR_MARK:#x} accept"
    return (f"table inet {table} {{\n" + "\n".join(sets) + "\n"
            f"  chain output {{ {head.format('output')}\n" + "\n".join(out) + "\n  }\n"
            f"  chain input {{ {head.format('input')}\n" + "\n".join(inp) + "\n  }\n}\n")


class NetLockError(RefcrError):
    """The network of the tree could not be locked or unlocked."""


class Notes(Protocol):
    """Where the lock tells what to undo if refcr dies (the dump's guardian)."""

    def note(self, key: str, value: object) -> None: ...


def _nft(pid: int, script: str, missing_ok: bool = False) -> None:
    try:
        netfilter.nft(pid, ["-f", "-"], script)
    except netfilter.NftError as exc:
        if missing_ok and "No such file or directory" in str(exc):
            return
        raise NetLockError(f"the network lock: {exc}") from None


def is_lock_table(name: str) -> bool:
    """One of refcr's own tables (left out when a namespace's ruleset is dumped)."""
    return name == TABLE or name.startswith("refcr_tcp_")


@dataclass
class NetLock:
    """The lock of one tree: its whole namespace (enabled) or its dumped connections."""

    opts: object            # refcr.options.Options
    pid: int                # a task of the tree: nft runs in its network namespace
    enabled: bool           # the tree has its own namespace: lock all of it
    guard: Notes | None = None
    locked: bool = False
    table: str = ""         # the connection table, once made
    conns: list[str] = field(default_factory=list)

    def lock(self) -> None:
        if not self.enabled or self.locked:
            return
        actions.run(self.opts, "network-lock", self.pid)
        if self.guard is not None:
            self.guard.note(NOTE, [self.pid, TABLE])
        _nft(self.pid, RULES)
        self.locked = True
        log.info("network of %d locked", self.pid)

    def lock_connection(self, family: int, src: bytes, sport: int, dst: bytes, dport: int) -> None:
        """Drop the packets of one connection (local address first), unless
        the whole namespace is locked already."""
        if self.enabled:
            return
        if not self.table:
            table = conn_table(self.pid)
            actions.run(self.opts, "network-lock", self.pid)
            if self.guard is not None:
                self.guard.note(NOTE, [self.pid, table])
            _nft(self.pid, conn_rules(table))
            self.table = table
        ver = "6" if family == socket.AF_INET6 else "4"
        tup = f"{socket.inet_ntop(family, src)} . {sport} . {socket.inet_ntop(family, dst)} . {dport}"
        _nft(self.pid, f"add element inet {self.table} conns{ver} {{ {tup} }}\n")
        self.conns.append(tup)
        log.info("connection %s locked (table %s)", tup, self.table)

    def unlock(self) -> None:
        """Both locks off.  A tree that died meanwhile (a restored task that
        crashed on its first instruction) takes its namespace with it."""
        try:
            self._unlock()
        except NoSuchProcess:
            self.locked, self.table = False, ""
            log.warning("process %d exited before its network was unlocked", self.pid)

    def _unlock(self) -> None:
        if self.locked:
            self.locked = False
            _nft(self.pid, f"delete table inet {TABLE}\n")
            actions.run(self.opts, "network-unlock", self.pid)
            log.info("network of %d unlocked", self.pid)
        if self.table:
            table, self.table = self.table, ""
            _nft(self.pid, f"delete table inet {table}\n", missing_ok=True)
            actions.run(self.opts, "network-unlock", self.pid)
            log.info("%d connection(s) unlocked (table %s)", len(self.conns), table)

    def unlock_quietly(self) -> None:
        """After a failure: unlock, but never mask the failure."""
        try:
            self.unlock()
        except (RefcrError, OSError) as exc:
            log.error("unlocking the network of %d: %s", self.pid, exc)

    def unlock_restored(self, table: str) -> None:
        """Restore: the connections a dump in a shared namespace left locked
        (the inventory's netlock_table; already gone after an earlier restore)."""
        self.table = table
        self.unlock()


def undo_after_death(notes: dict[str, object]) -> None:
    """In the guardian, refcr having died before the images were complete:
    delete the table refcr made (the tree runs on)."""
    note = notes.get(NOTE)
    if not isinstance(note, list) or len(note) != 2:
        return
    pid, table = note
    try:
        _nft(int(pid), f"delete table inet {table}\n", missing_ok=True)
    except (RefcrError, OSError) as exc:
        log.error("guardian: removing the network lock %s: %s", table, exc)
