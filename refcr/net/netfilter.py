"""Netfilter state of a network namespace: its nftables ruleset.

A tree with a network namespace of its own owns the firewall inside it
(a container's iptables-nft or nft rules, its sets and counters).  Dump
lists the ruleset with ``nft list ruleset`` inside the namespace (refcr's
own lock tables left out, net/netlock.py) and keeps the text in netns.img;
restore loads it with ``nft -f`` into the new namespace once its links,
addresses and routes exist (rules may name them) and before the tree runs.
Counters and set elements come back as listed.  This is CRIU's way too
(nftables-N.img, iptables-save/-restore), done with the same tool.

Refused by name, as they would otherwise be lost: tables of the legacy
x_tables backend (iptables-legacy: /proc/PID/net/ip_tables_names and its
IPv6/ARP kin list them), which nft cannot see, and rules of iptables-nft
that use an xtables extension nft cannot translate (listed as ``xt ...``),
which ``nft -f`` could not load again.

Images are untrusted: the text goes to nft inside the tree's new namespace
only, and an ``include`` (nft would read a host file) is refused.

Cost: one nft run per namespace at dump and at restore (a few ms), none
when the namespace has no ruleset.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from typing import Callable

from refcr.errors import RestoreError, UnsupportedObject
from refcr.net import nsenter

NFT_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
LEGACY_TABLES = ("ip_tables_names", "ip6_tables_names", "arp_tables_names")
XT_EXPR = re.compile(r"\bxt (?:match|target)\b")
INCLUDE = re.compile(r"^\s*include\b", re.M)
TABLE = re.compile(r"^table (\S+) (\S+) \{$")


class NftError(Exception):
    """nft is missing or failed; the message says which and why."""


def nft(pid: int, args: list[str], script: str = "") -> str:
    """nft ARGS inside pid's network namespace (its input: script); its output."""
    tool = shutil.which("nft", path=NFT_PATH)
    if tool is None:
        raise NftError("the nft tool is missing (Debian package nftables)")
    with nsenter.entered(pid):        # the child inherits this thread's namespace
        res = subprocess.run([tool, *args], input=script.encode(), capture_output=True, check=False)
    if res.returncode != 0:
        why = res.stderr.decode(errors="replace").strip().splitlines()
        raise NftError(f"nft {' '.join(args)} in the network namespace of {pid} failed: "
                       f"{why[-1] if why else res.returncode}")
    return res.stdout.decode(errors="replace")


def without_tables(ruleset: str, skip: Callable[[str], bool]) -> str:
    """The listing without the tables whose name skip() says (each table runs
    from its "table FAMILY NAME {" line to the next "}" at column 0)."""
    out: list[str] = []
    dropping = False
    for line in ruleset.splitlines(keepends=True):
        m = TABLE.match(line.rstrip("\n"))
        if m is not None:
            dropping = skip(m.group(2))
        if not dropping:
            out.append(line)
        if line.rstrip("\n") == "}":
            dropping = False
    return "".join(out)


def dump(pid: int, skip: Callable[[str], bool]) -> str:
    """The namespace's nftables ruleset as text ('' if it has none)."""
    legacy = _legacy_tables(pid)
    if legacy:
        raise UnsupportedObject(f"network namespace of {pid}: legacy iptables tables ({', '.join(legacy)}): "
                                f"refcr restores nftables rulesets only (iptables-nft's are)")
    try:
        ruleset = without_tables(nft(pid, ["list", "ruleset"]), skip)
    except NftError as exc:
        raise UnsupportedObject(f"network namespace of {pid}: its firewall cannot be read: {exc}") from None
    if XT_EXPR.search(ruleset):
        raise UnsupportedObject(f"network namespace of {pid}: an nftables rule uses an xtables extension "
                                f"(iptables-nft) that nft cannot list as a rule it could load again")
    return ruleset.strip() and ruleset


def _legacy_tables(pid: int) -> list[str]:
    names: list[str] = []
    for f in LEGACY_TABLES:
        try:
            with open(f"/proc/{pid}/net/{f}") as fh:
                names.extend(f"{f.split('_')[0]} {n.strip()}" for n in fh if n.strip())
        except FileNotFoundError:
            continue
    return names


def check(ruleset: str) -> None:
    """Image data is untrusted: no include (nft would read a host file)."""
    if INCLUDE.search(ruleset):
        raise RestoreError("netns.img: the nftables ruleset includes a file")


def restore(pid: int, ruleset: str) -> None:
    """Load the dumped ruleset into pid's (new) network namespace."""
    if not ruleset:
        return
    check(ruleset)
    try:
        nft(pid, ["-f", "-"], ruleset)
    except NftError as exc:
        raise RestoreError(f"the network namespace's nftables ruleset: {exc}") from None
