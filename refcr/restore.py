"""The restore pipeline: puppets are forked with the dumped pids, rebuilt
through injected syscalls, and let go together.  If anything fails, every
puppet is killed: no half-restored process survives.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from refcr import creds, fault, files, fs, memory, regs, rlimits, signals, task, timers
from refcr import native
from refcr.errors import RestoreError
from refcr.images import ImageDir
from refcr.log import log
from refcr.options import Options
from refcr.pb import core_pb2, mm_pb2, pstree_pb2
from refcr.puppet import Puppet, kill

IMG_VERSION = 1
PR_SET_DUMPABLE = 4


@dataclass
class TaskImages:
    """Everything the images say about one process."""

    entry: pstree_pb2.PstreeEntry
    core: core_pb2.CoreEntry
    mm: mm_pb2.MmEntry
    fds: list = field(default_factory=list)

    @classmethod
    def load(cls, images: ImageDir, entry: pstree_pb2.PstreeEntry) -> "TaskImages":
        pid = entry.pid
        fds = images.read("fdinfo", id=pid) if images.exists("fdinfo", id=pid) else []
        return cls(entry, images.read_single("core", id=pid), images.read_single("mm", id=pid), fds)


def check_images(images: ImageDir, opts: Options) -> list[pstree_pb2.PstreeEntry]:
    reason = images.is_incomplete()
    if reason is not None:
        raise RestoreError(f"{images.path} holds a failed dump ({reason}); it cannot be restored")
    inv = images.read_single("inventory")
    if inv.img_version != IMG_VERSION:
        raise RestoreError(f"{images.path}: image version {inv.img_version} is not supported")
    if inv.shell_job and not opts.shell_job:
        raise RestoreError("the images hold a shell job (dumped with --shell-job): restore with --shell-job")
    tree = images.read("pstree")
    if not tree:
        raise RestoreError(f"{images.path}: pstree.img lists no process")
    return tree


def open_shmem(images: ImageDir, mm: mm_pb2.MmEntry, ctx: files.RestoreFiles) -> dict[int, int]:
    out: dict[int, int] = {}
    for vma in mm.vmas:
        if vma.kind == mm_pb2.VMA_SHMEM and vma.shmid not in out:
            out[vma.shmid] = ctx.keep(memory.shmem_object(images, vma.shmid, vma.shmem_size))
    return out


def set_mm_and_exe(p: Puppet, mm: mm_pb2.MmEntry) -> None:
    """PR_SET_MM_MAP with the new exe.  Done while the puppet maps nothing but
    the restorer area: the kernel refuses to replace an exe file that is
    still mapped, and the puppet's old exe (refcr's python) may well be
    mapped again by the restored process."""
    try:
        exe = os.open(mm.exe_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise RestoreError(f"cannot open the executable {mm.exe_path}: {exc.strerror}") from exc
    try:
        slot = p.install_fd(exe)
    finally:
        os.close(exe)
    try:
        memory.set_mm_fields(p.remote, mm, slot)
    finally:
        p.remote.call("close", slot)


def restore_memory(p: Puppet, t: TaskImages, images: ImageDir, ctx: files.RestoreFiles) -> None:
    set_mm_and_exe(p, t.mm)
    mapper = memory.AreaMapper(p.remote, p.install_fd, open_shmem(images, t.mm, ctx))
    memory.restore(p.remote, t.mm, images, mapper)


def restore_task(t: TaskImages, images: ImageDir, ctx: files.RestoreFiles, puppets: list[Puppet]) -> Puppet:
    pid, core = t.entry.pid, t.core
    fd_floor = max([f.fd for f in t.fds] + [1023]) + 1
    p = Puppet.create(pid, list(t.mm.vmas), fd_floor)
    puppets.append(p)
    r = p.remote
    fault.point("restore-after-fork")
    restore_memory(p, t, images, ctx)
    fault.point("restore-after-memory")
    for fe in t.fds:
        p.install_fd(ctx.open(fe.id), fe.fd, fe.cloexec)
    p.drop_pidfd()
    fs.restore(r, core)
    task.restore_comm(r, core.comm)
    if t.entry.sid == pid:
        r.check("setsid")
    elif t.entry.pgid == pid:
        r.check("setpgid", 0, 0)
    signals.restore_sigactions(r, list(core.sigactions))
    timers.restore_itimers(r, list(core.itimers))
    main = core.threads[0]
    signals.restore_sigaltstack(r, main.sigaltstack)
    task.restore_rseq(r, main)
    signals.requeue(r, pid, list(core.shared_pending), list(main.pending))
    rlimits.restore_rlimits(r, list(core.rlimits))
    task.restore_personality(r, core.personality)
    creds.restore(r, core.creds)
    r.check("prctl", PR_SET_DUMPABLE, core.dumpable, 0, 0, 0)
    if main.HasField("sleep_restart"):
        regs.arm_sleep_restart(r, main.sleep_restart)
    p.unmap_restorer()
    native.set_sigmask(pid, main.sigmask)
    regs.restore_thread(pid, main)
    return p


def restore(opts: Options) -> int:
    """Restore the images; returns the root pid."""
    images = ImageDir(opts.images_dir, "r")
    tree = check_images(images, opts)
    if len(tree) != 1:
        raise RestoreError("restoring process trees is not supported yet")
    tasks = [TaskImages.load(images, e) for e in tree]
    ctx = files.RestoreFiles.load(images, opts)
    puppets: list[Puppet] = []
    try:
        for t in tasks:
            restore_task(t, images, ctx, puppets)
        fault.point("restore-before-detach")
        for p in puppets:
            p.release(stop=opts.leave_stopped)
    except BaseException:
        for p in puppets:
            kill(p.pid)
        raise
    finally:
        ctx.close_all()
    log.info("restored process %d", tree[0].pid)
    return tree[0].pid


def wait_root(pid: int) -> int:
    """Stay the parent of the restored root (no -d) and pass on its exit status."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


