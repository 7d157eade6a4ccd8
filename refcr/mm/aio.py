"""aio contexts (io_setup): each comes back with the same context id, the
same ring size, and the completed events the program has not reaped yet.

What the kernel shows (fs/aio.c): a context is a ring mapped into the
process ("/[aio] (deleted)", MAP_SHARED, VmFlags de), whose address is the
context id (aio_context_t) the program holds.  The ring starts with a
32-byte header the kernel and the program share -- id (the context's slot
in the mm's table of contexts), nr (events the ring holds), head (the next
event to reap: io_getevents or the program itself moves it), tail (after
the last completion), magic, features, header length -- followed by nr
struct io_event.  The kernel keeps its own tail, a count of completions not
yet credited back (completed_events) and the requests it may still take
(reqs_available, partly in per-CPU batches); none is shown, all follow
from what happened to the ring.  Credits follow the header's head lazily:
at a completion, or when an io_submit finds its CPU's batch empty.

Ring size: io_setup(n) doubles max(n, 4 * possible CPUs) (ioctx_alloc),
adds 2 slots and the header (aio_setup_ring) and rounds up to pages:
ceil(32 * (2 * max(n, 4 * CPUs) + 3) / 4096) pages, holding
128 * pages - 1 events.  So n = 1..62 all give one page (127 events), 63..126
two (255), 127..190 three, 1000 sixteen (measured on 6.18, 2 CPUs).  The
size tells n only up to that rounding; refcr records the smallest n with
the same size (1 for one page, 64 * pages - 65 above): the restored context
never counts more against fs.aio-max-nr than the program's did.

Dump: each ring area's header is read (/proc/PID/mem) and must be a whole
ring as io_setup made it (magic, features, header length, nr = length / 32
- 1: else the area was split, partly unmapped or overwritten: refused);
an injected io_getevents(id, 0, 0, NULL, {0, 0}) asks the task whether the
ring is a context of its own -- it returns 0 and changes nothing, or EINVAL
for the copy of a ring a child inherited across fork, which has no context
(refused by name).  The events from head to tail are stored (AioRingEntry
in MmEntry.aios); the area stays in the vmas as VMA_AIO_RING, none of its
pages is dumped as memory.

Restore (in the puppet, once its areas are mapped and filled): every ring's
place is held by a PROT_NONE placeholder, so no temporary ring lands there.
Contexts are made in the order of their slots (a slot the dumped table had
free is filled by a context of 1 event, destroyed at the end), so the
header's id is the dumped one.  io_setup(nr_req) gives a ring somewhere;
then the kernel's own tail is moved by real completions: writes of one byte
to /dev/null (refcr's fd, passed in for the time of it), which complete
inside io_submit.  tail requests are made (nr + tail when tail < head: a
full turn first) and all but the last (tail - head) mod nr are reaped with
io_getevents, so the kernel counts the unreaped ones exactly as in the dumped
ring.  (Reaping everything and writing head back would not do: once a
completion credits the reaped slots, the kernel takes requests for slots
that still hold events, and the ring overflows over them.)  The puppet is
pinned to one CPU meanwhile, so the per-CPU batches do not strand credits on
another CPU.  Then the whole ring is written -- the dumped header, the
dumped events in their slots, zeros elsewhere -- and mremap moves it onto
its placeholder: the kernel's aio_ring_mremap makes the new address the
context id, which an io_getevents probe through the old id checks.
Protection, madvise advice and mlock of the area are set again.

Costs: dump, per ring one header read, one read of its unreaped events, one
injected probe.  Restore, per ring: io_setup, one round trip per CHUNK
requests (an io_submit and an io_getevents in one batch; at most 2 * nr
requests in all), one write of the ring, mremap, probe.

Deviations and limits:
- requests in flight at the dump (submitted, not completed: O_DIRECT I/O,
  an IOCB_CMD_POLL waiting for its event) cannot be seen: no /proc file,
  ring field or syscall shows them without changing the context (io_submit
  would have to take requests to count the free ones; io_cancel needs the
  iocb's address).  They are lost: the restored program never gets their
  completions.  Only idle contexts, or ones holding completed events, are
  restored faithfully.
- a context whose ring the program unmapped is not seen (no area; its id no
  longer works either) and does not come back.
- the slots outside head .. tail (events reaped before the dump) read as
  zeros; the kernel never reads them.
- fs/aio-nr counts the restored context's nr_req, which may be less than
  what the program asked (same ring, same capacity).
- a machine with more possible CPUs may make a larger ring for nr_req
  (4 * CPUs above 62): refused at restore, naming both sizes.
- the kernel's per-CPU split of the requests it may still take is not the
  dumped one: a ring filled to within one per-CPU batch (about nr / (8 *
  CPUs) events) of its capacity may be refused at restore (io_submit
  EAGAIN, named) though the program had it.
"""
from __future__ import annotations

import errno
import os
import struct
from typing import Callable, Iterable

from refcr.errors import RestoreError, UnsupportedObject
from refcr.images.aioring import nr_req_for, ring_nr
from refcr.log import log
from refcr.pb import mm_pb2
from refcr.ptrace.syscalls import (
    MAP_ANONYMOUS,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MLOCK_ONFAULT,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PROT_READ,
    PROT_WRITE,
)
from refcr.ptrace.tracee import Remote, RemoteError

AIO_RING = "/[aio] (deleted)"           # the name /proc/PID/maps gives a ring
HEADER = struct.Struct("<8I")           # struct aio_ring: id nr head tail magic compat incompat header_length
EVENT = struct.Struct("<QQqq")          # struct io_event: data obj res res2
IOCB = struct.Struct("<QIiHhIQQqQII")   # struct iocb (linux/aio_abi.h, little endian)
TIMESPEC = struct.Struct("<qq")
MAGIC, COMPAT, INCOMPAT = 0xA10A10A1, 1, 0    # what aio_setup_ring writes into the header
IOCB_CMD_PWRITE = 1
CHUNK = 512             # requests per io_submit at restore: their pointers and events fit in the scratch


# ------------------------------------------------------------ the kernel ---

# ---------------------------------------------------------------- dump ----

def dump(pid: int, remote: Remote, vmas: Iterable[mm_pb2.VmaEntry]) -> list[mm_pb2.AioRingEntry]:
    """One entry per ring area of the (frozen) process, in address order."""
    return [_dump_ring(pid, remote, v) for v in vmas if v.kind == mm_pb2.VMA_AIO_RING]


def _dump_ring(pid: int, remote: Remote, vma: mm_pb2.VmaEntry) -> mm_pb2.AioRingEntry:
    length = vma.end - vma.start
    what = f"process {pid}: the aio ring (io_setup) at {vma.start:#x}"
    index, nr, head, tail, magic, compat, incompat, hlen = HEADER.unpack(remote.read(vma.start, HEADER.size))
    if (magic, compat, incompat, hlen) != (MAGIC, COMPAT, INCOMPAT, HEADER.size) or nr != ring_nr(length):
        raise UnsupportedObject(f"{what} is not one whole ring as io_setup made it (split, partly unmapped "
                                "or its header overwritten): not restored")
    if head >= nr or tail >= nr:
        raise UnsupportedObject(f"{what}: head {head} or tail {tail} is past its {nr} events "
                                "(written by the program): not restored")
    if not _owned(remote, vma.start):
        raise UnsupportedObject(f"{what} is no context of its own (a copy of its parent's ring, inherited "
                                "across fork): not restored")
    entry = mm_pb2.AioRingEntry(id=vma.start, ring_len=length, nr_req=nr_req_for(length), nr=nr,
                                head=head, tail=tail, index=index)
    entry.events.extend(_read_events(remote, vma.start, head, (tail - head) % nr, nr))
    log.info("%s: %d events of %d (head %d, tail %d), slot %d", what, len(entry.events), nr, head, tail, index)
    return entry


def _owned(remote: Remote, ctx: int) -> bool:
    """io_getevents(ctx, 0, 0, NULL, {0, 0}): 0 if ctx is a context of the
    task's mm (reaps nothing, waits for nothing), EINVAL if it is not."""
    ts, = remote.put(TIMESPEC.pack(0, 0))
    ret = remote.call("io_getevents", ctx, 0, 0, 0, ts)
    if ret == -errno.EINVAL:
        return False
    if ret < 0:
        raise RemoteError(remote.tid, "io_getevents", -ret)
    return True


def _read_events(remote: Remote, ctx: int, head: int, count: int, nr: int) -> list[mm_pb2.AioEvent]:
    """The `count` events from slot `head` on, wrapping at nr."""
    out: list[mm_pb2.AioEvent] = []
    slot = head
    while len(out) < count:
        n = min(count - len(out), nr - slot)
        raw = remote.read(ctx + HEADER.size + slot * EVENT.size, n * EVENT.size)
        for data, obj, res, res2 in EVENT.iter_unpack(raw):
            out.append(mm_pb2.AioEvent(data=data, obj=obj, res=res, res2=res2))
        slot = 0
    return out


# -------------------------------------------------------------- restore ---

def restore(remote: Remote, mm: mm_pb2.MmEntry, install_fd: Callable[[int], int], vpid: int) -> None:
    """Make every dumped context again in the puppet (its areas are mapped,
    the rings' places free)."""
    if not mm.aios:
        return
    areas = {v.start: v for v in mm.vmas if v.kind == mm_pb2.VMA_AIO_RING}
    remote.check_batch([("mmap", (r.id, r.ring_len, 0, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0))
                        for r in mm.aios])     # placeholders: no temporary ring may land there
    local = os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
    try:
        null = install_fd(local)
    finally:
        os.close(local)
    cpus = os.sched_getaffinity(remote.tid)
    os.sched_setaffinity(remote.tid, {min(cpus)})   # one CPU: the kernel's per-CPU credits stay usable
    try:
        _make_all(remote, sorted(mm.aios, key=lambda r: r.index), areas, null, vpid)
    finally:
        os.sched_setaffinity(remote.tid, cpus)
        remote.call("close", null)


def _make_all(remote: Remote, rings: list[mm_pb2.AioRingEntry], areas: dict[int, mm_pb2.VmaEntry],
              null: int, vpid: int) -> None:
    """Contexts in slot order; a slot the dumped table had free is taken by a
    filler context meanwhile (the kernel gives the lowest free slot)."""
    fillers: list[int] = []
    for made, ring in enumerate(rings):
        while made + len(fillers) < ring.index:
            fillers.append(_setup(remote, 1, f"process {vpid}: a filler aio context"))
        _make(remote, ring, areas[ring.id], null, vpid)
    for ctx in fillers:
        remote.check("io_destroy", ctx)


def _setup(remote: Remote, nr_req: int, what: str) -> int:
    """io_setup(nr_req); the new context's id (its ring's address)."""
    ctxp, = remote.put(bytes(8))
    try:
        remote.check("io_setup", nr_req, ctxp)
    except RemoteError as exc:
        raise RestoreError(f"{what}: io_setup({nr_req}) failed: {os.strerror(exc.errno)}"
                           + (" (fs.aio-max-nr reached)" if exc.errno == errno.EAGAIN else "")) from exc
    ctx, = struct.unpack("<Q", remote.read(ctxp, 8))
    return ctx


def _make(remote: Remote, ring: mm_pb2.AioRingEntry, vma: mm_pb2.VmaEntry, null: int, vpid: int) -> None:
    what = f"process {vpid}: aio context {ring.id:#x}"
    ctx = _setup(remote, ring.nr_req, what)
    index, nr = HEADER.unpack(remote.read(ctx, HEADER.size))[:2]
    if (index, nr) != (ring.index, ring.nr):
        raise RestoreError(f"{what}: io_setup({ring.nr_req}) made a ring of {nr} events in slot {index}, the "
                           f"dumped one had {ring.nr} in slot {ring.index} (more CPUs make larger rings)")
    _advance(remote, ctx, ring, null, what)
    remote.write(ctx, ring_image(ring))
    moved = remote.check("mremap", ctx, ring.ring_len, ring.ring_len, MREMAP_MAYMOVE | MREMAP_FIXED, ring.id)
    if moved != ring.id or not _owned(remote, ring.id):
        raise RestoreError(f"{what}: the ring moved from {ctx:#x} is no context at its old address")
    _finish_area(remote, vma)
    log.info("%s: %d events of %d back (head %d, tail %d), slot %d", what, len(ring.events), nr,
             ring.head, ring.tail, index)


def _advance(remote: Remote, ctx: int, ring: mm_pb2.AioRingEntry, null: int, what: str) -> None:
    """Complete requests until the kernel's tail is ring.tail and reap all but
    the ring's unreaped ones, so head, tail and the kernel's counts agree."""
    total = ring.tail + (ring.nr if ring.tail < ring.head else 0)    # a full turn first when wrapped
    size = min(CHUNK, total)
    if size == 0:
        return
    iocb = IOCB.pack(0, 0, 0, IOCB_CMD_PWRITE, 0, null, remote.scratch, 1, 0, 0, 0, 0)
    ts, iocbs, ptrs, events = remote.put(TIMESPEC.pack(0, 0), iocb, bytes(8 * size), bytes(EVENT.size * size))
    remote.write(ptrs, struct.pack("<Q", iocbs) * size)     # the same request, `size` times
    made = reaped = 0
    while made < total or reaped < ring.head:
        n = min(size, total - made)
        reap = min(made + n, ring.head) - reaped       # never past head: the rest stay unreaped
        sent, taken = _round(remote, ctx, n, ptrs, reap, events, ts)
        if sent <= 0 and taken <= 0:
            raise RestoreError(f"{what}: the kernel takes no more requests after {made} of {total} "
                               f"({made - reaped} unreaped; the dumped ring had {len(ring.events)})")
        made, reaped = made + sent, reaped + taken
    head, tail = HEADER.unpack(remote.read(ctx, HEADER.size))[2:4]
    if (head, tail) != (ring.head, ring.tail):
        raise RestoreError(f"{what}: the ring is at head {head}, tail {tail}, not {ring.head}, {ring.tail}")


def _round(remote: Remote, ctx: int, n: int, ptrs: int, reap: int, events: int, ts: int) -> tuple[int, int]:
    """io_submit of n requests and io_getevents of up to `reap` events, in one
    round trip; how many were made and reaped (EAGAIN: the kernel took none)."""
    calls = ([("io_submit", (ctx, n, ptrs))] if n else []) + \
            ([("io_getevents", (ctx, 0, reap, events, ts))] if reap > 0 else [])
    got = dict(zip((name for name, _ in calls), remote.batch(calls), strict=True))
    for name, ret in got.items():
        if ret is not None and ret < 0 and not (name == "io_submit" and ret == -errno.EAGAIN):
            raise RemoteError(remote.tid, name, -ret)
    return max(got.get("io_submit") or 0, 0), got.get("io_getevents") or 0


def ring_image(ring: mm_pb2.AioRingEntry) -> bytes:
    """The ring's bytes: the dumped header, its events in their slots, zeros elsewhere."""
    data = bytearray(ring.ring_len)
    HEADER.pack_into(data, 0, ring.index, ring.nr, ring.head, ring.tail, MAGIC, COMPAT, INCOMPAT, HEADER.size)
    for i, e in enumerate(ring.events):
        EVENT.pack_into(data, HEADER.size + (ring.head + i) % ring.nr * EVENT.size, e.data, e.obj, e.res, e.res2)
    return bytes(data)


def _finish_area(remote: Remote, vma: mm_pb2.VmaEntry) -> None:
    """The area's own protection, advice and lock (io_setup maps it
    read-write, unlocked: memory.restore calls mlockall(MCL_FUTURE) after)."""
    length = vma.end - vma.start
    calls = [("mprotect", (vma.start, length, vma.prot))] if vma.prot != PROT_READ | PROT_WRITE else []
    calls += [("madvise", (vma.start, length, advice)) for advice in vma.madvise]
    if vma.lock != mm_pb2.VMA_UNLOCKED:
        calls.append(("mlock2", (vma.start, length, MLOCK_ONFAULT if vma.lock == mm_pb2.VMA_LOCKED_ONFAULT else 0)))
    if calls:
        remote.check_batch(calls)
