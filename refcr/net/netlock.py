"""The network lock: no packet in or out of a tree's network namespace while
the tree is frozen (dump) or being rebuilt (restore).

Mechanism: an nftables table `inet refcr_lock` in the tree's namespace with
input, output and forward chains at the lowest priority whose policy is drop,
loaded with the nft tool (nf_tables is built into the kernel, no module
needed).  Dropped packets are simply lost, nothing answers them: a TCP peer
sees no RST and retransmits once the lock is gone, so connections survive.
Packets refcr sends itself on loopback during a restore (queued UDP
datagrams, marked with REFCR_MARK) pass.  Links are left as they are (taking them down would flush routes and IPv6
addresses and tell peers nothing useful).  The table is per namespace, so it
goes away with the namespace when the dumped tree is killed.

Limits: it needs nft (Debian package nftables) and nf_tables in the kernel;
traffic that never reaches the netfilter hooks of the namespace (e.g. AF_PACKET
sockets of the tree itself) is not stopped, but those sockets are frozen with
their owners anyway.  The `network-lock` / `network-unlock` action scripts
run too (refcr/actions.py): lock runs them before the table is loaded,
unlock after it is removed.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from refcr import actions
from refcr.errors import RefcrError
from refcr.log import log
from refcr.net import nsenter

TABLE = "refcr_lock"
# SO_MARK of the packets refcr itself sends on loopback while the lock holds
# (queued UDP datagrams sent again, net/inet.py): let through, loopback only.
REFCR_MARK = 0x72656663
RULES = f"""table inet {TABLE} {{
  chain input {{ type filter hook input priority -2147483648; policy drop;
    iifname "lo" meta mark {REFCR_MARK:#x} accept; }}
  chain output {{ type filter hook output priority -2147483648; policy drop;
    oifname "lo" meta mark {REFCR_MARK:#x} accept; }}
  chain forward {{ type filter hook forward priority -2147483648; policy drop; }}
}}
"""
NFT_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"


class NetLockError(RefcrError):
    """The network of the tree could not be locked or unlocked."""


def _nft(pid: int, script: str) -> None:
    nft = shutil.which("nft", path=NFT_PATH)
    if nft is None:
        raise NetLockError("the network lock needs the nft tool (Debian package nftables)")
    with nsenter.entered(pid):        # the child inherits this thread's namespace
        res = subprocess.run([nft, "-f", "-"], input=script.encode(), capture_output=True, check=False)
    if res.returncode != 0:
        why = res.stderr.decode(errors="replace").strip().splitlines()
        raise NetLockError(f"nft in the network namespace of {pid} failed: {why[-1] if why else res.returncode}")


@dataclass
class NetLock:
    """The lock of one tree's namespace; does nothing for a tree without its own."""

    opts: object            # refcr.options.Options
    pid: int
    enabled: bool
    locked: bool = False

    def lock(self) -> None:
        if not self.enabled or self.locked:
            return
        actions.run(self.opts, "network-lock", self.pid)
        _nft(self.pid, RULES)
        self.locked = True
        log.info("network of %d locked", self.pid)

    def unlock(self) -> None:
        if not self.locked:
            return
        self.locked = False
        _nft(self.pid, f"delete table inet {TABLE}\n")
        actions.run(self.opts, "network-unlock", self.pid)
        log.info("network of %d unlocked", self.pid)

    def unlock_quietly(self) -> None:
        """After a failure: unlock, but never mask the failure."""
        try:
            self.unlock()
        except (RefcrError, OSError) as exc:
            log.error("unlocking the network of %d: %s", self.pid, exc)
