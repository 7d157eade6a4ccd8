"""The one validation layer of an image set, run before a restore creates anything.

Images are untrusted (refcr runs as root).  imagedir.py makes sure every
file decodes; this module makes sure the decoded set makes sense as a
whole, so that what comes after it meets only values the kernel and refcr
itself accept, and a bad image ends as one line, exit 1, never as a
traceback deep in the pipeline:

* generic, over every message of every image (schema-driven): no NUL in a
  string, strings and repeated fields within sane bounds, enum values that
  the schema knows, integers within the range of the C type they end up in
  (:data:`RANGES`: pids, fds, ports, backlogs, offsets for lseek, ...);
* the process tree: pids unique and in range, threads listed once, every
  live process with its core and mm, every referenced id existing
  (fdinfo -> files, peers, pipes);
* memory: areas page-aligned, inside the user address space, sorted and
  not overlapping, flags and open modes from the allowed sets, file areas
  with absolute paths; aio rings each an area of theirs, of the size their
  io_setup argument makes, head, tail and event count within it; pagemap runs sorted, inside areas whose pages refcr
  writes (private ones: a page written into a shared file mapping would
  change a host file), and their page count matching the pages file;
* signals and registers the kernel accepts (segment selectors, fs/gs base,
  siginfo records, no queued SIGKILL/SIGSTOP, sigaction numbers);
* namespaces refcr can create; open files' flags without O_CREAT/O_TRUNC/
  O_EXCL/O_TMPFILE, paths absolute, unix socket names absolute (bind dir +
  name), of legal length and free of control characters.

Each failure is an ImageError naming the file, the entry and the field:
``DIR/mm-42.img: entry 0: vmas[3].fmode: ...``.  Modules keep their own
semantic refusals (a file whose type changed, a missing plugin, ...).

Cost: every structured image is decoded once more (the restore decodes
again as it goes); raw pages are not read, only their sizes.
"""
from __future__ import annotations

import bisect

import os
import re
import stat as stat_mod
import struct
from dataclasses import dataclass, field
from typing import Any

from refcr.errors import ImageError
from refcr.images import devnodes
from refcr.images.imagedir import ImageDir, type_by_filename
from refcr.images.pbruntime import FieldDescriptor as F
from refcr.images import aioring
from refcr.pb import mm_pb2

CONN_TABLE = r"refcr_tcp_[0-9]{1,10}_[0-9a-f]{8}"     # net/netlock.py's conn_table()

PAGE = 4096
PID_MAX = 1 << 22                  # PID_MAX_LIMIT on 64-bit
FD_MAX = 1 << 20                   # fs.nr_open's ceiling
S64 = (1 << 63) - 1
U32 = (1 << 32) - 1
INT = (1 << 31) - 1
MAX_STRING = 1 << 16
MAX_REPEATED = 1 << 20
SIGINFO = 128
SIGKILL, SIGSTOP = 9, 19
MAP_SHARED, MAP_PRIVATE, MAP_GROWSDOWN, MAP_NORESERVE = 0x01, 0x02, 0x100, 0x4000
NAMESPACES = {"pid", "ipc", "uts", "mnt", "net", "user"}
# the PstreeEntry.clone_flags refcr restores (kernel/sharing.py)
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
MAX_ID_EXTENTS = 340               # lines of a uid_map / gid_map
# O_TMPFILE is __O_TMPFILE | O_DIRECTORY: only its own bit counts, O_DIRECTORY alone is a
# directory opened as such.
O_TMPFILE_FULL = os.O_TMPFILE
TMPFILE_ONLY = os.O_TMPFILE & ~os.O_DIRECTORY
PTS_MAJORS = range(136, 144)            # pty slaves (/dev/pts/N), as drivers/tty.py
NEVER_FLAGS = os.O_CREAT | os.O_TRUNC | os.O_EXCL | TMPFILE_ONLY
UNIX_PATH_MAX = 108
O_PATH = 0o10000000
AF_INET, AF_INET6 = 2, 10

# Integers whose C type is narrower than their proto type: (lowest, highest).
RANGES: dict[str, tuple[int, int]] = {
    "PstreeEntry.pid": (1, PID_MAX), "PstreeEntry.ppid": (0, PID_MAX), "PstreeEntry.pgid": (0, PID_MAX),
    "PstreeEntry.sid": (0, PID_MAX), "PstreeEntry.threads": (1, PID_MAX), "PstreeEntry.host_pid": (0, PID_MAX),
    "PstreeEntry.exit_status": (0, 0xFFFF),
    "CoreEntry.pid": (1, PID_MAX), "CoreEntry.umask": (0, 0o777), "ThreadCore.tid": (1, PID_MAX),
    "SigactionEntry.sig": (1, 64), "ItimerEntry.which": (0, 2),
    "ItimerEntry.interval_us": (0, S64 // 1000), "ItimerEntry.value_us": (0, S64 // 1000),
    "RlimitEntry.resource": (0, 15), "SleepRestart.clockid": (0, 11), "SleepRestart.remaining_ns": (0, S64),
    "SigaltstackEntry.size": (0, S64), "RseqEntry.size": (0, 1 << 16),
    "ThreadCore.robust_list_len": (0, 1 << 16),
    "FdinfoEntry.fd": (0, FD_MAX - 1), "FileEntry.id": (1, U32),
    "RegFileEntry.pos": (0, S64), "LockedFileEntry.pos": (0, S64), "GhostFileEntry.pos": (0, S64),
    "MemfdEntry.pos": (0, S64), "GhostFileEntry.size": (0, S64), "MemfdInodeEntry.size": (0, S64),
    "DataRun.offset": (0, S64),
    "FownEntry.pid_type": (0, 2), "FownEntry.signum": (0, 64),
    "FileLockEntry.kind": (1, 4), "FileLockEntry.start": (0, S64), "FileLockEntry.len": (0, S64),
    "UnixSkEntry.type": (1, 5), "UnixSkEntry.backlog": (0, INT), "UnixSkEntry.shutdown": (0, 3),
    "UnixSkEntry.rcvbuf": (0, INT), "UnixSkEntry.sndbuf": (0, INT),
    "InetSocketEntry.src_port": (0, 0xFFFF), "InetSocketEntry.dst_port": (0, 0xFFFF),
    "InetSocketEntry.backlog": (0, INT), "InetSocketEntry.rcvbuf": (0, INT), "InetSocketEntry.sndbuf": (0, INT),
    "NetAddr.family": (0, 0xFF), "NetAddr.prefixlen": (0, 128), "NetAddr.scope": (0, 0xFF),
    "NetRoute.family": (0, 0xFF), "NetRoute.dst_len": (0, 128), "NetRoute.src_len": (0, 128),
    "NetRoute.tos": (0, 0xFF), "NetRoute.protocol": (0, 0xFF), "NetRoute.scope": (0, 0xFF),
    "NetRoute.type": (0, 0xFF), "NetLink.type": (0, 0xFFFF), "NetLink.index": (0, INT),
    "NetLink.peer_index": (0, INT), "NetAddr.index": (0, INT), "NetRoute.oif": (0, INT),
    "TimerfdEntry.value_ns": (0, S64), "TimerfdEntry.interval_ns": (0, S64), "TimerfdEntry.abs_value_ns": (0, S64),
    "EventfdEntry.counter": (0, (1 << 64) - 2), "EpollEntry.owner": (0, PID_MAX), "FileLockEntry.owner": (0, PID_MAX),
    "FileLockEntry.lease_break": (0, 2),
    "EpollTarget.tfd": (0, FD_MAX - 1), "InotifyWatch.wd": (1, INT),
    "PipeDataEntry.pipe_size": (0, 1 << 30),
    "VmaEntry.prot": (0, 7), "VmaEntry.pgoff": (0, S64), "MmEntry.brk": (0, S64),
    "PagemapEntry.nr_pages": (1, U32), "PagemapHead.pages_written": (0, S64),
    "CredsEntry.groups": (0, U32 - 1), "SchedEntry.cpus": (0, 8191),
    # io_setup refuses more (2 * nr_req events of 32 bytes past 256 MiB); slots: fs.aio-max-nr's default
    "AioRingEntry.nr_req": (1, 1 << 22), "AioRingEntry.index": (0, (1 << 16) - 1),
}
# Repeated fields with a bound tighter than MAX_REPEATED.
BOUNDS: dict[str, int] = {
    "MmEntry.auxv": 128, "MmEntry.vmas": 1 << 16, "CoreEntry.threads": 1 << 16, "PstreeEntry.threads": 1 << 16,
    "ThreadCore.pending": 1 << 16, "CoreEntry.shared_pending": 1 << 16, "CoreEntry.sigactions": 64,
    "CoreEntry.itimers": 3, "CoreEntry.rlimits": 16, "CredsEntry.groups": 1 << 16, "VmaEntry.madvise": 16,
    "UnixSkEntry.icons": 1 << 16, "InotifyEntry.watches": 1 << 16, "EpollEntry.targets": 1 << 20,
    "MmEntry.aios": 1 << 16, "AioRingEntry.events": 1 << 23,
}
# Strings that name a file on the host: absolute (when set) and NUL-free.
PATHS = {"RegFileEntry.path", "LockedFileEntry.path", "GhostFileEntry.path", "FifoEntry.path",
         "InotifyWatch.path", "MmEntry.exe_path", "CoreEntry.cwd", "CoreEntry.root", "UnixSkEntry.bind_dir",
         "CgroupMember.path"}


@dataclass
class _Where:
    """One entry of one image file, for messages."""

    path: str
    index: int

    def fail(self, fieldname: str, why: str) -> None:
        raise ImageError(self.path, None, f"entry {self.index}: {fieldname}: {why}")


@dataclass
class ImageSet:
    """Every structured image of the directory, decoded: type name -> id -> entries."""

    images: ImageDir
    files: dict[str, dict[str | None, tuple[Any, list]]] = field(default_factory=dict)
    raw_sizes: dict[tuple[str, str | None], int] = field(default_factory=dict)
    xsave_size: int = 0
    mm_owner: dict[int, int] = field(default_factory=dict)  # live pid -> the pid whose mm image is its (CLONE_VM)
    _paths: dict[tuple[str, Any], str] = field(default_factory=dict)  # made once: a where() per entry (10,000 fds)

    @classmethod
    def load(cls, images: ImageDir) -> "ImageSet":
        s = cls(images)
        for name in sorted(os.listdir(images.fileno())):
            found = type_by_filename(name)
            if found is None:
                continue                     # a plugin's or a log file
            t, ident = found
            if t.raw:
                st = os.stat(name, dir_fd=images.fileno(), follow_symlinks=False)
                s.raw_sizes[(t.name, ident)] = st.st_size
                continue
            s.files.setdefault(t.name, {})[ident] = images.read_head(t.name, id=ident)
        return s

    def entries(self, type_name: str, ident: Any = None) -> list:
        return self.files.get(type_name, {}).get(None if ident is None else str(ident), (None, []))[1]

    def head(self, type_name: str, ident: Any = None) -> Any:
        return self.files.get(type_name, {}).get(None if ident is None else str(ident), (None, []))[0]

    def path(self, type_name: str, ident: Any = None) -> str:
        key = (type_name, ident)
        if key not in self._paths:
            self._paths[key] = self.images.file_path(type_name, id=ident)
        return self._paths[key]

    def where(self, type_name: str, index: int, ident: Any = None) -> _Where:
        return _Where(self.path(type_name, ident), index)


def validate(images: ImageDir, xsave_size: int) -> ImageSet:
    """Check the whole image set; ImageError (one line) on the first problem.
    *xsave_size*: the size of this CPU's XSAVE area (what a thread's xstate must be)."""
    s = ImageSet.load(images)
    s.xsave_size = xsave_size
    for type_name, by_id in s.files.items():
        for ident, (head, entries) in by_id.items():
            msgs = ([head] if head is not None else []) + entries
            if len(msgs) > MAX_REPEATED:
                raise ImageError(s.path(type_name, ident), None, f"{len(msgs)} entries (at most {MAX_REPEATED})")
            for i, msg in enumerate(msgs):
                generic(msg, s.where(type_name, i, ident))
    pids = _tree(s)
    _inventory(s)
    for pid in pids:
        _process(s, pid)
    _files(s, pids)
    images.keep_checked({(t, ident): decoded for t, by_id in s.files.items() for ident, decoded in by_id.items()})
    return s


# ----------------------------------------------------------- generic ---

def generic(msg: Any, where: _Where, prefix: str = "") -> None:
    """Schema-driven checks of one message and everything in it.  What a
    field needs is worked out once per field (_plan): a number without a
    range is not looked at, and a label is made only for a failure (10,000
    areas of mm.img: a third of the time of a label per value)."""
    for fd, value in msg.ListFields():
        what, key, bound, extra = _PLANS.get(fd) or _plan(fd, msg.DESCRIPTOR.name)
        if fd.is_repeated:
            if len(value) > bound:
                where.fail(prefix + fd.name, f"{len(value)} items (at most {bound})")
            if what == _MESSAGE:
                for i, v in enumerate(value):
                    generic(v, where, f"{prefix}{fd.name}[{i}].")
            elif what:
                for i, v in enumerate(value):
                    _check_value(what, v, key, extra, where, prefix, fd.name, i)
        elif what == _MESSAGE:
            generic(value, where, f"{prefix}{fd.name}.")
        elif what:
            _check_value(what, value, key, extra, where, prefix, fd.name)


_MESSAGE, _STRING, _ENUM, _RANGE = 1, 2, 3, 4
_PLANS: dict[Any, tuple[int, str, int, Any]] = {}


def _plan(fd: Any, mname: str) -> tuple[int, str, int, Any]:
    """(what to check, "Message.field", the item bound, the range or the enum's values)."""
    key = f"{mname}.{fd.name}"
    extra = None
    if fd.type == F.TYPE_MESSAGE:
        what = _MESSAGE
    elif fd.type == F.TYPE_STRING:
        what = _STRING
    elif fd.type == F.TYPE_ENUM:
        what, extra = _ENUM, (fd.enum_type.name, frozenset(fd.enum_type.values_by_number))
    elif key in RANGES:
        what, extra = _RANGE, RANGES[key]
    else:
        what = 0
    plan = (what, key, BOUNDS.get(key, MAX_REPEATED), extra)
    _PLANS[fd] = plan
    return plan


def _check_value(what: int, v: Any, key: str, extra: Any, where: _Where, prefix: str, name: str,
                 index: int | None = None) -> None:
    if what == _STRING:
        if "\0" in v or len(v) > MAX_STRING or (key in PATHS and v and not v.startswith("/")):
            _string(v, key, _label(prefix, name, index), where)
    elif what == _ENUM:
        if v not in extra[1]:
            where.fail(_label(prefix, name, index), f"unknown {extra[0]} value {v}")
    elif isinstance(v, int):
        lo, hi = extra
        if not lo <= v <= hi:
            where.fail(_label(prefix, name, index), f"{v} is out of range ({lo}..{hi})")


def _label(prefix: str, name: str, index: int | None) -> str:
    return f"{prefix}{name}" if index is None else f"{prefix}{name}[{index}]"


def _string(v: str, key: str, item: str, where: _Where) -> None:
    if "\0" in v:
        where.fail(item, "holds a NUL byte")
    if len(v) > MAX_STRING:
        where.fail(item, f"string of {len(v)} characters")
    if key in PATHS and v and not v.startswith("/"):
        where.fail(item, f"path {v!r} is not absolute")


# -------------------------------------------------------------- tree ---

def _tree(s: ImageSet) -> list[int]:
    """The live pids, after checking pstree.img and that every image of a process is there."""
    entries = s.entries("pstree")
    if not entries:
        raise ImageError(s.path("pstree"), None, "lists no process")
    seen: set[int] = set()
    tids: set[int] = set()
    live = []
    by_pid: dict[int, Any] = {}
    for i, e in enumerate(entries):
        w = s.where("pstree", i)
        by_pid[e.pid] = e
        if e.pid in seen:
            w.fail("pid", f"{e.pid} is listed twice")
        seen.add(e.pid)
        if i == 0 and e.ppid != 0 and e.ppid in seen:
            w.fail("ppid", "the root has a parent in the tree")
        if e.zombie:
            if e.threads and list(e.threads) != [e.pid]:
                w.fail("threads", "a zombie has threads")
            continue
        if not e.threads or e.threads[0] != e.pid:
            w.fail("threads", "the main thread (the pid) must come first")
        for t in e.threads:
            if t in tids:
                w.fail("threads", f"tid {t} is listed twice")
            tids.add(t)
        live.append(e.pid)
        own_mm = not e.clone_flags & CLONE_VM
        for kind in ("core", "mm") if own_mm else ("core",):
            if len(s.entries(kind, e.pid)) != 1:
                w.fail("pid", f"{kind}-{e.pid}.img must exist and hold one entry")
        if not own_mm and (s.entries("mm", e.pid) or s.head("pagemap", e.pid) is not None):
            w.fail("clone_flags", f"CLONE_VM: its address space is its parent's, but mm-{e.pid}.img "
                                  "or a pagemap of its own exists")
        core = s.entries("core", e.pid)[0]
        if [t.tid for t in core.threads] != list(e.threads):
            w.fail("threads", f"core-{e.pid}.img describes other threads")
        _clone_flags(s, e, by_pid.get(e.ppid) if i else None, w)
        s.mm_owner[e.pid] = e.pid if own_mm else s.mm_owner[e.ppid]
    if any(e.zombie and e.clone_flags for e in entries):
        raise ImageError(s.path("pstree"), None, "a zombie shares something with its parent (clone_flags)")
    return live


def _clone_flags(s: ImageSet, e: Any, parent: Any, w: _Where) -> None:
    """What a process shares with its parent: only CLONE_VM, CLONE_FS,
    CLONE_FILES and CLONE_SIGHAND (with CLONE_VM, as the kernel wants it),
    only with a live parent listed before it, and its cwd, root and umask
    (fd table) must be the parent's."""
    if not e.clone_flags:
        return
    known = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND
    if e.clone_flags & ~known or (e.clone_flags & CLONE_SIGHAND and not e.clone_flags & CLONE_VM):
        w.fail("clone_flags", f"{e.clone_flags:#x}: refcr restores only CLONE_VM, CLONE_FS, CLONE_FILES "
                              f"and CLONE_SIGHAND (with CLONE_VM), {known:#x}")
    if parent is None or parent.zombie:
        w.fail("clone_flags", "the process has no live parent listed before it to share with")
    mine, theirs = s.entries("core", e.pid)[0], s.entries("core", parent.pid)[0]
    if e.clone_flags & CLONE_FS and (mine.cwd, mine.root, mine.umask) != (theirs.cwd, theirs.root, theirs.umask):
        w.fail("clone_flags", f"CLONE_FS, but its cwd, root or umask are not those of its parent {parent.pid}")
    if e.clone_flags & CLONE_FILES and _table(s, e.pid) != _table(s, parent.pid):
        w.fail("clone_flags", f"CLONE_FILES, but its fd table is not that of its parent {parent.pid}")


def _table(s: ImageSet, pid: int) -> list[tuple[int, int, bool]]:
    return [(f.fd, f.id, f.cloexec) for f in s.entries("fdinfo", pid)]


def _inventory(s: ImageSet) -> None:
    inv = s.entries("inventory")
    if len(inv) != 1:
        raise ImageError(s.path("inventory"), None, "must hold exactly one entry")
    w = s.where("inventory", 0)
    ns = list(inv[0].root_namespaces)
    for i, kind in enumerate(ns):
        if kind not in NAMESPACES:
            w.fail(f"root_namespaces[{i}]", f"refcr cannot create a {kind!r} namespace")
    if len(set(ns)) != len(ns):
        w.fail("root_namespaces", "a namespace is listed twice")
    if inv[0].netlock_table and not re.fullmatch(CONN_TABLE, inv[0].netlock_table):
        w.fail("netlock_table", "not a table of refcr's connection lock")
    _userns(s, "user" in ns)
    for i, e in enumerate(s.entries("netns")):
        if INCLUDE.search(e.nft_ruleset):      # nft would read a host file (net/netfilter.py)
            s.where("netns", i).fail("nft_ruleset", "includes a file")


INCLUDE = re.compile(r"^\s*include\b", re.M)


def _userns(s: ImageSet, listed: bool) -> None:
    """userns.img exists iff the inventory lists a user namespace; each map has
    1..340 extents of count >= 1 within 32 bits, not overlapping inside nor
    outside; with a user namespace there must be a pid namespace too."""
    entries = s.entries("userns")
    if not listed:
        if entries:
            raise ImageError(s.path("userns"), None, "the inventory lists no user namespace")
        return
    if "pid" not in s.entries("inventory")[0].root_namespaces:
        s.where("inventory", 0).fail("root_namespaces", "a user namespace without a pid namespace")
    if len(entries) != 1:
        raise ImageError(s.path("userns"), None, "must hold exactly one entry")
    w = s.where("userns", 0)
    for name in ("uid_map", "gid_map"):
        extents = list(getattr(entries[0], name))
        if not 1 <= len(extents) <= MAX_ID_EXTENTS:
            w.fail(name, f"{len(extents)} extents (1 to {MAX_ID_EXTENTS})")
        for i, x in enumerate(extents):
            if x.count < 1 or x.first + x.count > U32 + 1 or x.lower_first + x.count > U32 + 1:
                w.fail(f"{name}[{i}]", f"{x.first} {x.lower_first} {x.count} is empty or past 2^32")
        for side in ("first", "lower_first"):
            spans = sorted((getattr(x, side), getattr(x, side) + x.count) for x in extents)
            if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
                w.fail(name, f"extents overlap ({side.replace('_', ' ')} ids)")


# ----------------------------------------------------------- process ---

def _process(s: ImageSet, pid: int) -> None:
    owner = s.mm_owner[pid]
    if owner == pid:
        areas = _mm(s, pid)
        _pagemap(s, pid, areas)
    core = s.entries("core", pid)[0]
    w = s.where("core", 0, pid)
    if core.pid != pid:
        w.fail("pid", f"{core.pid}, but the file is of {pid}")
    for name, path in (("cwd_file", core.cwd), ("root_file", core.root)):
        file_id = getattr(core, name)
        ghost = _ghost(s, file_id) if file_id else None
        if file_id and (ghost is None or not stat_mod.S_ISDIR(ghost.mode) or ghost.path != path):
            w.fail(name, f"{file_id} is no removed directory {path!r} of files.img")
    sigs = [a.sig for a in core.sigactions]
    for i, sig in enumerate(sigs):
        if sig in (SIGKILL, SIGSTOP) or sigs.index(sig) != i:
            w.fail(f"sigactions[{i}].sig", f"signal {sig} cannot have an action (or has two)")
    for i, info in enumerate(core.shared_pending):
        _siginfo(info, w, f"shared_pending[{i}]")
    if len({t.which for t in core.itimers}) != len(core.itimers):
        w.fail("itimers", "a timer is listed twice")
    if len({r.resource for r in core.rlimits}) != len(core.rlimits):
        w.fail("rlimits", "a limit is listed twice")
    for i, r in enumerate(core.rlimits):
        if r.cur > r.max:
            w.fail(f"rlimits[{i}]", "soft limit above the hard limit")
    vmas = list(s.entries("mm", owner)[0].vmas)
    for i, t in enumerate(core.threads):
        _thread(t, w, f"threads[{i}].", s.xsave_size)
        if t.HasField("rseq") and t.rseq.ptr:
            _rseq_area(t.rseq, vmas, w, f"threads[{i}].rseq")


def _rseq_area(rseq: Any, vmas: list[Any], w: _Where, label: str) -> None:
    """The kernel writes a registered rseq area on every return to user
    space: outside a readable, writable area the restored thread would die of
    SIGSEGV at its first instruction (in the puppet's last syscalls)."""
    start, end = rseq.ptr, rseq.ptr + max(rseq.size, 1)
    i = bisect.bisect_right([v.start for v in vmas], start) - 1
    if i < 0 or end > vmas[i].end or vmas[i].prot & 3 != 3:
        w.fail(label, f"{start:#x}-{end:#x} is not inside one readable and writable area of mm.img")


def _siginfo(info: bytes, w: _Where, label: str) -> None:
    if len(info) != SIGINFO:
        w.fail(label, f"siginfo of {len(info)} bytes (not {SIGINFO})")
    signo = struct.unpack_from("<i", info)[0]
    if not 1 <= signo <= 64:
        w.fail(label, f"signal number {signo}")
    if signo in (SIGKILL, SIGSTOP):
        w.fail(label, f"a queued signal {signo} (SIGKILL/SIGSTOP) cannot be queued again")


def _selector(v: int) -> bool:
    """A segment selector the kernel's putreg accepts (0, or user privilege)."""
    return v <= 0xFFFF and (v == 0 or v & 3 == 3)


def _thread(t: Any, w: _Where, label: str, xsave_size: int) -> None:
    for i, info in enumerate(t.pending):
        _siginfo(info, w, f"{label}pending[{i}]")
    r = t.regs
    if r.cs not in (0x33, 0x23):
        w.fail(f"{label}regs.cs", f"{r.cs:#x} is no user code segment")
    if r.ss != 0x2B:
        w.fail(f"{label}regs.ss", f"{r.ss:#x} is no user stack segment")
    for name in ("ds", "es", "fs", "gs"):
        if not _selector(getattr(r, name)):
            w.fail(f"{label}regs.{name}", f"{getattr(r, name):#x} is no user segment selector")
    for name in ("fs_base", "gs_base"):
        if getattr(r, name) >= TASK_SIZE:
            w.fail(f"{label}regs.{name}", f"{getattr(r, name):#x} is outside the user address space")
    if t.xstate and len(t.xstate) != xsave_size:
        w.fail(f"{label}xstate", f"{len(t.xstate)} bytes, this CPU's XSAVE area has {xsave_size}")
    if t.HasField("sigaltstack") and t.sigaltstack.flags & ~(2 | 1 << 31):
        w.fail(f"{label}sigaltstack.flags", f"{t.sigaltstack.flags:#x}")


def _task_size() -> int:
    """TASK_SIZE_MAX: 47-bit user space, 56-bit with 5-level paging."""
    try:
        with open("/proc/cpuinfo") as f:
            la57 = " la57" in f.read(1 << 16)
    except OSError:
        la57 = False
    return (1 << (56 if la57 else 47)) - PAGE


TASK_SIZE = _task_size()


# ------------------------------------------------------------ memory ---

def _mm(s: ImageSet, pid: int) -> list[tuple[int, int, bool]]:
    """Check mm-PID.img; its areas as (start, end, pages may be written)."""
    mm = s.entries("mm", pid)[0]
    w = s.where("mm", 0, pid)
    if mm.exe_path == "":
        w.fail("exe_path", "empty")
    out = []
    prev_end = 0
    for i, v in enumerate(mm.vmas):
        label = f"vmas[{i}]"
        if v.start % PAGE or v.end % PAGE or v.pgoff % PAGE:
            w.fail(label, f"{v.start:#x}-{v.end:#x} (offset {v.pgoff:#x}) is not page-aligned")
        if not v.start < v.end <= TASK_SIZE:
            w.fail(label, f"{v.start:#x}-{v.end:#x} is empty or outside the user address space")
        if v.start < prev_end:
            w.fail(label, f"{v.start:#x}-{v.end:#x} overlaps or precedes the area before it")
        prev_end = v.end
        share = v.flags & (MAP_SHARED | MAP_PRIVATE)
        if v.flags & ~(MAP_SHARED | MAP_PRIVATE | MAP_GROWSDOWN | MAP_NORESERVE) \
                or share not in (MAP_SHARED, MAP_PRIVATE):
            w.fail(f"{label}.flags", f"{v.flags:#x} (MAP_SHARED or MAP_PRIVATE, maybe MAP_GROWSDOWN "
                                     "or MAP_NORESERVE)")
        if v.fmode not in (os.O_RDONLY, os.O_RDWR):
            w.fail(f"{label}.fmode", f"{v.fmode:#o} is no open mode of a mapped file (O_RDONLY or O_RDWR)")
        file_kind = v.kind in (mm_pb2.VMA_FILE_PRIVATE, mm_pb2.VMA_FILE_SHARED)
        if file_kind and not v.plugin and not v.path.startswith("/"):
            w.fail(f"{label}.path", f"{v.path!r} is not absolute")
        if (v.kind == mm_pb2.VMA_FILE_SHARED) != (share == MAP_SHARED) and file_kind:
            w.fail(f"{label}.flags", "sharing does not match the kind of area")
        if v.file_id:
            _mapped_ghost(s, v, w, label, file_kind)
        if v.kind == mm_pb2.VMA_FILE_PRIVATE and v.shmid:
            _mapped_memfd(s, v, w, label)
        if v.kind == mm_pb2.VMA_AIO_RING and share != MAP_SHARED:
            w.fail(f"{label}.flags", "an aio ring is a shared mapping")
        writable = v.kind in (mm_pb2.VMA_ANON, mm_pb2.VMA_FILE_PRIVATE) and share == MAP_PRIVATE
        _cow_runs(w, label, v)
        out.append((v.start, v.end, writable))
    _aio_rings(mm, w)
    return out


def _aio_rings(mm: Any, w: "_Where") -> None:
    """MmEntry.aios (mm/aio.py): each names one VMA_AIO_RING area of its own
    length, a length io_setup(nr_req) makes, head, tail and events within its
    nr; ids and slots once each; no ring area without its context."""
    areas = {v.start: v.end - v.start for v in mm.vmas if v.kind == mm_pb2.VMA_AIO_RING}
    slots: set[int] = set()
    for i, r in enumerate(mm.aios):
        label = f"aios[{i}]"
        if areas.pop(r.id, None) != r.ring_len:
            w.fail(f"{label}.id", f"{r.id:#x} (+{r.ring_len:#x}) is not an aio ring area of mm.img, or twice")
        if aioring.ring_pages(r.nr_req) * PAGE != r.ring_len:
            w.fail(f"{label}.nr_req", f"io_setup({r.nr_req}) makes a ring of {aioring.ring_pages(r.nr_req)} pages, "
                                      f"not {r.ring_len:#x} bytes")
        if r.nr != aioring.ring_nr(r.ring_len):
            w.fail(f"{label}.nr", f"{r.nr}: a ring of {r.ring_len:#x} bytes holds {aioring.ring_nr(r.ring_len)} events")
        if r.head >= r.nr or r.tail >= r.nr:
            w.fail(f"{label}.head", f"head {r.head} or tail {r.tail} is past the ring's {r.nr} events")
        if len(r.events) != (r.tail - r.head) % r.nr:
            w.fail(f"{label}.events", f"{len(r.events)}, but head {r.head} and tail {r.tail} of {r.nr} "
                                      f"hold {(r.tail - r.head) % r.nr}")
        if r.index in slots:
            w.fail(f"{label}.index", f"slot {r.index} holds another context already")
        slots.add(r.index)
    if areas:
        start = min(areas)
        w.fail(f"vmas[{[v.start for v in mm.vmas].index(start)}]", f"aio ring area {start:#x} has no context "
                                                                    "in aios")


def _cow_runs(w: "_Where", label: str, v: mm_pb2.VmaEntry) -> None:
    """VmaEntry.cow: (address, nr_pages) pairs, ascending, inside a private anonymous area."""
    if not v.cow:
        return
    if v.kind != mm_pb2.VMA_ANON or v.flags & (MAP_SHARED | MAP_PRIVATE) != MAP_PRIVATE:
        w.fail(f"{label}.cow", "pages shared with the parent in an area that is not private anonymous memory")
    if len(v.cow) % 2:
        w.fail(f"{label}.cow", "not (address, nr_pages) pairs")
    cursor = v.start
    for addr, n in zip(v.cow[::2], v.cow[1::2], strict=False):   # an odd count failed above
        if addr % PAGE or addr < cursor or n == 0 or addr + n * PAGE > v.end:
            w.fail(f"{label}.cow", f"run {addr:#x}+{n} pages is unaligned, unordered, empty or outside its area")
        cursor = addr + n * PAGE


def _ghost(s: ImageSet, file_id: int) -> Any:
    """The ghost entry (a deleted file) of files.img with this id, or None."""
    entry = next((e for e in s.entries("files") if e.id == file_id), None)
    return entry.ghost if entry is not None and entry.WhichOneof("file") == "ghost" else None


def _watched_ghost(s: ImageSet, w: Any, where: _Where, label: str) -> None:
    """An inotify watch or fanotify mark on a deleted inode names its ghost:
    a deleted regular file or removed directory of files.img at its path."""
    if not w.file_id:
        return
    ghost = _ghost(s, w.file_id)
    if ghost is None or not (stat_mod.S_ISREG(ghost.mode) or stat_mod.S_ISDIR(ghost.mode)) or ghost.path != w.path:
        where.fail(f"{label}.file_id", f"{w.file_id} is no deleted file or directory {w.path!r} of files.img")


def _mapped_ghost(s: ImageSet, v: Any, w: _Where, label: str, file_kind: bool) -> None:
    """An area of a deleted file names a ghost of files.img with its path and
    open mode (fs/regfile.py makes the ghost; its fields are checked there)."""
    if not file_kind or v.plugin:
        w.fail(f"{label}.file_id", "only an area of a file (no plugin's) is mapped from a file entry")
    ghost = _ghost(s, v.file_id)
    if ghost is None or not stat_mod.S_ISREG(ghost.mode):
        w.fail(f"{label}.file_id", f"{v.file_id} is no deleted file (ghost) of files.img")
    if ghost.path != v.path or ghost.flags & os.O_ACCMODE != v.fmode:
        w.fail(f"{label}.file_id", f"file {v.file_id} ({ghost.path!r}, flags {ghost.flags:#o}) is not "
                                   f"the mapped {v.path!r} opened {v.fmode:#o}")


def _mapped_memfd(s: ImageSet, v: Any, w: _Where, label: str) -> None:
    """A memfd mapped privately names its object (memfd-inode-SHMID.img), not a file."""
    if v.file_id or v.plugin:
        w.fail(f"{label}.shmid", "an area of a memfd object maps no file entry and no plugin's file")
    if not s.entries("memfd-inode", v.shmid):
        w.fail(f"{label}.shmid", f"memfd object {v.shmid} has no {s.path('memfd-inode', v.shmid)}")


def _pagemap(s: ImageSet, pid: int, areas: list[tuple[int, int, bool]]) -> None:
    head, entries = s.head("pagemap", pid), s.entries("pagemap", pid)
    if head is None:
        return
    path = s.path("pagemap", pid)
    pages_file = ("pages", str(head.pages_id))
    stored = 0
    prev_end, a = 0, 0
    # An incremental dump lists the runs in its parent first, then the
    # stored ones: each set is sorted, the whole is checked in address order.
    for i, e in sorted(enumerate(entries), key=lambda ie: ie[1].vaddr):
        w = _Where(path, i + 1)
        end = e.vaddr + e.nr_pages * PAGE
        if e.vaddr % PAGE or e.vaddr < prev_end:
            w.fail("vaddr", f"{e.vaddr:#x} is not page-aligned or overlaps another run")
        prev_end = end
        while a < len(areas) and areas[a][1] <= e.vaddr:
            a += 1
        at = e.vaddr
        j = a
        while at < end:         # the run may span adjacent areas
            if j >= len(areas) or areas[j][0] > at or not areas[j][2]:
                w.fail("vaddr", f"pages {e.vaddr:#x}-{end:#x} are not inside private areas of mm-{pid}.img")
            at = areas[j][1]
            j += 1
        if not e.in_parent:
            stored += e.nr_pages
    if stored and pages_file not in s.raw_sizes:
        raise ImageError(path, None, f"head: pages_id: pages-{head.pages_id}.img is missing")
    size = s.raw_sizes.get(pages_file, 0)
    if size != stored * PAGE:
        raise ImageError(path, None, f"entries: {stored} pages stored, but pages-{head.pages_id}.img "
                                     f"holds {size} bytes")


# ------------------------------------------------------------- files ---

def _files(s: ImageSet, pids: list[int]) -> None:
    entries = s.entries("files")
    ids: dict[int, Any] = {}
    for i, e in enumerate(entries):
        w = s.where("files", i)
        if e.id in ids:
            w.fail("id", f"{e.id} is used twice")
        ids[e.id] = e
        which = e.WhichOneof("file")
        if which is None:
            w.fail("file", "no kind of file")
        _file(getattr(e, which), which, w)
        _locks(e, which, w)
    for i, e in enumerate(entries):
        which = e.WhichOneof("file")
        for j, wt in enumerate(e.inotify.watches if which == "inotify" else []):
            _watched_ghost(s, wt, s.where("files", i), f"inotify.watches[{j}]")
        for j, mk in enumerate(e.fanotify.marks if which == "fanotify" else []):
            if mk.file_id and mk.type != 0:
                s.where("files", i).fail(f"fanotify.marks[{j}].file_id", "set on a mount or filesystem mark")
            _watched_ghost(s, mk, s.where("files", i), f"fanotify.marks[{j}]")
    unix = {e.unix_sk.ino for e in entries if e.WhichOneof("file") == "unix_sk"}
    for i, e in enumerate(entries):
        if e.WhichOneof("file") == "unix_sk" and e.unix_sk.peer and e.unix_sk.peer not in unix \
                and not e.unix_sk.external:
            s.where("files", i).fail("unix_sk.peer", f"socket {e.unix_sk.peer} is not in the images")
        if e.WhichOneof("file") == "unix_sk" and e.unix_sk.has_cred_pid and e.unix_sk.cred_pid not in pids:
            s.where("files", i).fail("unix_sk.cred_pid", f"{e.unix_sk.cred_pid} is not a live process of the images")
    for pid in pids:
        fds: set[int] = set()
        for i, fe in enumerate(s.entries("fdinfo", pid)):
            w = s.where("fdinfo", i, pid)
            if fe.id not in ids:
                w.fail("id", f"file id {fe.id} is not in files.img")
            if fe.fd in fds:
                w.fail("fd", f"fd {fe.fd} is listed twice")
            fds.add(fe.fd)


def _locks(e: Any, which: str, w: _Where) -> None:
    """Only a lease can be being broken (fs/locks.py)."""
    for name, locks in (("locks", e.locks), (f"{which}.locks", getattr(getattr(e, which), "locks", []))):
        for j, lk in enumerate(locks):
            if lk.lease_break and lk.kind != 4:
                w.fail(f"{name}[{j}].lease_break", f"set on a lock of kind {lk.kind}, which is no lease")


def _file(e: Any, which: str, w: _Where) -> None:
    flags = getattr(e, "flags", 0)
    if which == "ghost" and flags & TMPFILE_ONLY:
        flags &= ~O_TMPFILE_FULL           # an O_TMPFILE file is made again as one (fs/regfile.py)
    if flags & NEVER_FLAGS:
        w.fail(f"{which}.flags", f"{flags:#o} holds O_CREAT, O_TRUNC, O_EXCL or O_TMPFILE")
    if which in ("reg", "locked", "ghost", "fifo") and not e.path.startswith("/"):
        w.fail(f"{which}.path", f"{e.path!r} is not absolute")
    if which == "ghost":
        _ghost_node(e, w)
    if which == "dev_tty" and os.major(e.tty_rdev) not in PTS_MAJORS:
        w.fail("dev_tty.tty_rdev", f"{os.major(e.tty_rdev)}:{os.minor(e.tty_rdev)} is no pty slave")
    if which in ("reg", "locked", "ghost"):
        allowed = {"reg": (stat_mod.S_IFREG, stat_mod.S_IFDIR, stat_mod.S_IFCHR),
                   "ghost": (stat_mod.S_IFREG, stat_mod.S_IFDIR, stat_mod.S_IFCHR, stat_mod.S_IFBLK),
                   }.get(which, (stat_mod.S_IFREG,))
        if which == "reg" and e.flags & O_PATH and e.flags & os.O_NOFOLLOW:
            allowed = (*allowed, stat_mod.S_IFLNK)      # an O_PATH fd of the symlink itself
        if stat_mod.S_IFMT(e.mode) not in allowed:
            w.fail(f"{which}.mode", f"{e.mode:#o} is not a kind of file refcr reopens as {which}")
    if which == "unix_sk":
        _unix(e, w)
    if which == "inet":
        _inet(e, w)
    if which == "netlink":
        _netlink(e, w)
    if which == "packet":
        _packet(e, w)


def _ifname(name: str, field: str, w: _Where) -> None:
    if len(name.encode()) >= 16 or "/" in name or name.strip() != name or any(ord(c) < 33 for c in name):
        w.fail(field, f"{name!r} is not a device name")


def _packet(e: Any, w: _Where) -> None:
    if e.type not in (2, 3):            # SOCK_DGRAM, SOCK_RAW
        w.fail("packet.type", f"{e.type} is not a packet socket type")
    if e.protocol > 0xFFFF:
        w.fail("packet.protocol", f"{e.protocol} is not an ethertype")
    if e.ifname:
        _ifname(e.ifname, "packet.ifname", w)
    if len(e.mclist) > 1024:
        w.fail("packet.mclist", f"{len(e.mclist)} memberships")
    for m in e.mclist:
        _ifname(m.ifname, "packet.mclist.ifname", w)
        if not m.ifname or m.type > 3 or len(m.addr) > 8 or not 1 <= m.count <= 1024:
            w.fail("packet.mclist", f"a membership of {m.ifname!r} (type {m.type}, {len(m.addr)}-byte address, "
                   f"count {m.count}) is malformed")
    if e.fanout and (e.fanout >> 16 & 0xFF) > 7:      # PACKET_FANOUT_HASH 0 .. PACKET_FANOUT_EBPF 7
        w.fail("packet.fanout", f"{e.fanout:#x} has no fanout type")


def _netlink(e: Any, w: _Where) -> None:
    if e.type not in (2, 3):            # SOCK_DGRAM, SOCK_RAW
        w.fail("netlink.type", f"{e.type} is not a netlink socket type")
    if e.protocol >= 32:                # MAX_LINKS
        w.fail("netlink.protocol", f"{e.protocol} is not a netlink protocol")
    if len(e.groups) > 8192 or any(not 1 <= g <= 8192 for g in e.groups):
        w.fail("netlink.groups", "a group number is out of range")


def _ghost_node(e: Any, w: _Where) -> None:
    """A removed directory or device node: no data, no link-remap; a device
    only one that /dev of this host has a node of, same type and number
    (refcr mknods it: an image must not reach a device the host does not
    offer by path; images/devnodes.py)."""
    kind = stat_mod.S_IFMT(e.mode)
    if kind in (stat_mod.S_IFCHR, stat_mod.S_IFBLK):
        why = devnodes.refusal(e.mode, e.rdev)
        if why is not None:
            w.fail("ghost.rdev", f"{e.path}: {why}")
    elif e.rdev:
        w.fail("ghost.rdev", "set for a file that is no device")
    if kind != stat_mod.S_IFREG and (e.data or e.remap or e.flags & TMPFILE_ONLY):
        w.fail("ghost.data", "contents, a link-remap name or O_TMPFILE for a removed directory or device")


def _unix(e: Any, w: _Where) -> None:
    name = bytes(e.name)
    if len(name) > UNIX_PATH_MAX - (0 if name[:1] == b"\0" else 1):
        w.fail("unix_sk.name", f"{len(name)} bytes is too long for a unix socket address")
    if name[:1] in (b"", b"\0"):
        return
    if b"\0" in name or any(c < 0x20 or c == 0x7F for c in name):
        w.fail("unix_sk.name", f"{name!r} holds a NUL or control character")
    if not name.startswith(b"/") and not e.bind_dir.startswith("/"):
        w.fail("unix_sk.bind_dir", f"relative name {name!r} without an absolute directory it was bound in")


def _inet(e: Any, w: _Where) -> None:
    size = {AF_INET: 4, AF_INET6: 16}.get(e.family)
    if size is None:
        w.fail("inet.family", f"{e.family} (AF_INET or AF_INET6)")
    for name in ("src_addr", "dst_addr"):
        v = bytes(getattr(e, name))
        if v and len(v) != size:
            w.fail(f"inet.{name}", f"{len(v)} bytes for an address of family {e.family}")
    if e.type not in (1, 2, 3):
        w.fail("inet.type", f"{e.type} (SOCK_STREAM, SOCK_DGRAM or SOCK_RAW)")
    if e.type == 3:
        _raw_inet(e, w)
        return
    # TCP streams; UDP, UDP-Lite (136) and ICMP echo (1 for IPv4, 58 for IPv6) datagrams.
    protos = {1: (6,), 2: (17, 136, 58 if e.family == AF_INET6 else 1)}[e.type]
    if e.protocol not in protos:
        w.fail("inet.protocol", f"{e.protocol} for type {e.type} (one of {protos})")
    for name in ("src_port", "dst_port"):
        if getattr(e, name) > 0xFFFF:
            w.fail(f"inet.{name}", f"{getattr(e, name)} (a port or ICMP echo id is 16 bits)")


def _raw_inet(e: Any, w: _Where) -> None:
    """A raw socket: an IP protocol, no ports, no queues or TCP state, and
    unconnected (7) or connected (1)."""
    if not 1 <= e.protocol <= 255:
        w.fail("inet.protocol", f"{e.protocol} for a raw socket (1-255)")
    if e.src_port or e.dst_port:
        w.fail("inet.src_port", "a port on a raw socket")
    if e.state not in (1, 7):
        w.fail("inet.state", f"{e.state} for a raw socket (1 connected or 7 not)")
    if e.HasField("tcp") or len(e.udp_msgs) or len(e.udp_queue):
        w.fail("inet.tcp", "TCP state or queued datagrams on a raw socket")
