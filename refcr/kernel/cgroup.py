"""The cgroups of a tree (--manage-cgroups [MODE]; the RPC's manage_cgroups
and manage_cgroups_mode), with CRIU's modes.

Dump: /proc/PID/cgroup of every task; all of them must be in the root's
cgroups (one set per tree: a task elsewhere is refused by name).  For each of
those cgroups the properties of its controllers that refcr knows
(:data:`PROPS`: limits, weights, cpusets, the devices list, ...) are read.
Restore, before any child is forked: for each hierarchy, the target cgroup
(the dumped path, or the one cg_root / --cgroup-root maps it to) is made or
checked as the mode says, its properties written as the mode says, and then
the root puppet is written into its cgroup.procs (children inherit it):

======  ======================  ===========================
mode    the cgroup              properties written
======  ======================  ===========================
none    must exist              none
props   must exist              all
soft    made if missing         only where refcr made it
full    made if missing         all
strict  must not exist: made    all
======  ======================  ===========================

(ignore: no cgroup.img is written; the tree inherits refcr's cgroups.)  The
restore's --manage-cgroups mode wins over the dump's, which is the default.
cpuset.cpus and cpuset.mems come first (a cpuset without them takes no
task); a property the kernel refuses fails the restore naming the file.
A hierarchy's root cgroup is never written (the kernel keeps its settings
fixed), nor a property that already holds the dumped value.
Deviations from CRIU: only the tree's own cgroups get their properties, not
every directory above them (those made on the way get the kernel's
defaults); net_prio.ifpriomap and freezer state are not kept.

Cost: one read per task and per property at dump, one mkdir and one write
per hierarchy and property at restore.
"""
from __future__ import annotations

import os

from refcr.errors import OptionError, RestoreError, UnsupportedObject
from refcr.pb import cgroup_pb2
from refcr.ptrace import proc

MODES = ("none", "props", "soft", "full", "strict")
SOFT = "soft"

# The properties kept, per controller (v1) and for the v2 hierarchy ("").
PROPS: dict[str, tuple[str, ...]] = {
    "cpuset": ("cpuset.cpus", "cpuset.mems", "cpuset.cpu_exclusive", "cpuset.mem_exclusive",
               "cpuset.mem_hardwall", "cpuset.memory_migrate", "cpuset.memory_spread_page",
               "cpuset.memory_spread_slab", "cpuset.sched_load_balance", "cpuset.sched_relax_domain_level"),
    "cpu": ("cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us", "cpu.rt_runtime_us"),
    "memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
               "memory.swappiness", "memory.oom_control", "memory.move_charge_at_immigrate"),
    "pids": ("pids.max",),
    "blkio": ("blkio.weight", "blkio.bfq.weight"),
    "net_cls": ("net_cls.classid",),
    "devices": ("devices.list",),
    "": ("cpuset.cpus", "cpuset.mems", "cpu.weight", "cpu.max", "memory.min", "memory.low", "memory.high",
         "memory.max", "memory.swap.max", "pids.max", "io.weight"),
}
ALL_DEVICES = "a *:* rwm"


def members(pid: int) -> list[cgroup_pb2.CgroupMember]:
    out = []
    with open(proc.path(pid, "cgroup")) as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            out.append(cgroup_pb2.CgroupMember(hierarchy=int(hid), controllers=controllers, path=path))
    return out


def check_mode(mode: str, what: str) -> str:
    if mode not in MODES:
        raise OptionError(f"{what} {mode}: the modes are {', '.join(MODES)} (or ignore)")
    return mode


def dump(pids: list[int], mode: str) -> cgroup_pb2.CgroupEntry:
    """The tree's one set of cgroups (pids[0] is the root) with their properties."""
    want = members(pids[0])
    for pid in pids[1:]:
        got = members(pid)
        if [(g.controllers, g.path) for g in got] != [(w.controllers, w.path) for w in want]:
            diff = next((g for g, w in zip(got, want, strict=False) if g != w), got[0] if got else None)
            where = f"{diff.controllers or 'v2'}:{diff.path}" if diff else "?"
            raise UnsupportedObject(f"process {pid} is in cgroup {where}, not in its tree root's: refcr "
                                    "restores a tree into one set of cgroups")
    mounts = hierarchies()
    for m in want:
        base = mounts.get(m.controllers)
        if base is not None:
            m.props.extend(read_props(os.path.join(base, m.path.lstrip("/")), m.controllers))
    return cgroup_pb2.CgroupEntry(members=want, mode=mode)


def _names(controllers: str, directory: str) -> list[str]:
    """The property files of a hierarchy's controllers, in PROPS order."""
    if controllers == "":
        return list(PROPS[""])
    return [n for c in controllers.split(",") for n in PROPS.get(c, ())]


def read_props(directory: str, controllers: str) -> list[cgroup_pb2.CgroupProp]:
    out = []
    for name in _names(controllers, directory):
        try:
            with open(os.path.join(directory, name)) as f:
                value = f.read().strip()
        except OSError:             # not there on this kernel or in this hierarchy
            continue
        if name == "memory.oom_control":
            value = next((x.split()[1] for x in value.splitlines() if x.startswith("oom_kill_disable")), "0")
        out.append(cgroup_pb2.CgroupProp(name=name, value=value))
    return out


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


def restore(pid: int, entry: cgroup_pb2.CgroupEntry, roots: dict[str, str], mode: str | None = None) -> None:
    """Put the root puppet into the dumped cgroups, made and set up as *mode*
    (default: the dump's) says; roots: controller -> the path that stands for
    the dumped path's root (cg_root)."""
    mode = check_mode(mode or entry.mode or SOFT, "cgroup.img: mode")
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
        made = _prepare(d, f"{where}:{target}", mode)
        if target != "/" and (mode in ("props", "full", "strict") or (mode == SOFT and made)):
            _write_props(d, m.props, f"{where}:{target}")
        try:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(f"{pid}\n")
        except OSError as exc:
            raise RestoreError(f"cgroup {where}:{target}: {exc.strerror}") from None


def _prepare(d: str, what: str, mode: str) -> bool:
    """The cgroup directory as the mode wants it; True if refcr made it."""
    exists = os.path.isdir(d)
    if exists and mode == "strict":
        raise RestoreError(f"cgroup {what} exists already (--manage-cgroups strict makes every cgroup)")
    if not exists and mode in ("none", "props"):
        raise RestoreError(f"cgroup {what} does not exist (--manage-cgroups {mode} makes none)")
    if exists:
        return False
    try:
        os.makedirs(d)
    except OSError as exc:
        raise RestoreError(f"cgroup {what}: {exc.strerror}") from None
    return True


def _write_props(d: str, props: list[cgroup_pb2.CgroupProp], what: str) -> None:
    for p in props:
        if "/" in p.name or p.name not in {n for names in PROPS.values() for n in names}:
            raise RestoreError(f"cgroup.img: {what}: {p.name!r} is no property refcr restores")
        try:
            if p.name == "devices.list":
                with open(os.path.join(d, p.name)) as f:
                    if f.read().strip() != p.value:
                        _write_devices(d, p.value)
                continue
            if p.name == "memory.oom_control":
                _write(d, p.name, p.value)
                continue
            with open(os.path.join(d, p.name)) as f:
                if f.read().strip() == p.value:        # already so (and some files refuse a rewrite)
                    continue
            _write(d, p.name, p.value)
        except OSError as exc:
            raise RestoreError(f"cgroup {what}: cannot set {p.name} to {p.value!r}: {exc.strerror}") from None


def _write(d: str, name: str, value: str) -> None:
    with open(os.path.join(d, name), "w") as f:
        f.write(value if value else "\n")


def _write_devices(d: str, listing: str) -> None:
    """The whitelist: everything denied, then each dumped line allowed."""
    lines = [x for x in listing.splitlines() if x.strip()]
    if lines == [ALL_DEVICES]:
        _write(d, "devices.allow", "a")
        return
    _write(d, "devices.deny", "a")
    for line in lines:
        _write(d, "devices.allow", line)


def _mapped(m: cgroup_pb2.CgroupMember, roots: dict[str, str]) -> str:
    for ctrl in [m.controllers, *m.controllers.split(","), ""]:
        if ctrl in roots:
            return roots[ctrl]
    return m.path
