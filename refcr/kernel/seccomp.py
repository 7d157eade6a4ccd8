"""seccomp(2) of a thread: strict mode, or a chain of classic BPF filters.

Dump: /proc/PID/task/TID/status says the mode; the filters are read with
PTRACE_SECCOMP_GET_FILTER (index 0 is the oldest) and
their flags with PTRACE_SECCOMP_GET_METADATA (only SECCOMP_FILTER_FLAG_LOG
is shown by the kernel).  A thread's oldest filters that are identical to
the main thread's are recorded as shared with it (``inherited``).

refcr's own injected syscalls must pass any filter (a filter may kill, trap
or fail exactly the mmap or prctl refcr injects; strict mode allows nothing
but read/write/exit/sigreturn): every task refcr seizes, at dump and at
restore, is traced with PTRACE_O_SUSPEND_SECCOMP (refcr/ptrace), and the
kernel puts the filters back in force when refcr detaches.

Restore: the filters every thread shares with the main thread are installed
in the main thread before the other threads are created, so they inherit the
very same filter objects (as after TSYNC or a filter set before
pthread_create: a later TSYNC by the program still finds them compatible);
each thread's own filters come after, in its own thread, before its
credentials are restored (installing a filter needs CAP_SYS_ADMIN or
no_new_privs; the puppet still has refcr's capabilities then).  Strict mode
is entered by the thread's last injected prctl.

Not kept: sharing of filter objects between processes (a child's inherited
filters come back as copies: same behaviour, different objects); the flags
the kernel does not report (NEW_LISTENER: a listener fd is refused as an
fd, SPEC_ALLOW, WAIT_KILLABLE_RECV).
"""
from __future__ import annotations

import ctypes
import os
import struct

from refcr.errors import DumpError, RestoreError
from refcr.pb import core_pb2
from refcr.ptrace import proc
from refcr.ptrace.tracee import Remote

PTRACE_SECCOMP_GET_FILTER = 0x420C
PTRACE_SECCOMP_GET_METADATA = 0x420D
SECCOMP_MODE_STRICT, SECCOMP_MODE_FILTER = 1, 2
SECCOMP_SET_MODE_FILTER = 1
PR_SET_SECCOMP = 22
BPF_INSN = 8
_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_libc.ptrace.restype = ctypes.c_long


def _ptrace(req: int, tid: int, addr: int, data) -> int:
    ret = _libc.ptrace(req, tid, addr, data)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def mode(pid: int, tid: int) -> int:
    status = proc.path(pid, "task", str(tid), "status")
    with open(status) as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    return 0


def _filter(tid: int, index: int) -> core_pb2.SeccompFilter | None:
    try:
        count = _ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, None)
    except OSError as exc:
        if exc.errno == 2:          # ENOENT: no filter at this index
            return None
        raise
    buf = ctypes.create_string_buffer(count * BPF_INSN)
    _ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, buf)
    meta = ctypes.create_string_buffer(struct.pack("<QQ", index, 0))
    _ptrace(PTRACE_SECCOMP_GET_METADATA, tid, 16, meta)
    return core_pb2.SeccompFilter(prog=buf.raw[:count * BPF_INSN], flags=struct.unpack_from("<QQ", meta.raw)[1])


def dump(pid: int, tid: int, main: core_pb2.SeccompEntry | None) -> core_pb2.SeccompEntry:
    """main: the main thread's entry (None for the main thread itself)."""
    e = core_pb2.SeccompEntry(mode=mode(pid, tid))
    if e.mode != SECCOMP_MODE_FILTER:
        return e
    try:
        while (f := _filter(tid, len(e.filters))) is not None:
            e.filters.append(f)
    except OSError as exc:
        raise DumpError(f"process {pid}: cannot read the seccomp filters of thread {tid}: {exc.strerror}") from exc
    if main is not None:
        while (e.inherited < min(len(e.filters), len(main.filters))
               and e.filters[e.inherited] == main.filters[e.inherited]):
            e.inherited += 1
    return e


def _install(remote: Remote, f: core_pb2.SeccompFilter) -> None:
    if not f.prog or len(f.prog) % BPF_INSN or len(f.prog) // BPF_INSN > 4096:
        raise RestoreError(f"task {remote.tid}: a seccomp filter in the image is malformed")
    fprog, prog = remote.put(bytes(16), f.prog)
    remote.write(fprog, struct.pack("<HxxxxxxQ", len(f.prog) // BPF_INSN, prog))
    remote.check("seccomp", SECCOMP_SET_MODE_FILTER, f.flags, fprog)


def shared_count(threads: list[core_pb2.ThreadCore]) -> int:
    """How many of the main thread's oldest filters every thread inherits."""
    main = threads[0].seccomp
    return min([len(main.filters)] + [t.seccomp.inherited for t in threads[1:]])


def restore_shared(remote: Remote, threads: list[core_pb2.ThreadCore]) -> None:
    """In the main thread, before the other threads are created."""
    for f in threads[0].seccomp.filters[:shared_count(threads)]:
        _install(remote, f)


def restore_thread(remote: Remote, e: core_pb2.SeccompEntry, skip: int) -> None:
    """The thread's own filters (after the `skip` it inherited), before its creds."""
    for f in e.filters[skip:]:
        _install(remote, f)


def restore_strict(remote: Remote, e: core_pb2.SeccompEntry) -> None:
    """The thread's last injected call that may fail in strict mode."""
    if e.mode == SECCOMP_MODE_STRICT:
        remote.check("prctl", PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0)
