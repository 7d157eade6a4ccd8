"""CPU state of a thread: general registers, XSAVE state, and an interrupted syscall.

Registers are saved exactly as the freeze found them.  If the thread was
inside a syscall, the kernel left -ERESTART* in rax and the syscall number in
orig_rax; putting those back verbatim makes the kernel restart the call when
the restored thread resumes, as it would have for the original.  The one
case that needs more is -ERESTART_RESTARTBLOCK (a relative sleep): the
kernel resumes it through restart_syscall() and per-task state that a new
task does not have, so the restore re-creates that state (see
arm_sleep_restart).
"""
from __future__ import annotations

import os
import struct
import time

from refcr.errors import RestoreError
from refcr.log import log
from refcr.pb import core_pb2
from refcr.ptrace import native
from refcr.ptrace.syscalls import ERESTART_RESTARTBLOCK, NR, to_signed
from refcr.ptrace.tracee import Remote, wait_stop

CLOCK_MONOTONIC = 1
REG_NAMES = [f.name for f in core_pb2.X86Regs.DESCRIPTOR.fields]


def _timespec_ns(raw: bytes) -> int:
    sec, nsec = struct.unpack("<qq", raw)
    return sec * 1_000_000_000 + nsec


def sleep_restart(remote: Remote, regs: dict[str, int]) -> core_pb2.SleepRestart | None:
    """Describe a relative sleep the freeze interrupted, or None."""
    if to_signed(regs["rax"]) != -ERESTART_RESTARTBLOCK:
        return None
    nr = regs["orig_rax"]
    if nr == NR["nanosleep"]:
        clockid, req, rem = CLOCK_MONOTONIC, regs["rdi"], regs["rsi"]
    elif nr == NR["clock_nanosleep"]:
        clockid, req, rem = regs["rdi"], regs["rdx"], regs["r10"]
    else:
        log.warning("task %d: syscall %d will return EINTR after restore (restart block not restorable)",
                    remote.tid, nr)
        return None
    # With a rem pointer the kernel wrote the time left there when the freeze
    # interrupted the sleep; without one, the whole request is all we know.
    left = _timespec_ns(remote.read(rem if rem else req, 16))
    return core_pb2.SleepRestart(clockid=clockid, remaining_ns=max(left, 0), rem_ptr=rem)


def dump_thread(tid: int, remote: Remote, tc: core_pb2.ThreadCore) -> None:
    regs = native.get_regs(tid)
    tc.regs.CopyFrom(core_pb2.X86Regs(**regs))
    tc.xstate = native.get_xstate(tid)
    restart = sleep_restart(remote, regs)
    if restart:
        tc.sleep_restart.CopyFrom(restart)


def arm_sleep_restart(remote: Remote, restart: core_pb2.SleepRestart) -> None:
    """Give the puppet the kernel restart block of an interrupted relative sleep.

    The puppet starts clock_nanosleep(remaining) itself and is interrupted
    while sleeping: the kernel then records the absolute expiry, the clock and
    the rem pointer in the puppet's restart block, exactly as it had for the
    original task.  The restored registers (rax=-ERESTART_RESTARTBLOCK) then
    send the thread through restart_syscall() into that block.
    """
    tid = remote.tid
    sec, nsec = divmod(restart.remaining_ns, 1_000_000_000)
    req, = remote.put(struct.pack("<qq", sec, nsec))
    saved = native.get_regs(tid)
    regs = dict(saved, rip=remote.code_addr, rax=NR["clock_nanosleep"], orig_rax=(1 << 64) - 1,
                rdi=restart.clockid, rsi=0, rdx=req, r10=restart.rem_ptr)
    native.set_regs(tid, regs)
    for _ in range(20):
        native.cont(tid, 0)
        if _wait_until_sleeping(tid):
            break
        wait_stop(tid)           # a short sleep ended before it was seen: at the int3, start it again
        native.set_regs(tid, regs)
    else:
        raise RestoreError(f"task {tid}: injected sleep ended each time before it could be interrupted")
    native.interrupt(tid)
    wait_stop(tid)
    got = to_signed(native.get_regs(tid)["rax"])
    native.set_regs(tid, saved)
    if got != -ERESTART_RESTARTBLOCK:
        raise RestoreError(f"task {tid}: could not re-arm its interrupted sleep (got {got})")


def _wait_until_sleeping(tid: int, timeout: float = 5.0) -> bool:
    """True once tid sleeps in the injected call; False if it got past it
    (a sleep of a few microseconds, a busy machine): it is then stopped at the int3."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{tid}/syscall") as f:
            if f.read().split()[0] == str(NR["clock_nanosleep"]):
                return True
        with open(f"/proc/{tid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "t":
                return False
        time.sleep(0.001)
    raise RestoreError(f"task {tid}: injected sleep did not start")


def restore_thread(tid: int, tc: core_pb2.ThreadCore) -> None:
    """Last step for a thread: its XSAVE state and registers."""
    try:
        native.set_xstate(tid, tc.xstate)
    except OSError as exc:
        raise RestoreError(f"task {tid}: cannot set FPU/AVX state: {os.strerror(exc.errno)}") from exc
    native.set_regs(tid, {name: getattr(tc.regs, name) for name in REG_NAMES})
