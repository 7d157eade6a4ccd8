"""The visible state of a process tree, normalised so two snapshots compare.

Taken from the host's /proc only, for every process of the tree (root and all
descendants) and every thread: maps (+ map_files link modes), fds with fdinfo,
the status fields C/R must preserve, limits, personality, cwd/root/exe links,
cgroup membership (/proc/PID/cgroup as the task sees it; a thread's own only
where it differs from its process's),
session/group ids, the parent, namespaces, the mount table (when not the
host's), the nftables ruleset, every /proc/sys/net value and the links,
addresses and routes (ip -j, normalised: _net_config) of a network
namespace that is not the host's
(``nft list ruleset`` through nsenter; counters and set timeouts left out),
the mm layout fields of stat, and what processes share with other
processes of the tree (kcmp KCMP_VM/FILES/FS/SIGHAND: the lowest inner pid
sharing the object, for processes that share it).

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
  since the kernel may merge (or not merge) them differently after restore;
* per thread, ``State`` keeps only what C/R must preserve: stopped (T),
  traced (t), or live (R/S/D/I are a matter of timing);
* pending signals of a live thread that the thread does not block (and of
  the shared set that some live thread does not block) are left out: such a
  signal is being delivered (it is taken at the next return to user space),
  and a periodic timer's signal shows there for a moment at random; a
  blocked pending signal, or any pending signal of a stopped thread, stays;
* fdinfo: every line is compared, except what names a new object (``ino`` of
  pipes, sockets, anon inodes, deleted files; ``eventfd-id``; the index of a
  ``lock:`` line); pids in ``lock:``, pidfd and /proc/PID/timers lines are
  replaced by inner pids of the tree (``outside`` for others); repeated lines
  (``tfd:``, ``inotify wd:``, ``lock:``) are sorted; a timerfd's
  ``it_value`` and ``ticks`` by ``armed`` (or fired: ticks > 0) / ``disarmed``
  (both move with elapsed time); an epoll ``tfd:`` line's ``ino``/``sdev`` by
  whether they are those of the process's fd ``tfd`` (``same``), which is
  what the target file identity means after restore; an ``inotify wd:`` or
  ``fanotify ino:`` line on a deleted inode that an fd, area or cwd of the tree
  holds: its inode by that inode's number (which fds, areas and cwd it is
  shows), without its file handle, the lines sorted again after.
"""
from __future__ import annotations

import ctypes
import difflib
import errno
import fcntl
import json
import os
import re
import stat
import struct
import subprocess
from dataclasses import dataclass, field, fields, replace

from .procs import descendants, read_stat
from .sockopts import SYS_PIDFD_GETFD, _libc, socket_state

STATUS_KEYS = (
    "Name", "Umask", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt",
    "Uid", "Gid", "Groups", "NSpid", "NSpgid", "NSsid",
    "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
    "NoNewPrivs", "Seccomp", "Seccomp_filters", "THP_enabled",
    "Speculation_Store_Bypass", "SpeculationIndirectBranch", "Mems_allowed_list",
)
# Per-thread state (signals, credentials and seccomp are per thread).
THREAD_STATUS_KEYS = (
    "Name", "State", "SigPnd", "SigBlk", "Uid", "Gid", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp",
    "Seccomp_filters", "Cpus_allowed_list", "Speculation_Store_Bypass", "SpeculationIndirectBranch",
)
# proc(5) numbers of the per-thread scheduling fields of stat.
SCHED_STAT_FIELDS = {18: "priority", 19: "nice", 40: "rt_priority", 41: "policy"}
# Per-process files compared verbatim (stripped); missing ones are skipped.
PROC_FILES = ("oom_score_adj", "loginuid", "sessionid", "timerslack_ns")
# What ps can still show of a zombie (its signal fields are leftovers of the
# exited task, visible nowhere else).
ZOMBIE_STATUS_KEYS = ("Name", "Uid", "Gid", "NSpid", "NSpgid", "NSsid")
# Status fields that list one id per PID namespace: only the innermost counts.
NS_ID_KEYS = ("NSpid", "NSpgid", "NSsid")
# fdinfo lines that name a new object after restore (see the module docstring).
FDINFO_DROPPED = ("eventfd-id",)
# Lines that can occur more than once in one fdinfo file.
FDINFO_MULTI = ("tfd", "inotify wd", "fanotify ino", "lock")
PID_MARK = re.compile(r"<pid (\d+)>")
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
    vmflags: str = ""      # VmFlags of smaps (lo, sr, rr, dc, de, ht, nh, mg, wf, dd, ...)

    def render(self) -> str:
        mode = "" if self.link_mode is None else f" [map_files {self.link_mode:o}]"
        return (f"{self.start:x}-{self.end:x} {self.perms} {self.offset:08x} {self.dev} {self.inode} {self.path}{mode}"
                f" [{self.vmflags}]")

    def continues(self, prev: "Vma") -> bool:
        """True if self is the continuation of prev (same mapping, split in two)."""
        if prev.end != self.start or (prev.perms, prev.dev, prev.inode, prev.path, prev.link_mode,
                                      prev.vmflags) != (
            self.perms, self.dev, self.inode, self.path, self.link_mode, self.vmflags
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
    status: Pairs  # status fields, then the scheduling fields of stat
    outer: int = field(default=0, compare=False)  # tid as the harness sees it; never compared

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
    attrs: Pairs  # oom_score_adj, loginuid, sessionid, timerslack_ns
    timers: tuple[str, ...]  # /proc/PID/timers, one line per POSIX timer
    limits: tuple[str, ...]
    vmas: tuple[Vma, ...]
    fds: tuple[Fd, ...]
    mounts: tuple[Mount, ...]  # empty while in the harness's mount namespace
    stopped: tuple[int, ...] = ()  # inner tids in a job-control stop (State T), see job_stopped()
    cgroup: tuple[str, ...] = ()  # /proc/PID/cgroup lines, paths as the task sees them (its cgroup namespace)
    shares: Pairs = ()  # (kind, lowest inner pid of the tree sharing it) for the kinds of SHARED that others share
    userns: Pairs = ()  # its user namespace: maps, setgroups, owner, parent, who owns its other namespaces
    firewall: tuple[str, ...] = ()  # `nft list ruleset` of its network namespace when not the harness's
    net_sysctls: tuple[str, ...] = ()  # every readable /proc/sys/net file of that namespace, "name:value"
    net_config: tuple[str, ...] = ()   # that namespace's links, addresses and routes (ip -j), normalised
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


def _vmflags(pid: int) -> dict[int, str]:
    """start address -> VmFlags of every area (smaps)."""
    out: dict[int, str] = {}
    start = -1
    for line in _read(f"/proc/{pid}/smaps").splitlines():
        if line.startswith("VmFlags:"):
            # sd (VM_SOFTDIRTY) is set on every new mapping where the kernel has soft-dirty
            # (the 6.12 guest): a tracking bit, not the process's state
            out[start] = " ".join(sorted(f for f in line[8:].split() if f != "sd"))
        elif "-" in line.split(" ", 1)[0] and not line.split(" ", 1)[0].endswith(":"):
            start = int(line.split("-", 1)[0], 16)
    return out


def _maps(pid: int) -> list[Vma]:
    vmas = []
    flags = _vmflags(pid)
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
        vma = Vma(int(start_s, 16), int(end_s, 16), perms, int(off, 16), dev, int(ino), path, link_mode,
                  flags.get(int(start_s, 16), "?"))
        if ANON_SHARED.match(path):
            vma = replace(vma, dev="00:00")     # its inode: renumbered (_renumber_objects)
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


def _fanotify_mount(value: str, mount_points: dict[str, str]) -> str:
    """A fanotify mount mark's line ("HEXID mflags:..."): the mount by its mount point."""
    ident, _, rest = value.partition(" ")
    try:
        point = mount_points.get(str(int(ident, 16)), "internal")
    except ValueError:
        return value
    return f"@{point} {rest}"


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


def _fd_inode(pid: int, fd: str) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    return st.st_ino, st.st_dev


def _kernel_dev(dev: int) -> int:
    """st_dev as the kernel prints it in fdinfo (MKDEV: major << 20 | minor)."""
    return os.major(dev) << 20 | os.minor(dev)


def _epoll_line(pid: int, value: str) -> str:
    """tfd: N events: E data: D pos:P ino:I sdev:S, the target named by identity."""
    words = value.split()
    fd = words[0]
    fields_ = dict(w.split(":", 1) for w in words if ":" in w and not w.endswith(":"))
    own = _fd_inode(pid, fd)
    same = own is not None and fields_.get("ino") == f"{own[0]:x}" and fields_.get("sdev") == f"{_kernel_dev(own[1]):x}"
    kept = [w for w in words if not w.startswith(("ino:", "sdev:"))]
    return " ".join(kept) + (" target=same" if same else f" target={fields_.get('sdev')}:{fields_.get('ino')}")


def _lock_line(value: str, named: bool) -> str:
    """N: FLOCK ADVISORY WRITE PID MAJ:MIN:INO START END -> without N, pid
    marked; the inode only for a file named by its path (a pipe, socket or
    deleted file is a new inode after restore, as with the ino line)."""
    words = value.split()
    if words and words[0].endswith(":"):
        words = words[1:]
    if words and words[0] == "->":
        words = words[1:]
    if len(words) > 3 and words[3].lstrip("-").isdigit():
        words[3] = f"<pid {words[3]}>"
    if len(words) > 4 and not named:
        words[4] = "<inode>"
    return " ".join(words)


def _timerfd(info: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """it_value and ticks move with time: a timer that fired (ticks > 0) shows
    it_value 0 until read; both become one word, armed (or fired) / disarmed."""
    d = dict(info)
    fired = d.get("ticks", "0") != "0"
    zero = d.get("it_value", "").replace(" ", "") == "(0,0)"
    out = []
    for k, v in info:
        if k == "ticks":
            continue
        if k == "it_value":
            v = "disarmed" if zero and not fired else "armed"
        out.append((k, v))
    return out


def _fdinfo(pid: int, name: str, target: str) -> list[tuple[str, str]]:
    """Every line of fdinfo, normalised (see the module docstring)."""
    text = _read(f"/proc/{pid}/fdinfo/{name}")
    # timerfd puts several fields on one line: "clockid: 1 ticks: 0 settime flags: 00 it_value: (..)"
    text = re.sub(r"\s+(ticks|settime flags|it_value|it_interval):", r"\n\1:", text)
    info: list[tuple[str, str]] = []
    named = target.startswith("/") and not target.endswith(" (deleted)") and not ANON_SHARED.match(target)
    for line in text.splitlines():
        k, _, v = line.partition(":")
        k, v = k.strip(), " ".join(v.split())
        if not k or k in FDINFO_DROPPED:
            continue
        if k == "ino" and not named:
            continue
        if k == "tfd":
            v = _epoll_line(pid, v)
        elif k == "lock":
            v = _lock_line(v, named)
        elif k in ("Pid", "NSpid"):
            v = " ".join(f"<pid {w}>" for w in v.split()[:1]) if k == "Pid" else ""
            if k == "NSpid":
                continue
        info.append((k, v))
    if target == "anon_inode:[timerfd]":
        info = _timerfd(info)
    # repeated lines come in the kernel's order of struct file addresses (epoll's
    # rbtree) or of creation: compare them as sets
    head = [kv for kv in info if kv[0] not in FDINFO_MULTI]
    return head + sorted(kv for kv in info if kv[0] in FDINFO_MULTI)


def _timers(pid: int) -> tuple[str, ...]:
    """/proc/PID/timers: one line per POSIX timer, the notified pid marked."""
    try:
        text = _read(f"/proc/{pid}/timers")
    except OSError:
        return ()
    out: list[str] = []
    cur: list[str] = []
    for line in text.splitlines():
        k, _, v = line.partition(":")
        v = v.strip()
        if k == "ID" and cur:
            out.append(" ".join(cur))
            cur = []
        if k == "notify" and "." in v:
            head, _, num = v.rpartition(".")
            v = f"{head}.<pid {num}>"
        cur.append(f"{k}={v}")
    if cur:
        out.append(" ".join(cur))
    return tuple(out)


def _attrs(pid: int) -> Pairs:
    out = []
    for name in PROC_FILES:
        try:
            out.append((name, _read(f"/proc/{pid}/{name}").strip()))
        except OSError:
            continue
    return tuple(out)


def _sched(pid: int, tid: int) -> Pairs:
    st = read_stat(tid) if tid == pid else None
    if st is None:
        try:
            raw = _read(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            return ()
        rest = raw[raw.rindex(")") + 2:].split()
    else:
        rest = list(st.fields)
    return tuple((name, rest[n - 3]) for n, name in SCHED_STAT_FIELDS.items() if len(rest) > n - 3)


def _cgroup(pid: int, tid: int, own_ns: bool) -> tuple[str, ...]:
    """/proc/PID/task/TID/cgroup, read from inside the task's cgroup namespace
    when it has its own (the kernel shows paths relative to the reader's)."""
    path = f"/proc/{pid}/task/{tid}/cgroup"
    if not own_ns:
        return tuple(_read(path).splitlines())
    got = subprocess.run(["nsenter", f"--cgroup=/proc/{pid}/ns/cgroup", "cat", path],
                         capture_output=True, text=True, timeout=30)
    if got.returncode != 0:
        raise FileNotFoundError(f"{path}: {got.stderr.strip()}")
    return tuple(got.stdout.splitlines())


def _state(status: Pairs) -> Pairs:
    """State: T (stopped) and t (traced) are state; the rest is timing."""
    out = []
    for k, v in status:
        if k == "State":
            letter = v[:1]
            v = {"T": "stopped", "t": "traced", "Z": "zombie", "X": "dead"}.get(letter, "live")
        out.append((k, v))
    return tuple(out)


def _mask(status: Pairs, key: str) -> int:
    try:
        return int(dict(status).get(key, "0"), 16)
    except ValueError:
        return 0


def _with_pending(status: Pairs, key: str, keep: int) -> Pairs:
    return tuple((k, f"{_mask(status, k) & keep:0{len(v)}x}" if k == key else v) for k, v in status)


def _settled_signals(pid: int, threads: list[ThreadState], status: Pairs) -> tuple[list[ThreadState], Pairs]:
    """Pending signals without the ones in delivery (see the module docstring)."""
    live = [t for t in threads if dict(t.status).get("State") == "live"]
    out = [replace(t, status=_with_pending(t.status, "SigPnd", _mask(t.status, "SigBlk")))
           if t in live else t for t in threads]
    shared_kept = ~0
    for t in live:
        shared_kept &= _mask(t.status, "SigBlk")
    main = next((t for t in live if t.outer == pid), None)
    status = _with_pending(status, "ShdPnd", shared_kept)
    if main is not None:                 # the process's SigPnd is its main thread's
        status = _with_pending(status, "SigPnd", _mask(main.status, "SigBlk"))
    return out, status


def _fds(pid: int, mount_points: dict[str, str] | None) -> list[Fd]:
    out = []
    base = f"/proc/{pid}/fd"
    for name in sorted(os.listdir(base), key=int):
        target = _readlink(f"{base}/{name}")
        try:
            info = tuple(_fdinfo(pid, name, target))
        except FileNotFoundError:
            continue  # closed while we looked
        if mount_points is not None:
            info = tuple(
                (k, f"@{mount_points.get(v, 'internal')}") if k == "mnt_id"
                else (k, _fanotify_mount(v, mount_points)) if k == "fanotify mnt_id" else (k, v) for k, v in info
            )
        if target.startswith("socket:["):
            info = info + tuple(socket_state(pid, int(name)))
        target = TMPFILE_NAME.sub("/#INO (deleted)", target)
        more = _fdinfo_lines(f"/proc/{pid}/fdinfo/{name}")
        info += _file_stat(f"{base}/{name}", target) + _tty_alias(pid, int(name), target)
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
    if target.endswith(" (deleted)") and not ANON_SHARED.match(target):
        out.append((GHOST, _ghost_key(f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}", st.st_ino)))
    elif ANON_SHARED.match(target):
        out.append((GHOST, _shm_key(st.st_ino)))
    return tuple(out)


# A deleted file (fd or mapping) is a new inode after restore: its inode is
# renumbered over the whole tree (_renumber_objects), so that which fds and
# areas are one file still shows.
GHOST = "deleted inode"


def _ghost_key(dev: str, ino: int) -> str:
    return f"{dev}:{ino}"


def _shm_key(ino: int) -> str:
    """A shmem object (a memfd, shared anonymous memory, a SysV segment): one
    numbering for its fds and areas, so which of them are one object shows
    (the areas' device is left out: 00:01 for some, 00:00 for others)."""
    return f"shm:{ino}"


INOTIFY_INODE = re.compile(r"ino:([0-9a-f]+) sdev:([0-9a-f]+)")
INOTIFY_HANDLE = re.compile(r" f_handle:[0-9a-f]*")
FANOTIFY_INODE = re.compile(r"([0-9a-f]+) sdev:([0-9a-f]+)")     # the value of a "fanotify ino:" line
NOTIFY_INODE_KEYS = ("inotify wd", "fanotify ino")
CWD_GHOST = re.compile(r"^(.*) \[deleted inode (\S+)\]$")


def _dir_link(pid: int, which: str) -> str:
    """The cwd or root link; a removed directory's with its inode (renumbered
    like the fds' and areas' of deleted files: which fds are the cwd shows)."""
    link = _readlink(f"/proc/{pid}/{which}")
    if not link.endswith(" (deleted)"):
        return link
    st = os.stat(f"/proc/{pid}/{which}")
    return f"{link} [deleted inode {_ghost_key(f'{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}', st.st_ino)}]"


TIOCGDEV = 0x80045432


def _tty_alias(pid: int, fd: int, target: str) -> Pairs:
    """The terminal an fd of /dev/tty or /dev/console reaches (TIOCGDEV on a
    pidfd_getfd copy of its description: reopening the link would reach the
    harness's own)."""
    if target not in ("/dev/tty", "/dev/console"):
        return ()
    pidfd, copy = -1, -1
    try:
        pidfd = os.pidfd_open(pid)
        copy = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            return (("reaches", "unknown"),)
        dev, = struct.unpack("I", fcntl.ioctl(copy, TIOCGDEV, bytes(4)))
        return (("reaches", f"{os.major(dev)}:{os.minor(dev)}"),)
    except OSError as exc:
        return (("reaches", exc.strerror or "error"),)
    finally:
        for x in (pidfd, copy):
            if x >= 0:
                os.close(x)


def _ctty(st) -> Pairs:
    """A session leader's controlling terminal and whether its own group is
    the foreground one (other processes of a session lose it: see drivers/tty.py)."""
    if st.sid != st.pid:
        return ()
    tty_nr, tpgid = int(st.fields[7 - 3]), int(st.fields[8 - 3])
    fg = "none" if tpgid <= 0 else "own group" if tpgid == st.pgid else "another group"
    return (("ctty", f"{os.major(tty_nr)}:{os.minor(tty_nr)}" if tty_nr else "none"), ("ctty foreground", fg))


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
    except (FileNotFoundError, ProcessLookupError):     # a thread that ended meanwhile
        return pid


def host_namespaces() -> dict[str, str]:
    return {kind: _readlink(f"/proc/self/ns/{kind}") for kind in NAMESPACES}


def take_task(pid: int, parent: int = 0, host_ns: dict[str, str] | None = None,
              firewalls: dict[str, tuple[str, ...]] | None = None) -> TaskState:
    """One process; parent is the INNER pid of its parent in the tree (0: root);
    firewalls: the rulesets and net sysctls read so far in this snapshot, by network namespace."""
    st = read_stat(pid)
    if st is None:
        raise ProcessLookupError(f"process {pid} vanished during the snapshot")
    host_ns = host_ns if host_ns is not None else host_namespaces()
    status = _status(f"/proc/{pid}/status", STATUS_KEYS)
    if st.zombie:
        return _zombie(pid, parent, status)
    ns = tuple((kind, _readlink(f"/proc/{pid}/ns/{kind}")) for kind in NAMESPACES)
    own_cg_ns = dict(ns).get("cgroup") != host_ns.get("cgroup")
    cgroups = _cgroup(pid, pid, own_cg_ns)
    threads = []
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        try:
            tstatus = _status(f"/proc/{pid}/task/{tid}/status", (*THREAD_STATUS_KEYS, "NSpid"))
            sched = _sched(pid, tid)
            tcg = _cgroup(pid, tid, own_cg_ns)
        except (FileNotFoundError, ProcessLookupError):     # it ended meanwhile
            continue
        inner_tid = _inner(tstatus, "NSpid")
        own_cg = (("cgroup", "; ".join(tcg)),) if tcg != cgroups else ()    # a thread elsewhere (v1)
        threads.append(ThreadState(inner_tid, _state(tuple(kv for kv in tstatus if kv[0] != "NSpid"))
                                   + sched + own_cg, outer=tid))
    threads, status = _settled_signals(pid, threads, status)
    own_mnt_ns = dict(ns).get("mnt") != host_ns.get("mnt")
    own_net_ns = dict(ns).get("net") != host_ns.get("net")
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
        cwd=_dir_link(pid, "cwd"),
        root=_dir_link(pid, "root"),
        exe=_readlink(f"/proc/{pid}/exe"),
        personality=_read(f"/proc/{pid}/personality").strip(),
        attrs=_attrs(pid) + _ctty(st),
        timers=_timers(pid),
        limits=tuple(_read(f"/proc/{pid}/limits").splitlines()),
        vmas=tuple(merge_vmas(_maps(pid))),
        fds=tuple(_fds(pid, points)),
        mounts=mounts,
        stopped=job_stopped(pid),
        cgroup=cgroups,
        userns=_userns(pid),
        firewall=_firewall_of(pid, dict(ns)["net"], firewalls if firewalls is not None else {}) if own_net_ns else (),
        net_sysctls=_net_sysctls_of(pid, dict(ns)["net"], firewalls if firewalls is not None else {})
        if own_net_ns else (),
        net_config=_net_config_of(pid, dict(ns)["net"], firewalls if firewalls is not None else {})
        if own_net_ns else (),
        outer=pid,
    )


NFT = "/usr/sbin/nft"
NFT_COUNTER = re.compile(r"packets \d+ bytes \d+")
NFT_EXPIRES = re.compile(r" expires \S+")


def _firewall_of(pid: int, netns: str, seen: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    if netns not in seen:
        seen[netns] = _firewall(pid)
    return seen[netns]


def _net_sysctls_of(pid: int, netns: str, seen: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    key = f"sysctls {netns}"
    if key not in seen:
        seen[key] = _net_sysctls(pid)
    return seen[key]


def _net_config_of(pid: int, netns: str, seen: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    key = f"config {netns}"
    if key not in seen:
        seen[key] = _net_config(pid)
    return seen[key]


# What is compared of a link, an address and a route: what a restore sets.
# Left out: kernel-chosen numbers (ifindex, netnsid), counters, and what
# follows from the peers' state a moment later (carrier, operstate,
# linkdown, IPv6 DAD's tentative), and finite lifetimes (they count down).
LINK_KEYS = ("ifname", "link", "mtu", "qdisc", "txqlen", "link_type", "address", "broadcast", "promiscuity",
             "allmulti", "min_mtu", "max_mtu", "inet6_addr_gen_mode", "group")
CARRIER_FLAGS = {"LOWER_UP", "NO-CARRIER", "M-DOWN", "DORMANT"}
TRANSIENT_ADDR = {"tentative", "optimistic", "valid_life_time", "preferred_life_time"}
FOREVER = 4294967295


def _net_config(pid: int) -> tuple[str, ...]:
    """Links, addresses and routes of pid's network namespace, as `ip -j`
    shows them there, one line each, normalised (LINK_KEYS)."""
    script = "ip -d -j link show; echo; ip -j addr show; echo; ip -j route show table all"
    res = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "sh", "-c", script],
                         capture_output=True, text=True, check=False)
    parts = [p for p in res.stdout.split("\n\n")]
    if res.returncode or len(parts) != 3:
        return (f"ip: {res.stderr.strip()}",)
    links, addrs, routes = (json.loads(p or "[]") for p in parts)
    out = [_link_line(link) for link in links]
    for link in addrs:
        for a in link.get("addr_info", []):
            life = "" if a.get("valid_life_time", FOREVER) == FOREVER else " lifetime finite"
            kept = {k: v for k, v in a.items() if k not in TRANSIENT_ADDR}
            out.append(f"addr {link['ifname']} {json.dumps(kept, sort_keys=True)}{life}")
    for r in routes:
        r = {k: v for k, v in r.items() if k != "expires"}
        r["flags"] = [f for f in r.get("flags", []) if f != "linkdown"]
        out.append(f"route {json.dumps(r, sort_keys=True)}")
    return tuple(sorted(out))


def _link_line(link: dict) -> str:
    kept = {k: link[k] for k in LINK_KEYS if k in link}
    kept["flags"] = sorted(set(link.get("flags", [])) - CARRIER_FLAGS)
    kept["kind"] = link.get("linkinfo", {}).get("info_kind", "")
    return f"link {json.dumps(kept, sort_keys=True)}"


def _net_sysctls(pid: int) -> tuple[str, ...]:
    """Every /proc/sys/net value of pid's network namespace (/proc/sys/net is
    the reader's namespace's: grep runs there through nsenter); files root
    may not read (route/flush) or that say EIO (an unset stable_secret) are
    not listed."""
    res = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "grep", "-r", "", "/proc/sys/net"],
                         capture_output=True, text=True, check=False)
    if res.returncode not in (0, 2):       # 2: some file could not be read
        return (f"grep: {res.stderr.strip()}",)
    return tuple(sorted(line.removeprefix("/proc/sys/net/") for line in res.stdout.splitlines()))


def _firewall(pid: int) -> tuple[str, ...]:
    """The nftables ruleset of pid's network namespace (nft run there through
    nsenter); counters and set timeouts move with traffic and time: left out."""
    if not os.path.exists(NFT):
        return ("nft: not installed",)
    res = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", NFT, "list", "ruleset"],
                         capture_output=True, text=True, check=False)
    if res.returncode:
        return (f"nft: {res.stderr.strip()}",)
    return tuple(NFT_EXPIRES.sub("", NFT_COUNTER.sub("packets _ bytes _", line))
                 for line in res.stdout.splitlines())


NS_GET_USERNS, NS_GET_PARENT, NS_GET_OWNER_UID = 0xB701, 0xB702, 0xB704


def _ns_id(fd: int) -> str:
    return f"user:[{os.fstat(fd).st_ino}]"


def _userns(pid: int) -> Pairs:
    """uid_map, gid_map, setgroups as the harness sees them, the owner uid,
    whether the parent is the harness's namespace, and for every other
    namespace of the task whether its own user namespace owns it ("task"),
    the harness's ("host"), or another (its id)."""
    mine = _readlink("/proc/self/ns/user")
    out: list[tuple[str, str]] = [(name, " | ".join(" ".join(line.split()) for line in
                                                    _read(f"/proc/{pid}/{name}").splitlines()))
                                  for name in ("uid_map", "gid_map")]
    out.append(("setgroups", _read(f"/proc/{pid}/setgroups").strip()))
    fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        own = _ns_id(fd)
        buf = bytearray(4)
        fcntl.ioctl(fd, NS_GET_OWNER_UID, buf)
        out.append(("owner_uid", str(struct.unpack("<I", buf)[0])))
        if own != mine:
            parent = fcntl.ioctl(fd, NS_GET_PARENT)
            out.append(("parent", "host" if _ns_id(parent) == mine else "other"))
            os.close(parent)
    finally:
        os.close(fd)
    for kind in ("mnt", "net", "ipc", "uts", "pid", "cgroup"):
        nfd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            owner = fcntl.ioctl(nfd, NS_GET_USERNS)
        except OSError:       # EPERM: owned by an ancestor of the harness's namespace
            owner = -1
        finally:
            os.close(nfd)
        name = "outside" if owner < 0 else _ns_id(owner)
        if owner >= 0:
            os.close(owner)
        out.append((f"{kind}_owner", "task" if name == own else "host" if name == mine else name))
    return tuple(out)


def job_stopped(pid: int) -> tuple[int, ...]:
    """Inner tids of the threads stopped by SIGSTOP/SIGTSTP/... (State T): a
    stopped task must come back stopped; R/S/D are a matter of timing."""
    out = []
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        try:
            st = _status(f"/proc/{pid}/task/{tid}/status", ("State", "NSpid"))
        except (FileNotFoundError, ProcessLookupError):     # it ended meanwhile
            continue
        if dict(st).get("State", "").startswith("T"):
            out.append(_inner(st, "NSpid"))
    return tuple(out)


def _zombie(pid: int, parent: int, status: Pairs) -> TaskState:
    """A zombie has no mm, fds, cwd or namespaces any more: ids and status only."""
    return TaskState(
        pid=_inner(status, "NSpid"), parent=parent, sid=_inner(status, "NSsid"),
        pgid=_inner(status, "NSpgid"), zombie=True, threads=(), namespaces=(),
        status=tuple(kv for kv in status if kv[0] in ZOMBIE_STATUS_KEYS),
        mm=(), cwd="", root="", exe="", personality="", attrs=(), timers=(), limits=(), vmas=(), fds=(), mounts=(),
        outer=pid,
    )


SHARED = (("vm", 1), ("files", 2), ("fs", 3), ("sighand", 4))   # kcmp(2) KCMP_* types
SYS_KCMP = 312


def _same(a: int, b: int, kind: int) -> bool:
    ret = _libc.syscall(SYS_KCMP, a, b, kind, 0, 0)
    if ret < 0:
        err = ctypes.get_errno()
        if err == errno.ESRCH:      # it ended meanwhile
            return False
        raise OSError(err, f"kcmp({a}, {b}, {kind}): {os.strerror(err)}")
    return ret == 0


def _mark_sharing(tasks: list[TaskState]) -> list[TaskState]:
    """What each live process shares with another process of the tree
    (tasks ordered by inner pid): the first one sharing it names the object."""
    shares: dict[int, list[tuple[str, str]]] = {t.pid: [] for t in tasks}
    for name, kind in SHARED:
        groups: list[list[TaskState]] = []
        for t in tasks:
            if t.zombie:
                continue
            group = next((g for g in groups if _same(g[0].outer, t.outer, kind)), None)
            if group is None:
                groups.append([t])
            else:
                group.append(t)
        for g in groups:
            for t in g if len(g) > 1 else ():
                shares[t.pid].append((name, str(g[0].pid)))
    return [replace(t, shares=tuple(shares[t.pid])) for t in tasks]


def _renumber_objects(tasks: list[TaskState]) -> list[TaskState]:
    """Replace kernel object inodes (fd links, namespaces) by their order of appearance."""
    numbers: dict[str, int] = {}
    ghosts: dict[str, int] = {}

    def norm(target: str) -> str:
        m = OBJECT_LINK.match(target)
        if m is None:
            return target
        numbers.setdefault(target, len(numbers) + 1)
        return f"{m.group(1)}:[#{numbers[target]}]"

    def ghost(key: str) -> int:
        return ghosts.setdefault(key, len(ghosts) + 1)

    def vma(v: Vma) -> Vma:
        if ANON_SHARED.match(v.path):
            return replace(v, inode=-ghost(_shm_key(v.inode)))
        if not v.path.endswith(" (deleted)"):
            return v
        return replace(v, inode=-ghost(_ghost_key(v.dev, v.inode)))

    def cwd(link: str) -> str:
        m = CWD_GHOST.match(link)
        return link if m is None else f"{m.group(1)} [deleted inode #{ghost(m.group(2))}]"

    for t in tasks:     # the holders of deleted inodes numbered first, in the order of the pass below, so
        cwd(t.cwd)      # that a watch line finds its inode's number whatever the order of its lines
        for v in t.vmas:
            vma(v)
        for f in t.fds:
            for k, v in f.info:
                if k == GHOST:
                    ghost(v)
    deleted = set(ghosts)

    def watch(k: str, line: str) -> str:
        """An inotify watch or fanotify inode mark of a deleted file or removed
        directory of the tree: its inode renumbered, its handle left out."""
        m = (INOTIFY_INODE.search if k == "inotify wd" else FANOTIFY_INODE.match)(line)
        if m is None:
            return line
        sdev, ino = int(m.group(2), 16), int(m.group(1), 16)
        key = _ghost_key(f"{sdev >> 20:02x}:{sdev & 0xFFFFF:02x}", ino)
        if key not in deleted:
            return line
        return INOTIFY_HANDLE.sub("", line[:m.start()] + f"deleted inode #{ghost(key)}" + line[m.end():])

    def fd(f: Fd) -> Fd:
        info = tuple((k, f"#{ghost(v)}") if k == GHOST else (k, watch(k, v)) if k in NOTIFY_INODE_KEYS else (k, v)
                     for k, v in f.info)
        return replace(f, target=norm(f.target), info=_watches_sorted(info))

    return [
        replace(
            t,
            namespaces=tuple((k, norm(v)) for k, v in t.namespaces),
            cwd=cwd(t.cwd),
            root=cwd(t.root),
            vmas=tuple(vma(v) for v in t.vmas),
            fds=tuple(fd(f) for f in t.fds),
        )
        for t in tasks
    ]


def _watches_sorted(info: Pairs) -> Pairs:
    """The watch and mark lines sorted again, in their places, once their
    inodes are renumbered (a fanotify mark's line starts with its inode)."""
    lines = iter(sorted(kv for kv in info if kv[0] in NOTIFY_INODE_KEYS))
    return tuple(next(lines) if kv[0] in NOTIFY_INODE_KEYS else kv for kv in info)


def _mark_pids(tasks: list[TaskState]) -> list[TaskState]:
    """Replace the <pid N> marks (outer pids in fdinfo and timers) by inner ids."""
    inner = {t.outer: t.pid for t in tasks}
    inner.update({th.outer: th.tid for t in tasks for th in t.threads})

    def sub(text: str) -> str:
        return PID_MARK.sub(lambda m: str(inner[int(m.group(1))]) if int(m.group(1)) in inner
                            else "outside", text)

    return [
        replace(
            t,
            timers=tuple(sub(x) for x in t.timers),
            fds=tuple(replace(f, info=tuple((k, sub(v)) for k, v in f.info)) for f in t.fds),
        )
        for t in tasks
    ]


def take_tree(root: int, transient: frozenset[str] = frozenset()) -> TreeState:
    """Snapshot root (an outer pid) and all its descendants (zombies too);
    with transient children, one that vanishes meanwhile is left out."""
    host_ns = host_namespaces()
    tasks: list[TaskState] = []
    inner_of: dict[int, int] = {}
    firewalls: dict[str, tuple[str, ...]] = {}
    for pid, parent in descendants(root):
        try:
            t = take_task(pid, inner_of.get(parent, 0), host_ns, firewalls)
        except (ProcessLookupError, FileNotFoundError):
            if pid == root or "children" not in transient:
                raise
            continue
        inner_of[pid] = t.pid
        tasks.append(t)
    if not tasks:
        raise ProcessLookupError(f"process {root} is not running")
    return TreeState(tuple(_mark_sharing(_renumber_objects(_mark_pids(sorted(tasks, key=lambda t: t.pid))))))


def take(pids: list[int]) -> TreeState:
    """Snapshot the given live processes as roots (no descendants walk)."""
    host_ns = host_namespaces()
    firewalls: dict[str, tuple[str, ...]] = {}
    tasks = [take_task(pid, 0, host_ns, firewalls) for pid in pids]
    return TreeState(tuple(_mark_sharing(_renumber_objects(_mark_pids(sorted(tasks, key=lambda t: t.pid))))))


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


# What a scenario may churn on purpose while it is dumped (its .desc's
# "transient"; the scenario checks these itself): threads that come and go
# (only the threads present before and after are compared, not the thread
# count, nor masks: pthread_create blocks every signal for a moment),
# children that come and go (only processes present both times), signals
# being sent (the pending sets, the queue count, and the mask, which
# includes the signal while its handler runs); timers (the pending bits of
# SIGALRM, SIGVTALRM and SIGPROF only: whether an interval timer fired
# depends on how long the dump and restore took, and the scenario checks
# its timers are neither lost nor stuck).
TRANSIENT_STATUS = {"threads": frozenset({"Threads", "SigBlk"}),   # SigBlk: all blocked in pthread_create
                    "signals": frozenset({"SigQ", "SigPnd", "ShdPnd", "SigBlk"})}   # SigBlk: inside a handler


def _diff_threads(pid: int, before: tuple[ThreadState, ...], after: tuple[ThreadState, ...],
                  transient: frozenset[str] = frozenset()) -> list[str]:
    out = []
    b_by, a_by = {t.tid: t for t in before}, {t.tid: t for t in after}
    if "threads" in transient:
        b_by = {tid: t for tid, t in b_by.items() if tid in a_by}
        a_by = {tid: t for tid, t in a_by.items() if tid in b_by}
    if list(b_by) != list(a_by):
        out.append(f"pid {pid} threads: before {list(b_by)}, after {list(a_by)}")
    for tid, bt in b_by.items():
        at = a_by.get(tid)
        if at is None:
            continue
        bs, as_ = dict(_without_transient(bt.status, transient)), dict(_without_transient(at.status, transient))
        for key in dict.fromkeys([*bs, *as_]):
            if bs.get(key) != as_.get(key):
                out.append(f"pid {pid} thread {tid} {key}: {bs.get(key)!r} -> {as_.get(key)!r}")
    return out


TIMER_SIGNALS = (14, 26, 27)          # SIGALRM, SIGVTALRM, SIGPROF
PENDING_KEYS = ("SigPnd", "ShdPnd")


def _without_timer_signals(value: str) -> str:
    try:
        bits = int(value, 16)
    except ValueError:
        return value
    for sig in TIMER_SIGNALS:
        bits &= ~(1 << (sig - 1))
    return f"{bits:0{len(value)}x}"


def _without_transient(status: Pairs, transient: frozenset[str]) -> Pairs:
    skip = frozenset().union(*(TRANSIENT_STATUS.get(w, frozenset()) for w in transient))
    out = tuple((k, v) for k, v in status if k not in skip)
    if "timers" in transient:
        out = tuple((k, _without_timer_signals(v) if k in PENDING_KEYS else v) for k, v in out)
    return out


def diff(before: TreeState, after: TreeState, ignore: frozenset[str] = frozenset(),
         transient: frozenset[str] = frozenset()) -> list[str]:
    """Human-readable differences; empty if the states match."""
    out: list[str] = []
    if "children" in transient:          # the root stays; children present both times are compared
        common = set(before.pids()) & set(after.pids())
        before = TreeState(tuple(t for t in before.tasks if t.pid in common))
        after = TreeState(tuple(t for t in after.tasks if t.pid in common))
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
            if f.name == "status" and transient:
                bv, av = _without_transient(bv, transient), _without_transient(av, transient)
            if bv == av:
                continue
            if f.name == "threads":
                out.extend(_diff_threads(b.pid, bv, av, transient))
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
