"""Puppets: the processes a restore turns into the dumped ones.

A puppet starts as a fork of refcr made with clone3(set_tid) so it has the
dumped pid; it sits in pause() and never runs refcr's code again.  refcr
seizes it and from then on drives it only with injected syscalls:

1. it maps a small "restorer area" at an address free in both the puppet's
   and the dumped layout: one page holding `syscall; int3` (the injection
   point from then on) and a scratch buffer for syscall arguments;
2. it drops everything inherited from refcr: fds, rseq, all memory but the
   restorer area and the kernel's vdso areas;
3. the pipeline modules rebuild the dumped state through it;
4. last, the restorer area unmaps itself (the int3 after that munmap faults,
   which ends the injection), the registers are set, and the puppet is let go.

refcr seizes puppets with PTRACE_O_EXITKILL: if refcr dies, so do they.
"""
from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass

from refcr import memory, native, proc, task
from refcr.errors import RestoreError
from refcr.log import log
from refcr.rlimits import raise_nofile
from refcr.syscalls import (F_DUPFD_CLOEXEC, F_SETFD, MAP_ANONYMOUS,
                            MAP_FIXED_NOREPLACE, MAP_PRIVATE, O_CLOEXEC,
                            PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE)
from refcr.tracee import INJECT_MASK, Remote, wait_stop

SYSCALL_INT3 = b"\x0f\x05\xcc"
SCRATCH_SIZE = 64 * 1024
AREA_SIZE = PAGE_SIZE + SCRATCH_SIZE
TASK_SIZE = 0x7FFFFFFFF000
PTRACE_O_EXITKILL = 0x100000


@dataclass
class Puppet:
    pid: int
    remote: Remote
    area: int                  # restorer area address
    pidfd_slot: int = -1       # the puppet's pidfd of refcr (for pidfd_getfd), -1 once closed

    @classmethod
    def create(cls, pid: int, vmas: list, fd_floor: int) -> "Puppet":
        """Fork a puppet with the given pid and empty it; fds >= fd_floor stay free for refcr's use."""
        try:
            child = native.clone3_puppet([pid])
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise RestoreError(f"pid {pid} is in use by another process") from exc
            raise RestoreError(f"cannot create a process with pid {pid}: {exc.strerror}") from exc
        try:
            native.seize(child, PTRACE_O_EXITKILL)
            native.interrupt(child)
            wait_stop(child)
            native.set_sigmask(child, INJECT_MASK)
            puppet = cls._empty(child, vmas, fd_floor)
        except BaseException:
            kill(child)
            raise
        log.info("puppet %d created", child)
        return puppet

    @classmethod
    def _empty(cls, pid: int, vmas: list, fd_floor: int) -> "Puppet":
        maps = proc.maps(pid)
        vdso = next((m for m in maps if m.name == "[vdso]"), None)
        if vdso is None:
            raise RestoreError("no [vdso] in the puppet to inject the first syscalls through")
        boot = Remote(pid, code_addr=vdso.start, patch=True)
        task.unregister_rseq(boot)
        own = [(m.start, m.end) for m in maps]
        dumped = [(v.start, v.end) for v in vmas]
        area = memory.free_area(AREA_SIZE * 2, own, dumped)
        boot.check("mmap", area, AREA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
        boot.write(area, SYSCALL_INT3)
        boot.close()
        remote = Remote(pid, code_addr=area, patch=False, scratch=area + PAGE_SIZE,
                        scratch_size=SCRATCH_SIZE)
        remote.check("close_range", 0, 0xFFFFFFFF, 0)
        raise_nofile(remote)
        slot = remote.check("pidfd_open", os.getpid(), 0)
        high = remote.check("fcntl", slot, F_DUPFD_CLOEXEC, fd_floor)
        remote.call("close", slot)
        keep = [(area, area + AREA_SIZE)] + [(m.start, m.end) for m in maps if m.name in memory.SPECIAL_KINDS]
        memory.unmap_all_but(remote, keep, TASK_SIZE)
        parking = memory.free_area(4 * 1024 * 1024, own, dumped, [(area, area + AREA_SIZE)])
        memory.move_special_areas(remote, maps, vmas, parking)
        return cls(pid, remote, area, high)

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

    def drop_pidfd(self) -> None:
        if self.pidfd_slot >= 0:
            self.remote.call("close", self.pidfd_slot)
            self.pidfd_slot = -1

    # -- the end ------------------------------------------------------------------
    def unmap_restorer(self) -> None:
        """Remove the restorer area; this is the last injected syscall."""
        self.remote.call("munmap", self.area, AREA_SIZE, fault_ok=True)
        self.remote.close()

    def release(self, stop: bool = False) -> None:
        native.detach(self.pid, signal.SIGSTOP if stop else 0)


def kill(pid: int) -> None:
    """Kill a puppet and reap it (it is refcr's child)."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
