"""The dump pipeline: freeze, collect, write, then kill / resume / leave stopped.

Nothing in the target is changed before every task is frozen, and whatever
happens afterwards, a failed dump puts every task back exactly as it was and
lets it run on; the image directory is then marked incomplete.
"""
from __future__ import annotations

import os
import platform
import signal
import time
from dataclasses import dataclass, field
from itertools import count

from refcr import (__version__, creds, fault, files, fs, memory, native, pipes,
                   proc, pstree, regs, rlimits, signals, task, timers)
from refcr.errors import DumpError, RefcrError
from refcr.images import ImageDir
from refcr.log import log
from refcr.options import Options
from refcr.pb import core_pb2, inventory_pb2
from refcr.syscalls import PAGE_SIZE
from refcr.tracee import INJECT_MASK, Remote, release, seize_thread

IMG_VERSION = 1
PR_GET_DUMPABLE = 3


@dataclass
class FrozenTask:
    """A seized process and what must be undone before it may run again."""

    pid: int
    tids: list[int]
    masks: dict[int, int] = field(default_factory=dict)   # tid -> blocked mask at the freeze
    remote: Remote | None = None

    def open_remote(self, maps: list[proc.Mapping]) -> Remote:
        """Block all signals (so nothing is delivered between injected calls) and
        map a scratch buffer.  Code is patched in at the start of the vdso."""
        for tid in self.tids:
            self.masks[tid] = native.get_sigmask(tid)
            native.set_sigmask(tid, INJECT_MASK)
        vdso = next((m for m in maps if m.name == "[vdso]"), None)
        code = vdso.start if vdso else native.get_regs(self.pid)["rip"] & ~(PAGE_SIZE - 1)
        self.remote = Remote(self.pid, code_addr=code, patch=True)
        self.remote.alloc_scratch()
        return self.remote

    def undo(self) -> None:
        """Remove every trace of the dump: scratch buffer, blocked masks."""
        if self.remote:
            self.remote.free_scratch()
            self.remote.close()
            self.remote = None
        for tid, mask in self.masks.items():
            native.set_sigmask(tid, mask)
        self.masks.clear()


def freeze(tree: list) -> list[FrozenTask]:
    frozen: list[FrozenTask] = []
    try:
        for entry in tree:
            t = FrozenTask(entry.pid, [])
            frozen.append(t)
            while True:     # threads may appear until all existing ones are stopped
                new = [tid for tid in proc.threads(entry.pid) if tid not in t.tids]
                if not new:
                    break
                for tid in new:
                    seize_thread(tid)
                    t.tids.append(tid)
    except BaseException:
        for t in frozen:
            for tid in t.tids:
                release(tid)
        raise
    return frozen


def dump_task(t: FrozenTask, images: ImageDir, ctx: files.DumpFiles, pages_ids: "count[int]",
              shmem_done: set[int]) -> None:
    pid = t.pid
    maps = proc.maps(pid)                 # before the scratch buffer exists
    remote = t.open_remote(maps)
    core = core_pb2.CoreEntry(pid=pid, comm=proc.comm(pid), personality=task.dump_personality(pid))
    fs.dump(pid, core)
    core.sigactions.extend(signals.dump_sigactions(remote))
    core.itimers.extend(timers.dump_itimers(remote))
    core.rlimits.extend(rlimits.dump_rlimits(remote))
    core.creds.CopyFrom(creds.dump(pid, remote))
    core.dumpable = remote.check("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0)
    for tid in t.tids:
        tc = core.threads.add(tid=tid, comm=proc.comm(pid, tid))
        regs.dump_thread(tid, remote, tc)
        signals.dump_thread(tid, remote, tc, t.masks[tid])
        task.dump_rseq(tid, tc)
    core.shared_pending.extend(signals.dump_shared_pending(pid))
    memory.dump(pid, maps, remote, images, lambda: next(pages_ids), shmem_done)
    fault.point("dump-after-memory")
    images.write("fdinfo", files.dump_fds(pid, ctx), id=pid)
    images.write("core", [core], id=pid)


def write_images(frozen: list[FrozenTask], tree: list, images: ImageDir, opts: Options) -> None:
    ctx = files.DumpFiles(opts)
    pages_ids = count(1)
    shmem_done: set[int] = set()
    for t in frozen:
        dump_task(t, images, ctx, pages_ids, shmem_done)
    images.write("files", ctx.entries)
    pipes.write_queued(images, ctx)
    images.write("pstree", tree)
    fault.point("dump-before-write")
    images.write("inventory", [inventory_pb2.InventoryEntry(
        img_version=IMG_VERSION, root_pid=tree[0].pid, refcr_version=__version__,
        kernel_release=platform.release(), dump_time_ns=time.time_ns(), shell_job=opts.shell_job)])


def finish(frozen: list[FrozenTask], opts: Options) -> None:
    """After a successful dump: kill the tree, or let it go on, or leave it stopped."""
    for t in frozen:
        t.undo()
    if opts.leave_running or opts.leave_stopped:
        for t in frozen:
            for tid in t.tids:
                release(tid, stop=opts.leave_stopped)
        return
    for t in frozen:
        os.kill(t.pid, signal.SIGKILL)
    for t in frozen:
        if not proc.wait_gone(t.pid):
            log.warning("process %d did not die after SIGKILL", t.pid)


def dump(opts: Options, images: ImageDir) -> None:
    tree = pstree.collect(opts.pid, opts)
    frozen = freeze(tree)
    log.info("froze %d process(es)", len(frozen))
    try:
        fault.point("dump-after-seize")
        write_images(frozen, tree, images, opts)
    except BaseException as exc:
        _resume_after_failure(frozen)
        images.mark_incomplete(str(exc))
        if isinstance(exc, RefcrError) and not isinstance(exc, DumpError):
            raise DumpError(f"dump of {opts.pid} failed, process resumed: {exc}") from exc
        raise
    finish(frozen, opts)
    log.info("dump of %d complete", opts.pid)


def _resume_after_failure(frozen: list[FrozenTask]) -> None:
    for t in frozen:
        try:
            t.undo()
        except Exception as exc:   # keep going: every task must be released
            log.error("process %d: cleanup after failed dump: %s", t.pid, exc)
        for tid in t.tids:
            release(tid)
