"""net/netfilter.py: what of a namespace's ruleset is kept, and what an image may not ask."""
from __future__ import annotations

import subprocess

import pytest

from refcr.errors import RestoreError, UnsupportedObject
from refcr.net import netfilter, netlock

LISTING = """table inet refcr_lock {
\tchain input {
\t\ttype filter hook input priority -2147483648; policy drop;
\t}
}
table inet zdtm {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tudp dport 7021 drop
\t}
}
table inet refcr_tcp_12_abcd {
\tset conns4 {
\t\ttype ipv4_addr
\t}
}
"""


def test_lock_tables_left_out() -> None:
    kept = netfilter.without_tables(LISTING, netlock.is_lock_table)
    assert "refcr_" not in kept
    assert kept.startswith("table inet zdtm {") and "udp dport 7021 drop" in kept
    assert kept.count("}") == kept.count("{")


@pytest.mark.parametrize("text", ['include "/etc/shadow"\n', 'table ip t {\n}\n  include "/x"\n'])
def test_include_refused(text: str) -> None:
    with pytest.raises(RestoreError, match="includes a file"):
        netfilter.check(text)


def test_xt_extension_detected() -> None:
    assert netfilter.XT_EXPR.search('\t\txt match "conntrack" counter accept\n')
    assert not netfilter.XT_EXPR.search("\t\tct state established accept\n")


def _in_netns(script: str) -> subprocess.Popen:
    """A process in a new network namespace after running script there."""
    p = subprocess.Popen(["unshare", "-n", "sh", "-c", f"{script} && echo ready && exec sleep 60"],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def test_legacy_iptables_refused() -> None:
    """Rules of the legacy x_tables backend are not in the nft ruleset: refused by name."""
    p = _in_netns("iptables-legacy -A INPUT -p udp --dport 7021 -j DROP")
    try:
        with pytest.raises(UnsupportedObject, match=r"legacy iptables tables \(ip filter\)"):
            netfilter.dump(p.pid, netlock.is_lock_table)
    finally:
        p.kill()
        p.wait()


def test_ruleset_dumped_without_lock_tables() -> None:
    p = _in_netns("nft 'add table inet zdtm; add table inet refcr_lock'")
    try:
        text = netfilter.dump(p.pid, netlock.is_lock_table)
        assert "table inet zdtm" in text and "refcr_lock" not in text
    finally:
        p.kill()
        p.wait()
