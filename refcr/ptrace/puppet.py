"""Puppets: the processes a restore turns into the dumped ones.

The root puppet is a fork of refcr made with clone3(set_tid) (in new
namespaces when the dumped root had its own); it sits in pause() and never
runs refcr's code again.  refcr seizes it and from then on drives it only
with injected syscalls:

1. it maps a small "restorer area" at an address that is free in refcr's and
   in every dumped layout: one page holding `syscall; int3` (the injection
   point from then on) and a scratch buffer for syscall arguments;
2. it drops everything inherited from refcr: fds, rseq, all memory but the
   restorer area and the kernel's vdso areas.

Every other process is forked from its parent puppet by an injected clone3
with set_tid, while the parent holds nothing but the restorer area, its
special areas and the private areas its children share pages of (mm/cow.py:
the child keeps those of them it had too and unmaps the others), so it starts
as an empty puppet too, in the right session; threads are injected clone3 calls with
CLONE_THREAD.  refcr traces them all with PTRACE_O_EXITKILL: if refcr dies,
so do they.  Last, the restorer area unmaps itself (the int3 after that
munmap faults, which ends the injection), and registers are set.
"""
from __future__ import annotations

import errno
import os
import signal
import struct
from dataclasses import dataclass, field

from refcr.errors import RestoreError
from refcr.kernel import task
from refcr.kernel.rlimits import raise_nofile
from refcr.log import log
from refcr.mm import memory
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import (
    F_DUPFD_CLOEXEC,
    F_SETFD,
    MAP_ANONYMOUS,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    O_CLOEXEC,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)
from refcr.ptrace.tracee import BATCH_AREA, INJECT_MASK, SCRATCH_SIZE, Remote, RemoteError, collect_exit, wait_stop

SYSCALL_INT3 = b"\x0f\x05\xcc"
AREA_SIZE = PAGE_SIZE + SCRATCH_SIZE
TASK_SIZE = 0x7FFFFFFFF000
CLONE_PARENT = 0x00008000
TRACE_OPTIONS = (native.PTRACE_O_EXITKILL | native.PTRACE_O_TRACECLONE | native.PTRACE_O_TRACEFORK
                 | native.PTRACE_O_SUSPEND_SECCOMP)   # restored seccomp filters do not stop refcr
NR_CLONE3 = 435
CLONE_ARGS = struct.Struct("<11Q")     # struct clone_args (CLONE_ARGS_SIZE_VER2)
THREAD_FLAGS = (native.CLONE_VM | native.CLONE_FS | native.CLONE_FILES | native.CLONE_SIGHAND
                | native.CLONE_THREAD | native.CLONE_SYSVSEM)


@dataclass
class Layout:
    """Addresses chosen once for the whole tree."""

    area: int          # restorer area, free in refcr's and every dumped layout
    parking: int       # where vdso areas wait while being moved
    fd_floor: int      # refcr's pidfd lives at or above this fd number in every puppet

    @classmethod
    def choose(cls, dumped: list[tuple[int, int]], max_fd: int) -> "Layout":
        own = [(m.start, m.end) for m in proc.ranges(os.getpid())]
        area = memory.free_area(AREA_SIZE, own, dumped)
        parking = memory.free_area(16 << 20, own, dumped, [(area, area + AREA_SIZE)])
        return cls(area, parking, max(max_fd, 1023) + 1)


@dataclass
class Thread:
    tid: int           # host tid
    remote: Remote


@dataclass
class Puppet:
    pid: int                   # host pid
    vpid: int                  # pid inside the tree's pid namespace
    remote: Remote             # injects through the main thread
    layout: Layout
    pidfd_slot: int = -1       # the puppet's pidfd of refcr (for pidfd_getfd), -1 once closed
    threads: dict[int, Thread] = field(default_factory=dict)   # vtid -> thread, main thread included

    def __post_init__(self) -> None:
        self.threads.setdefault(self.vpid, Thread(self.pid, self.remote))

    # -- creation ----------------------------------------------------------------
    @classmethod
    def create_root(cls, vpid: int, set_tid: list[int], flags: int, layout: Layout,
                    fd_source: int | None = None) -> "Puppet":
        # The puppet inherits this pidfd of refcr: in a new pid namespace it
        # could not open one itself (refcr's pid is not visible there).  In a
        # user namespace of its own, it gets fd_source instead: the pidfd of
        # a process sharing refcr's fd table inside it (kernel/userns.py).
        own_pidfd = os.pidfd_open(os.getpid()) if fd_source is None else os.dup(fd_source)
        try:
            # CLONE_PARENT (RPC rst_sibling): the kernel wants exit_signal 0 and
            # gives the child the one refcr's own parent expects from refcr
            child = native.clone3_puppet(set_tid, flags, 0 if flags & CLONE_PARENT else signal.SIGCHLD)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise RestoreError(f"pid {set_tid[-1]} is in use by another process") from exc
            raise RestoreError(f"cannot create a process with pid {set_tid[-1]}: {exc.strerror}") from exc
        finally:
            os.close(own_pidfd)
        try:
            native.seize(child, TRACE_OPTIONS)
            native.interrupt(child)
            wait_stop(child)
            native.set_sigmask(child, INJECT_MASK)
            puppet = cls._empty(child, vpid, layout, own_pidfd)
        except BaseException:
            kill_and_reap(child)
            raise
        log.info("root puppet %d (pid %d inside) created", child, vpid)
        return puppet

    @classmethod
    def _empty(cls, pid: int, vpid: int, layout: Layout, inherited_pidfd: int) -> "Puppet":
        maps = proc.ranges(pid)
        vdso = next((m for m in maps if m.name == "[vdso]"), None)
        if vdso is None:
            raise RestoreError("no [vdso] in the puppet to inject the first syscalls through")
        boot = Remote(pid, code_addr=vdso.start, patch=True)
        task.unregister_rseq(boot)
        boot.check("mmap", layout.area, AREA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
        boot.write(layout.area, SYSCALL_INT3)
        boot.write(_batch_code(layout), native.batch_code())      # children and threads share it
        boot.close()
        remote = _remote(pid, layout)
        raise_nofile(remote)
        high = remote.check("fcntl", inherited_pidfd, F_DUPFD_CLOEXEC, layout.fd_floor)
        remote.check("close_range", 0, high - 1, 0)
        remote.check("close_range", high + 1, 0xFFFFFFFF, 0)
        keep = [(layout.area, layout.area + AREA_SIZE)] + [
            (m.start, m.end) for m in maps if m.name in memory.SPECIAL_KINDS]
        memory.unmap_all_but(remote, keep, TASK_SIZE)
        return cls(pid, vpid, remote, layout, high)

    def _fork(self, vpid: int, flags: int) -> int:
        """Inject clone3(set_tid=[vpid]) here; returns the new process's host id, stopped."""
        before = set(proc.children(self.pid))
        tid_array, args = self.remote.put(struct.pack("<i", vpid), bytes(CLONE_ARGS.size))
        self.remote.write(args, _clone_args(flags, signal.SIGCHLD, tid_array))
        _check_clone(self.pid, vpid, self.remote.call("clone3", args, CLONE_ARGS.size))
        new = set(proc.children(self.pid)) - before
        if len(new) != 1:
            raise RestoreError(f"cannot find the task created for pid {vpid}")
        host = new.pop()
        wait_stop(host)          # auto-attached (TRACEFORK/TRACECLONE): its first stop
        return host

    def fork_child(self, vpid: int, flags: int = 0) -> "Puppet":
        """A child of this puppet, with pid vpid (it inherits what the parent has
        mapped); flags: what else it shares with the parent (e.g. CLONE_FS)."""
        host = self._fork(vpid, flags)
        child = Puppet(host, vpid, _remote(host, self.layout), self.layout, self.pidfd_slot)
        log.info("puppet %d (pid %d inside) forked from %d", host, vpid, self.pid)
        return child

    def clone_threads(self, vtids: list[int]) -> None:
        """The other threads (self.threads[vtid]), stopped: their clone3 calls
        are one batch (a round trip for 100 threads, not 100).  Each new task
        stops before its first instruction (auto-attached by TRACECLONE), so
        none runs on in the batch code; which is which, NSpid says.  Every
        task made is registered before a failed call is raised: kill() must
        see each thread die, or the leader is never reaped."""
        self.remote.flush()
        before = set(proc.threads(self.pid))
        per_thread = 16 + ((CLONE_ARGS.size + 15) & ~15)     # what put() takes for one
        step = max(1, self.remote.put_room() // per_thread)
        results: list[int | None] = []
        for start in range(0, len(vtids), step):
            chunk = vtids[start:start + step]
            addrs = self.remote.put(*[b for vtid in chunk for b in (struct.pack("<i", vtid), bytes(CLONE_ARGS.size))])
            calls = []
            for tid_array, args in zip(addrs[::2], addrs[1::2], strict=True):
                self.remote.write(args, _clone_args(THREAD_FLAGS, 0, tid_array))
                calls.append(("clone3", (args, CLONE_ARGS.size)))
            results += self.remote.batch(calls, stop_on_error=True)
            if any(r is None or r < 0 for r in results):
                break
        for host in set(proc.threads(self.pid)) - before:
            wait_stop(host)      # its first stop
            self.threads[_inner_id(host)] = Thread(host, _remote(host, self.layout))
        for vtid, ret in zip(vtids, results):
            _check_clone(self.pid, vtid, ret)
        for vtid in vtids:
            if vtid not in self.threads:
                raise RestoreError(f"cannot find the task created for thread {vtid}")

    # -- file descriptors ------------------------------------------------------
    def install_fd(self, local_fd: int, target: int | None = None, cloexec: bool = False) -> int:
        """Give the puppet refcr's local_fd (same open file description).

        With target=None the fd lands on the lowest free number (for a
        short use such as mmap); otherwise on exactly `target`.
        """
        tmp = self.remote.check("pidfd_getfd", self.pidfd_slot, local_fd, 0)
        if target is None:
            return tmp
        if tmp == target:
            self.remote.check("fcntl", tmp, F_SETFD, 1 if cloexec else 0)
        else:
            self.remote.check("dup3", tmp, target, O_CLOEXEC if cloexec else 0)
            self.remote.call("close", tmp)
        return target

    def install_fds(self, fds: list[tuple[int, int, bool]]) -> None:
        """install_fd(local, target, cloexec) for a whole table, in batches.

        pidfd_getfd gives the lowest free fd number, which refcr can follow
        from the puppet's table (listed once): where that is the target, a
        fcntl sets its close-on-exec flag, else dup3 moves it and close
        frees it again.  Every getfd's number is checked after the batch."""
        used = {int(x) for x in os.listdir(proc.path(self.pid, "fd"))}
        low, calls, expect = 0, [], []
        for local, target, cloexec in fds:
            while low in used:
                low += 1
            expect.append((len(calls), low))
            calls.append(("pidfd_getfd", (self.pidfd_slot, local, 0)))
            if low == target:
                calls.append(("fcntl", (target, F_SETFD, 1 if cloexec else 0)))
            else:
                calls.append(("dup3", (low, target, O_CLOEXEC if cloexec else 0)))
                calls.append(("close", (low,)))
            used.add(target)
        got = self.remote.check_batch(calls)
        for i, fd in expect:
            if got[i] != fd:
                raise RestoreError(f"process {self.pid}: pidfd_getfd gave fd {got[i]}, not {fd}")

    def drop_pidfd(self) -> None:
        if self.pidfd_slot >= 0:
            self.remote.call("close", self.pidfd_slot)
            self.pidfd_slot = -1

    # -- the end ------------------------------------------------------------------
    def unmap_restorer(self) -> None:
        """Remove the restorer area; this is the last injected syscall."""
        self.remote.call("munmap", self.layout.area, AREA_SIZE, fault_ok=True)
        self.close_remotes()

    def close_remotes(self) -> None:
        """Done injecting (the restorer area stays: another process of the same
        address space still runs it, CLONE_VM)."""
        for t in self.threads.values():
            t.remote.close()

    def release(self, stop: bool = False) -> None:
        for t in self.threads.values():
            try:
                native.detach(t.tid, signal.SIGSTOP if stop else 0)
            except ProcessLookupError:
                raise RestoreError(f"process {self.vpid}: thread {t.tid} was gone as soon as the process "
                                   "ran (killed by its first instructions: the registers in the images?)") from None

    def kill(self) -> None:
        """SIGKILL the puppet and collect every thread's exit: a traced thread
        group cannot be reaped before its tracer has seen each thread die."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        for t in self.threads.values():
            if t.tid != self.pid:
                collect_exit(t.tid)
        try:
            os.waitpid(self.pid, 0)         # the root puppet is refcr's own child
        except ChildProcessError:
            collect_exit(self.pid)          # the others: their tracer's notice only


def _batch_code(layout: Layout) -> int:
    return layout.area + PAGE_SIZE + SCRATCH_SIZE - BATCH_AREA


def _remote(pid: int, layout: Layout) -> Remote:
    return Remote(pid, code_addr=layout.area, patch=False, scratch=layout.area + PAGE_SIZE,
                  scratch_size=SCRATCH_SIZE, batch_code=_batch_code(layout))


def kill_and_reap(pid: int) -> None:
    """Kill a puppet; reap it if it is refcr's child."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _clone_args(flags: int, exit_signal: int, tid_array: int) -> bytes:
    """struct clone_args for one id (set_tid = tid_array, set_tid_size 1)."""
    return CLONE_ARGS.pack(flags, 0, 0, 0, exit_signal, 0, 0, 0, tid_array, 1, 0)


def _check_clone(pid: int, vtid: int, ret: int | None) -> None:
    """RestoreError unless an injected clone3(set_tid=[vtid]) made vtid."""
    if ret == -errno.EEXIST:
        raise RestoreError(f"pid {vtid} is in use by another process")
    if ret is None or ret < 0:
        raise RemoteError(pid, "clone3", -(ret or 0))
    if ret != vtid:
        raise RestoreError(f"clone3 gave pid {ret} instead of {vtid}")


def _inner_id(host: int) -> int:
    """A task's id in its innermost pid namespace (the last of NSpid)."""
    return int(proc.status(host)["NSpid"].split()[-1])
