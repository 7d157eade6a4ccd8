"""Batched injected syscalls (refcr.ptrace.tracee: Remote.batch, defer) in a
real traced child: the same results as one call per round trip, the
registers untouched, a stop at the first failure, tables longer than one
round trip, and deferred calls run in order with their buffers intact.
Needs root (ptrace)."""
from __future__ import annotations

import errno
import os
import signal
import time

import pytest

from refcr.ptrace import native
from refcr.ptrace.tracee import BATCH_MAX, Remote, RemoteError, seize_thread

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ptrace)")
PR_SET_NAME = 15


def _child() -> int:
    pid = os.fork()
    if pid == 0:
        try:
            while True:
                time.sleep(1)
        finally:
            os._exit(1)
    return pid


def _code_addr(pid: int) -> int:
    """Start of the first executable mapping: a place to patch."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if line.split()[1] == "r-xp":
                return int(line.split("-")[0], 16)
    raise AssertionError("no executable mapping")


@pytest.fixture
def remote():
    pid = _child()
    seize_thread(pid)
    r = Remote(pid, code_addr=_code_addr(pid), patch=True)
    r.alloc_scratch(batch=True)
    try:
        yield r
    finally:
        r.close()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_batch_equals_one_by_one_and_leaves_registers(remote):
    assert remote.batch_code, "the scratch of a plain child is executable: the blob must be there"
    calls = [("getpid", ()), ("close", (12345,)), ("getppid", ()), ("umask", (0o27,)), ("umask", (0o27,))]
    with open(f"/proc/{remote.tid}/status") as f:
        old_umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    assert old_umask != 0o27
    regs = native.get_regs(remote.tid)
    got = remote.batch(calls)
    assert native.get_regs(remote.tid) == regs
    code, remote.batch_code = remote.batch_code, 0          # the fallback: a round trip per call
    try:
        want = remote.batch(calls)
    finally:
        remote.batch_code = code
    assert got[0] == want[0] == remote.tid
    assert got[1] == want[1] == -errno.EBADF
    assert got[2] == want[2] == os.getpid()
    assert got[3] == old_umask and got[4] == want[3] == want[4] == 0o27   # umask returns the previous one


def test_stop_on_error_runs_nothing_after_the_failure(remote):
    fd = remote.check("dup", 0)
    got = remote.batch([("getpid", ()), ("close", (12345,)), ("close", (fd,))], stop_on_error=True)
    assert got == [remote.tid, -errno.EBADF, None]
    assert remote.call("close", fd) == 0        # still open: the batch stopped before it
    with pytest.raises(RemoteError) as exc:
        remote.check_batch([("getpid", ()), ("close", (12345,))])
    assert exc.value.errno == errno.EBADF


def test_more_calls_than_one_table(remote):
    n = 2 * BATCH_MAX + 7
    assert remote.batch([("getpid", ())] * n) == [remote.tid] * n


def test_deferred_calls_run_in_order_before_the_next_call(remote):
    remote.defer("prctl", PR_SET_NAME, remote.put_str("alpha"), 0, 0, 0)
    later = remote.put_str("omega")       # must not land on alpha's buffer
    assert _comm(remote.tid) != "alpha"   # not run yet
    assert remote.call("getpid") == remote.tid
    assert _comm(remote.tid) == "alpha"
    remote.check("prctl", PR_SET_NAME, later, 0, 0, 0)
    assert _comm(remote.tid) == "omega"


def test_a_failing_deferred_call_raises_at_the_flush(remote):
    remote.defer("close", 12345)
    remote.defer("prctl", PR_SET_NAME, remote.put_str("never"), 0, 0, 0)
    with pytest.raises(RemoteError) as exc:
        remote.call("getpid")
    assert exc.value.errno == errno.EBADF
    assert _comm(remote.tid) != "never"   # stopped at the failure
