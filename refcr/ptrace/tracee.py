"""Control of traced tasks: freezing, resuming, and running syscalls inside them.

A ``Remote`` is the one way refcr makes a task do something: it runs a single
syscall in the stopped task through the native injector, which puts every
register (and, when it had to patch code, the patched bytes) back exactly.
It also owns a small scratch buffer in the task's memory for syscalls that
take pointers.

Batches: one injected syscall is a ptrace round trip (registers saved and
set, the task run to a stop and back, for a patched call two stops), which
is most of a small process's dump and restore.  Where the task has an
executable area of refcr's (the restore puppet's; the dump's scratch when
the kernel lets it be executable), the top BATCH_AREA bytes of the scratch
hold the batch blob of native/core.c and a table of calls, and
``Remote.batch`` runs a whole list of independent calls in one round trip.
Without one (or with REFCR_KILL_AT, whose mid-syscall kill points are per
call) it runs them one by one: the same results, more round trips.
``Remote.defer`` queues a call whose result nobody reads; the queue runs, in
order and stopped at its first failure (RemoteError), before the next call
or batch, or at ``flush``: the order of syscalls in the task is unchanged.
Buffers put() for a deferred call are kept until the queue has run.
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import struct
from dataclasses import dataclass, field
from typing import Sequence

from refcr import fault
from refcr.errors import NoSuchProcess, ProcessBusy, RefcrError
from refcr.kernel import jobctl
from refcr.log import log
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import MAP_ANONYMOUS, MAP_PRIVATE, NR, PROT_READ, PROT_WRITE

ALL_SIGNALS = (1 << 64) - 1
WALL = 0x40000000                  # __WALL: wait for traced threads too
# Blocked in a task while refcr injects syscalls into it: everything but the
# signals the injection itself raises (int3's SIGTRAP, the SIGSEGV of the
# restorer's last munmap).  The kernel resets the handler of a forced signal
# that is blocked, so those two must stay unblocked to keep their handlers.
INJECT_MASK = ALL_SIGNALS & ~((1 << (signal.SIGTRAP - 1)) | (1 << (signal.SIGSEGV - 1)))
SCRATCH_SIZE = 128 * 1024
# A seized task's seccomp filters (or strict mode) do not apply to the
# syscalls refcr injects; the kernel enforces them again after the detach.
SEIZE_OPTIONS = native.PTRACE_O_SUSPEND_SECCOMP
PATCH_SIZE = 4                     # "syscall; jmp ." (native/core.c)
MAP_FIXED_NOREPLACE = 0x100000
LOW, HIGH = 1 << 32, 0x7FFF_FFFF_F000   # where a scratch area may go (x86_64, 4-level)
PROT_EXEC = 4
# top of the scratch: the blob, then the table of 1,022 calls (10,000 areas: 15 round trips, not 60)
BATCH_AREA = 64 * 1024
BATCH_CODE_ROOM = 128
BATCH_ENTRY = struct.Struct("<Q6Qq")  # nr, args, result
BATCH_MAX = (BATCH_AREA - BATCH_CODE_ROOM) // BATCH_ENTRY.size
NOT_RUN = -(1 << 63)               # the result slot of a call the batch did not reach


class RemoteError(RefcrError):
    """A syscall run inside a task returned an error."""

    def __init__(self, tid: int, call: str, err: int) -> None:
        super().__init__(f"task {tid}: {call} failed: {os.strerror(err)}")
        self.errno = err


def _is_event_stop(status: int) -> bool:
    return os.WIFSTOPPED(status) and (status >> 16) == native.PTRACE_EVENT_STOP


def wait_stop(tid: int) -> int:
    """Wait for the next ptrace-stop of tid; raise NoSuchProcess if it died."""
    status = native.wait(tid)
    if os.WIFEXITED(status) or os.WIFSIGNALED(status):
        raise NoSuchProcess(tid, "task (it exited while being frozen)")
    return status


def seize_thread(tid: int) -> int:
    """PTRACE_SEIZE (seccomp suspended) + PTRACE_INTERRUPT one thread and wait until it is stopped;
    returns the signal of the group stop it is in (kernel/jobctl.py), 0 if none.

    A signal arriving at the same moment shows up as a signal-delivery-stop
    before our interrupt: it is delivered (as it would have been just before
    the freeze) and we wait again for the interrupt's stop.  So is a SIGSTOP
    still queued at the interrupt's stop: it would stop an injected syscall.
    """
    seize_nowait(tid)
    return wait_seized(tid)


def seize_nowait(tid: int) -> None:
    """PTRACE_SEIZE + PTRACE_INTERRUPT without waiting for the stop (a task in a
    frozen cgroup takes it when thawed: kernel/freezer.py); wait_seized() next."""
    try:
        native.seize(tid, SEIZE_OPTIONS)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            raise NoSuchProcess(tid) from exc
        if exc.errno == errno.EPERM:
            tracer = proc.status(tid).get("TracerPid", "0")
            if tracer != "0":
                raise ProcessBusy(f"process {tid} is already traced by process {tracer}") from exc
            raise ProcessBusy(f"process {tid} cannot be traced: {exc.strerror}") from exc
        raise
    native.interrupt(tid)


def wait_seized(tid: int) -> int:
    """Wait for the interrupt's stop of a seized thread (see seize_thread)."""
    while True:
        status = wait_stop(tid)
        if _is_event_stop(status):
            if not jobctl.sigstop_pending(tid, tid):
                return jobctl.group_stop_signal(status)
            log.debug("task %d: a SIGSTOP is queued; letting it stop first", tid)
            native.cont(tid, 0)
            continue
        sig = os.WSTOPSIG(status)
        log.debug("task %d: signal %d arrived while freezing; delivering it first", tid, sig)
        native.cont(tid, sig)


def release(tid: int, stop: bool = False) -> None:
    """Detach from tid: it runs on (or stays group-stopped with stop=True)."""
    try:
        native.detach(tid, signal.SIGSTOP if stop else 0)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


@dataclass
class Remote:
    """Runs syscalls inside one ptrace-stopped task."""

    tid: int
    code_addr: int                 # where `syscall; int3` is (or will be patched in)
    patch: bool                    # True: patch the code in for each call and put it back
    scratch: int = 0               # address of our scratch buffer in the task, 0 = none
    scratch_size: int = 0
    batch_code: int = 0            # the batch blob in the task (top of scratch), 0 = none
    _mem_fd: int = field(default=-1, repr=False)
    _deferred: list[tuple[str, tuple[int, ...]]] = field(default_factory=list, repr=False)
    _put_base: int = field(default=0, repr=False)     # scratch offset put() starts at
    _put_end: int = field(default=0, repr=False)      # end of the last put()

    def __post_init__(self) -> None:
        self._mem_fd = os.open(proc.path(self.tid, "mem"), os.O_RDWR | os.O_CLOEXEC)

    def close(self) -> None:
        if self._deferred:      # a bug: every user flushes; never dropped silently
            log.warning("task %d: %d deferred calls not run: %s", self.tid, len(self._deferred),
                        ", ".join(name for name, _ in self._deferred))
            self._deferred.clear()
        if self._mem_fd >= 0:
            os.close(self._mem_fd)
            self._mem_fd = -1

    # -- syscalls ---------------------------------------------------------
    def call(self, name: str, *args: int, fault_ok: bool = False) -> int:
        """Run one syscall; returns the raw result (negative errno on error)."""
        self.flush()
        if os.environ.get("REFCR_KILL_AT") and self.patch and fault.armed("mid-syscall"):
            self._die_mid_call(NR[name], args)
        ret = native.inject_syscall(self.tid, NR[name], args, addr=self.code_addr,
                                    patch=self.patch, fault_ok=fault_ok)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("task %d: %s%s = %d", self.tid, name, tuple(hex(a) if a > 4096 else a for a in args), ret)
        return ret

    def check(self, name: str, *args: int) -> int:
        """Run one syscall and raise RemoteError if it failed."""
        ret = self.call(name, *args)
        if -4096 < ret < 0:
            raise RemoteError(self.tid, name, -ret)
        return ret

    def batch(self, calls: Sequence[tuple[str, Sequence[int]]], stop_on_error: bool = False) -> list[int | None]:
        """Run independent syscalls (name, args) in order; their raw results.
        With stop_on_error the calls after the first failing one are not run
        (None).  One ptrace round trip per BATCH_MAX calls when the task has
        the blob, else one per call."""
        self.flush()
        return self._batch(calls, stop_on_error)

    def defer(self, name: str, *args: int) -> None:
        """Queue a call whose result is not needed (see the module docstring)."""
        self._deferred.append((name, args))
        self._put_base = self._put_end

    def flush(self) -> None:
        """Run the deferred calls; RemoteError for the first that failed."""
        if not self._deferred:
            return
        calls, self._deferred = self._deferred, []
        self._put_base = self._put_end = 0
        for (name, _), r in zip(calls, self._batch(calls, True), strict=True):
            if r is not None and -4096 < r < 0:
                raise RemoteError(self.tid, name, -r)

    def _batch(self, calls: Sequence[tuple[str, Sequence[int]]], stop_on_error: bool) -> list[int | None]:
        if not self.batch_code or os.environ.get("REFCR_KILL_AT"):
            return self._one_by_one(calls, stop_on_error)
        out: list[int | None] = []
        table = self.batch_code + BATCH_CODE_ROOM
        for start in range(0, len(calls), BATCH_MAX):
            chunk = calls[start:start + BATCH_MAX]
            packed = b"".join(BATCH_ENTRY.pack(NR[name], *[a & ((1 << 64) - 1) for a in args],
                                               *[0] * (6 - len(args)), NOT_RUN) for name, args in chunk)
            self.write(table, packed)
            native.run_batch(self.tid, self.batch_code, table, len(chunk), stop_on_error)
            raw = self.read(table, len(packed))
            got = [BATCH_ENTRY.unpack_from(raw, i * BATCH_ENTRY.size)[7] for i in range(len(chunk))]
            got = [None if r == NOT_RUN else r for r in got]
            out += got
            if log.isEnabledFor(logging.DEBUG):     # the line costs more than the batch (10,000 fds)
                log.debug("task %d: %d calls in one batch: %s", self.tid, len(chunk),
                          " ".join(f"{n}={r}" for (n, _), r in zip(chunk, got, strict=True)))
            if stop_on_error and any(r is not None and -4096 < r < 0 for r in got):
                return out + [None] * (len(calls) - len(out))
        return out

    def check_batch(self, calls: Sequence[tuple[str, Sequence[int]]]) -> list[int]:
        """batch() that stops at and raises RemoteError for the first failing call."""
        out = self.batch(calls, stop_on_error=True)
        self.raise_failed(calls, out)
        return out  # type: ignore[return-value]

    def raise_failed(self, calls: Sequence[tuple[str, Sequence[int]]], results: Sequence[int | None]) -> None:
        """RemoteError for the first of *calls* whose result is an error."""
        for (name, _), r in zip(calls, results, strict=True):
            if r is not None and -4096 < r < 0:
                raise RemoteError(self.tid, name, -r)

    def _one_by_one(self, calls: Sequence[tuple[str, Sequence[int]]], stop_on_error: bool) -> list[int | None]:
        out: list[int | None] = []
        for name, args in calls:
            r = self.call(name, *args)
            out.append(r)
            if stop_on_error and -4096 < r < 0:
                break
        return out + [None] * (len(calls) - len(out))

    def install_batch(self) -> None:
        """Put the batch blob at the top of an executable scratch buffer."""
        self.batch_code = self.scratch + self.scratch_size - BATCH_AREA
        self.write(self.batch_code, native.batch_code())

    _calls = 0

    def _die_mid_call(self, nr: int, args: tuple[int, ...]) -> None:
        """REFCR_KILL_AT=*-mid-syscall: leave the task as the injector does just
        before resuming it (code patched, registers set) and SIGKILL refcr --
        in a thread other than the leader when there is one (dump), else at the 5th call."""
        Remote._calls += 1
        status = proc.status(self.tid)
        alone = status.get("Threads") == "1" or fault.stage == "pre-dump"   # a pre-dump injects into leaders only
        if status.get("Tgid") == str(self.tid) and not (alone and Remote._calls >= 5):
            return
        self.write(self.code_addr, b"\x0f\x05\xeb\xfe")
        regs = native.get_regs(self.tid)
        values = [a & ((1 << 64) - 1) for a in args] + [0] * (6 - len(args))
        regs.update(rip=self.code_addr, rax=nr, orig_rax=(1 << 64) - 1,
                    **dict(zip(("rdi", "rsi", "rdx", "r10", "r8", "r9"), values, strict=True)))
        native.set_regs(self.tid, regs)
        os.kill(os.getpid(), signal.SIGKILL)

    # -- memory -------------------------------------------------------------
    def read(self, addr: int, size: int) -> bytes:
        return os.pread(self._mem_fd, size, addr)

    def write(self, addr: int, data: bytes) -> None:
        done = 0
        while done < len(data):
            done += os.pwrite(self._mem_fd, data[done:], addr + done)

    def alloc_scratch(self, size: int = SCRATCH_SIZE, addr: int = 0, batch: bool = False) -> None:
        """At addr (exactly, never over a mapping) or where the kernel likes.
        With *batch*, executable too and with the batch blob in it when the
        kernel allows (a task with PR_SET_MDWE refuses W+X: no batches)."""
        fixed = MAP_FIXED_NOREPLACE if addr else 0
        flags = MAP_PRIVATE | MAP_ANONYMOUS | fixed
        if batch:
            ret = self.call("mmap", addr, size, PROT_READ | PROT_WRITE | PROT_EXEC, flags, -1, 0)
            if not -4096 < ret < 0:
                self.scratch, self.scratch_size = ret, size
                self.install_batch()
                return
            log.debug("task %d: no executable scratch (%s): one round trip per syscall",
                      self.tid, os.strerror(-ret))
        self.scratch = self.check("mmap", addr, size, PROT_READ | PROT_WRITE, flags, -1, 0)
        self.scratch_size = size

    def free_scratch(self) -> None:
        if self.scratch:
            self.call("munmap", self.scratch, self.scratch_size)
            self.scratch = self.batch_code = 0

    def put(self, *blobs: bytes) -> list[int]:
        """Copy blobs into the scratch buffer; returns their addresses."""
        addrs, off = [], self._put_base
        room = self.scratch_size - (BATCH_AREA if self.batch_code else 0)
        for blob in blobs:
            if off + len(blob) > room:
                raise RefcrError(f"task {self.tid}: scratch buffer too small")
            self.write(self.scratch + off, blob)
            addrs.append(self.scratch + off)
            off = (off + len(blob) + 15) & ~15
        self._put_end = off
        return addrs

    def put_str(self, s: str) -> int:
        return self.put(os.fsencode(s) + b"\0")[0]

    def put_room(self) -> int:
        """How many bytes put() can take in one call."""
        return self.scratch_size - (BATCH_AREA if self.batch_code else 0) - self._put_base

    def get(self, addr: int, size: int) -> bytes:
        return self.read(addr, size)


def far_address(maps: list[proc.Mapping], size: int) -> int:
    """The middle of the largest hole in the address space: where a scratch
    area of refcr's is far from the heap's and the mmap area's growth, so
    refcr's guardian can unmap it by address alone."""
    edges = sorted((max(m.start, LOW), min(m.end, HIGH)) for m in maps if m.end > LOW and m.start < HIGH)
    best, prev = (0, 0), LOW
    for start, end in edges + [(HIGH, HIGH)]:
        if start - prev > best[1] - best[0]:
            best = (prev, start)
        prev = max(prev, end)
    if best[1] - best[0] < size + (2 << 20):
        return 0
    return ((best[0] + best[1]) // 2) & ~0xFFFFF


def collect_exit(tid: int) -> None:
    """After SIGKILL: consume the tracer's notices until tid is dead.  Until
    then a traced zombie is not reported to its parent, and a pid-namespace
    init waiting for its children could not finish dying."""
    try:
        while os.WIFSTOPPED(native.wait(tid)):
            pass
    except OSError:
        pass


def collect_exits(tids: list[int], timeout: float = 10.0) -> None:
    """collect_exit for many tasks at once, without assuming an order: a
    pid-namespace init waits for its children, a group leader for its other
    threads, so whatever notice is ready is taken first."""
    import time
    pending = set(tids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for tid in list(pending):
            try:
                got, status = os.waitpid(tid, os.WNOHANG | WALL)
            except ChildProcessError:
                pending.discard(tid)     # not (or no longer) ours to wait for
                continue
            if got and not os.WIFSTOPPED(status):
                pending.discard(tid)
        if pending:
            time.sleep(0.001)
