"""Parsers and decisions of the per-task state modules (refcr/kernel/):
/proc/PID/timers, CPU clock ids, which seccomp filters threads share,
sched and oom of a live child read from outside."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from refcr.errors import DumpError, RestoreError
from refcr.kernel import oom, posix_timers, sched, seccomp
from refcr.pb import core_pb2

PROC_TIMERS = """ID: 8
signal: 10/000000005eed0007
notify: signal/pid.100
ClockID: 1
ID: 1
signal: 12/000000005eed0005
notify: signal/tid.101
ClockID: -2
ID: 5
signal: 0/0000000000000000
notify: none/pid.100
ClockID: 7
"""


def test_proc_timers_parsed_and_tids_made_inner():
    blocks = posix_timers.parse_proc_timers(PROC_TIMERS)
    assert [b["ID"] for b in blocks] == ["8", "1", "5"]
    entries = [posix_timers._entry(100, b, {100: 1, 101: 2}) for b in blocks]
    assert [(e.id, e.clockid, e.notify, e.signo, e.tid) for e in entries] == [
        (8, 1, posix_timers.SIGEV_SIGNAL, 10, 0),
        (1, -2, posix_timers.SIGEV_SIGNAL | posix_timers.SIGEV_THREAD_ID, 12, 2),
        (5, 7, posix_timers.SIGEV_NONE, 0, 0)]
    assert entries[0].sigval == 0x5EED0007


def test_proc_timers_notifying_a_stranger_is_refused():
    block = posix_timers.parse_proc_timers(PROC_TIMERS)[1]
    with pytest.raises(DumpError, match="not one of its threads"):
        posix_timers._entry(100, block, {100: 1})


def test_proc_timers_garbage_is_refused():
    with pytest.raises(DumpError, match="cannot parse"):
        posix_timers._entry(1, {"ID": "x", "signal": "", "notify": "", "ClockID": ""}, {})


@pytest.mark.parametrize("clockid, own", [(3, True), (-2, True), (-6, False), (1, False),
                                          (~5 << 3 | 6, False)])
def test_thread_clock_of_the_caller(clockid, own):
    assert posix_timers.own_thread_clock(clockid) is own


def _filters(*progs: bytes) -> list[core_pb2.SeccompFilter]:
    return [core_pb2.SeccompFilter(prog=p) for p in progs]


def test_seccomp_shared_prefix_is_the_least_any_thread_inherits():
    main = core_pb2.ThreadCore(seccomp=core_pb2.SeccompEntry(mode=2, filters=_filters(b"a" * 8, b"b" * 8)))
    t1 = core_pb2.ThreadCore(seccomp=core_pb2.SeccompEntry(mode=2, filters=_filters(b"a" * 8, b"b" * 8),
                                                           inherited=2))
    t2 = core_pb2.ThreadCore(seccomp=core_pb2.SeccompEntry(mode=2, filters=_filters(b"a" * 8, b"c" * 8),
                                                           inherited=1))
    assert seccomp.shared_count([main, t1]) == 2
    assert seccomp.shared_count([main, t1, t2]) == 1
    assert seccomp.shared_count([main]) == 2


def test_seccomp_malformed_filter_is_refused():
    class NoRemote:
        tid = 1
    for prog in (b"", b"x" * 7, b"x" * 8 * 4097):
        with pytest.raises(RestoreError, match="malformed"):
            seccomp._install(NoRemote(), core_pb2.SeccompFilter(prog=prog))


@pytest.fixture
def child():
    # an absolute nice of 3 (root may lower it): the suite may itself run under `nice`
    p = subprocess.Popen([sys.executable, "-c",
                          "import os, time; os.setpriority(os.PRIO_PROCESS, 0, 3); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 30            # the interpreter's start-up on a busy machine
        while os.getpriority(os.PRIO_PROCESS, p.pid) != 3:
            assert time.monotonic() < deadline, "the child did not renice itself"
            time.sleep(0.01)
        yield p.pid
    finally:
        p.kill()
        p.wait()


def test_sched_read_from_outside_and_set_back(child):
    e = sched.dump(child, child)
    assert (e.policy, e.nice) == (os.SCHED_OTHER, 3)
    assert list(e.cpus) == sorted(os.sched_getaffinity(child))
    e.policy, e.nice = os.SCHED_BATCH, 5
    sched.restore(child, child, e)
    assert os.sched_getscheduler(child) == os.SCHED_BATCH
    assert os.getpriority(os.PRIO_PROCESS, child) == 5


def test_oom_score_adj_raised_and_checked(child):
    oom.restore(child, child, 321)
    assert oom.dump(child) == 321
    with pytest.raises(RestoreError, match="out of range"):
        oom.restore(child, child, 5000)
