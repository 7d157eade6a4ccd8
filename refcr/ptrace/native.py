"""Thin Pythonic wrapper over refcr's native core (``refcr._native``).

Only what Python's ``os`` module cannot do lives in C (native/core.c): ptrace,
syscall injection, process_vm_readv/writev, clone3 with set_tid, pidfd_getfd,
pagemap scanning.  This module turns the C convention (a negative -errno on
failure) into ``OSError(errno, strerror, what)`` where *what* names the call
and its target, so a log line says which task and which operation failed.

Build the extension in place with ``python3 native/build_native.py`` (or
install the package, which builds it through setup.py's cffi_modules).
"""
from __future__ import annotations

import array
import errno as _errno
import os
import signal
from typing import Iterable, Sequence

from refcr._native import ffi, lib

__all__ = [
    "seize", "interrupt", "cont", "detach", "set_options", "get_event_msg",
    "wait", "get_regs", "set_regs", "get_xstate", "set_xstate", "xstate_size",
    "get_sigmask", "set_sigmask", "peek_siginfo", "get_rseq_conf",
    "inject_syscall", "vm_read", "vm_read_into", "vm_write", "pidfd_open",
    "pidfd_getfd", "clone3_puppet", "fd_proxy", "scan_pagemap", "get_robust_list",
    "tgkill", "kcmp", "kcmp_file_search", "tee", "setns", "unshare", "openat2", "REGS_FIELDS", "SIGINFO_SIZE",
    "pagemap_scan",
]

# Re-export the constants cffi read from the system headers.
for _name in dir(lib):
    if _name.startswith(("PTRACE_", "CLONE_")):
        globals()[_name] = getattr(lib, _name)
        __all__.append(_name)
del _name

PTRACE_PEEKSIGINFO_SHARED = 1
PTRACE_GET_RSEQ_CONFIGURATION = 0x420F
SIGINFO_SIZE = 128
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_PEEK_BATCH = 32
_PAGEMAP_RUNS = 1 << 16
_U64 = (1 << 64) - 1

REGS_FIELDS: tuple[str, ...] = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
    "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
    "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)


def _check(ret: int, what: str) -> int:
    """Raise OSError for a -errno result, else hand the value back."""
    if ret < 0:
        raise OSError(-ret, os.strerror(-ret), what)
    return ret


# ---- ptrace basics ---------------------------------------------------------

def seize(pid: int, options: int = 0) -> None:
    """PTRACE_SEIZE: attach without stopping, so nothing in the target changes
    until we decide to interrupt it (and PTRACE_INTERRUPT becomes usable)."""
    _check(lib.rc_seize(pid, options), f"ptrace(SEIZE, {pid})")


def interrupt(pid: int) -> None:
    """PTRACE_INTERRUPT: stop a seized task without sending it a signal."""
    _check(lib.rc_interrupt(pid), f"ptrace(INTERRUPT, {pid})")


def cont(pid: int, sig: int = 0) -> None:
    """PTRACE_CONT: resume a stopped tracee, delivering *sig* (0 = none)."""
    _check(lib.rc_cont(pid, sig), f"ptrace(CONT, {pid})")


def detach(pid: int, sig: int = 0) -> None:
    """PTRACE_DETACH: let the task go, optionally with a signal (SIGSTOP to
    leave it stopped)."""
    _check(lib.rc_detach(pid, sig), f"ptrace(DETACH, {pid})")


def set_options(pid: int, options: int) -> None:
    """PTRACE_SETOPTIONS: e.g. PTRACE_O_TRACECLONE before injecting clone3 so
    the new puppet is traced from its first instruction."""
    _check(lib.rc_set_options(pid, options), f"ptrace(SETOPTIONS, {pid})")


def get_event_msg(pid: int) -> int:
    """PTRACE_GETEVENTMSG: the new pid at a PTRACE_EVENT_CLONE/FORK stop, the
    exit status at PTRACE_EVENT_EXIT."""
    msg = ffi.new("unsigned long *")
    _check(lib.rc_get_event_msg(pid, msg), f"ptrace(GETEVENTMSG, {pid})")
    return int(msg[0])


def wait(pid: int) -> int:
    """waitpid(pid, __WALL), retried on EINTR; returns the raw status.

    __WALL because threads (clone children) are traced too, and
    os.waitpid would make every caller remember that flag."""
    status = ffi.new("int *")
    _check(lib.rc_wait(pid, status), f"waitpid({pid})")
    return int(status[0])


# ---- registers -------------------------------------------------------------

def get_regs(pid: int) -> dict[str, int]:
    """General registers (NT_PRSTATUS), as unsigned 64-bit ints by name."""
    regs = ffi.new("struct user_regs_struct *")
    _check(lib.rc_get_regs(pid, regs), f"ptrace(GETREGSET NT_PRSTATUS, {pid})")
    return {name: int(getattr(regs, name)) for name in REGS_FIELDS}


def set_regs(pid: int, regs: dict[str, int]) -> None:
    """Set every general register; values may be signed or unsigned.

    All fields are required: a partial dict would silently zero the rest."""
    missing = [n for n in REGS_FIELDS if n not in regs]
    if missing:
        raise ValueError(f"set_regs({pid}): missing registers {missing}")
    cregs = ffi.new("struct user_regs_struct *")
    for name in REGS_FIELDS:
        setattr(cregs, name, int(regs[name]) & _U64)
    _check(lib.rc_set_regs(pid, cregs), f"ptrace(SETREGSET NT_PRSTATUS, {pid})")


def xstate_size() -> int:
    """Size of the XSAVE area (CPUID 0xD): the buffer GETREGSET needs."""
    return _check(lib.rc_xstate_size(), "cpuid(0xd)")


def get_xstate(pid: int) -> bytes:
    """FPU/SSE/AVX/... state (NT_X86_XSTATE), as many bytes as the kernel gave."""
    size = xstate_size()
    buf = ffi.new("char[]", size)
    n = _check(lib.rc_get_xstate(pid, buf, size), f"ptrace(GETREGSET NT_X86_XSTATE, {pid})")
    return ffi.buffer(buf, n)[:]


def set_xstate(pid: int, data: bytes) -> None:
    """Put back an xstate blob from get_xstate (the kernel wants it whole)."""
    _check(lib.rc_set_xstate(pid, ffi.from_buffer(data), len(data)),
           f"ptrace(SETREGSET NT_X86_XSTATE, {pid})")


# ---- signals, rseq ---------------------------------------------------------

def get_sigmask(pid: int) -> int:
    """Blocked-signal mask (bit n-1 = signal n). ptrace reports the mask the
    task will return to, even while it sits in sigsuspend/ppoll."""
    mask = ffi.new("uint64_t *")
    _check(lib.rc_get_sigmask(pid, mask), f"ptrace(GETSIGMASK, {pid})")
    return int(mask[0])


def set_sigmask(pid: int, mask: int) -> None:
    """Set the blocked-signal mask from outside the task."""
    _check(lib.rc_set_sigmask(pid, mask & _U64), f"ptrace(SETSIGMASK, {pid})")


def peek_siginfo(pid: int, shared: bool) -> list[bytes]:
    """Every queued siginfo (128 raw bytes each), without dequeuing them:
    the thread's private queue, or the process-wide one when *shared*."""
    out: list[bytes] = []
    buf = ffi.new("char[]", SIGINFO_SIZE * _PEEK_BATCH)
    what = f"ptrace(PEEKSIGINFO{' SHARED' if shared else ''}, {pid})"
    while True:
        n = _check(lib.rc_peek_siginfo(pid, int(shared), len(out), _PEEK_BATCH, buf), what)
        raw = ffi.buffer(buf, n * SIGINFO_SIZE)[:]
        out.extend(raw[i * SIGINFO_SIZE:(i + 1) * SIGINFO_SIZE] for i in range(n))
        if n < _PEEK_BATCH:
            return out


def get_rseq_conf(pid: int) -> dict[str, int]:
    """The task's registered rseq area (pointer 0 / size 0 when none): it must
    be re-registered at restore, and glibc registers one per thread."""
    conf = ffi.new("struct rc_rseq_conf *")
    _check(lib.rc_get_rseq_conf(pid, conf), f"ptrace(GET_RSEQ_CONFIGURATION, {pid})")
    return {
        "rseq_abi_pointer": int(conf.rseq_abi_pointer),
        "rseq_abi_size": int(conf.rseq_abi_size),
        "signature": int(conf.signature),
        "flags": int(conf.flags),
    }


# ---- syscall injection -----------------------------------------------------

def inject_syscall(pid: int, nr: int, args: Sequence[int] = (), *, addr: int,
                   patch: bool = True, fault_ok: bool = False) -> int:
    """Run syscall *nr* inside the ptrace-stopped task *pid* and return its raw
    result (e.g. -2 for ENOENT: a failing syscall does not raise).

    This is how refcr reads what only the task can tell (sigactions, timers,
    ...) and drives restore puppets. *addr* must be executable in the task;
    with *patch* the 8 bytes there are saved and "syscall; int3" written over
    them, without it they must already hold that sequence. Registers and the
    patched bytes are put back exactly. *fault_ok* accepts a SIGSEGV/SIGBUS
    right after the syscall (it unmapped its own code page).

    Raises OSError only when the injection itself fails: ESRCH if the task
    died, EIO on an unexpected stop (a signal arrived; the task is left in
    that signal-delivery-stop with its original registers)."""
    if len(args) > 6:
        raise ValueError("a syscall takes at most 6 arguments")
    cargs = ffi.new("unsigned long[6]", [int(a) & _U64 for a in args])
    result = ffi.new("long *")
    stop = ffi.new("int *")
    ret = lib.rc_inject_syscall(pid, nr, cargs, addr, int(patch), int(fault_ok),
                                result, stop)
    if ret < 0:
        what = f"inject syscall {nr} into {pid} at {addr:#x}"
        st = int(stop[0])
        if st and os.WIFSTOPPED(st):
            what += f" (unexpected stop: signal {os.WSTOPSIG(st)}, event {st >> 16})"
        raise OSError(-ret, os.strerror(-ret), what)
    return int(result[0])


def batch_code() -> bytes:
    """The batch blob (native/core.c): put it in an executable area of a task
    and run_batch runs a table of syscalls there in one ptrace round trip."""
    size = lib.rc_batch_code(ffi.NULL, 0)
    buf = ffi.new("unsigned char[]", size)
    lib.rc_batch_code(buf, size)
    return ffi.buffer(buf, size)[:]


def run_batch(pid: int, code: int, table: int, n: int, stop_on_error: bool = False) -> None:
    """Run the blob at *code* over the *n* entries at *table* in the stopped
    task (registers put back); the results are in the table.  OSError as for
    inject_syscall: ESRCH if the task died, EIO on an unexpected stop."""
    stop = ffi.new("int *")
    ret = lib.rc_run_batch(pid, code, table, n, int(stop_on_error), stop)
    if ret < 0:
        what = f"run {n} batched syscalls in {pid} at {code:#x}"
        st = int(stop[0])
        if st and os.WIFSTOPPED(st):
            what += f" (unexpected stop: signal {os.WSTOPSIG(st)}, event {st >> 16})"
        raise OSError(-ret, os.strerror(-ret), what)


# ---- memory ----------------------------------------------------------------

def _ranges(ranges: Iterable[tuple[int, int]]):
    ranges = list(ranges)
    addrs = ffi.new("unsigned long[]", [a for a, _ in ranges] or [0])
    lens = ffi.new("unsigned long[]", [n for _, n in ranges] or [0])
    return addrs, lens, len(ranges), sum(n for _, n in ranges)


def vm_read(pid: int, ranges: Iterable[tuple[int, int]]) -> bytes:
    """process_vm_readv of (addr, len) ranges, concatenated: the fast path for
    dumping pages (IOV_MAX ranges per syscall). Short read -> EFAULT."""
    addrs, lens, n, total = _ranges(ranges)
    buf = ffi.new("char[]", total or 1)
    _vm_io(lib.rc_vm_read, pid, addrs, lens, n, buf, total, "process_vm_readv")
    return ffi.buffer(buf, total)[:]


def vm_read_into(pid: int, ranges: Iterable[tuple[int, int]], out) -> int:
    """vm_read into a caller's writable buffer (bytearray, mmap, memoryview),
    avoiding a copy for large dumps. Returns the number of bytes read."""
    addrs, lens, n, total = _ranges(ranges)
    with ffi.from_buffer(out, require_writable=True) as buf:   # released even on error:
        if len(buf) < total:                                   # the caller may unmap `out`
            raise ValueError(f"buffer of {len(buf)} bytes for {total} bytes of ranges")
        _vm_io(lib.rc_vm_read, pid, addrs, lens, n, buf, total, "process_vm_readv")
    return total


def vm_write(pid: int, ranges: Iterable[tuple[int, int]], data: bytes) -> None:
    """process_vm_writev: *data* is the concatenation of the ranges' contents
    (restoring pages into a puppet)."""
    addrs, lens, n, total = _ranges(ranges)
    if len(data) != total:
        raise ValueError(f"vm_write({pid}): {len(data)} bytes for {total} bytes of ranges")
    _vm_io(lib.rc_vm_write, pid, addrs, lens, n, ffi.from_buffer(data), total,
           "process_vm_writev")


def _vm_io(fn, pid, addrs, lens, n, buf, total, name) -> None:
    if n == 0:
        return
    got = _check(fn(pid, addrs, lens, n, buf), f"{name}({pid}, {n} ranges from {addrs[0]:#x})")
    if got != total:
        raise OSError(_errno.EFAULT, os.strerror(_errno.EFAULT),
                      f"{name}({pid}): {got} of {total} bytes")


PM_ANON, PM_SHARED, PM_EXCLUSIVE = 1, 2, 4     # scan_pagemap modes (RC_PM_* of core.h)


def scan_pagemap(pid: int, start: int, end: int, anon_only: bool = False,
                 shared: bool | None = None) -> list[tuple[int, int]]:
    """Runs (addr, nr_pages) of pages in [start, end) that are present or
    swapped out; with *anon_only*, only anonymous ones (the CoW'd pages of a
    private file mapping). Only those pages need dumping.  shared=True: only
    pages mapped elsewhere too (not PM_MMAP_EXCLUSIVE) or swapped out;
    shared=False: only present pages mapped here alone."""
    mode = (PM_ANON if anon_only else 0) | {None: 0, True: PM_SHARED, False: PM_EXCLUSIVE}[shared]
    if start % PAGE_SIZE or end % PAGE_SIZE:
        raise ValueError(f"scan_pagemap: unaligned range {start:#x}-{end:#x}")
    room = min(_PAGEMAP_RUNS, ((end - start) // PAGE_SIZE + 1) // 2 or 1)   # at most every other page
    runs = ffi.new("unsigned long[]", 2 * room)
    nxt = ffi.new("unsigned long *")
    out: list[tuple[int, int]] = []
    addr = start
    while addr < end:
        n = _check(lib.rc_scan_pagemap(pid, addr, end, mode, runs,
                                       room, nxt),
                   f"/proc/{pid}/pagemap {addr:#x}-{end:#x}")
        for i in range(n):
            a, cnt = int(runs[2 * i]), int(runs[2 * i + 1])
            if out and out[-1][0] + out[-1][1] * PAGE_SIZE == a:
                out[-1] = (out[-1][0], out[-1][1] + cnt)  # split at a batch edge
            else:
                out.append((a, cnt))
        addr = int(nxt[0])
    return out


# ---- processes, fds, namespaces -------------------------------------------

def pidfd_open(pid: int) -> int:
    """A pidfd for *pid* (needed by pidfd_getfd; immune to pid reuse)."""
    return _check(lib.rc_pidfd_open(pid, 0), f"pidfd_open({pid})")


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """Duplicate the target's *fd* into our process (same open file
    description): how refcr inspects a task's files without injecting code."""
    return _check(lib.rc_pidfd_getfd(pidfd, fd, 0), f"pidfd_getfd({pidfd}, {fd})")


def copy_fd(pid: int, fd: int) -> int:
    """A local fd for the very description that *pid*'s *fd* refers to."""
    pidfd = pidfd_open(pid)
    try:
        return pidfd_getfd(pidfd, fd)
    finally:
        os.close(pidfd)


def clone3_puppet(set_tid: Sequence[int], flags: int = 0,
                  exit_signal: int = signal.SIGCHLD) -> int:
    """Fork a restore puppet with raw clone3, at the pids in *set_tid*
    (innermost namespace first; empty = any pid) and *flags* (CLONE_NEWPID,
    ...). Returns the child's pid as seen here.

    The child runs only raw syscalls: pause() forever, until it is taken with
    seize() + interrupt() + wait(). It never stops itself: a group stop would
    outlive refcr's detach. EEXIST: a requested pid is in use."""
    tids = list(set_tid)
    arr = ffi.new("int[]", tids or [0])
    what = f"clone3(set_tid={tids}, flags={flags:#x})"
    return _check(lib.rc_clone3_puppet(arr if tids else ffi.NULL, len(tids),
                                       flags, int(exit_signal)), what)


def fd_proxy(ctl_fd: int) -> int:
    """Fork a process that shares refcr's fd table (CLONE_FILES) and joins the
    user namespace whose fd number refcr sends on *ctl_fd* (a socket; the
    setns result comes back as a native long).  Returns its pid."""
    return _check(lib.rc_fd_proxy(ctl_fd), "clone(CLONE_FILES)")


def get_robust_list(tid: int) -> tuple[int, int]:
    """(head, len) of the thread's robust futex list, to re-register it."""
    head = ffi.new("unsigned long *")
    length = ffi.new("size_t *")
    _check(lib.rc_get_robust_list(tid, head, length), f"get_robust_list({tid})")
    return int(head[0]), int(length[0])


def tgkill(tgid: int, tid: int, sig: int) -> None:
    """Signal one thread (os has no tgkill)."""
    _check(lib.rc_tgkill(tgid, tid, sig), f"tgkill({tgid}, {tid}, {sig})")


KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM = range(7)


def kcmp(pid1: int, pid2: int, type: int, idx1: int = 0, idx2: int = 0) -> int:
    """kcmp(2): whether two tasks share a kernel object (KCMP_FILE: the same
    open file description behind two fds). 0 means the same object."""
    return _check(lib.rc_kcmp(pid1, pid2, type, idx1, idx2),
                  f"kcmp({pid1}, {pid2}, {type}, {idx1}, {idx2})")


def kcmp_file_search(pid: int, fd: int, pids: array.array, fds: array.array) -> tuple[int, bool] | None:
    """Where (pid, fd)'s description is among the descriptions (pids[i], fds[i])
    sorted in kcmp order (two array('i')): (index, True) if it is the one at
    index, (index, False) if it goes before index; None if the kernel gives
    no order.  The search runs in C: 10,000 fds of one file are 130,000 kcmp
    calls, too many for a Python round trip each."""
    r = lib.rc_kcmp_file_search(pid, fd, ffi.from_buffer("int[]", pids), ffi.from_buffer("int[]", fds), len(pids))
    if r == lib.RC_KCMP_UNORDERED:
        return None
    _check(r, f"kcmp({pid}, fd {fd}) against {len(pids)} descriptions")
    return r >> 1, bool(r & 1)


def tee(fd_in: int, fd_out: int, length: int, flags: int = 0) -> int:
    """tee(2): copy up to *length* queued pipe bytes without consuming them,
    so a pipe's contents can be dumped and left in place."""
    return _check(lib.rc_tee(fd_in, fd_out, length, flags), f"tee({fd_in}, {fd_out})")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): Python 3.11's os lacks it."""
    _check(lib.rc_setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def unshare(flags: int) -> None:
    """unshare(2): Python 3.11's os lacks it."""
    _check(lib.rc_unshare(flags), f"unshare({flags:#x})")


def openat2(dirfd: int, path: bytes, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2) (Python 3.11's os lacks it): the new fd.  OSError on failure
    names the path as given."""
    ret = lib.rc_openat2(dirfd, path, flags, mode, resolve)
    if ret < 0:
        raise OSError(-ret, os.strerror(-ret), os.fsdecode(path))
    return ret


# ---- dirty-page tracking ----------------------------------------------------

_SCAN_REGIONS = 1 << 14


def pagemap_scan(pagemap_fd: int, start: int, end: int, *, flags: int = 0, mask: int = 0,
                 inverted: int = 0, anyof: int = 0, return_mask: int = 0,
                 want_regions: bool = True) -> list[tuple[int, int, int]]:
    """PAGEMAP_SCAN over [start, end) of an open /proc/PID/pagemap: the
    matching (start, end, categories) regions, the whole range walked.  With
    want_regions=False the regions are not returned (write-protecting only)."""
    # Always with an output vector: without one the kernel takes a fast path
    # that write-protects every page of the range, whatever the categories.
    regions = ffi.new("uint64_t[]", 3 * _SCAN_REGIONS)
    walk_end = ffi.new("uint64_t *")
    out: list[tuple[int, int, int]] = []
    addr = start
    while addr < end:
        n = _check(lib.rc_pagemap_scan(pagemap_fd, addr, end, flags, mask, inverted, anyof,
                                       return_mask or mask or anyof, regions, _SCAN_REGIONS,
                                       walk_end), f"ioctl(PAGEMAP_SCAN, {addr:#x}-{end:#x})")
        if want_regions:
            out.extend((regions[3 * i], regions[3 * i + 1], regions[3 * i + 2]) for i in range(n))
        if walk_end[0] <= addr:
            break
        addr = walk_end[0]
    return out
