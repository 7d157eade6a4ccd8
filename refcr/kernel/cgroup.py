"""The cgroups of a tree (--manage-cgroups; the RPC's manage_cgroups with
its modes), in CRIU's "soft" mode: the tree comes back in the same cgroups
(or those the caller maps them to with cg_root), cgroups that do not exist
are created, and no controller property is dumped or restored.

Dump: /proc/PID/cgroup of every task; all of them must be in the root's
cgroups (one set per tree: a task elsewhere is refused by name, as is a
mode that asks for properties: props, full, strict).  Restore: before any
child is forked, the root puppet is written into cgroup.procs of each
hierarchy's target (children inherit it); a hierarchy refcr cannot see
mounted is an error naming it.  Without --manage-cgroups the tree simply
inherits refcr's cgroups, as with CRIU's "ignore".

Cost: one read per task at dump, one mkdir and one write per hierarchy at
restore.
"""
from __future__ import annotations

import os

from refcr.errors import RestoreError, UnsupportedObject
from refcr.pb import cgroup_pb2
from refcr.ptrace import proc

SOFT = "soft"


def members(pid: int) -> list[cgroup_pb2.CgroupMember]:
    out = []
    with open(proc.path(pid, "cgroup")) as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            out.append(cgroup_pb2.CgroupMember(hierarchy=int(hid), controllers=controllers, path=path))
    return out


def dump(pids: list[int], mode: str) -> cgroup_pb2.CgroupEntry:
    """The tree's one set of cgroups (pids[0] is the root)."""
    if mode != SOFT:
        raise UnsupportedObject(f"--manage-cgroups {mode}: refcr restores cgroup membership only (soft), "
                                "not controller properties")
    want = members(pids[0])
    for pid in pids[1:]:
        got = members(pid)
        if got != want:
            diff = next((g for g, w in zip(got, want, strict=False) if g != w), got[0] if got else None)
            where = f"{diff.controllers or 'v2'}:{diff.path}" if diff else "?"
            raise UnsupportedObject(f"process {pid} is in cgroup {where}, not in its tree root's: refcr "
                                    "restores a tree into one set of cgroups")
    return cgroup_pb2.CgroupEntry(members=want, mode=mode)


def hierarchies() -> dict[str, str]:
    """Where refcr sees each hierarchy mounted: controllers (as /proc/PID/cgroup
    names them, "" for v2) -> mount point of its root."""
    out: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if fields[3] != "/" or rfields[0] not in ("cgroup", "cgroup2"):
                continue
            mountpoint = fields[4].replace("\\040", " ")
            if rfields[0] == "cgroup2":
                out.setdefault("", mountpoint)
                continue
            opts = rfields[2].split(",")
            ctrl = ",".join(o for o in opts if o not in ("rw", "ro", "relatime", "noatime", "nosuid", "nodev",
                                                         "noexec", "xattr", "clone_children", "cpuset_v2_mode")
                            and not o.startswith("release_agent"))
            out.setdefault(ctrl, mountpoint)
    return out


def restore(pid: int, entry: cgroup_pb2.CgroupEntry, roots: dict[str, str]) -> None:
    """Put the root puppet into the dumped cgroups; roots: controller -> the
    path that stands for the dumped path's root (cg_root)."""
    mounts = hierarchies()
    for m in entry.members:
        where = m.controllers or "v2"
        base = mounts.get(m.controllers)
        if base is None:
            raise RestoreError(f"cgroup hierarchy {where} is not mounted here")
        target = _mapped(m, roots)
        if os.path.normpath(target) != target or not target.startswith("/") or "/../" in target + "/":
            raise RestoreError(f"cgroup.img: cgroup path {target!r} of {where} is not clean")
        d = os.path.join(base, target.lstrip("/"))
        try:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(f"{pid}\n")
        except OSError as exc:
            raise RestoreError(f"cgroup {where}:{target}: {exc.strerror}") from None


def _mapped(m: cgroup_pb2.CgroupMember, roots: dict[str, str]) -> str:
    for ctrl in [m.controllers, *m.controllers.split(","), ""]:
        if ctrl in roots:
            return roots[ctrl]
    return m.path
