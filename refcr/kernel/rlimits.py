"""Resource limits.  Read and set by the task itself through prlimit64(0, ...):
that needs no CAP_SYS_RESOURCE, which root on these machines lacks for other
users' tasks.  Raising a hard limit above what refcr itself has is not
possible without it, and is reported as an error naming the limit."""
from __future__ import annotations

import errno
import resource
import struct

from refcr.errors import RestoreError
from refcr.pb import core_pb2
from refcr.ptrace.tracee import Remote, RemoteError

RLIMIT = struct.Struct("<QQ")
NLIMITS = 16
NAMES = {getattr(resource, n): n for n in dir(resource) if n.startswith("RLIMIT_")}


def dump_rlimits(remote: Remote) -> list[core_pb2.RlimitEntry]:
    """All limits in one batch of calls, each into its own slot."""
    base, = remote.put(bytes(RLIMIT.size * NLIMITS))
    remote.check_batch([("prlimit64", (0, res, 0, base + res * RLIMIT.size)) for res in range(NLIMITS)])
    raw = remote.get(base, RLIMIT.size * NLIMITS)
    return [core_pb2.RlimitEntry(resource=res, cur=cur, max=max_)
            for res, (cur, max_) in enumerate(RLIMIT.iter_unpack(raw))]


def raise_nofile(remote: Remote) -> None:
    """Let the puppet use any fd number up to its hard limit while restoring."""
    remote.check("prlimit64", 0, resource.RLIMIT_NOFILE, 0, remote.scratch)
    _, hard = RLIMIT.unpack(remote.get(remote.scratch, RLIMIT.size))
    addr, = remote.put(RLIMIT.pack(hard, hard))
    remote.check("prlimit64", 0, resource.RLIMIT_NOFILE, addr, 0)


# Set only after the pending signals are queued again (restore_late): the
# kernel checks a queued signal against the *receiver's* RLIMIT_SIGPENDING
# and the count of its user's pending signals, all processes together; the
# dumped ones were within the limit when they were sent, and refcr's own
# limit (the puppet's until then) lets them back in whatever the image says.
LATE = frozenset({resource.RLIMIT_SIGPENDING})


def restore_rlimits(remote: Remote, limits: list[core_pb2.RlimitEntry]) -> None:
    """Every limit but the LATE ones."""
    _restore(remote, [lim for lim in limits if lim.resource not in LATE])


def restore_late(remote: Remote, limits: list[core_pb2.RlimitEntry]) -> None:
    """The LATE limits, once the pending signals are queued."""
    _restore(remote, [lim for lim in limits if lim.resource in LATE])


def _restore(remote: Remote, limits: list[core_pb2.RlimitEntry]) -> None:
    """One batch, stopped at the first limit the kernel refuses."""
    if not limits:
        return
    base, = remote.put(b"".join(RLIMIT.pack(lim.cur, lim.max) for lim in limits))
    calls = [("prlimit64", (0, lim.resource, base + i * RLIMIT.size, 0)) for i, lim in enumerate(limits)]
    got = remote.batch(calls, stop_on_error=True)
    for lim, ret in zip(limits, got, strict=True):
        if ret is None or not -4096 < ret < 0:
            continue
        exc = RemoteError(remote.tid, "prlimit64", -ret)
        if exc.errno == errno.EPERM:
            name = NAMES.get(lim.resource, str(lim.resource))
            raise RestoreError(f"cannot restore {name} hard limit {lim.max}: it is above refcr's own "
                               "and raising it needs CAP_SYS_RESOURCE") from exc
        raise exc
