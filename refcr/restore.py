"""The restore pipeline.

1. The tree of empty puppets is built top down, with the dumped pids:
   sessions come from the order of fork and setsid, process groups from
   setpgid (a group whose leader is gone gets a short-lived helper with the
   leader's pid), zombies exit with their status; a child that shared its
   parent's cwd, root and umask (fd table) is forked with CLONE_FS
   (CLONE_FILES) and leaves them to the parent (kernel/sharing.py).  A tree
   with a user namespace of its own gets it from the root's clone3, with the
   other namespaces (kernel/userns.py).
   Before a process forks, its special areas move to their dumped places and
   the private anonymous areas its children shared pages of at the dump are
   mapped and filled: the children inherit them (mm/cow.py).
2. Each process rebuilds the rest of its memory, its fds and process-wide state.
3. Threads are created and get their own state (and credentials).
4. Queued signals, the restorer area, masks and registers come last, and
   every task is released at once.
If anything fails, every puppet is killed: no half-restored process survives.
"""
from __future__ import annotations

import os
import signal
import stat
import struct
from dataclasses import dataclass, field
from typing import Callable

from refcr import actions, fault
from refcr.drivers import tty
from refcr.errors import RestoreError
from refcr.fs import fanotify, files, fs_struct, inotify, regfile
from refcr.fs.fd import RestoreFiles
from refcr.fs.namei import Root
from refcr.images.imagedir import ImageDir
from refcr.images.validate import validate
from refcr.kernel import (
    audit, cgroup, creds, itimers, jobctl, oom, posix_timers, prctl, pstree, regs, rlimits, sched, seccomp,
    sharing, signals, task, userns,
)
from refcr.log import log, progress
from refcr.mm import memory, pages
from refcr.net import extnetns, netlock, netns, unix
from refcr.options import Options
from refcr.pb import core_pb2, mm_pb2, pstree_pb2, userns_pb2
from refcr.plugins import host
from refcr.ptrace import native, proc
from refcr.ptrace.puppet import CLONE_PARENT, Layout, Puppet
from refcr.ptrace.tracee import Remote, RemoteError

IMG_VERSION = 1
PR_SET_DUMPABLE = 4
NS_FLAGS = {"pid": native.CLONE_NEWPID, "ipc": native.CLONE_NEWIPC, "uts": native.CLONE_NEWUTS,
            "mnt": native.CLONE_NEWNS, "net": native.CLONE_NEWNET, "user": native.CLONE_NEWUSER}
WALL = 0x40000000
RLIMIT_CORE = 4


@dataclass
class Node:
    """One process of the tree: what the images say, and its puppet."""

    entry: pstree_pb2.PstreeEntry
    children: list["Node"] = field(default_factory=list)
    core: core_pb2.CoreEntry | None = None
    mm: mm_pb2.MmEntry | None = None
    fds: list = field(default_factory=list)
    puppet: Puppet | None = None
    sid_now: int = 0           # the session the puppet is in at this point of the restore
    inherited: dict[int, mm_pb2.VmaEntry] = field(default_factory=dict)   # the parent's ready areas
    ready: dict[int, mm_pb2.VmaEntry] = field(default_factory=dict)       # filled before the forks (mm/cow.py)

    @property
    def pid(self) -> int:
        return self.entry.pid

    def load(self, images: ImageDir) -> None:
        if self.entry.zombie:
            return
        pid = self.pid
        self.core = images.read_single("core", id=pid)
        if sharing.restores_mm(self.entry.clone_flags):      # else its parent's (CLONE_VM)
            self.mm = images.read_single("mm", id=pid)
        self.fds = images.read("fdinfo", id=pid) if images.exists("fdinfo", id=pid) else []
        jobctl.check_image(self.core.stop_signo, pid)
        if [t.tid for t in self.core.threads] != list(self.entry.threads):
            raise RestoreError(f"core-{pid}.img does not describe the threads pstree.img lists")


def check_images(images: ImageDir, opts: Options):
    reason = images.is_incomplete()
    if reason is not None:
        raise RestoreError(f"{images.path} holds a failed dump ({reason}); it cannot be restored")
    inv = images.read_single("inventory")
    if inv.img_version != IMG_VERSION:
        raise RestoreError(f"{images.path}: image version {inv.img_version} is not supported")
    if inv.predump:
        raise RestoreError(f"{images.path} is a pre-dump (memory only): restore a dump made after it")
    if inv.shell_job and not opts.shell_job:
        raise RestoreError("the images hold a shell job (dumped with --shell-job): restore with --shell-job")
    host.require(list(inv.plugins))
    entries = images.read("pstree")
    if not entries:
        raise RestoreError(f"{images.path}: pstree.img lists no process")
    return inv, entries


def build_tree(entries: list[pstree_pb2.PstreeEntry], images: ImageDir) -> list[Node]:
    """Nodes in pstree order (parents first), children linked."""
    nodes = [Node(e) for e in entries]
    by_pid = {n.pid: n for n in nodes}
    if len(by_pid) != len(nodes):
        raise RestoreError("pstree.img lists a pid twice")
    for n in nodes[1:]:
        parent = by_pid.get(n.entry.ppid)
        if parent is None or parent.entry.zombie:
            raise RestoreError(f"pstree.img: process {n.pid} has no parent {n.entry.ppid} in the tree")
        parent.children.append(n)
    if nodes[0].entry.zombie:
        raise RestoreError("pstree.img: the root is a zombie")
    for n in nodes:
        n.load(images)
    return nodes


# ------------------------------------------------------------- the tree ---

@dataclass
class TreeBuilder:
    """Creates the puppets with the right pids, sessions and groups."""

    nodes: list[Node]
    layout: Layout
    namespaces: list[str]
    puppets: list[Puppet] = field(default_factory=list)     # every live puppet, for cleanup
    sibling: bool = False           # the root becomes a child of refcr's parent (RPC rst_sibling)
    prepare: Callable[[Node], None] | None = None   # a live process's work before it forks
    userns: userns_pb2.UsernsEntry | None = None    # the tree's own user namespace (kernel/userns.py)
    proxy: userns.FdProxy | None = None             # the puppets' fd source in it

    def create_root(self) -> Node:
        root = self.nodes[0]
        flags = CLONE_PARENT if self.sibling else 0
        for kind in self.namespaces:
            flags |= NS_FLAGS[kind]
        if "pid" in self.namespaces:
            if root.pid != 1:
                raise RestoreError("pstree.img: a tree with its own pid namespace must have root pid 1")
            tries = [[1, root.entry.host_pid], [1]] if root.entry.host_pid else [[1]]
        else:
            tries = [[root.pid]]
        if self.userns is not None:
            self.proxy = userns.FdProxy.start()
        for i, set_tid in enumerate(tries):
            try:
                with userns.as_creator(self.userns):
                    root.puppet = Puppet.create_root(root.pid, set_tid, flags, self.layout,
                                                     self.proxy.pidfd if self.proxy else None)
                break
            except RestoreError:
                if i == len(tries) - 1:
                    raise
        self.puppets.append(root.puppet)
        if self.userns is not None:
            userns.write_maps(root.puppet.pid, self.userns)
            self.proxy.join(root.puppet.pid)
        root.sid_now = root.entry.sid if root.entry.sid != root.pid else -1
        return root

    def create_subtree(self, node: Node) -> None:
        """Fork node's children; node calls setsid at the right moment."""
        if self.prepare is not None and not node.entry.zombie:
            self.prepare(node)
        kids = list(node.children)
        if node.entry.sid == node.pid and node.sid_now != node.pid:
            for c in [c for c in kids if c.entry.sid == node.sid_now and c.entry.sid != c.pid]:
                self.fork(node, c)      # they stay in the session node was born into
                kids.remove(c)
            node.puppet.remote.check("setsid")
            node.sid_now = node.pid
        for c in kids:
            if c.entry.sid not in (node.sid_now, c.pid):
                raise RestoreError(f"process {c.pid}: cannot put it into session {c.entry.sid} "
                                   f"(its parent {node.pid} is in {node.sid_now})")
            self.fork(node, c)

    def fork(self, parent: Node, child: Node) -> None:
        child.puppet = parent.puppet.fork_child(child.pid, child.entry.clone_flags)
        self.puppets.append(child.puppet)
        child.sid_now = parent.sid_now
        child.inherited = parent.ready
        self.create_subtree(child)

    def set_groups(self) -> None:
        by_pid = {n.pid: n for n in self.nodes}
        for n in self.nodes:            # group leaders first
            if n.entry.pgid == n.pid and n.entry.sid != n.pid:
                n.puppet.remote.check("setpgid", 0, 0)
        orphan_groups: dict[int, list[Node]] = {}
        for n in self.nodes:
            pgid = n.entry.pgid
            if pgid == n.pid or n.entry.sid == n.pid:
                continue
            if pgid in by_pid:
                n.puppet.remote.check("setpgid", 0, pgid)
            elif pgid != self.nodes[0].entry.pgid or pgid == self.nodes[0].pid:
                orphan_groups.setdefault(pgid, []).append(n)
        for pgid, members in orphan_groups.items():
            self.group_without_leader(pgid, members)

    def group_without_leader(self, pgid: int, members: list[Node]) -> None:
        """A helper process with the leader's pid founds the group, the members
        join it, and the helper goes away (reaped by its parent, a member)."""
        host = members[0].puppet
        helper = host.fork_child(pgid)
        try:
            helper.remote.check("setpgid", 0, 0)
            for m in members:
                m.puppet.remote.check("setpgid", 0, pgid)
        finally:
            helper.remote.close()
            native.detach(helper.pid, 0)
            os.kill(helper.pid, signal.SIGKILL)
        host.remote.check("wait4", pgid, 0, WALL, 0)

    def make_zombies(self) -> None:
        for n in self.nodes:
            if n.entry.zombie:
                make_zombie(n.puppet, n.entry)
                self.puppets.remove(n.puppet)


def make_zombie(p: Puppet, e: pstree_pb2.PstreeEntry) -> None:
    """Let a puppet die the way the dumped zombie did; its parent reaps it later.
    Its name and signal state stay visible in /proc, so they are set first."""
    r, status = p.remote, e.exit_status
    task.restore_comm(r, e.comm)
    r.flush()
    fatal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    for sig in signals.catchable():
        bit = 1 << (sig - 1)
        handler = 1 if e.sig_ignored & bit else p.layout.area if e.sig_caught & bit else 0
        if sig == fatal:
            handler = 0
        addr, = r.put(struct.pack("<QQQQ", handler, 0, 0, 0))
        r.check("rt_sigaction", sig, addr, 0, 8)
    lim, = r.put(struct.pack("<QQ", 0, 0))
    r.check("prlimit64", 0, RLIMIT_CORE, lim, 0)     # no core file
    native.set_sigmask(p.pid, e.sig_blocked & ~((1 << (fatal - 1)) if fatal else 0))
    if fatal:
        r.close()
        os.kill(p.pid, fatal)
        sig = 0                         # first leave the injection stop; the signal comes next
        while True:
            try:
                native.cont(p.pid, sig)
            except ProcessLookupError:
                pass                    # SIGKILL needs no delivery
            st = native.wait(p.pid)
            if not os.WIFSTOPPED(st):
                break                   # dead: the tracer's notice is consumed, the parent sees a zombie
            sig = os.WSTOPSIG(st) if (st >> 16) == 0 else 0
    else:
        try:
            r.call("exit_group", os.WEXITSTATUS(status))
        except OSError:
            pass        # it exited inside the injection, as it should
        r.close()
    for _ in range(1000):
        if proc.stat(p.pid).state == "Z":
            return
        os.sched_yield()
    raise RestoreError(f"process {p.vpid} did not become a zombie")


# ------------------------------------------------------ one process -----

def open_shmem(images: ImageDir, mm: mm_pb2.MmEntry, ctx: RestoreFiles,
               cache: dict[int, int]) -> dict[int, int]:
    for vma in mm.vmas:
        if memory.maps_object(vma) and vma.shmid not in cache:
            cache[vma.shmid] = ctx.keep(memory.shmem_object(images, vma.shmid, vma.shmem_size))
    return cache


def set_mm_and_exe(p: Puppet, mm: mm_pb2.MmEntry, root: Root) -> None:
    """PR_SET_MM_MAP with the new exe.  Done while the puppet maps nothing but
    the restorer area: the kernel refuses to replace an exe file that is
    still mapped, and the puppet's old exe (refcr's python) may well be
    mapped again by the restored process."""
    try:
        exe = root.open(mm.exe_path, os.O_RDONLY, "exe", {stat.S_IFREG})
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


def prepare_memory(n: Node, images: ImageDir, ctx: RestoreFiles) -> None:
    """Before n forks: the special areas move, and the private areas its
    children share pages of are mapped and filled (mm/cow.py)."""
    p = n.puppet
    if n.mm is None:            # CLONE_VM: the address space is the parent's, as it left it
        n.ready = n.inherited
        return
    mapper = memory.AreaMapper(p.remote, p.install_fd, {}, ctx.root)
    kids = [c.mm for c in n.children if c.mm is not None]
    n.ready = memory.premap(p.remote, n.mm, images, mapper, n.pid, n.inherited, kids, p.layout.parking)


def restore_process(n: Node, images: ImageDir, ctx: RestoreFiles, shmem: dict[int, int]) -> None:
    """Memory, fds and process-wide state, through the main thread."""
    p, core = n.puppet, n.core
    r = p.remote
    audit.check(core)
    if n.mm is not None:        # else its parent restored the address space they share (CLONE_VM)
        set_mm_and_exe(p, n.mm, ctx.root)
        mapper = memory.AreaMapper(r, p.install_fd, open_shmem(images, n.mm, ctx, shmem), ctx.root,
                                   getfd_slot=p.pidfd_slot, open_file=ctx.open)
        memory.restore(r, n.mm, images, mapper, n.pid, n.ready)
    fault.point("restore-after-memory")
    if sharing.restores_files(n.entry.clone_flags):  # else its parent's table is its own (CLONE_FILES)
        ctx.install_table(p, n.fds)
    tty.restore_controlling(ctx, p)
    if sharing.restores_fs(n.entry.clone_flags):     # else its parent's are its own (CLONE_FS)
        fs_struct.restore_task(p, core, ctx)
    signals.restore_sigactions(r, list(core.sigactions))
    rlimits.restore_rlimits(r, list(core.rlimits))
    prctl.restore_process(r, core.prctl)


def drop_pidfd(n: Node) -> None:
    """Close refcr's pidfd in the puppet's table (once per table: a CLONE_FILES
    sharer's slot is its parent's, closed by the parent, listed before it)."""
    if sharing.restores_files(n.entry.clone_flags):
        n.puppet.drop_pidfd()
    else:
        n.puppet.pidfd_slot = -1


def restore_threads(n: Node, user: userns_pb2.UsernsEntry | None = None) -> None:
    """Create the other threads, then give every thread its own state."""
    p, core = n.puppet, n.core
    setgroups = user is None or user.setgroups_allowed
    if not setgroups:
        userns.check_groups(p.pid, user)
    seccomp.restore_shared(p.remote, list(core.threads))     # inherited by the threads made next
    p.clone_threads([tc.tid for tc in core.threads[1:]])
    for tc in core.threads:
        r = p.threads[tc.tid].remote
        task.restore_comm(r, tc.comm)
        signals.restore_sigaltstack(r, tc.sigaltstack)
        task.restore_rseq(r, tc)
        r.defer("set_tid_address", tc.clear_tid_addr)
        if tc.robust_list:
            r.defer("set_robust_list", tc.robust_list, tc.robust_list_len)
        task.restore_personality(r, core.personality)
        seccomp.restore_thread(r, tc.seccomp, seccomp.shared_count(list(core.threads)))
        creds.restore(r, core.creds, setgroups)
        prctl.restore_thread(r, tc.prctl)
        seccomp.restore_strict(r, tc.seccomp)
        r.flush()
    p.remote.check("prctl", PR_SET_DUMPABLE, core.dumpable, 0, 0, 0)
    prctl.restore_mdwe(p.remote, core.prctl)


def drain_signals(r: Remote) -> None:
    """Throw away signals the restore itself caused (SIGCHLD of zombies and
    helpers, ...): only the dumped ones must be pending afterwards.  /proc says
    first whether anything is pending (a round trip per thread fewer: most
    threads have nothing)."""
    st = proc.status(r.tid)
    if not (int(st["SigPnd"], 16) or int(st["ShdPnd"], 16)):
        return
    allsigs, timeout = r.put(struct.pack("<Q", (1 << 64) - 1), struct.pack("<qq", 0, 0))
    while r.call("rt_sigtimedwait", allsigs, 0, timeout, 8) > 0:
        pass


def finish_process(n: Node, unmap: bool = True) -> None:
    """Signals, timers, sleeps; then the restorer area goes (unless another
    process of the same address space still has to finish: unmap False) and
    registers are set."""
    p, core = n.puppet, n.core
    for tc in core.threads:
        drain_signals(p.threads[tc.tid].remote)
    signals.requeue(p.remote, n.pid, n.pid, list(core.shared_pending), [])
    for tc in core.threads:
        signals.requeue(p.threads[tc.tid].remote, n.pid, tc.tid, [], list(tc.pending))
    rlimits.restore_late(p.remote, list(core.rlimits))
    posix_timers.restore(p.remote, {tc.tid: p.threads[tc.tid].remote for tc in core.threads},
                         list(core.posix_timers))
    itimers.restore_itimers(p.remote, list(core.itimers))
    for tc in core.threads:
        if tc.HasField("sleep_restart"):
            regs.arm_sleep_restart(p.threads[tc.tid].remote, tc)
    if unmap:
        p.unmap_restorer()
    else:
        p.close_remotes()
    for tc in core.threads:
        tid = p.threads[tc.tid].tid
        native.set_sigmask(tid, tc.sigmask)
        regs.restore_thread(tid, tc)
        sched.restore(n.pid, tid, tc.sched)       # last: an RT or idle puppet would slow the restore
    oom.restore(n.pid, p.pid, core.oom_score_adj)


def last_of_address_spaces(live: list[Node]) -> set[int]:
    """The pid of the last process (in restore order) of each address space:
    the one that removes the restorer area the others run too (CLONE_VM)."""
    owner: dict[int, int] = {}
    for n in live:
        owner[n.pid] = n.pid if n.mm is not None else owner[n.entry.ppid]
    last = {o: pid for pid, o in owner.items()}
    return set(last.values())


# ------------------------------------------------------------ driver -----

def restore_namespaces(root: Node, images: ImageDir, namespaces: list[str], ctx: RestoreFiles) -> None:
    if "mnt" in namespaces:
        from refcr.ns import mntns
        if images.exists("mntns"):
            for index, master in mntns.restore(root.puppet.pid, images, ctx.opts.external,
                                               ctx.opts.root).items():
                ctx.extra.setdefault("pty-made", {})[index] = ctx.keep(master)
        ctx.root = Root(root.puppet.pid)
    else:
        from refcr.ns import mntns
        mntns.check_no_namespace(ctx.opts.external)
    if "uts" in namespaces and images.exists("uts"):
        from refcr.ns import uts
        uts.restore(root.puppet.remote, images.read_single("uts"))
    if "ipc" in namespaces:
        from refcr.ipc import sysv
        sysv.restore(root.puppet.pid, images)


def restore(opts: Options) -> int:
    """Restore the images; returns the root's pid as refcr sees it.

    The plugins' init(RESTORE) and RESTORE_INIT come first, their
    exit(RESTORE, ret) always last (refcr/plugins/host.py)."""
    ret = -1
    try:
        host.init(host.STAGE_RESTORE, opts)
        host.stage_hook("RESTORE_INIT")
        pid = _restore(opts)
        ret = 0
        return pid
    finally:
        host.exit(host.STAGE_RESTORE, ret)


def _restore(opts: Options) -> int:
    images = ImageDir(opts.images_dir, "r")
    inv, entries = check_images(images, opts)
    validate(images, native.xstate_size())     # the whole set, before anything is created
    nodes = build_tree(entries, images)
    live = [n for n in nodes if not n.entry.zombie]
    dumped = [(v.start, v.end) for n in live if n.mm is not None for v in n.mm.vmas]
    max_fd = max([f.fd for n in live for f in n.fds] + [0])
    user = images.read_single("userns") if "user" in inv.root_namespaces else None
    ctx = files.restore_context(images, opts)
    builder = TreeBuilder(nodes, Layout.choose(dumped, max_fd), list(inv.root_namespaces), sibling=opts.restore_sibling,
                          prepare=lambda n: prepare_memory(n, images, ctx), userns=user)
    unix.check_ext_restore(ctx)
    tty.check_ext_restore(ctx)
    netns.check_options(images, opts)
    ctx.check_inherited((extnetns.resource(inv.ext_netns),) if inv.ext_netns else ())
    netfd = extnetns.inherited_fd(inv.ext_netns, ctx)
    if "pid" not in inv.root_namespaces:
        pstree.wait_zombies_reaped(pstree.needed_pids(entries))
    actions.run(opts, "pre-restore")
    try:
        with extnetns.entered(netfd):       # --external net[INO]: into the caller's net namespace
            root = builder.create_root()
        if images.exists("cgroup"):         # before any fork: the children inherit them
            cgroup.restore(root.puppet.pid, images.read_single("cgroup"), opts.cgroup_roots, opts.manage_cgroups)
        ctx.root_pid = root.puppet.pid
        lock = netlock.NetLock(opts, root.puppet.pid, "net" in inv.root_namespaces)
        lock.lock()
        fault.point("restore-after-fork")
        builder.create_subtree(root)
        builder.set_groups()
        builder.make_zombies()
        host.stage_hook("POST_FORKING")
        restore_namespaces(root, images, list(inv.root_namespaces), ctx)
        net = netns.restore_links(root.puppet.pid, images, opts) if "net" in inv.root_namespaces else None
        actions.run(opts, "setup-namespaces", root.puppet.pid)
        actions.run(opts, "post-setup-namespaces", root.puppet.pid)
        netns.restore_config(net)
        shmem: dict[int, int] = {}
        ctx.puppets = {n.puppet.vpid: n.puppet for n in live}
        unix.build(ctx)         # while every puppet can still take refcr's fds (SO_PEERCRED)
        with progress.shown("restore", sum(pages.page_count(images, "pagemap", n.pid) for n in live), len(live)):
            for n in live:
                restore_process(n, images, ctx, shmem)
                progress.process_done()
        for n in live:          # after all: a sharer of the table maps its files through the same slot
            drop_pidfd(n)
        ctx.inherited.check_all_used()
        regfile.ghost_times(ctx)
        if "ipc" in inv.root_namespaces:
            from refcr.ipc import sysv
            sysv.finish_restore(root.puppet.pid, images)
        for n in live:
            restore_threads(n, user)
        last = last_of_address_spaces(live)
        for n in live:
            finish_process(n, unmap=n.pid in last)
        fanotify.settle(ctx)        # first: it holds the ghosts it marks before refcr closes its fds of them
        inotify.settle(ctx)
        fault.point("restore-before-detach")
        host.devices_hook("RESUME_DEVICES_LATE", [n.puppet.pid for n in live])
        actions.run(opts, "post-restore", root.puppet.pid)
        actions.run(opts, "pre-resume", root.puppet.pid)
        for n in live:
            if n.core.stop_signo:
                jobctl.stop(n.puppet.pid, n.core.stop_signo, n.core.threads[0].sigmask)
        for p in builder.puppets:
            p.release(stop=opts.leave_stopped)
        for n in live:
            if n.core.stop_signo:
                jobctl.settle(n.puppet.pid)
        lock.unlock()
        if inv.netlock_table:           # what the dump locked by 4-tuple
            lock.unlock_restored(inv.netlock_table)
        actions.run(opts, "post-resume", root.puppet.pid)
        regfile.remove_link_remaps(ctx)
    except BaseException:
        for p in reversed(builder.puppets):
            p.kill()
        ctx.rollback()
        raise
    finally:
        if builder.proxy is not None:
            builder.proxy.stop()
        ctx.close_all()
    log.info("restored %d process(es), root %d", len(nodes), root.puppet.pid)
    return root.puppet.pid


def wait_root(pid: int) -> int:
    """Stay the parent of the restored root (no -d) and pass on its exit status."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


__all__ = ["restore", "wait_root", "RemoteError"]
