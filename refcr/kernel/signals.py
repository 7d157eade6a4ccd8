"""Signals: dispositions, blocked masks, queued signals and alternate stacks.

Dispositions and sigaltstack can only be read by the task itself, so they
are read with injected rt_sigaction/sigaltstack; masks and queues are read
from outside with ptrace.  On restore, queued signals are re-sent by the
puppet to itself (rt_sigqueueinfo accepts any siginfo when a task signals
itself), in their original order, while every signal is still blocked.
"""
from __future__ import annotations

import errno
import signal
import struct

from refcr.errors import RestoreError
from refcr.pb import core_pb2
from refcr.ptrace import native
from refcr.ptrace.tracee import Remote

SIGACTION = struct.Struct("<QQQQ")     # kernel struct sigaction: handler, flags, restorer, mask
STACK_T = struct.Struct("<QIIQ")       # stack_t: ss_sp, ss_flags (as bits), (pad), ss_size
SS_DISABLE = 2
SS_AUTODISARM = 1 << 31     # disarm while a handler runs on the stack (a mode, kept)
NSIG = 64
SIGINFO_SIZE = 128                 # a siginfo_t as the kernel copies it
UNCATCHABLE = (signal.SIGKILL, signal.SIGSTOP)


def catchable() -> list[int]:
    return [s for s in range(1, NSIG + 1) if s not in UNCATCHABLE]


# ---- dispositions (per process) -------------------------------------------

def dump_sigactions(remote: Remote) -> list[core_pb2.SigactionEntry]:
    """All 62 in one batch (one ptrace round trip), each into its own slot."""
    sigs = catchable()
    slots = remote.put(bytes(SIGACTION.size * len(sigs)))[0]
    remote.check_batch([("rt_sigaction", (sig, 0, slots + i * SIGACTION.size, 8)) for i, sig in enumerate(sigs)])
    raw = remote.get(slots, SIGACTION.size * len(sigs))
    out = []
    for i, sig in enumerate(sigs):
        handler, flags, restorer, mask = SIGACTION.unpack_from(raw, i * SIGACTION.size)
        out.append(core_pb2.SigactionEntry(sig=sig, handler=handler, flags=flags,
                                           restorer=restorer, mask=mask))
    return out


def restore_sigactions(remote: Remote, entries: list[core_pb2.SigactionEntry]) -> None:
    """Set every disposition, defaults included: the puppet inherited refcr's.
    One batch; the structs go to the scratch in one write."""
    given = {e.sig: e for e in entries}
    sigs = catchable()
    packed = b"".join(SIGACTION.pack(e.handler, e.flags, e.restorer, e.mask)
                      for e in (given.get(sig, core_pb2.SigactionEntry(sig=sig)) for sig in sigs))
    base, = remote.put(packed)
    remote.check_batch([("rt_sigaction", (sig, base + i * SIGACTION.size, 0, 8)) for i, sig in enumerate(sigs)])


# ---- per thread ----------------------------------------------------------------

def sigaltstack_call(addr: int) -> tuple[str, tuple[int, int]]:
    """The injected call that writes the thread's stack_t at addr (for a batch)."""
    return ("sigaltstack", (0, addr))


def dump_sigaltstack(remote: Remote, done_at: int | None = None) -> core_pb2.SigaltstackEntry:
    """The thread's sigaltstack; *done_at*: where a batch of the caller's has
    already run sigaltstack_call (one round trip fewer per thread)."""
    if done_at is None:
        done_at = remote.scratch
        remote.check(*sigaltstack_call(done_at))
    sp, flags, _, size = STACK_T.unpack(remote.get(done_at, STACK_T.size))
    # SS_ONSTACK only says the thread is on the stack right now: not settable
    return core_pb2.SigaltstackEntry(sp=sp, flags=flags & (SS_DISABLE | SS_AUTODISARM), size=size)


def restore_sigaltstack(remote: Remote, sas: core_pb2.SigaltstackEntry) -> None:
    if sas.flags & SS_DISABLE or not sas.size:
        addr, = remote.put(STACK_T.pack(0, SS_DISABLE, 0, 0))
    else:
        addr, = remote.put(STACK_T.pack(sas.sp, sas.flags & SS_AUTODISARM, 0, sas.size))
    remote.defer("sigaltstack", addr, 0)


def dump_thread(tid: int, remote: Remote, tc: core_pb2.ThreadCore, blocked: int,
                sigaltstack_at: int | None = None) -> None:
    """`blocked` is the mask saved before refcr blocked everything for injection;
    `sigaltstack_at` as dump_sigaltstack's done_at."""
    tc.sigmask = blocked
    tc.pending.extend(native.peek_siginfo(tid, shared=False))
    tc.sigaltstack.CopyFrom(dump_sigaltstack(remote, sigaltstack_at))


def dump_shared_pending(tid: int) -> list[bytes]:
    return native.peek_siginfo(tid, shared=True)


def _signo(siginfo: bytes) -> int:
    return struct.unpack_from("<i", siginfo, 0)[0]


def requeue(remote: Remote, tgid: int, tid: int, shared: list[bytes], private: list[bytes]) -> None:
    """Queue the dumped signals again (ids as seen inside the puppet's pid
    namespace), in order, as many per round trip as the scratch holds; all
    signals are blocked in the puppet.  A queued signal counts against its
    user's RLIMIT_SIGPENDING, which every process of that user shares: EAGAIN
    is named as that limit, not as a failed call."""
    calls = ([("rt_sigqueueinfo", (tgid, _signo(info)), info) for info in shared]
             + [("rt_tgsigqueueinfo", (tgid, tid, _signo(info)), info) for info in private])
    per_batch = max(1, remote.put_room() // SIGINFO_SIZE)
    for start in range(0, len(calls), per_batch):
        chunk = calls[start:start + per_batch]
        addrs = remote.put(*(info for _, _, info in chunk))
        batch = [(name, (*args, addr)) for (name, args, _), addr in zip(chunk, addrs, strict=True)]
        got = remote.batch(batch, stop_on_error=True)
        for i, r in enumerate(got):
            if r == -errno.EAGAIN:
                raise RestoreError(f"task {remote.tid}: pending signal {_signo(chunk[i][2])} cannot be queued again: "
                                   f"its user's pending signals are at RLIMIT_SIGPENDING "
                                   f"({start + i} of {len(calls)} queued)")
        remote.raise_failed(batch, got)
