"""Credentials: uids, gids, supplementary groups, capabilities, securebits.

Restore order matters because each step can take away the power to do the
next: with SECBIT_NO_SETUID_FIXUP the puppet keeps its capabilities across
setresuid; the bounding set is dropped while CAP_SETPCAP is still effective;
the final securebits need CAP_SETPCAP too; capset comes last but one, and
ambient capabilities (which need them permitted and inheritable) last.
"""
from __future__ import annotations

import struct

from refcr.kernel.userns import inner_groups, to_inner
from refcr.pb import core_pb2
from refcr.ptrace import proc
from refcr.ptrace.syscalls import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_GET_NO_NEW_PRIVS,
    PR_GET_SECUREBITS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_SECUREBITS,
)
from refcr.ptrace.tracee import Remote

SECBIT_NO_SETUID_FIXUP = 1 << 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def cap_last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def dump(pid: int, remote: Remote) -> core_pb2.CredsEntry:
    st = proc.status(pid)
    uids = to_inner(pid, "uid", [int(x) for x in st["Uid"].split()])
    gids = to_inner(pid, "gid", [int(x) for x in st["Gid"].split()])
    return core_pb2.CredsEntry(
        uid=uids[0], euid=uids[1], suid=uids[2], fsuid=uids[3],
        gid=gids[0], egid=gids[1], sgid=gids[2], fsgid=gids[3],
        groups=inner_groups(pid, [int(x) for x in st.get("Groups", "").split()]),
        cap_inh=int(st["CapInh"], 16), cap_prm=int(st["CapPrm"], 16),
        cap_eff=int(st["CapEff"], 16), cap_bnd=int(st["CapBnd"], 16),
        cap_amb=int(st.get("CapAmb", "0"), 16),
        secbits=remote.check("prctl", PR_GET_SECUREBITS, 0, 0, 0, 0),
        no_new_privs=bool(remote.check("prctl", PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)))


def restore(remote: Remote, c: core_pb2.CredsEntry, setgroups: bool = True) -> None:
    """Deferred, in this order: the caller's flush runs them in one batch
    with the thread's other state, stopped at the first refusal (setfsgid
    and setfsuid return the previous id, never an error).  The buffers go to the
    scratch in one put, after those of the calls deferred before.  Ids are of
    the puppet's user namespace; setgroups=False: setgroups(2) is denied
    there (the groups are inherited, kernel/userns.py checks them)."""
    lo = struct.pack("<III", c.cap_eff & 0xFFFFFFFF, c.cap_prm & 0xFFFFFFFF, c.cap_inh & 0xFFFFFFFF)
    hi = struct.pack("<III", c.cap_eff >> 32, c.cap_prm >> 32, c.cap_inh >> 32)
    groups, header, data = remote.put(struct.pack(f"<{len(c.groups)}I", *c.groups) or b"\0",
                                      struct.pack("<Ii", LINUX_CAPABILITY_VERSION_3, 0), lo + hi)
    last = cap_last_cap()
    calls: list[tuple[str, tuple[int, ...]]] = [
        ("prctl", (PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0)),
        *([("setgroups", (len(c.groups), groups))] if setgroups else []),
        ("setresgid", (c.gid, c.egid, c.sgid)),
        ("setfsgid", (c.fsgid,)),
        *[("prctl", (PR_CAPBSET_DROP, cap, 0, 0, 0)) for cap in range(last + 1) if not c.cap_bnd >> cap & 1],
        ("setresuid", (c.uid, c.euid, c.suid)),
        ("setfsuid", (c.fsuid,)),
        ("prctl", (PR_SET_SECUREBITS, c.secbits, 0, 0, 0)),
        ("capset", (header, data)),
        ("prctl", (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)),
        *[("prctl", (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)) for cap in range(last + 1)
          if c.cap_amb >> cap & 1],
    ]
    if c.no_new_privs:
        calls.append(("prctl", (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)))
    for name, args in calls:
        remote.defer(name, *args)
