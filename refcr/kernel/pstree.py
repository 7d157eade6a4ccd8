"""The process tree: which processes a dump takes, their ids and namespaces.

A dump takes the whole subtree rooted at the given pid.  It is frozen top
down: a process is seized (all its threads) before its children are listed,
so once frozen it cannot add a child behind our back.  Ids in the images are
the ones inside the tree's pid namespace ("inner" ids); the root may be the
init of a pid namespace of its own, and may have its own IPC, UTS, mount and
network namespaces, and a user namespace owning them (kernel/userns.py);
every other process must share the root's.  With --freeze-cgroup the
freezer stops the tree first (kernel/freezer.py): nothing is added meanwhile.

Restore in refcr's own pid namespace needs the dumped pids back.  Right
after a dump they may still be held by the dumped processes' zombies, which
their parent has not reaped yet: the restore waits up to ZOMBIE_WAIT for
that (polling /proc every 10 ms), then names the zombie and its parent.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from refcr.kernel import userns
from refcr.errors import NoSuchProcess, OptionError, ProcessBusy, RestoreError, UnsupportedObject
from refcr.log import log
from refcr.options import Options
from refcr.pb import pstree_pb2
from refcr.ptrace import proc

NS_KINDS = ("pid", "ipc", "uts", "mnt", "net")      # namespaces a root may have of its own
SHARED_ONLY = ("cgroup", "time")                   # must be refcr's own
ZOMBIE_WAIT = 5.0      # seconds a restore waits for a zombie holding a needed pid to be reaped


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = proc.stat(pid).ppid
    return seen


def check_target(pid: int) -> proc.Stat:
    if pid <= 0:
        raise OptionError(f"invalid pid {pid}")
    if not proc.exists(pid):
        raise NoSuchProcess(pid)
    st = proc.stat(pid)
    if st.flags & proc.PF_KTHREAD:
        raise UnsupportedObject(f"process {pid} ({st.comm}) is a kernel thread")
    if pid in _ancestors(os.getpid()):
        raise OptionError(f"process {pid} is refcr itself or one of its ancestors")
    if st.state in ("Z", "X"):
        raise UnsupportedObject(f"process {pid} is a zombie")
    if pid == 1:
        raise OptionError("process 1 is the init of refcr's pid namespace: it cannot be dumped from inside it")
    try:
        for kind in NS_KINDS:
            ns_of(pid, kind)
    except PermissionError:
        raise ProcessBusy(f"process {pid} cannot be inspected (its /proc entries are not readable)") from None
    return st


def ns_of(pid: int | str, kind: str) -> str:
    link = "pid_for_children" if kind == "pid_children" else kind
    return os.readlink(f"/proc/{pid}/ns/{link}")


def inner_ids(pid: int, key: str = "NSpid", tid: int | None = None) -> int:
    """The last (innermost) id of NSpid/NStid/NSpgid/NSsid."""
    st = proc.status(pid) if tid is None else _task_status(pid, tid)
    return int(st[key].split()[-1])


def _task_status(pid: int, tid: int) -> dict[str, str]:
    out = {}
    with open(proc.path(pid, "task", str(tid), "status")) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def root_namespaces(root: int) -> list[str]:
    """Kinds of namespace the root has of its own (not refcr's)."""
    own = [k for k in NS_KINDS if ns_of(root, k) != ns_of("self", k)]
    if userns.own(root):            # a child of refcr's, owning the others (kernel/userns.py)
        userns.check_tree(root, own)
        own.append("user")
    for kind in SHARED_ONLY:
        if os.path.exists(f"/proc/self/ns/{kind}") and ns_of(root, kind) != ns_of("self", kind):
            raise UnsupportedObject(f"process {root} is in a {kind} namespace of its own; not supported yet")
    if "pid" in own:
        levels = len(proc.status(root)["NSpid"].split()) - len(proc.status(os.getpid())["NSpid"].split())
        if levels != 1 or inner_ids(root) != 1:
            raise UnsupportedObject(f"process {root} is in a pid namespace but is not its init (pid 1)")
    return own


@dataclass
class Member:
    """One process of the tree as the dump found it."""

    host_pid: int
    entry: pstree_pb2.PstreeEntry
    host_tids: list[int] = field(default_factory=list)
    stop_signo: int = 0       # group-stopped by this signal when seized (kernel/jobctl.py), 0: not


def check_same_namespaces(root: int, pid: int) -> None:
    for kind in NS_KINDS + SHARED_ONLY + ("user",):
        if os.path.exists(f"/proc/self/ns/{kind}") and ns_of(pid, kind) != ns_of(root, kind):
            raise UnsupportedObject(f"process {pid} is in another {kind} namespace than the root {root}; "
                                    "nested namespaces are not supported yet")


def describe(host_pid: int, ppid_inner: int, zombie: bool) -> pstree_pb2.PstreeEntry:
    st = proc.status(host_pid)
    e = pstree_pb2.PstreeEntry(pid=int(st["NSpid"].split()[-1]), ppid=ppid_inner, host_pid=host_pid,
                               pgid=int(st["NSpgid"].split()[-1]), sid=int(st["NSsid"].split()[-1]),
                               zombie=zombie)
    if zombie:
        e.exit_status = proc.stat(host_pid).exit_code
        e.comm = st["Name"]
        e.sig_blocked, e.sig_ignored, e.sig_caught = (int(st[k], 16) for k in ("SigBlk", "SigIgn", "SigCgt"))
    return e


def check_ids(members: list[Member], opts: Options) -> None:
    """Every session must be led inside the tree (or be the caller's, with
    --shell-job); a process group may have lost its leader, but must not be
    led by a live process outside the tree."""
    root = members[0].entry
    pids = {m.entry.pid for m in members}
    for m in members:
        e = m.entry
        outside_ok = opts.shell_job
        if e.sid not in pids and not (outside_ok and e.sid == root.sid):
            raise UnsupportedObject(
                f"process {m.host_pid} is in session {e.sid} led by a process outside the dump; "
                "use --shell-job if it is a job of your shell")
        if e.pgid not in pids and not (outside_ok and e.pgid == root.pgid):
            if e.pid == e.host_pid and proc.exists(e.pgid):
                raise UnsupportedObject(
                    f"process {m.host_pid} is in process group {e.pgid} led by a process outside the dump; "
                    "use --shell-job if it is a job of your shell")


def needed_pids(entries: list[pstree_pb2.PstreeEntry]) -> set[int]:
    """The host pids a restore in refcr's pid namespace creates: every
    process and thread, and the leader of a group whose leader is gone (the
    root's own group may be the caller's)."""
    root = entries[0]
    pids = {e.pid for e in entries} | {t for e in entries for t in e.threads}
    groups = {e.pgid for e in entries if e.pgid != root.pgid or root.pgid == root.pid}
    return pids | groups


def wait_zombies_reaped(pids: set[int], timeout: float = ZOMBIE_WAIT) -> None:
    """Right after a dump, the dumped processes may still be zombies their
    parent has not reaped: wait up to timeout for that, then name the first
    one still there.  A live process holding a pid is left to clone3 (EEXIST)."""
    deadline = time.monotonic() + timeout
    held = proc.zombies_among(pids)
    if held:
        log.info("waiting up to %.0f s for zombies to be reaped: %s", timeout,
                 ", ".join(f"{z} (parent {p})" for z, p in sorted(held.items())))
    while held and time.monotonic() < deadline:
        time.sleep(0.01)
        held = proc.zombies_among(set(held))
    if held:
        pid, parent = min(held.items())
        raise RestoreError(f"pid {pid} is a zombie of process {parent} (not yet reaped by it)")
