"""The visible state of a process tree, normalised so two snapshots compare.

Taken from /proc only: maps (+ map_files link modes), fds with fdinfo, the
status fields C/R must preserve, limits, personality, cwd/root/exe links,
session/group ids and the mm layout fields of stat.  What legitimately
changes across C/R is normalised away:

* pipe/socket inodes: a restored pipe is a new object, so inodes are renumbered
  in order of first appearance (pairs still match, sharing is still visible);
* the inode/device of anonymous shared memory (/dev/zero, SysV, memfd);
* adjacent VMAs that are identical except for their split point are merged,
  since the kernel may merge (or not merge) them differently after restore.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, fields, replace

from .procs import read_stat

STATUS_KEYS = (
    "Name", "Umask", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt",
    "Uid", "Gid", "Groups", "NSpid", "NSpgid", "NSsid",
    "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
    "NoNewPrivs", "Seccomp", "Seccomp_filters",
)
THREAD_STATUS_KEYS = ("Name", "SigPnd", "SigBlk", "CapEff", "Seccomp")
FDINFO_KEYS = ("pos", "flags", "mnt_id", "eventfd-count", "eventfd-semaphore", "clockid")
# proc(5) numbers of the stat fields PR_SET_MM_MAP restores.
MM_STAT_FIELDS = {
    26: "startcode", 27: "endcode", 28: "startstack", 45: "start_data", 46: "end_data",
    47: "start_brk", 48: "arg_start", 49: "arg_end", 50: "env_start", 51: "env_end",
}
ANON_SHARED = re.compile(r"^/(dev/zero|SYSV[0-9a-f]{8}|memfd:.*)( \(deleted\))?$")
OBJECT_LINK = re.compile(r"^(pipe|socket|anon_inode:\[?\w*\]?|net|mnt|pid|user|ipc|uts|cgroup|time):\[(\d+)\]$")


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


@dataclass(frozen=True)
class TaskState:
    pid: int
    sid: int
    pgid: int
    status: tuple[tuple[str, str], ...]
    threads: tuple[tuple[int, tuple[tuple[str, str], ...]], ...]
    mm: tuple[tuple[str, str], ...]
    cwd: str
    root: str
    exe: str
    personality: str
    limits: tuple[str, ...]
    vmas: tuple[Vma, ...]
    fds: tuple[Fd, ...]


@dataclass(frozen=True)
class TreeState:
    tasks: tuple[TaskState, ...]

    def pids(self) -> list[int]:
        return [t.pid for t in self.tasks]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError as e:
        return f"<{e.strerror}>"


def _status(path: str, keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = {}
    for line in _read(path).splitlines():
        k, _, v = line.partition(":")
        if k in keys:
            out[k] = " ".join(v.split())
    return tuple((k, out[k]) for k in keys if k in out)


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


def _fds(pid: int) -> list[Fd]:
    out = []
    base = f"/proc/{pid}/fd"
    for name in sorted(os.listdir(base), key=int):
        target = _readlink(f"{base}/{name}")
        try:
            info = _status(f"/proc/{pid}/fdinfo/{name}", FDINFO_KEYS)
        except FileNotFoundError:
            continue  # closed while we looked
        out.append(Fd(int(name), target, info))
    return out


def take_task(pid: int) -> TaskState:
    st = read_stat(pid)
    if st is None:
        raise ProcessLookupError(f"process {pid} vanished during the snapshot")
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    threads = []
    for tid in tids:
        try:
            threads.append((tid, _status(f"/proc/{pid}/task/{tid}/status", THREAD_STATUS_KEYS)))
        except FileNotFoundError:
            continue
    return TaskState(
        pid=pid,
        sid=st.sid,
        pgid=st.pgid,
        status=_status(f"/proc/{pid}/status", STATUS_KEYS),
        threads=tuple(threads),
        mm=tuple((name, st.field(n)) for n, name in MM_STAT_FIELDS.items() if len(st.fields) > n - 3),
        cwd=_readlink(f"/proc/{pid}/cwd"),
        root=_readlink(f"/proc/{pid}/root"),
        exe=_readlink(f"/proc/{pid}/exe"),
        personality=_read(f"/proc/{pid}/personality").strip(),
        limits=tuple(_read(f"/proc/{pid}/limits").splitlines()),
        vmas=tuple(merge_vmas(_maps(pid))),
        fds=tuple(_fds(pid)),
    )


def _renumber_objects(tasks: list[TaskState]) -> list[TaskState]:
    """Replace kernel object inodes in fd links by their order of appearance."""
    numbers: dict[str, int] = {}

    def norm(target: str) -> str:
        m = OBJECT_LINK.match(target)
        if m is None:
            return target
        key = target
        numbers.setdefault(key, len(numbers) + 1)
        return f"{m.group(1)}:[#{numbers[key]}]"

    return [replace(t, fds=tuple(replace(f, target=norm(f.target)) for f in t.fds)) for t in tasks]


def take(pids: list[int]) -> TreeState:
    """Snapshot the given live processes (sorted by pid)."""
    tasks = [take_task(pid) for pid in sorted(pids)]
    return TreeState(tuple(_renumber_objects(tasks)))


def _render_field(value: object) -> list[str]:
    if isinstance(value, tuple):
        lines = []
        for item in value:
            if isinstance(item, (Vma, Fd)):
                lines.append(item.render())
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                lines.append(f"{item[0]}: {item[1]}")
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int):
                lines.append(f"thread {item[0]}: " + ", ".join(f"{k}={v}" for k, v in item[1]))
            else:
                lines.append(str(item))
        return lines
    return [str(value)]


def diff(before: TreeState, after: TreeState, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Human-readable differences; empty if the states match."""
    out: list[str] = []
    if before.pids() != after.pids():
        out.append(f"processes differ: before {before.pids()}, after {after.pids()}")
    after_by_pid = {t.pid: t for t in after.tasks}
    for b in before.tasks:
        a = after_by_pid.get(b.pid)
        if a is None:
            continue
        for f in fields(TaskState):
            if f.name in ignore:
                continue
            bv, av = getattr(b, f.name), getattr(a, f.name)
            if bv == av:
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
