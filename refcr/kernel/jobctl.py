"""Job control: a process stopped by SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU.

Dump.  PTRACE_SEIZE + PTRACE_INTERRUPT of a group-stopped thread reports a
PTRACE_EVENT_STOP whose signal is the stop signal (SIGTRAP for a plain
interrupt), so the freeze itself tells which processes are stopped
(ptrace/tracee.py seize_thread).  A SIGSTOP that is queued but not taken yet
(sent just before the freeze, or a group stop still in progress) would stop
the first injected syscall; the freeze lets the thread take it first, so the
process is dumped as stopped, which it would have been a moment later.
Other stop signals stay queued (blocked while refcr injects) and are dumped
as pending signals.  The kernel keeps a group-stopped process stopped when
the tracer detaches (a failed dump or --leave-running leaves it stopped).

Restore.  Just before the puppets are released the process is sent its
stop signal (process-directed, while every thread is still in a ptrace
stop): the first thread to leave its stop takes it and the whole group
stops, before any of its code runs.  The parent gets SIGCHLD (CLD_STOPPED)
and can wait for the stop with WUNTRACED, as after the original stop
(a parent that had already waited for it sees it once more).  A SIGTSTP/
SIGTTIN/SIGTTOU that every thread now blocks, or that the kernel would
discard (the process group became orphaned since), is replaced by SIGSTOP;
refcr waits until the process shows 'T' before it returns.

Cost: one read of /proc/PID/task/TID/status per thread at the freeze.
"""
from __future__ import annotations

import os
import signal
import time

from refcr.errors import RestoreError
from refcr.log import log
from refcr.ptrace import proc

STOP_SIGNALS = (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
SIGSTOP_BIT = 1 << (signal.SIGSTOP - 1)
SETTLE_S = 2.0


def group_stop_signal(status: int) -> int:
    """The stop signal of a seized thread's PTRACE_EVENT_STOP, 0 if not stopped."""
    sig = os.WSTOPSIG(status)
    return sig if sig in STOP_SIGNALS else 0


def sigstop_pending(pid: int, tid: int) -> bool:
    """A SIGSTOP queued to the thread or its process and not taken yet."""
    st = proc.path(pid, "task", str(tid), "status")
    with open(st) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    pending = int(fields.get("SigPnd", "0"), 16) | int(fields.get("ShdPnd", "0"), 16)
    return bool(pending & SIGSTOP_BIT)


def check_image(signo: int, pid: int) -> None:
    if signo and signo not in STOP_SIGNALS:
        raise RestoreError(f"core-{pid}.img: {signo} is not a stop signal")


def stop(host_pid: int, signo: int, blocked: int) -> None:
    """Queue the stop signal to a puppet whose threads are all still traced."""
    if signo != signal.SIGSTOP and blocked & (1 << (signo - 1)):
        signo = signal.SIGSTOP
    os.kill(host_pid, signo)


def settle(host_pid: int) -> None:
    """Wait until the released process is stopped; SIGSTOP if the first signal was discarded."""
    deadline = time.monotonic() + SETTLE_S
    sent = False
    while proc.stat(host_pid).state != "T":
        if time.monotonic() > deadline:
            if sent:
                raise RestoreError(f"process {host_pid} does not stop again")
            log.warning("process %d: its stop signal was discarded (orphaned process group?); "
                        "stopped with SIGSTOP", host_pid)
            os.kill(host_pid, signal.SIGSTOP)
            sent, deadline = True, time.monotonic() + SETTLE_S
        time.sleep(0.001)
