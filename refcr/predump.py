"""`refcr pre-dump`: write a running tree's memory and start tracking its changes.

The tree is frozen only while refcr decides what to copy: seize every task,
read its areas and mm fields, scan which pages are present, ask the tracker
which of them changed since the parent image (and re-arm tracking, so that
from this moment on every write is seen), then let the tree run on.  The
page contents are copied after the thaw: a page written meanwhile is marked
written again and goes into the next dump, so the chain stays consistent
(with the hash method the digest stored is the one of the data stored).

The result is an image directory with inventory (predump), pstree, mm-ID,
pagemap-ID and pages: the parent of a later `refcr dump --prev-images-dir`,
not restorable by itself.  Shared memory (shmem, SysV) is left to the dump.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from itertools import count

from refcr import __version__, fault
from refcr.dump import IMG_VERSION, FrozenTask, _resume_after_failure, finish, freeze_tree, start_guardian
from refcr.errors import DumpError, NoSuchProcess, RefcrError
from refcr.images.imagedir import IN_PROGRESS, ImageDir
from refcr.kernel import freezer, pstree
from refcr.log import log
from refcr.mm import memory, pages, track
from refcr.options import Options
from refcr.pb import inventory_pb2, mm_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import PAGE_SIZE, PROT_READ

PRIVATE = (mm_pb2.VMA_ANON, mm_pb2.VMA_FILE_PRIVATE)


@dataclass
class Plan:
    """What to copy from one process once the tree runs again."""

    pid: int
    image_id: int
    mm: mm_pb2.MmEntry
    track: track.ProcessTrack
    reads: list[tuple[mm_pb2.VmaEntry, track.Runs]] = field(default_factory=list)
    unchanged: track.Runs = field(default_factory=list)


def plan_task(t: FrozenTask, tracking: track.DumpTracking) -> Plan:
    """Frozen: areas, mm fields, the pages to copy; tracking re-armed."""
    pid, vpid = t.pid, t.member.entry.pid
    maps = proc.maps(pid)                 # before the scratch buffer exists
    remote = t.open_remotes(maps)
    mm = memory.mm_fields(pid, remote)
    mm.vmas.extend(memory.vma_entry(pid, m) for m in maps if m.name not in memory.SKIPPED)
    pt = tracking.for_process(pid, vpid)
    assert pt is not None                 # a pre-dump always tracks
    t.track = pt
    plan = Plan(pid, vpid, mm, pt)
    pt.start(remote, maps)
    fault.kill_point("after-track-start")
    try:
        for vma in mm.vmas:
            if vma.kind not in PRIVATE:
                continue
            runs = native.scan_pagemap(pid, vma.start, vma.end, anon_only=vma.kind == mm_pb2.VMA_FILE_PRIVATE)
            runs, unchanged = pt.select(vma, runs)
            plan.reads.append((vma, runs))
            plan.unchanged.extend(unchanged)
        pt.arm(remote, list(mm.vmas))
        fault.kill_point("after-arm")
    finally:
        pt.close()
    return plan


def _read_tolerant(pid: int, mem_fd: int, vma: mm_pb2.VmaEntry,
                   batch: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
    """The batch's pages as (addr, data) pieces; the tree runs, so an area may
    be gone by now: its pages are left out (the next dump sees them as new)."""
    if vma.prot & PROT_READ:
        try:
            data = native.vm_read(pid, batch)
        except OSError as exc:
            if not proc.exists(pid):
                raise NoSuchProcess(pid, f"process (it exited during the pre-dump: {exc.strerror})") from None
        else:
            out, pos = [], 0
            for addr, n in batch:
                out.append((addr, data[pos:pos + n]))
                pos += n
            return out
    pieces = []
    for addr, n in batch:
        for page in range(addr, addr + n, PAGE_SIZE):
            try:
                pieces.append((page, os.pread(mem_fd, PAGE_SIZE, page)))
            except OSError:
                continue
    return [(a, d) for a, d in pieces if len(d) == PAGE_SIZE]


def write_plan(plan: Plan, images: ImageDir, pages_id: int) -> int:
    """After the thaw: copy the planned pages into the images; returns their count."""
    out = pages.PagesWriter(images, pages_id)
    for addr, n in plan.unchanged:
        out.add_parent(addr, n)
    copied = 0
    try:
        mem_fd = os.open(proc.path(plan.pid, "mem"), os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        # the tree ran on after the freeze and this process ended (a shell's
        # short-lived child): no pages of it; the next dump will not have it
        log.info("process %d exited after the pre-dump's freeze: its pages are left out", plan.pid)
        mem_fd = -1
    alive = mem_fd >= 0
    try:
        for vma, runs in plan.reads if alive else []:
            for batch in pages.chunks(runs):
                for addr, data in _read_tolerant(plan.pid, mem_fd, vma, batch):
                    plan.track.store(out, addr, data)
                    copied += len(data) // PAGE_SIZE
    except NoSuchProcess:
        log.info("process %d exited during the pre-dump's copy: its other pages are left out", plan.pid)
        alive = False
    finally:
        if mem_fd >= 0:
            os.close(mem_fd)
    if alive:
        plan.track.write_digests(images)
    out.finish("pagemap", plan.image_id, plan.track if alive else None)
    images.write("mm", [plan.mm], id=plan.image_id)
    log.info("process %d: pre-dump copied %d pages, %d unchanged since the parent",
             plan.pid, copied, sum(n for _, n in plan.unchanged))
    return copied


def pre_dump(opts: Options, images: ImageDir) -> None:
    fault.stage = "pre-dump"
    images.mark_incomplete(IN_PROGRESS)
    try:
        _pre_dump(opts, images)
        images.clear_incomplete()
    except BaseException as exc:
        if images.is_incomplete() in (None, IN_PROGRESS):
            images.mark_incomplete(str(exc))
        raise


def _pre_dump(opts: Options, images: ImageDir) -> None:
    pstree.check_target(opts.pid)
    cgroup_freezer = freezer.Freezer.open(opts.freeze_cgroup) if opts.freeze_cgroup else None
    tracking = track.DumpTracking.from_options(opts, images, predump=True)
    frozen: list[FrozenTask] = []
    zombies: list[pstree.Member] = []
    started = time.monotonic()
    guard = start_guardian(opts, images)
    try:
        try:
            freeze_tree(opts.pid, frozen, zombies, guard, cgroup_freezer)
            fault.kill_point("after-seize")
            tree = [m.entry for m in [t.member for t in frozen] + zombies]
            plans = [plan_task(t, tracking) for t in frozen]
            fault.kill_point("after-plan")
        except BaseException as exc:
            _resume_after_failure(frozen)
            if isinstance(exc, RefcrError) and not isinstance(exc, DumpError):
                raise DumpError(f"pre-dump of {opts.pid} failed, process resumed: {exc}") from exc
            raise
        opts.leave_running = True
        finish(frozen, opts)
    finally:
        guard.done()          # every task is back: the rest is writing files
    frozen_ms = (time.monotonic() - started) * 1000
    log.info("pre-dump: %d process(es) frozen for %.1f ms", len(frozen), frozen_ms)
    pages_ids = count(1)
    for plan in plans:
        write_plan(plan, images, next(pages_ids))
        fault.kill_point("after-thaw")
    images.write("pstree", tree)
    fault.kill_point("before-inventory")
    images.write("inventory", [inventory_pb2.InventoryEntry(
        img_version=IMG_VERSION, root_pid=tree[0].pid, refcr_version=__version__,
        kernel_release=platform.release(), dump_time_ns=time.time_ns(), shell_job=opts.shell_job,
        predump=True, track_mem=tracking.name)])
    log.info("pre-dump of %d complete (frozen %.1f ms)", opts.pid, frozen_ms)
