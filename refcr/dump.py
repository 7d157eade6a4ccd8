"""The dump pipeline: freeze the tree, collect, write, then kill / resume / leave stopped.

Nothing in the target is changed before every task is frozen, and whatever
happens afterwards, a failed dump puts every task back exactly as it was and
lets it run on; the image directory is then marked incomplete.  The marker
is written first and removed last, so a directory whose dump did not finish
says so however the dump ended.  If refcr itself dies, its guardian
(refcr/ptrace/guardian.py) puts the tasks back: every change made to a task
is announced to it first, every task put back is announced after.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from itertools import count

from refcr import __version__, actions, fault
from refcr.drivers import tty
from refcr.errors import DumpError, NoSuchProcess, OptionError, ProcessBusy, RefcrError, UnsupportedObject
from refcr.fs import files, fs_struct, pipes, regfile
from refcr.fs.fd import DumpFiles
from refcr.images.imagedir import IN_PROGRESS, ImageDir
from refcr.ipc import sysv
from refcr.kernel import (
    audit, cgroup, creds, itimers, oom, posix_timers, prctl, pstree, regs, rlimits, sched, seccomp, sharing,
    freezer, signals, task, userns,
)
from refcr.log import log, progress
from refcr.mm import memory, track
from refcr.net import extnetns, inet, netlock, netns, unix
from refcr.ns import mntns, uts
from refcr.options import Options
from refcr.pb import core_pb2, inventory_pb2, mm_pb2
from refcr.plugins import host
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import PAGE_SIZE
from refcr.ptrace.guardian import Guardian
from refcr.ptrace.tracee import (INJECT_MASK, PATCH_SIZE, SCRATCH_SIZE, Remote, collect_exits, far_address,
                                 release, seize_nowait, seize_thread, wait_seized)

IMG_VERSION = 1
PR_GET_DUMPABLE = 3
PR_GET_TID_ADDRESS = 40


@dataclass
class FrozenTask:
    """A seized process and what must be undone before it may run again."""

    member: pstree.Member
    masks: dict[int, int] = field(default_factory=dict)   # host tid -> blocked mask at the freeze
    remotes: dict[int, Remote] = field(default_factory=dict)
    track: track.ProcessTrack | None = None                 # incremental memory (refcr/mm/track.py)
    guard: Guardian | None = None                           # told how to undo, before each change

    @property
    def pid(self) -> int:
        return self.member.host_pid

    @property
    def tids(self) -> list[int]:
        return self.member.host_tids

    def open_remotes(self, maps: list[proc.Mapping]) -> Remote:
        """Block signals (so nothing is delivered between injected calls), map
        a scratch buffer, and make one Remote per thread.  Code is patched in
        at the start of the vdso (its ELF header: no thread runs there)."""
        for tid in self.tids:
            self.masks[tid] = native.get_sigmask(tid)
            if self.guard:
                self.guard.thread(self.pid, tid, self.masks[tid], native.get_regs(tid))
            native.set_sigmask(tid, INJECT_MASK)
        fault.kill_point("after-masks")
        vdso = next((m for m in maps if m.name == "[vdso]"), None)
        code = vdso.start if vdso else native.get_regs(self.pid)["rip"] & ~(PAGE_SIZE - 1)
        main = Remote(self.pid, code_addr=code, patch=True)
        self.remotes[self.pid] = main
        scratch = far_address(maps, SCRATCH_SIZE)
        if self.guard:
            self.guard.code(self.pid, code, main.read(code, PATCH_SIZE))
            if scratch:
                self.guard.scratch(self.pid, scratch, SCRATCH_SIZE)
        main.alloc_scratch(addr=scratch, batch=True)
        if self.guard and not scratch:
            self.guard.scratch(self.pid, main.scratch, main.scratch_size)
        fault.kill_point("after-scratch")
        for tid in self.tids[1:]:
            self.remotes[tid] = Remote(tid, code_addr=code, patch=True, scratch=main.scratch,
                                       scratch_size=main.scratch_size, batch_code=main.batch_code)
        return main

    def undo(self) -> None:
        """Remove every trace of the dump: scratch buffer, blocked masks."""
        main = self.remotes.pop(self.pid, None)
        if main:
            main.free_scratch()
            main.close()
        for r in self.remotes.values():
            r.close()
        self.remotes.clear()
        for tid, mask in self.masks.items():
            native.set_sigmask(tid, mask)
        self.masks.clear()
        if self.guard:
            self.guard.undone(self.pid)

    def release(self, stop: bool = False) -> None:
        for tid in self.tids:
            release(tid, stop=stop)


def freeze_process(m: pstree.Member, frozen_cgroup: bool = False) -> None:
    """Seize every thread; threads may appear until all existing ones are
    stopped, and a thread other than the leader may end before it is
    stopped: it is then not part of the dump (it ended before the freeze).
    frozen_cgroup: the task is in a frozen cgroup (kernel/freezer.py): seize
    and interrupt only, the stops are waited for after the thaw."""
    ended: set[int] = set()
    while True:
        new = [tid for tid in proc.threads(m.host_pid) if tid not in m.host_tids and tid not in ended]
        if not new:
            return
        new.sort(key=lambda tid: tid != m.host_pid)   # the leader first: tids wrap (pid_max) below it
        for tid in new:
            if sharing.in_vfork_wait(tid):
                raise UnsupportedObject(f"process {m.host_pid} waits in vfork() for a child that has not "
                                        "exec'ed or exited yet: refcr cannot dump that wait")
            try:
                if frozen_cgroup:
                    seize_nowait(tid)
                else:
                    m.stop_signo = seize_thread(tid) or m.stop_signo
            except (NoSuchProcess, ProcessBusy):
                if tid == m.host_pid or _thread_alive(m.host_pid, tid):
                    raise
                log.debug("process %d: thread %d ended while the process was frozen", m.host_pid, tid)
                ended.add(tid)
                continue
            m.host_tids.append(tid)


def _thread_alive(pid: int, tid: int) -> bool:
    try:
        state = proc.status(tid).get("State", "X")
    except (NoSuchProcess, OSError):
        return False
    return state[:1] not in ("X", "Z") and os.path.exists(f"/proc/{pid}/task/{tid}")


def freeze_tree(root: int, frozen: list[FrozenTask], zombies: list[pstree.Member],
                guard: Guardian | None = None, cgroup: freezer.Freezer | None = None) -> None:
    """Freeze top down, appending to `frozen` as we go (so a failure can release them).
    With a freezer cgroup: frozen first, every thread seized, thawed, then the stops."""
    if cgroup is None:
        _seize_tree(root, frozen, zombies, guard)
        return
    if guard:
        guard.freezer(cgroup.path, cgroup.v2)
    cgroup.freeze()
    try:
        if not cgroup.holds(root):
            raise OptionError(f"--freeze-cgroup {cgroup.path}: process {root} is not in that cgroup")
        _seize_tree(root, frozen, zombies, guard, frozen_cgroup=True)
        fault.kill_point("cgroup-frozen")
    except BaseException:
        cgroup.thaw_quietly()
        _settle(frozen)
        raise
    cgroup.thaw()
    for t in frozen:
        for tid in t.tids:
            t.member.stop_signo = wait_seized(tid) or t.member.stop_signo
    log.info("froze the cgroup %s, seized %d process(es), thawed", cgroup.path, len(frozen))


def _settle(frozen: list[FrozenTask]) -> None:
    """After a failed seize in a frozen cgroup: take the interrupt stops, so
    that the release can detach (a tracee is detached only while stopped)."""
    for t in frozen:
        for tid in t.tids:
            try:
                wait_seized(tid)
            except (NoSuchProcess, OSError):
                pass


def _member(host_pid: int, ppid: int) -> pstree.Member | None:
    """The tree's entry of a listed process: a zombie's records its exit; None
    if it is gone (EXIT_DEAD 'X' too: reaped at this moment, its parent never
    sees it)."""
    try:
        state = proc.stat(host_pid).state
        if state == "X":
            return None
        return pstree.Member(host_pid, pstree.describe(host_pid, ppid, state == "Z"))
    except NoSuchProcess:
        return None


def _seize_tree(root: int, frozen: list[FrozenTask], zombies: list[pstree.Member],
                guard: Guardian | None, frozen_cgroup: bool = False) -> None:
    queue = [(root, 0)]
    looked_again: set[int] = set()
    while queue:
        host_pid, ppid = queue.pop(0)
        m = _member(host_pid, ppid)
        if m is None:
            continue        # exited between listing and freezing: not part of the tree
        if m.entry.zombie:
            zombies.append(m)
            continue
        if host_pid != root:
            try:
                pstree.check_same_namespaces(root, host_pid)
            except (FileNotFoundError, ProcessLookupError):
                if host_pid in looked_again:
                    raise
                # not frozen yet: it ended, or became a zombie, since it was listed; look again
                looked_again.add(host_pid)
                queue.insert(0, (host_pid, ppid))
                continue
        frozen.append(FrozenTask(m, guard=guard))
        try:
            freeze_process(m, frozen_cgroup)
        except (NoSuchProcess, ProcessBusy):
            if m.host_tids or host_pid == root:
                raise
            # its parent is frozen, its children listed: it exited since then, and is a
            # zombie now (the kernel refuses to seize one: EPERM) or reaped already
            frozen.pop()
            ended = _member(host_pid, ppid)
            if ended is not None and not ended.entry.zombie:
                raise
            if ended is not None:
                log.debug("process %d exited while its parent was frozen: dumped as a zombie", host_pid)
                zombies.append(ended)
            continue
        if guard:
            guard.process(host_pid, m.host_tids)
        m.entry.threads.extend(pstree.inner_ids(host_pid, "NSpid", tid) for tid in m.host_tids)
        queue.extend((kid, m.entry.pid) for kid in proc.children(host_pid))


def dump_thread(t: FrozenTask, host_tid: int, core: core_pb2.CoreEntry, tid: int) -> None:
    remote = t.remotes[host_tid]
    tc = core.threads.add(tid=tid, comm=proc.comm(t.pid, host_tid))
    regs.dump_thread(host_tid, remote, tc)
    # the sigaltstack, the clear_child_tid address and the prctls in one round trip
    sas, ints = remote.put(bytes(signals.STACK_T.size + 8), bytes(8))
    tid_addr = sas + signals.STACK_T.size
    mine = [signals.sigaltstack_call(sas), ("prctl", (PR_GET_TID_ADDRESS, tid_addr, 0, 0, 0))]
    got = remote.batch(mine + prctl.thread_calls(ints))
    remote.raise_failed(mine, got[:len(mine)])
    signals.dump_thread(host_tid, remote, tc, t.masks[host_tid], sigaltstack_at=sas)
    task.dump_rseq(host_tid, tc)
    tc.clear_tid_addr = int.from_bytes(remote.get(tid_addr, 8), "little")
    tc.robust_list, tc.robust_list_len = native.get_robust_list(host_tid)
    tc.sched.CopyFrom(sched.dump(t.pid, host_tid))
    tc.prctl.CopyFrom(prctl.thread_from(t.pid, remote, t.member.entry.ppid == 0, got[len(mine):], ints))
    tc.seccomp.CopyFrom(seccomp.dump(t.pid, host_tid, core.threads[0].seccomp if host_tid != t.pid else None))


def dump_task(t: FrozenTask, images: ImageDir, ctx: DumpFiles, pages_ids: "count[int]",
              shmem_done: dict[int, int], tracking: track.DumpTracking | None = None,
              parent: tuple[int, mm_pb2.MmEntry] | None = None) -> mm_pb2.MmEntry | None:
    """Every image of one process; returns its MmEntry (None: it shares its
    parent's, CLONE_VM).  parent: its parent's host pid and MmEntry (dumped
    before it), for the pages they share."""
    pid, vpid = t.pid, t.member.entry.pid
    maps = proc.maps(pid)                 # before the scratch buffer exists
    remote = t.open_remotes(maps)
    core = core_pb2.CoreEntry(pid=vpid, comm=proc.comm(pid), personality=task.dump_personality(pid))
    fs_struct.dump(pid, core, ctx)
    core.sigactions.extend(signals.dump_sigactions(remote))
    core.itimers.extend(itimers.dump_itimers(remote))
    core.rlimits.extend(rlimits.dump_rlimits(remote))
    core.creds.CopyFrom(creds.dump(pid, remote))
    core.dumpable = remote.check("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0)
    core.oom_score_adj = oom.dump(pid)
    audit.dump(pid, core)
    core.prctl.CopyFrom(prctl.dump_process(pid, remote))
    core.posix_timers.extend(posix_timers.dump(pid, remote, dict(zip(t.tids, t.member.entry.threads, strict=True))))
    core.stop_signo = t.member.stop_signo
    for host_tid, tid in zip(t.tids, t.member.entry.threads, strict=True):
        dump_thread(t, host_tid, core, tid)
    fault.kill_point("after-threads")
    core.shared_pending.extend(signals.dump_shared_pending(pid))
    mm = None
    if sharing.restores_mm(t.member.entry.clone_flags):     # else its parent's address space (CLONE_VM)
        t.track = tracking.for_process(pid, vpid) if tracking else None
        mm = memory.dump(pid, maps, remote, images, lambda: next(pages_ids), shmem_done, image_id=vpid,
                         track=t.track, parent=parent, files=ctx, guard=t.guard)
    fault.point("dump-after-memory")
    fault.kill_point("after-memory")
    images.write("fdinfo", files.dump_fds(pid, ctx), id=vpid)
    fault.kill_point("after-fds")
    images.write("core", [core], id=vpid)
    return mm


def dump_namespaces(root: FrozenTask, namespaces: list[str], images: ImageDir, opts: Options | None = None) -> None:
    """Contents of the namespaces the root has of its own."""
    if "user" in namespaces:
        images.write("userns", [userns.dump(root.pid)])
    if "uts" in namespaces:
        images.write("uts", [uts.dump(root.remotes[root.pid])])
    if "ipc" in namespaces:
        sysv.dump(root.pid, images)
    if "mnt" in namespaces:
        images.write("mntns", [mntns.dump(root.pid, images, opts or Options())])
    elif opts:
        mntns.check_no_namespace(opts.external)


def write_images(frozen: list[FrozenTask], tree: list, namespaces: list[str], images: ImageDir,
                 opts: Options) -> None:
    ctx = files.dump_context(opts, [t.pid for t in frozen])
    pages_ids = count(1)
    shmem_done: dict[int, int] = {}
    tracking = opts.extra.get("tracking")
    if not isinstance(tracking, track.DumpTracking):
        tracking = track.DumpTracking.from_options(opts, images)
    try:
        with progress.shown("dump", sum(proc.anon_pages(t.pid) for t in frozen), len(frozen)):
            mms: dict[int, tuple[int, mm_pb2.MmEntry]] = {}     # vpid -> (host pid, mm), parents first
            for t in frozen:
                mm = dump_task(t, images, ctx, pages_ids, shmem_done, tracking, mms.get(t.member.entry.ppid))
                # a CLONE_VM sharer's address space is its parent's (dumped before it)
                mms[t.member.entry.pid] = (t.pid, mm) if mm is not None else mms[t.member.entry.ppid]
                progress.process_done()
        unix.dump_in_flight(ctx)
        regfile.check_watched(ctx)         # after every fd, area and cwd (and fd in flight)
        tty.check_controlling(ctx, [t.pid for t in frozen])
        write_rest(frozen, tree, namespaces, images, opts, ctx, tracking)
    except BaseException:
        regfile.remove_link_remaps(ctx)
        raise


def write_rest(frozen: list[FrozenTask], tree: list, namespaces: list[str], images: ImageDir,
               opts: Options, ctx: DumpFiles, tracking: track.DumpTracking) -> None:
    """What comes after the tasks: the tree-wide objects, files.img, pstree, inventory."""
    unix.check_ext_dump(ctx)
    tty.check_ext_dump(ctx)
    host.devices_hook("DUMP_DEVICES_LATE", [t.pid for t in frozen])
    dump_namespaces(frozen[0], namespaces, images, opts)
    if opts.manage_cgroups:
        images.write("cgroup", [cgroup.dump([t.pid for t in frozen], opts.manage_cgroups)])
    if "net" in namespaces and not opts.empty_ns & native.CLONE_NEWNET:   # empty: the runtime sets it up
        images.write("netns", [netns.dump(frozen[0].pid, opts)])
    images.write("files", ctx.entries)
    pipes.write_queued(images, ctx)
    images.write("pstree", tree)
    fault.point("dump-before-write")
    fault.kill_point("before-inventory")
    images.write("inventory", [inventory_pb2.InventoryEntry(
        img_version=IMG_VERSION, root_pid=tree[0].pid, refcr_version=__version__,
        kernel_release=os.uname().release, dump_time_ns=time.time_ns(), shell_job=opts.shell_job,
        root_namespaces=namespaces, plugins=host.used(), track_mem=tracking.name,
        ext_netns=int(opts.extra.get("ext_netns", 0)),
        netlock_table=opts.extra["netlock"].table if "netlock" in opts.extra else "")])
    fault.kill_point("after-inventory")


def finish(frozen: list[FrozenTask], opts: Options) -> None:
    """After a successful dump: kill the tree, or let it go on, or leave it stopped."""
    for t in frozen:
        t.undo()
        fault.kill_point("mid-finish")
    if opts.leave_running or opts.leave_stopped:
        inet.end_repair(resume=True)
        for t in frozen:
            t.release(stop=opts.leave_stopped)
        return
    for t in frozen:
        os.kill(t.pid, signal.SIGKILL)
    collect_exits([tid for t in frozen for tid in t.tids])
    for t in frozen:
        if not proc.wait_gone(t.pid):
            log.warning("process %d did not die after SIGKILL", t.pid)
    inet.end_repair(resume=False)     # the dead tasks' TCP connections vanish silently


def dump(opts: Options, images: ImageDir) -> None:
    """The plugins' init(DUMP) first, their exit(DUMP, ret) always last (refcr/plugins/host.py)."""
    ret = -1
    fault.stage = "dump"
    images.mark_incomplete(IN_PROGRESS)
    try:
        host.init(host.STAGE_DUMP, opts)
        _dump(opts, images)
        ret = 0
        images.clear_incomplete()
    except BaseException as exc:
        if images.is_incomplete() in (None, IN_PROGRESS):      # init failed: nothing was frozen
            images.mark_incomplete(str(exc))
        raise
    finally:
        host.exit(host.STAGE_DUMP, ret)


def _dump(opts: Options, images: ImageDir) -> None:
    pstree.check_target(opts.pid)
    cgroup_freezer = freezer.Freezer.open(opts.freeze_cgroup) if opts.freeze_cgroup else None
    namespaces, opts.extra["ext_netns"] = extnetns.dump_side(opts, opts.pid, pstree.root_namespaces(opts.pid))
    frozen: list[FrozenTask] = []
    zombies: list[pstree.Member] = []
    actions.run(opts, "pre-dump")
    opts.extra["tracking"] = track.DumpTracking.from_options(opts, images)   # parent checked before the freeze
    guard = start_guardian(opts, images)
    lock = netlock.NetLock(opts, opts.pid, "net" in namespaces, guard=guard)
    if opts.tcp_established:        # connections locked one by one (net/inet.py)
        opts.extra["netlock"], opts.extra["guardian"] = lock, guard
    try:
        _frozen_part(opts, images, guard, namespaces, lock, frozen, zombies, cgroup_freezer)
    finally:
        guard.done()


def start_guardian(opts: Options, images: ImageDir) -> Guardian:
    def outside(commit: bool | None, notes: dict[str, object]) -> None:
        if commit is not True:          # the tree runs on: its connections too
            inet.end_repair_after_death(notes)
            netlock.undo_after_death(notes)

    def on_death(committed: bool) -> None:
        if committed:
            images.clear_incomplete()
        else:
            images.mark_incomplete(f"refcr died during the {fault.stage}; the processes were put back")
    guard = Guardian(opts.leave_stopped, on_death, outside)
    guard.start()
    return guard


def _frozen_part(opts: Options, images: ImageDir, guard: Guardian, namespaces: list[str],
                 lock: netlock.NetLock, frozen: list[FrozenTask], zombies: list[pstree.Member],
                 cgroup_freezer: freezer.Freezer | None = None) -> None:
    try:
        freeze_tree(opts.pid, frozen, zombies, guard, cgroup_freezer)
        sharing.dump([t.member for t in frozen])
        lock.lock()
        members = [t.member for t in frozen] + zombies
        pstree.check_ids(members, opts)
        tree = [m.entry for m in members]
        log.info("froze %d process(es), %d zombie(s)", len(frozen), len(zombies))
        fault.point("dump-after-seize")
        fault.kill_point("after-seize")
        host.devices_hook("PAUSE_DEVICES", [t.pid for t in frozen])
        host.devices_hook("CHECKPOINT_DEVICES", [t.pid for t in frozen])
        write_images(frozen, tree, namespaces, images, opts)
        actions.run(opts, "post-dump", opts.pid)
    except BaseException as exc:
        _resume_after_failure(frozen)
        lock.unlock_quietly()
        images.mark_incomplete(str(exc))
        if isinstance(exc, RefcrError) and not isinstance(exc, DumpError):
            raise DumpError(f"dump of {opts.pid} failed, process resumed: {exc}") from exc
        raise
    guard.commit(kill=not (opts.leave_running or opts.leave_stopped))
    finish(frozen, opts)
    if opts.leave_running or opts.leave_stopped:
        lock.unlock()
    log.info("dump of %d complete", opts.pid)


def _resume_after_failure(frozen: list[FrozenTask]) -> None:
    inet.end_repair(resume=True)
    for t in frozen:
        try:
            if t.track is not None and t.pid in t.remotes:   # its tracking may be half reset: end it
                t.track.stop(t.remotes[t.pid])
        except Exception as exc:
            log.error("process %d: ending dirty tracking after failed dump: %s", t.pid, exc)
        try:
            t.undo()
        except Exception as exc:   # keep going: every task must be released
            log.error("process %d: cleanup after failed dump: %s", t.pid, exc)
        t.release()
