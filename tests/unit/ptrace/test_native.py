"""Tests of refcr.ptrace.native against real child processes.

Each test forks a pure-Python child (or runs ``sleep``), puts it in a
ptrace-stop and checks one native call, including that syscall injection
leaves registers and memory exactly as they were. Needs root (ptrace,
clone3 set_tid) and the extension built in place (native/build_native.py).
"""
from __future__ import annotations

import errno
import mmap
import os
import signal
import subprocess
import tempfile
import time

import pytest

from refcr.ptrace import native

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ptrace, clone3 set_tid)")

PAGE = native.PAGE_SIZE
NR_getpid, NR_mmap, NR_munmap, NR_close, NR_open = 39, 9, 11, 3, 2
PROT_RWX = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
MAP_PRIVATE_ANON = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _is_event_stop(status: int) -> bool:
    return os.WIFSTOPPED(status) and status >> 16 == native.PTRACE_EVENT_STOP


def seize_stop(pid: int) -> int:
    """Seize pid and bring it into a PTRACE_EVENT_STOP; returns that status."""
    native.seize(pid)
    native.interrupt(pid)
    while True:
        st = native.wait(pid)
        if _is_event_stop(st):
            return st
        assert os.WIFSTOPPED(st), hex(st)
        native.cont(pid, 0)  # e.g. the child's own SIGSTOP: swallow it


def fork_child(setup=None) -> int:
    """Fork a Python child that runs setup(), stops itself, then sleeps."""
    pid = os.fork()
    if pid == 0:
        try:
            if setup:
                setup()
            os.kill(os.getpid(), signal.SIGSTOP)
            while True:
                time.sleep(1)
        finally:
            os._exit(1)
    _, st = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(st)
    return pid


@pytest.fixture
def child():
    pid = fork_child()
    seize_stop(pid)
    yield pid
    _reap(pid)


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "100"])
    try:
        wait_in_syscall(proc.pid, 230)  # exec done, sleeping in clock_nanosleep
        seize_stop(proc.pid)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def wait_in_syscall(pid: int, nr: int) -> None:
    for _ in range(500):
        with open(f"/proc/{pid}/syscall") as f:
            if f.read().split()[0] == str(nr):
                return
        time.sleep(0.01)
    pytest.fail(f"{pid} never reached syscall {nr}")


def code_addr(pid: int) -> int:
    """Start of the first executable mapping: a place to patch."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if line.split()[1] == "r-xp":
                return int(line.split("-")[0], 16)
    raise AssertionError("no executable mapping")


def mapping_of(pid: int, addr: int) -> str | None:
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return line
    return None


# ---- ptrace basics, registers --------------------------------------------

def test_seize_interrupt_regs_roundtrip(sleeper):
    regs = native.get_regs(sleeper)
    assert set(regs) == set(native.REGS_FIELDS)
    assert all(0 <= v < 1 << 64 for v in regs.values())
    assert regs["orig_rax"] == 230  # clock_nanosleep, interrupted
    changed = dict(regs, r12=-1, r13=0x1122334455667788)
    native.set_regs(sleeper, changed)
    got = native.get_regs(sleeper)
    assert got["r12"] == (1 << 64) - 1 and got["r13"] == 0x1122334455667788
    native.set_regs(sleeper, regs)
    assert native.get_regs(sleeper) == regs


def test_set_regs_needs_every_field(sleeper):
    with pytest.raises(ValueError):
        native.set_regs(sleeper, {"rip": 0})


def test_errors_are_oserror_with_errno():
    proc = subprocess.Popen(["sleep", "100"])
    try:
        with pytest.raises(OSError) as exc:
            native.get_regs(proc.pid)  # not traced by us
        assert exc.value.errno == errno.ESRCH
        assert str(proc.pid) in str(exc.value)
    finally:
        proc.kill()
        proc.wait()


def test_xstate_roundtrip(child):
    size = native.xstate_size()
    assert size >= 576  # legacy area + XSAVE header
    xs = native.get_xstate(child)
    assert 576 <= len(xs) <= size
    native.set_xstate(child, xs)
    assert native.get_xstate(child) == xs


def test_detach_resumes_and_cont(sleeper):
    native.cont(sleeper, 0)
    native.interrupt(sleeper)
    assert _is_event_stop(native.wait(sleeper))
    native.detach(sleeper)
    time.sleep(0.05)
    with open(f"/proc/{sleeper}/status") as f:
        assert "TracerPid:\t0\n" in f.read()


# ---- signals, rseq, robust list ------------------------------------------

def _block_usr():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})


def test_sigmask_and_peek_siginfo():
    pid = fork_child(_block_usr)
    try:
        native.tgkill(pid, pid, signal.SIGUSR1)   # private queue
        os.kill(pid, signal.SIGUSR2)              # shared queue
        for _ in range(40):                       # rt signals queue, one each
            os.kill(pid, signal.SIGRTMIN)
        seize_stop(pid)
        mask = native.get_sigmask(pid)
        bit = lambda s: 1 << (s - 1)  # noqa: E731
        assert mask & bit(signal.SIGUSR1) and mask & bit(signal.SIGUSR2)
        private = native.peek_siginfo(pid, False)
        shared = native.peek_siginfo(pid, True)
        signo = lambda raw: int.from_bytes(raw[:4], "little")  # noqa: E731
        assert [signo(s) for s in private] == [signal.SIGUSR1]
        assert all(len(s) == native.SIGINFO_SIZE for s in private + shared)
        assert [signo(s) for s in shared] == [signal.SIGUSR2] + [signal.SIGRTMIN] * 40
        native.set_sigmask(pid, mask | bit(signal.SIGHUP))
        assert native.get_sigmask(pid) == mask | bit(signal.SIGHUP)
    finally:
        _reap(pid)


def test_rseq_conf_and_robust_list(child):
    conf = native.get_rseq_conf(child)
    assert set(conf) == {"rseq_abi_pointer", "rseq_abi_size", "signature", "flags"}
    # glibc >= 2.35 registers rseq for every thread, with this signature
    assert conf["rseq_abi_pointer"] and conf["rseq_abi_size"] >= 20
    assert conf["signature"] == 0x53053053
    head, length = native.get_robust_list(child)
    assert head and length == 24  # glibc registers the main thread's list


# ---- syscall injection ----------------------------------------------------

def test_inject_getpid_leaves_no_trace(child):
    addr = code_addr(child)
    regs = native.get_regs(child)
    before = native.vm_read(child, [(addr, 16)])
    assert native.inject_syscall(child, NR_getpid, addr=addr) == child
    assert native.get_regs(child) == regs
    assert native.vm_read(child, [(addr, 16)]) == before


def test_inject_returns_negative_errno_without_raising(child):
    addr = code_addr(child)
    assert native.inject_syscall(child, NR_close, [12345], addr=addr) == -errno.EBADF
    assert native.inject_syscall(child, NR_open, [0], addr=addr) == -errno.EFAULT


def test_inject_mmap_then_vm_write_read(child):
    addr = code_addr(child)
    size = 4 * PAGE
    area = native.inject_syscall(child, NR_mmap, [0, size, 3, MAP_PRIVATE_ANON, -1, 0], addr=addr)
    assert 0 < area < 1 << 47, hex(area)
    data = os.urandom(size)
    native.vm_write(child, [(area, PAGE), (area + PAGE, 3 * PAGE)], data)
    assert native.vm_read(child, [(area, size)]) == data
    # many ranges (more than IOV_MAX) in one call, split and reassembled
    ranges = [(area + i * 4, 4) for i in range(size // 4)]
    assert native.vm_read(child, ranges) == data
    buf = bytearray(size)
    assert native.vm_read_into(child, [(area, size)], buf) == size and bytes(buf) == data
    assert native.inject_syscall(child, NR_munmap, [area, size], addr=addr) == 0
    with pytest.raises(OSError) as exc:
        native.vm_read(child, [(area, PAGE)])
    assert exc.value.errno == errno.EFAULT


def test_inject_without_patch_and_fault_ok(child):
    addr = code_addr(child)
    page = native.inject_syscall(child, NR_mmap, [0, PAGE, PROT_RWX, MAP_PRIVATE_ANON, -1, 0],
                                 addr=addr)
    native.vm_write(child, [(page, 3)], b"\x0f\x05\xcc")
    assert native.inject_syscall(child, NR_getpid, addr=page, patch=False) == child
    regs = native.get_regs(child)
    # the call unmaps the page it runs from: SIGSEGV fetching the int3
    assert native.inject_syscall(child, NR_munmap, [page, PAGE], addr=page, patch=False,
                                 fault_ok=True) == 0
    assert mapping_of(child, page) is None
    assert native.get_regs(child) == regs
    assert native.inject_syscall(child, NR_getpid, addr=addr) == child


def test_inject_fault_without_fault_ok_is_eio(child):
    addr = code_addr(child)
    page = native.inject_syscall(child, NR_mmap, [0, PAGE, PROT_RWX, MAP_PRIVATE_ANON, -1, 0],
                                 addr=addr)
    regs = native.get_regs(child)
    with pytest.raises(OSError) as exc:
        native.inject_syscall(child, NR_munmap, [page, PAGE], addr=page)
    # the call returns (syscall-exit-stop, before the jmp); putting the patch back on the
    # unmapped page fails: EIO, and the task is left with its registers
    assert exc.value.errno == errno.EIO and f"inject syscall {NR_munmap}" in str(exc.value)
    assert native.get_regs(child) == regs
    assert native.inject_syscall(child, NR_getpid, addr=addr) == child


def test_inject_keeps_interrupted_syscall_restartable():
    """A task stopped inside nanosleep finishes its sleep after injection."""
    pid = os.fork()
    if pid == 0:
        time.sleep(0.6)
        os._exit(7)
    try:
        wait_in_syscall(pid, 230)
        seize_stop(pid)
        regs = native.get_regs(pid)
        assert regs["orig_rax"] == 230  # in clock_nanosleep
        assert native.inject_syscall(pid, NR_getpid, addr=code_addr(pid)) == pid
        started = time.monotonic()
        native.detach(pid)
        _, st = os.waitpid(pid, 0)
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 7
        assert time.monotonic() - started > 0.2  # it slept the rest
    finally:
        _reap(pid)


def test_inject_into_dead_task_is_esrch(child):
    addr = code_addr(child)
    with pytest.raises(OSError) as exc:
        native.inject_syscall(child, 60, [3], addr=addr)  # exit(3)
    assert exc.value.errno == errno.ESRCH


# ---- pagemap ---------------------------------------------------------------

def test_scan_pagemap_finds_touched_pages_only(child):
    addr = code_addr(child)
    n = 16
    area = native.inject_syscall(child, NR_mmap, [0, n * PAGE, 3, MAP_PRIVATE_ANON, -1, 0], addr=addr)
    assert native.scan_pagemap(child, area, area + n * PAGE) == []
    for i in (0, 1, 5, 15):
        native.vm_write(child, [(area + i * PAGE, 1)], b"x")
    assert native.scan_pagemap(child, area, area + n * PAGE) == [
        (area, 2), (area + 5 * PAGE, 1), (area + 15 * PAGE, 1)]
    assert native.scan_pagemap(child, area + PAGE, area + 6 * PAGE) == [
        (area + PAGE, 1), (area + 5 * PAGE, 1)]


def test_scan_pagemap_anon_only_sees_cow_pages(child):
    addr = code_addr(child)
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"y" * 4 * PAGE)
        f.flush()
        # the child fetches our fd: pidfd_open(us) + pidfd_getfd, injected
        theirs_pidfd = native.inject_syscall(child, 434, [os.getpid(), 0], addr=addr)
        assert theirs_pidfd >= 0
        cfd = native.inject_syscall(child, 438, [theirs_pidfd, f.fileno(), 0], addr=addr)
        assert cfd >= 0, cfd
        area = native.inject_syscall(child, NR_mmap, [0, 4 * PAGE, 3, mmap.MAP_PRIVATE, cfd, 0],
                                     addr=addr)
        assert 0 < area < 1 << 47
        native.inject_syscall(child, NR_close, [cfd], addr=addr)
        native.inject_syscall(child, NR_close, [theirs_pidfd], addr=addr)
        assert native.vm_read(child, [(area, 2 * PAGE)]) == b"y" * 2 * PAGE  # file pages
        native.vm_write(child, [(area + PAGE, 1)], b"z")                     # CoW one
        # fault-around may map more page-cache pages than the two we read
        present = native.scan_pagemap(child, area, area + 4 * PAGE)
        assert present[0][0] == area and present[0][1] >= 2
        assert native.scan_pagemap(child, area, area + 4 * PAGE, anon_only=True) == [
            (area + PAGE, 1)]


def test_scan_pagemap_large_region_in_batches(child):
    addr = code_addr(child)
    n = 300000  # more pages than the C side's run buffer holds runs
    area = native.inject_syscall(child, NR_mmap, [0, n * PAGE, 3, MAP_PRIVATE_ANON, -1, 0], addr=addr)
    touched = list(range(0, n, 2))[: (1 << 16) + 100]  # > one batch of runs
    native.vm_write(child, [(area + i * PAGE, 1) for i in touched], b"a" * len(touched))
    runs = native.scan_pagemap(child, area, area + n * PAGE)
    assert runs == [(area + i * PAGE, 1) for i in touched]


# ---- fds, processes, namespaces -------------------------------------------

def test_pidfd_getfd_copies_an_fd(child):
    r, w = os.pipe()
    try:
        addr = code_addr(child)
        theirs_pidfd = native.inject_syscall(child, 434, [os.getpid(), 0], addr=addr)
        cfd = native.inject_syscall(child, 438, [theirs_pidfd, w, 0], addr=addr)
        assert cfd >= 0
        # and back into us, through our own pidfd of the child
        child_pidfd = native.pidfd_open(child)
        mine = native.pidfd_getfd(child_pidfd, cfd)
        os.write(mine, b"hello")
        assert os.read(r, 5) == b"hello"
        assert os.fstat(mine).st_ino == os.fstat(w).st_ino
        for fd in (mine, child_pidfd):
            os.close(fd)
        with pytest.raises(OSError) as exc:
            native.pidfd_open(-5)
        assert exc.value.errno == errno.EINVAL
    finally:
        os.close(r)
        os.close(w)


def _free_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    used = {int(d) for d in os.listdir("/proc") if d.isdigit()}
    base = max(used) + 1000
    for pid in [*range(base, pid_max), *range(1000, pid_max)]:
        if pid not in used and not os.path.exists(f"/proc/{pid}"):
            return pid
    pytest.fail("no free pid")


def test_clone3_puppet_with_set_tid():
    want = _free_pid()
    pid = native.clone3_puppet([want])
    try:
        assert pid == want
        seize_stop(pid)
        assert native.inject_syscall(pid, NR_getpid, addr=native.get_regs(pid)["rip"] - 2) == want
        with pytest.raises(OSError) as exc:
            native.clone3_puppet([pid])
        assert exc.value.errno == errno.EEXIST
    finally:
        _reap(pid)


def test_clone3_puppet_new_pid_namespace():
    pid = native.clone3_puppet([1], native.CLONE_NEWPID)
    try:
        with open(f"/proc/{pid}/status") as f:
            nspid = [l for l in f if l.startswith("NSpid:")][0].split()
        assert nspid[1:] == [str(pid), "1"]
        seize_stop(pid)  # as ns init it ignores its own SIGSTOP: we stop it
        code = mapping_of(pid, native.get_regs(pid)["rip"])
        assert code and "x" in code.split()[1]
        assert native.inject_syscall(pid, NR_getpid, addr=native.get_regs(pid)["rip"] - 2) == 1
    finally:
        _reap(pid)


def test_kcmp_file():
    r, w = os.pipe()
    dup = os.dup(w)
    try:
        me = os.getpid()
        assert native.kcmp(me, me, native.KCMP_FILE, w, dup) == 0
        assert native.kcmp(me, me, native.KCMP_FILE, r, w) != 0
        with pytest.raises(OSError) as exc:
            native.kcmp(me, me, native.KCMP_FILE, r, 9999)
        assert exc.value.errno == errno.EBADF
    finally:
        for fd in (r, w, dup):
            os.close(fd)


def test_tee_copies_without_consuming():
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        os.write(w1, b"queued bytes")
        assert native.tee(r1, w2, 1 << 16) == 12
        assert os.read(r2, 100) == b"queued bytes"
        assert os.read(r1, 100) == b"queued bytes"
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)


def test_unshare_and_setns_in_child():
    pid = os.fork()
    if pid == 0:
        try:
            orig = os.open("/proc/self/ns/uts", os.O_RDONLY)
            native.unshare(native.CLONE_NEWUTS)
            changed = os.readlink("/proc/self/ns/uts")
            native.setns(orig, native.CLONE_NEWUTS)
            back = os.readlink("/proc/self/ns/uts")
            os._exit(0 if changed != back else 2)
        except BaseException:
            os._exit(3)
    _, st = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(st) == 0
    with pytest.raises(OSError) as exc:
        native.setns(9999, 0)
    assert exc.value.errno == errno.EBADF


# ---- refcr check ------------------------------------------------------------

def test_refcr_check_reports_every_feature(capsys):
    from refcr import check

    rc = check.main_check(None)
    lines = capsys.readouterr().out.splitlines()
    assert [l.split(":")[0] for l in lines] == [name for name, _, _ in check.FEATURES]
    required_missing = [l for l, (_, req, _) in zip(lines, check.FEATURES, strict=True)
                        if req and not l.endswith(": works")]
    assert required_missing == [] and rc == 0
    assert any(l.startswith("soft-dirty: ") for l in lines)
