"""Incremental dumps: which pages changed since the parent image.

A dump made with ``--track-mem --prev-images-dir REL`` stores only the pages
written since its parent image; every other present page is a pagemap entry
flagged ``in_parent``.  The image directory gets a symlink ``parent`` -> REL
(as CRIU does); restore follows it, treating it as untrusted input.

How written pages are found (``--track-mem-method``, or REFCR_TRACK_MEM_METHOD):

``uffd-wp``
    A userfaultfd in write-protect-async mode (UFFD_FEATURE_WP_ASYNC) is
    created in the target by injected syscalls and every private area is
    registered with it (UFFDIO_REGISTER_MODE_WP).  The kernel then resolves
    write faults by itself (the process never notices) and PAGEMAP_SCAN on
    /proc/PID/pagemap with PM_SCAN_WP_MATCHING reports the pages written since
    the last scan and protects them again, in one call from outside.  Areas
    not registered at the previous dump (mapped later, or taken by the
    process's own userfaultfd) count as all written.
``hash``
    Needs nothing from the kernel: every present page is read and compared
    with its digest (blake2b-128) stored by the parent (``pagehash-ID.img``);
    only changed pages are written.

refcr's userfaultfd lives in the target's fd table (there is no other way to
own one).  It is recognised by its feature set, never dumped as the
process's fd, closed when a dump without ``--track-mem`` ends the chain or a
dump fails, and absent after restore.
"""
from __future__ import annotations

import bisect
import errno
import fcntl
import functools
import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from refcr.errors import ImageError, OptionError
from refcr.images.imagedir import ImageDir
from refcr.log import log
from refcr.options import Options
from refcr.pb import mm_pb2, pagemap_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import NR, PAGE_SIZE
from refcr.ptrace.tracee import Remote, RemoteError


class PageSink(Protocol):
    """Where dumped pages go (mm/pages.py: PagesWriter)."""

    def add(self, vaddr: int, data: bytes | memoryview) -> None: ...
    def add_parent(self, vaddr: int, npages: int) -> None: ...


PARENT_LINK = "parent"
MAX_CHAIN = 64                      # parent links followed at most
METHODS = ("auto", "uffd", "hash")
METHOD_NAMES = {"uffd": "uffd-wp", "hash": "hash"}

# userfaultfd / PAGEMAP_SCAN ABI (linux/userfaultfd.h, linux/fs.h)
NR.setdefault("userfaultfd", 323)
UFFD_USER_MODE_ONLY = 1
UFFD_API = 0xAA
UFFD_FEATURE_WP_UNPOPULATED = 1 << 13
UFFD_FEATURE_WP_ASYNC = 1 << 15
TRACK_FEATURES = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED
UFFDIO_API = 0xC018AA3F
UFFDIO_REGISTER = 0xC020AA00
UFFDIO_REGISTER_MODE_WP = 1 << 1
PM_SCAN_WP_MATCHING = 1 << 0
PM_SCAN_CHECK_WPASYNC = 1 << 1
PAGE_IS_WRITTEN = 1 << 1
PAGE_IS_FILE = 1 << 2
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_SWAPPED = 1 << 4
SCAN_WP = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC
F_DUPFD_CLOEXEC = 1030
O_CLOEXEC, O_NONBLOCK = 0o2000000, 0o4000
_DIGEST = 16
_HASH_REC = struct.Struct(f"<Q{_DIGEST}s")

Runs = list[tuple[int, int]]        # (address, number of pages)


# ------------------------------------------------------ the parent link ---

def _check_rel(rel: str, what: str) -> str:
    """A parent path as CRIU takes it: relative to the image directory, at
    most one leading '..' (a sibling directory), no other '..'."""
    parts = rel.split("/")
    if not rel or os.path.isabs(rel) or "\0" in rel or ".." in parts[1:] or \
            all(p in ("", ".") for p in parts):
        raise ImageError(what, None, f"{rel!r} must be a path relative to the image directory "
                                     "(e.g. ../pre1), with '..' only at its start")
    return rel


def _home(images: ImageDir) -> str:
    """The directory a chain may live in: the one holding the image directory."""
    return os.path.dirname(os.path.realpath(images.path))


def _open_linked(images: ImageDir, rel: str) -> ImageDir:
    path = os.path.join(images.path, rel)
    real = os.path.realpath(path)
    home = _home(images)
    if os.path.commonpath([real, home]) != home or real == home:
        raise ImageError(os.path.join(images.path, PARENT_LINK), None,
                         f"parent {rel!r} leads outside {home}")
    try:
        parent = ImageDir(real, "r")
    except ImageError as exc:
        raise ImageError(path, None, f"parent image of {images.path}: {exc}") from None
    why = parent.is_incomplete()
    if why or not parent.exists("inventory"):
        raise ImageError(path, None, f"parent image of {images.path} is not a complete dump: "
                                     f"{why or 'no inventory'}")
    return parent


def link_parent(images: ImageDir, rel: str) -> ImageDir:
    """--prev-images-dir: check REL, record it as the `parent` symlink, open it."""
    try:
        _check_rel(rel, "--prev-images-dir")
    except ImageError as exc:
        raise OptionError(str(exc)) from None
    try:
        parent = _open_linked(images, rel)
    except ImageError as exc:
        raise OptionError(f"--prev-images-dir {rel}: {exc}") from None
    os.symlink(rel, PARENT_LINK, dir_fd=images.fileno())
    return parent


def open_parent(images: ImageDir) -> ImageDir | None:
    """The image the `parent` link of `images` names, or None without a link."""
    try:
        rel = os.readlink(PARENT_LINK, dir_fd=images.fileno())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ImageError(os.path.join(images.path, PARENT_LINK), None, exc.strerror) from None
    return _open_linked(images, _check_rel(rel, os.path.join(images.path, PARENT_LINK)))


# ---------------------------------------------------------- page ranges ---

def _merge(runs: Runs) -> list[tuple[int, int]]:
    """(addr, npages) runs -> sorted, merged [start, end) byte ranges."""
    out: list[tuple[int, int]] = []
    for a, n in sorted(runs):
        e = a + n * PAGE_SIZE
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((a, e))
    return out


@dataclass
class PageSet:
    """A set of pages as sorted, disjoint [start, end) ranges."""

    ranges: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, runs: Runs) -> "PageSet":
        return cls(_merge(runs))

    @functools.cached_property
    def starts(self) -> list[int]:
        """Range starts, for bisect (built once: split() runs once per area)."""
        return [s for s, _ in self.ranges]

    def covers(self, start: int, end: int) -> bool:
        """[start, end) lies inside one range."""
        i = bisect.bisect_right(self.starts, start) - 1
        return i >= 0 and end <= self.ranges[i][1]

    def split(self, runs: Runs) -> tuple[Runs, Runs]:
        """(inside, outside) parts of the runs."""
        inside: Runs = []
        outside: Runs = []
        starts = self.starts
        for addr, n in runs:
            end = addr + n * PAGE_SIZE
            cur = addr
            i = max(bisect.bisect_right(starts, addr) - 1, 0)
            while cur < end:
                s, e = self.ranges[i] if i < len(self.ranges) else (end, end)
                if e <= cur:
                    i += 1
                    continue
                if s > cur:
                    stop = min(s, end)
                    outside.append((cur, (stop - cur) // PAGE_SIZE))
                    cur = stop
                    continue
                stop = min(e, end)
                inside.append((cur, (stop - cur) // PAGE_SIZE))
                cur = stop
        return inside, outside


# ----------------------------------------------- the target's userfaultfd ---

UFFD_LINK = "anon_inode:[userfaultfd]"


def tracking_fds(pid: int) -> list[int]:
    """refcr's tracking userfaultfds in pid's table (recognised by features)."""
    found = []
    for fd in proc.fds(pid):
        try:
            if proc.readlink(pid, "fd", str(fd)) != UFFD_LINK:
                continue
            info = proc.fdinfo(pid, fd)
        except (OSError, ImageError):
            continue
        if is_tracking_fd(UFFD_LINK, info):
            found.append(fd)
    return found


def is_tracking_fd(link: str, info: dict[str, str]) -> bool:
    """Whether an fd (its /proc link and fdinfo) is a tracking userfaultfd of refcr's."""
    if link != UFFD_LINK:
        return False
    fields = info.get("API", "").split(":")
    return len(fields) == 3 and int(fields[1], 16) & ~(1 << 31) == TRACK_FEATURES


def _high_fd(pid: int) -> int:
    """Where to put refcr's fd: near the top of RLIMIT_NOFILE, out of the way
    of the process's own lowest-free-number allocations."""
    try:
        with open(proc.path(pid, "limits")) as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft = line.split()[3]
                    return max(int(soft) - 1, 3) if soft.isdigit() else 1023
    except OSError:
        pass
    return 1023


def create_uffd(remote: Remote) -> int:
    """A WP-async userfaultfd in the task, moved to a high fd number."""
    low = remote.check("userfaultfd", O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)
    try:
        (api,) = remote.put(struct.pack("<QQQ", UFFD_API, TRACK_FEATURES, 0))
        remote.check("ioctl", low, UFFDIO_API, api)
    except RemoteError:
        remote.call("close", low)
        raise
    top = _high_fd(remote.tid)     # a random place in the rotation (see move_uffd)
    for target in (max(top - int.from_bytes(os.urandom(4), "little") % ROTATION, 3), 64):
        fd = remote.call("fcntl", low, F_DUPFD_CLOEXEC, target)
        if fd >= 0:
            remote.call("close", low)
            return fd
    return low


ROTATION = 64      # fd numbers refcr's uffd moves through, one step per dump


def move_uffd(remote: Remote, uffd: int) -> int:
    """Move the uffd to the next fd number of its rotation below the top.
    The number is recorded with each image, so a dump given an older parent
    than the previous one (whose tracking was re-armed since) finds another
    number and stores every page instead of trusting the scan."""
    top = _high_fd(remote.tid)
    step = (top - uffd + 1) % ROTATION if 0 <= top - uffd < ROTATION else 0
    fd = remote.call("fcntl", uffd, F_DUPFD_CLOEXEC, max(top - step, 3))
    if fd < 0:
        return uffd
    remote.call("close", uffd)
    return fd


def register(remote: Remote, uffd: int, start: int, end: int) -> bool:
    (arg,) = remote.put(struct.pack("<QQQQ", start, end - start, UFFDIO_REGISTER_MODE_WP, 0))
    try:
        remote.check("ioctl", uffd, UFFDIO_REGISTER, arg)
    except RemoteError as exc:     # EBUSY: the process's own userfaultfd has it
        log.debug("process %d: area %x-%x not tracked: %s", remote.tid, start, end, exc)
        return False
    return True


def protect_anon(pagemap_fd: int, start: int, end: int) -> bool:
    """Write-protect the anonymous pages there are (present or swapped);
    False if the area is not registered for async write protection.
    Holes stay holes: protecting them would fill them with uffd-wp markers,
    which pagemap shows as swapped pages; a page that appears later is new,
    hence written, anyway."""
    try:
        native.pagemap_scan(pagemap_fd, start, end, flags=SCAN_WP, mask=PAGE_IS_PRESENT | PAGE_IS_FILE,
                            inverted=PAGE_IS_FILE, want_regions=False)
        native.pagemap_scan(pagemap_fd, start, end, flags=SCAN_WP, mask=PAGE_IS_SWAPPED, want_regions=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EINVAL):
            raise
        log.debug("area %x-%x not tracked: %s", start, end, exc)
        return False
    return True


def trackable(vma: mm_pb2.VmaEntry) -> bool:
    return vma.kind in (mm_pb2.VMA_ANON, mm_pb2.VMA_FILE_PRIVATE)


# ------------------------------------------------------- one process ---

@dataclass
class ProcessTrack:
    """The incremental state of one process during a dump."""

    pid: int
    image_id: int
    method: str                                   # "uffd" | "hash" | "" (no tracking: full dump)
    keep: bool                                    # --track-mem: arm tracking for the next dump
    parent: ImageDir | None
    parent_head: pagemap_pb2.PagemapHead | None = None
    coverage: PageSet = field(default_factory=PageSet)
    digests: dict[int, bytes] = field(default_factory=dict)
    uffd: int = -1
    tracked: list[tuple[int, int]] = field(default_factory=list)
    new_digests: list[bytes] = field(default_factory=list)
    _pagemap_fd: int = -1
    # the process's start time, read while it is frozen (fill_head may run after the
    # thaw of a pre-dump, when the process may have exited or its pid been reused)
    start_time: int = 0
    _tracked_index: tuple[list, PageSet] | None = None    # (self.tracked it was built from, its PageSet)

    @property
    def _tracked_set(self) -> PageSet:
        """self.tracked as a PageSet (rebuilt when the list is replaced): a
        linear search per area made 10,000 areas cost 10^8 comparisons."""
        if self._tracked_index is None or self._tracked_index[0] is not self.tracked:
            runs = [(s, (e - s) // PAGE_SIZE) for s, e in self.tracked]
            self._tracked_index = (self.tracked, PageSet.of(runs))
        return self._tracked_index[1]

    def load_parent(self) -> None:
        if self.parent is None or not self.parent.exists("pagemap", id=self.image_id):
            return
        head, entries = self.parent.read_head("pagemap", id=self.image_id)
        self.parent_head = head
        self.coverage = PageSet.of([(e.vaddr, e.nr_pages) for e in entries])
        if self.method == "hash" and self.parent.exists("pagehash", id=self.image_id):
            with self.parent.open_raw("pagehash", id=self.image_id) as f:
                data = f.read()
            for off in range(0, len(data) - len(data) % _HASH_REC.size, _HASH_REC.size):
                vaddr, digest = _HASH_REC.unpack_from(data, off)
                self.digests[vaddr] = digest

    # -- uffd-wp -----------------------------------------------------------
    def start(self, remote: Remote, maps: list[proc.Mapping]) -> None:
        """Frozen: find (or drop) refcr's userfaultfd in the process."""
        self.load_parent()
        self.start_time = proc.stat(self.pid).start_time
        mine = tracking_fds(self.pid)
        head = self.parent_head
        known = head.track_fd if head is not None and head.tracked and self.method == "uffd" \
            and head.track_start_time == self.start_time else -1
        for fd in mine:
            if fd == known:
                self.uffd = fd
            else:       # inherited through fork, or from a chain that ended: not this process's
                remote.call("close", fd)
        if self.uffd >= 0 and head is not None:
            flags = {m.start: m.vmflags for m in maps}
            self.tracked = [(s, e) for s, e in zip(head.tracked[::2], head.tracked[1::2], strict=False)
                            if "uw" in flags.get(s, ())]
        self._pagemap_fd = os.open(proc.path(self.pid, "pagemap"), os.O_RDONLY | os.O_CLOEXEC)

    def _written(self, vma: mm_pb2.VmaEntry) -> PageSet | None:
        """Pages written in vma since the last scan (and protect them again),
        or None when the area was not tracked over its whole extent."""
        if self.uffd < 0 or not self._tracked_set.covers(vma.start, vma.end):
            return None
        try:
            # written anonymous pages there are: page-cache pages of a private
            # file mapping are not the process's data, and holes (which count
            # as "written", being unprotected) must stay holes, not markers
            regions = native.pagemap_scan(self._pagemap_fd, vma.start, vma.end, flags=SCAN_WP,
                                          mask=PAGE_IS_WRITTEN | PAGE_IS_FILE, inverted=PAGE_IS_FILE,
                                          anyof=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                                          return_mask=PAGE_IS_WRITTEN)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EINVAL):
                raise
            return None
        return PageSet([(s, e) for s, e, _ in regions])

    def select(self, vma: mm_pb2.VmaEntry, runs: Runs) -> tuple[Runs, Runs]:
        """(runs to read, runs unchanged since the parent) of an area's present pages."""
        if self.method != "uffd" or self.parent_head is None:
            return runs, []
        written = self._written(vma)
        if written is None:
            return runs, []
        dirty, clean = written.split(runs)
        in_parent, not_there = self.coverage.split(clean)
        return sorted(dirty + not_there), in_parent

    def arm(self, remote: Remote, vmas: list[mm_pb2.VmaEntry]) -> None:
        """Frozen, after select(): (re)start tracking for the next dump."""
        if not self.keep or self.method != "uffd":
            self.stop(remote)
            return
        if self.uffd < 0:
            try:
                self.uffd = create_uffd(remote)
            except RemoteError as exc:
                log.warning("process %d: cannot track written pages (%s); the next dump stores all", self.pid, exc)
                return
        else:
            self.uffd = move_uffd(remote, self.uffd)
        already = set(self.tracked)
        tracked = []
        for vma in vmas:
            if not trackable(vma):
                continue
            span = (vma.start, vma.end)
            if span in already:
                tracked.append(span)
            elif register(remote, self.uffd, *span) and protect_anon(self._pagemap_fd, *span):
                tracked.append(span)
        self.tracked = tracked

    def stop(self, remote: Remote) -> None:
        """End tracking: close refcr's userfaultfd (the kernel unregisters it)."""
        for fd in {self.uffd, *tracking_fds(self.pid)} - {-1}:
            remote.call("close", fd)
        self.uffd = -1
        self.tracked = []

    def close(self) -> None:
        if self._pagemap_fd >= 0:
            os.close(self._pagemap_fd)
            self._pagemap_fd = -1

    # -- hash ------------------------------------------------------------
    def store(self, out: "PageSink", vaddr: int, data: bytes) -> None:
        """Add read pages to the image; with the hash method, pages whose
        digest equals the parent's are recorded as in the parent instead."""
        if self.method != "hash":
            out.add(vaddr, data)
            return
        view = memoryview(data)
        run_start, run_same = 0, False
        blake2b = _blake2b()
        for off in range(0, len(data), PAGE_SIZE):
            addr = vaddr + off
            digest = blake2b(view[off:off + PAGE_SIZE], digest_size=_DIGEST).digest()
            if self.keep:
                self.new_digests.append(_HASH_REC.pack(addr, digest))
            same = self.digests.get(addr) == digest
            if off and same != run_same:
                self._emit(out, vaddr + run_start, view[run_start:off], run_same)
                run_start = off
            run_same = same
        if data:
            self._emit(out, vaddr + run_start, view[run_start:], run_same)

    @staticmethod
    def _emit(out: "PageSink", vaddr: int, data: memoryview, in_parent: bool) -> None:
        if in_parent:
            out.add_parent(vaddr, len(data) // PAGE_SIZE)
        else:
            out.add(vaddr, bytes(data))

    def write_digests(self, images: ImageDir) -> None:
        if self.method == "hash" and self.keep:
            with images.open_raw("pagehash", id=self.image_id, mode="wb") as f:
                f.write(b"".join(self.new_digests))

    def fill_head(self, head: pagemap_pb2.PagemapHead) -> None:
        if self.uffd >= 0 and self.tracked:
            head.track_fd = self.uffd
            head.track_start_time = self.start_time
            head.tracked.extend(x for span in self.tracked for x in span)


def _blake2b():  # noqa: ANN202  (hashlib's constructor)
    import hashlib         # the hash method only: not imported by every dump
    return hashlib.blake2b


def choose_method(requested: str) -> str:
    """"uffd" where this kernel can track written pages, else "hash"."""
    requested = os.environ.get("REFCR_TRACK_MEM_METHOD") or requested or "auto"
    if requested not in METHODS:
        raise OptionError(f"unknown --track-mem-method {requested!r} (auto, uffd, hash)")
    if requested != "auto":
        return requested
    return "uffd" if uffd_wp_supported() else "hash"


def probe_uffd_wp_direct() -> str | None:
    """Dirty tracking without soft-dirty: an async uffd-wp area of refcr's own
    memory, one page written, PAGEMAP_SCAN must report exactly that page."""
    import ctypes          # a probe only: not imported by every dump
    libc = ctypes.CDLL(None, use_errno=True)
    area = mmap.mmap(-1, 4 * mmap.PAGESIZE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(area))
    uffd = libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK | UFFD_USER_MODE_ONLY)
    if uffd < 0:
        area.close()
        return f"userfaultfd: {os.strerror(ctypes.get_errno())}"
    pm = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(uffd, UFFDIO_API, bytearray(struct.pack("<QQQ", UFFD_API, TRACK_FEATURES, 0)))
        fcntl.ioctl(uffd, UFFDIO_REGISTER, bytearray(struct.pack(
            "<QQQQ", addr, len(area), UFFDIO_REGISTER_MODE_WP, 0)))
        flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC
        native.pagemap_scan(pm, addr, addr + len(area), flags=flags, want_regions=False)
        area[mmap.PAGESIZE] = 1
        got = native.pagemap_scan(pm, addr, addr + len(area), flags=flags, mask=PAGE_IS_WRITTEN,
                                  return_mask=PAGE_IS_WRITTEN)
        want = [(addr + mmap.PAGESIZE, addr + 2 * mmap.PAGESIZE, PAGE_IS_WRITTEN)]
        return None if got == want else f"PAGEMAP_SCAN reported {len(got)} regions, not the one written page"
    except OSError as e:
        return f"uffd-wp async / PAGEMAP_SCAN (kernel 6.7+): {e.strerror}"
    finally:
        os.close(pm)
        os.close(uffd)
        area.close()


def uffd_wp_supported() -> bool:
    """Can this kernel do PAGEMAP_SCAN with an async uffd-wp area?  Tried on a
    child of refcr's own (needs userfaultfd for user-mode faults and 6.7+)."""
    return probe_uffd_wp_direct() is None


# ---------------------------------------------------------- restore side ---

def parent_pages(images: ImageDir, type_name: str, id: int | str, wanted: Runs,
                 depth: int = 0, chunk: int = 8 << 20) -> Iterator[tuple[int, bytes]]:
    """(vaddr, data) of the `wanted` pages, found by following the parent links."""
    parent = open_parent(images)
    if parent is None:
        raise ImageError(os.path.join(images.path, PARENT_LINK), None,
                         f"{images.path} refers pages to its parent image, but has no parent link")
    if depth >= MAX_CHAIN:
        raise ImageError(parent.path, None, f"chain of parent images longer than {MAX_CHAIN}")
    head, entries = parent.read_head(type_name, id=id)
    index: list[tuple[int, int, int | None]] = []
    off = 0
    for e in entries:
        index.append((e.vaddr, e.vaddr + e.nr_pages * PAGE_SIZE, None if e.in_parent else off))
        if not e.in_parent:
            off += e.nr_pages * PAGE_SIZE
    index.sort(key=lambda x: x[0])
    starts = [s for s, _, _ in index]
    deeper: Runs = []
    with parent.open_raw("pages", id=head.pages_id) as raw:
        for addr, n in sorted(wanted):
            end, cur = addr + n * PAGE_SIZE, addr
            i = max(bisect.bisect_right(starts, addr) - 1, 0)
            while cur < end:
                s, e, where = index[i] if i < len(index) else (end + 1, end + 1, None)
                if e <= cur:
                    i += 1
                    continue
                if s > cur:
                    raise ImageError(parent.path, None, f"page {cur:#x} of {type_name}-{id} is referred to "
                                     "this parent image, which does not have it")
                stop = min(e, end)
                if where is None:
                    deeper.append((cur, (stop - cur) // PAGE_SIZE))
                else:
                    pos = where + cur - s
                    while pos < where + stop - s:
                        size = min(chunk, where + stop - s - pos)
                        raw.seek(pos)
                        data = raw.read(size)
                        if len(data) != size:
                            raise ImageError(parent.path, None, f"pages-{head.pages_id}.img is shorter "
                                             "than its pagemap says")
                        yield s + pos - where, data
                        pos += size
                cur = stop
    if deeper:
        yield from parent_pages(parent, type_name, id, deeper, depth + 1, chunk)


# ------------------------------------------------------------ the driver ---

@dataclass
class DumpTracking:
    """What one dump (or pre-dump) does about incremental memory."""

    method: str = ""                 # "uffd" | "hash" | "" (every page stored)
    keep: bool = False               # arm tracking for a next dump
    parent: ImageDir | None = None

    @classmethod
    def from_options(cls, opts: Options, images: ImageDir, predump: bool = False) -> "DumpTracking":
        track_mem = predump or bool(opts.track_mem)
        if not (track_mem or opts.prev_images_dir):
            return cls()
        parent = link_parent(images, opts.prev_images_dir) if opts.prev_images_dir else None
        return cls(choose_method(opts.track_mem_method), track_mem, parent)

    @property
    def name(self) -> str:
        return METHOD_NAMES.get(self.method, "")

    def for_process(self, pid: int, image_id: int) -> ProcessTrack | None:
        if not self.method and not tracking_fds(pid):
            return None          # a plain dump of a process refcr never tracked
        return ProcessTrack(pid, image_id, self.method, self.keep, self.parent)

