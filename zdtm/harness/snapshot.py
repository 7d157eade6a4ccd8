"""The visible state of a process tree, normalised so two snapshots compare.

Taken from the host's /proc only, for every process of the tree (root and all
descendants) and every thread: maps (+ map_files link modes), fds with fdinfo,
the status fields C/R must preserve, limits, personality, cwd/root/exe links,
session/group ids, the parent, namespaces, the mount table (when not the
host's) and the mm layout fields of stat.

Processes and threads are keyed by their INNER pid/tid (the last field of
NSpid), so the same comparison works when the tree is pid 1 of its own PID
namespace and the restored tree got other outer pids.  What legitimately
changes across C/R is normalised away:

* pipe/socket/anon-inode inodes: a restored pipe is a new object, so inodes are
  renumbered in order of first appearance over the whole tree (ordered by inner
  pid, then fd), so pairs still match and sharing between processes still shows;
* namespaces: ``host`` if the harness's own, else renumbered like inodes;
* fdinfo ``mnt_id`` of a process outside the host mount namespace: replaced by
  the mount point it names (a restored mount namespace has new mount ids);
* mount tables: ids, device numbers and peer-group numbers renumbered;
* the inode/device of anonymous shared memory (/dev/zero, SysV, memfd);
* adjacent VMAs that are identical except for their split point are merged,
  since the kernel may merge (or not merge) them differently after restore.
"""
from __future__ import annotations

import difflib
import os
import re
import stat
from dataclasses import dataclass, field, fields, replace

from .procs import descendants, read_stat

STATUS_KEYS = (
    "Name", "Umask", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt",
    "Uid", "Gid", "Groups", "NSpid", "NSpgid", "NSsid",
    "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
    "NoNewPrivs", "Seccomp", "Seccomp_filters",
)
# Per-thread state (signals, credentials and seccomp are per thread).
THREAD_STATUS_KEYS = (
    "Name", "SigPnd", "SigBlk", "Uid", "Gid", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp",
)
# What ps can still show of a zombie (its signal fields are leftovers of the
# exited task, visible nowhere else).
ZOMBIE_STATUS_KEYS = ("Name", "Uid", "Gid", "NSpid", "NSpgid", "NSsid")
# Status fields that list one id per PID namespace: only the innermost counts.
NS_ID_KEYS = ("NSpid", "NSpgid", "NSsid")
FDINFO_KEYS = ("pos", "flags", "mnt_id", "eventfd-count", "eventfd-semaphore", "clockid")
NAMESPACES = ("mnt", "net", "ipc", "uts", "pid", "user", "cgroup", "time")
# proc(5) numbers of the stat fields PR_SET_MM_MAP restores.
MM_STAT_FIELDS = {
    26: "startcode", 27: "endcode", 28: "startstack", 45: "start_data", 46: "end_data",
    47: "start_brk", 48: "arg_start", 49: "arg_end", 50: "env_start", 51: "env_end",
}
ANON_SHARED = re.compile(r"^/(dev/zero|SYSV[0-9a-f]{8}|memfd:.*)( \(deleted\))?$")
OBJECT_LINK = re.compile(r"^(pipe|socket|anon_inode:\[?\w*\]?|net|mnt|pid|user|ipc|uts|cgroup|time):\[(\d+)\]$")
PEER_GROUP = re.compile(r"^(shared|master|propagate_from):(\d+)$")
HOST = "host"


@dataclass(frozen=True)
class Vma:
    start: int
    end: int
    perms: str
    offset: int
    dev: str
    inode: int
    path: str
    link_mode: int | None  # st_mode of /proc/PID/map_files/START-END, file mappings only

    def render(self) -> str:
        mode = "" if self.link_mode is None else f" [map_files {self.link_mode:o}]"
        return f"{self.start:x}-{self.end:x} {self.perms} {self.offset:08x} {self.dev} {self.inode} {self.path}{mode}"

    def continues(self, prev: "Vma") -> bool:
        """True if self is the continuation of prev (same mapping, split in two)."""
        if prev.end != self.start or (prev.perms, prev.dev, prev.inode, prev.path, prev.link_mode) != (
            self.perms, self.dev, self.inode, self.path, self.link_mode
        ):
            return False
        if self.path.startswith("/") or self.inode:
            return prev.offset + (prev.end - prev.start) == self.offset
        return True


@dataclass(frozen=True)
class Fd:
    fd: int
    target: str
    info: tuple[tuple[str, str], ...]

    def render(self) -> str:
        return f"{self.fd} -> {self.target} " + " ".join(f"{k}={v}" for k, v in self.info)


Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ThreadState:
    tid: int  # inner tid
    status: Pairs

    def render(self) -> str:
        return f"thread {self.tid}: " + ", ".join(f"{k}={v}" for k, v in self.status)


@dataclass(frozen=True)
class Mount:
    """One /proc/PID/mountinfo line without ids and device numbers."""

    mountpoint: str
    parent: str  # the parent mount's mount point ("" for the root of the tree)
    root: str
    options: str
    propagation: str  # optional fields, peer groups renumbered
    fstype: str
    source: str
    super_options: str

    def render(self) -> str:
        return (f"{self.mountpoint} (in {self.parent or '-'}) root={self.root} {self.options} "
                f"[{self.propagation}] {self.fstype} {self.source} {self.super_options}")


@dataclass(frozen=True)
class TaskState:
    pid: int  # inner pid: the last field of NSpid
    parent: int  # inner pid of the parent in the tree, 0 for the root
    sid: int  # inner
    pgid: int  # inner
    zombie: bool  # exited, not yet waited for: only ids and status remain
    status: Pairs
    threads: tuple[ThreadState, ...]
    namespaces: Pairs
    mm: Pairs
    cwd: str
    root: str
    exe: str
    personality: str
    limits: tuple[str, ...]
    vmas: tuple[Vma, ...]
    fds: tuple[Fd, ...]
    mounts: tuple[Mount, ...]  # empty while in the harness's mount namespace
    outer: int = field(default=0, compare=False)  # pid as the harness sees it; never compared


NOT_COMPARED = frozenset({"outer"})


@dataclass(frozen=True)
class TreeState:
    tasks: tuple[TaskState, ...]  # ordered by inner pid

    def pids(self) -> list[int]:
        return [t.pid for t in self.tasks]

    def outer_pids(self) -> list[int]:
        return [t.outer for t in self.tasks]

    def describe_pids(self) -> str:
        return ", ".join(f"{t.pid}" + (f" (outer {t.outer})" if t.outer != t.pid else "") for t in self.tasks)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError as e:
        return f"<{e.strerror}>"


def _status(path: str, keys: tuple[str, ...]) -> Pairs:
    out = {}
    for line in _read(path).splitlines():
        k, _, v = line.partition(":")
        if k in keys:
            words = v.split()
            if k in NS_ID_KEYS and words:
                words = words[-1:]
            out[k] = " ".join(words)
    return tuple((k, out[k]) for k in keys if k in out)


def _inner(status: Pairs, key: str) -> int:
    value = dict(status).get(key, "")
    return int(value) if value.lstrip("-").isdigit() else -1


def _maps(pid: int) -> list[Vma]:
    vmas = []
    for line in _read(f"/proc/{pid}/maps").splitlines():
        parts = line.split(None, 5)
        rng, perms, off, dev, ino = parts[:5]
        path = parts[5] if len(parts) > 5 else ""
        start_s, end_s = rng.split("-")
        link_mode = None
        if path.startswith("/"):
            try:
                link_mode = os.lstat(f"/proc/{pid}/map_files/{start_s}-{end_s}").st_mode
            except OSError:
                link_mode = None
        vma = Vma(int(start_s, 16), int(end_s, 16), perms, int(off, 16), dev, int(ino), path, link_mode)
        if ANON_SHARED.match(path):
            vma = replace(vma, dev="00:00", inode=0)
        vmas.append(vma)
    return vmas


def merge_vmas(vmas: list[Vma]) -> list[Vma]:
    merged: list[Vma] = []
    for v in vmas:
        if merged and v.continues(merged[-1]):
            merged[-1] = replace(merged[-1], end=v.end)
        else:
            merged.append(v)
    return merged


def _mountinfo(pid: int) -> tuple[tuple[Mount, ...], dict[str, str]]:
    """The normalised mount table of pid's mount namespace (sorted), and a map
    mount id -> mount point for fdinfo's mnt_id."""
    rows = []
    for line in _read(f"/proc/{pid}/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        rows.append((lf, rf))
    point = {lf[0]: lf[4] for lf, _ in rows}
    groups: dict[str, int] = {}
    mounts = []
    for lf, rf in rows:
        prop = []
        for opt in lf[6:]:
            m = PEER_GROUP.match(opt)
            if m:
                n = groups.setdefault(m.group(2), len(groups) + 1)
                prop.append(f"{m.group(1)}:#{n}")
            else:
                prop.append(opt)
        parent = point.get(lf[1], "") if lf[1] != lf[0] else ""
        mounts.append(Mount(
            mountpoint=lf[4], parent=parent, root=lf[3], options=lf[5], propagation=" ".join(prop),
            fstype=rf[0] if rf else "", source=rf[1] if len(rf) > 1 else "",
            super_options=rf[2] if len(rf) > 2 else "",
        ))
    return tuple(sorted(mounts, key=lambda m: (m.mountpoint, m.parent, m.fstype, m.root))), point


def _fds(pid: int, mount_points: dict[str, str] | None) -> list[Fd]:
    out = []
    base = f"/proc/{pid}/fd"
    for name in sorted(os.listdir(base), key=int):
        target = _readlink(f"{base}/{name}")
        try:
            info = _status(f"/proc/{pid}/fdinfo/{name}", FDINFO_KEYS)
        except FileNotFoundError:
            continue  # closed while we looked
        if mount_points is not None:
            info = tuple(
                (k, f"@{mount_points.get(v, 'internal')}") if k == "mnt_id" else (k, v) for k, v in info
            )
        target = TMPFILE_NAME.sub("/#INO (deleted)", target)
        more = _fdinfo_lines(f"/proc/{pid}/fdinfo/{name}")
        info += _file_stat(f"{base}/{name}", target)
        out.append(Fd(int(name), target, info + _epoll_targets(more) + _locks(more)))
    return out


def _file_stat(link: str, target: str) -> Pairs:
    """Mode and owner of an fd's file (path-named files: regular, directory,
    FIFO, device, deleted or not), with the size and mtime of regular files
    and FIFOs, and the atime of deleted ones (refcr makes those again; not
    of memfds, whose atime any mmap sets).
    Times of terminals and directories change with any use: left out."""
    if not target.startswith("/"):
        return ()
    try:
        st = os.stat(link)
    except OSError:
        return ()
    out = [("mode", f"{st.st_mode:o}"), ("owner", f"{st.st_uid}:{st.st_gid}")]
    if stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        out += [("size", str(st.st_size)), ("mtime", str(st.st_mtime_ns))]
        if target.endswith(" (deleted)") and not target.startswith("/memfd:"):   # mmap sets a memfd's
            out.append(("atime", str(st.st_atime_ns)))
    return tuple(out)


def _fdinfo_lines(path: str) -> list[str]:
    try:
        return _read(path).splitlines()
    except FileNotFoundError:
        return []


# An O_TMPFILE file's name is its inode number, which a restored one cannot keep.
TMPFILE_NAME = re.compile(r"/#\d+ \(deleted\)$")
EPOLL_TARGET = re.compile(r"^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)")


def _epoll_targets(lines: list[str]) -> Pairs:
    """An epoll's interest list: (fd number, events, data) of every target,
    sorted (the kernel lists them in the order of their file's address; the
    inode, device and pos of a target are the target fd's own business)."""
    found = sorted(m.groups() for m in map(EPOLL_TARGET.match, lines) if m)
    return tuple(("tfd", f"{tfd}/{events}/{data}") for tfd, events, data in found)


def _locks(lines: list[str]) -> Pairs:
    """The fdinfo lock lines (kind, mode, access, owner, range) with the owner
    as the pid inside the tree and without the inode (a restored deleted file
    is a new inode; the fd link names the file)."""
    out = []
    for line in lines:
        if not line.startswith("lock:"):
            continue
        words = line.split(":", 1)[1].split()
        if len(words) >= 8 and "->" not in words:
            words[4] = str(_inner_pid(int(words[4])))
            del words[5]
        out.append(("lock", "/".join(words)))
    return tuple(out)


def _inner_pid(pid: int) -> int:
    """The pid a host pid has in its innermost pid namespace (-1 stays -1)."""
    if pid <= 0:
        return pid
    try:
        return _inner(_status(f"/proc/{pid}/status", ("NSpid",)), "NSpid")
    except FileNotFoundError:
        return pid


def host_namespaces() -> dict[str, str]:
    return {kind: _readlink(f"/proc/self/ns/{kind}") for kind in NAMESPACES}


def take_task(pid: int, parent: int = 0, host_ns: dict[str, str] | None = None) -> TaskState:
    """One process; parent is the INNER pid of its parent in the tree (0: root)."""
    st = read_stat(pid)
    if st is None:
        raise ProcessLookupError(f"process {pid} vanished during the snapshot")
    host_ns = host_ns if host_ns is not None else host_namespaces()
    status = _status(f"/proc/{pid}/status", STATUS_KEYS)
    if st.zombie:
        return _zombie(pid, parent, status)
    threads = []
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        try:
            tstatus = _status(f"/proc/{pid}/task/{tid}/status", (*THREAD_STATUS_KEYS, "NSpid"))
        except FileNotFoundError:
            continue
        inner_tid = _inner(tstatus, "NSpid")
        threads.append(ThreadState(inner_tid, tuple(kv for kv in tstatus if kv[0] != "NSpid")))
    ns = tuple((kind, _readlink(f"/proc/{pid}/ns/{kind}")) for kind in NAMESPACES)
    own_mnt_ns = dict(ns).get("mnt") != host_ns.get("mnt")
    mounts, points = _mountinfo(pid) if own_mnt_ns else ((), None)
    return TaskState(
        pid=_inner(status, "NSpid"),
        parent=parent,
        sid=_inner(status, "NSsid"),
        pgid=_inner(status, "NSpgid"),
        zombie=False,
        status=status,
        threads=tuple(sorted(threads, key=lambda t: t.tid)),
        namespaces=tuple((k, HOST if v == host_ns.get(k) else v) for k, v in ns),
        mm=tuple((name, st.field(n)) for n, name in MM_STAT_FIELDS.items() if len(st.fields) > n - 3),
        cwd=_readlink(f"/proc/{pid}/cwd"),
        root=_readlink(f"/proc/{pid}/root"),
        exe=_readlink(f"/proc/{pid}/exe"),
        personality=_read(f"/proc/{pid}/personality").strip(),
        limits=tuple(_read(f"/proc/{pid}/limits").splitlines()),
        vmas=tuple(merge_vmas(_maps(pid))),
        fds=tuple(_fds(pid, points)),
        mounts=mounts,
        outer=pid,
    )


def _zombie(pid: int, parent: int, status: Pairs) -> TaskState:
    """A zombie has no mm, fds, cwd or namespaces any more: ids and status only."""
    return TaskState(
        pid=_inner(status, "NSpid"), parent=parent, sid=_inner(status, "NSsid"),
        pgid=_inner(status, "NSpgid"), zombie=True, threads=(), namespaces=(),
        status=tuple(kv for kv in status if kv[0] in ZOMBIE_STATUS_KEYS),
        mm=(), cwd="", root="", exe="", personality="", limits=(), vmas=(), fds=(), mounts=(),
        outer=pid,
    )


def _renumber_objects(tasks: list[TaskState]) -> list[TaskState]:
    """Replace kernel object inodes (fd links, namespaces) by their order of appearance."""
    numbers: dict[str, int] = {}

    def norm(target: str) -> str:
        m = OBJECT_LINK.match(target)
        if m is None:
            return target
        numbers.setdefault(target, len(numbers) + 1)
        return f"{m.group(1)}:[#{numbers[target]}]"

    return [
        replace(
            t,
            namespaces=tuple((k, norm(v)) for k, v in t.namespaces),
            fds=tuple(replace(f, target=norm(f.target)) for f in t.fds),
        )
        for t in tasks
    ]


def take_tree(root: int) -> TreeState:
    """Snapshot root (an outer pid) and all its descendants (zombies too)."""
    host_ns = host_namespaces()
    tasks: list[TaskState] = []
    inner_of: dict[int, int] = {}
    for pid, parent in descendants(root):
        t = take_task(pid, inner_of.get(parent, 0), host_ns)
        inner_of[pid] = t.pid
        tasks.append(t)
    if not tasks:
        raise ProcessLookupError(f"process {root} is not running")
    return TreeState(tuple(_renumber_objects(sorted(tasks, key=lambda t: t.pid))))


def take(pids: list[int]) -> TreeState:
    """Snapshot the given live processes as roots (no descendants walk)."""
    host_ns = host_namespaces()
    tasks = [take_task(pid, 0, host_ns) for pid in pids]
    return TreeState(tuple(_renumber_objects(sorted(tasks, key=lambda t: t.pid))))


def _render_field(value: object) -> list[str]:
    if isinstance(value, tuple):
        lines = []
        for item in value:
            if isinstance(item, (Vma, Fd, ThreadState, Mount)):
                lines.append(item.render())
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                lines.append(f"{item[0]}: {item[1]}")
            else:
                lines.append(str(item))
        return lines
    return [str(value)]


def _diff_threads(pid: int, before: tuple[ThreadState, ...], after: tuple[ThreadState, ...]) -> list[str]:
    out = []
    b_by, a_by = {t.tid: t for t in before}, {t.tid: t for t in after}
    if list(b_by) != list(a_by):
        out.append(f"pid {pid} threads: before {list(b_by)}, after {list(a_by)}")
    for tid, bt in b_by.items():
        at = a_by.get(tid)
        if at is None:
            continue
        bs, as_ = dict(bt.status), dict(at.status)
        for key in dict.fromkeys([*bs, *as_]):
            if bs.get(key) != as_.get(key):
                out.append(f"pid {pid} thread {tid} {key}: {bs.get(key)!r} -> {as_.get(key)!r}")
    return out


def diff(before: TreeState, after: TreeState, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Human-readable differences; empty if the states match."""
    out: list[str] = []
    if before.pids() != after.pids():
        out.append(f"processes differ: before [{before.describe_pids()}], after [{after.describe_pids()}]")
    after_by_pid = {t.pid: t for t in after.tasks}
    for b in before.tasks:
        a = after_by_pid.get(b.pid)
        if a is None:
            continue
        for f in fields(TaskState):
            if f.name in ignore or f.name in NOT_COMPARED:
                continue
            bv, av = getattr(b, f.name), getattr(a, f.name)
            if bv == av:
                continue
            if f.name == "threads":
                out.extend(_diff_threads(b.pid, bv, av))
                continue
            bl, al = _render_field(bv), _render_field(av)
            if len(bl) == 1 and len(al) == 1:
                out.append(f"pid {b.pid} {f.name}: {bl[0]!r} -> {al[0]!r}")
                continue
            out.append(f"pid {b.pid} {f.name}:")
            out.extend(
                "    " + line
                for line in difflib.unified_diff(bl, al, "before", "after", lineterm="", n=1)
            )
    return out
