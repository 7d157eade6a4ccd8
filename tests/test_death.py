"""refcr's own death never harms the target (refcr/ptrace/guardian.py).

refcr SIGKILLs itself (REFCR_KILL_AT, refcr/fault.py) at every kill point
of the dump and of the pre-dump, for a single-threaded process, a
multi-threaded one and a tree.  Afterwards every thread has the signal mask
it had (SigBlk), every process the maps it had (no scratch area, nothing
patched) and the fds it had (no page pipe left: refcr/mm/taskio.py),
counts on (its registers are its own) and dies of SIGTERM (no signal left
blocked); the image directory says it is incomplete.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import Processes

from refcr.fault import FREEZER_STEPS, KILL_POINTS
from refcr.images.imagedir import IN_PROGRESS, INCOMPLETE_MARKER
from refcr.mm import track
from zdtm.harness import procs

HERE = Path(__file__).resolve().parent
KINDS = {"single": (1, 0), "threads": (1, 3), "tree": (3, 1)}     # processes, extra threads each
CASES = [(pipeline, step) for pipeline, steps in KILL_POINTS.items() for step in steps
         if step not in FREEZER_STEPS]       # those: tests/test_freezer.py


@dataclass
class Target:
    pids: list[int]
    out: Path
    masks: dict[int, str]
    maps: dict[int, str]
    fds: dict[int, dict[str, str]]

    @property
    def root(self) -> int:
        return self.pids[0]


@pytest.fixture(scope="module")
def target_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("death") / "target"
    subprocess.run(["cc", "-O1", "-pthread", "-o", str(exe), str(HERE / "death" / "target.c")], check=True)
    return exe


def masks(pids: list[int]) -> dict[int, str]:
    out = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            out[int(tid)] = next(line for line in status.splitlines() if line.startswith("SigBlk"))
    return out


def maps(pids: list[int]) -> dict[int, str]:
    return {pid: Path(f"/proc/{pid}/maps").read_text() for pid in pids}


def fds(pids: list[int]) -> dict[int, dict[str, str]]:
    return {pid: {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            for pid in pids}


def start(exe: Path, kind: str, ps: Processes, cwd: Path) -> Target:
    nproc, nthreads = KINDS[kind]
    out = cwd / "count"
    p = ps.spawn([str(exe), str(nproc), str(nthreads), str(out)], cwd)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [k for k, _ in procs.descendants(p.pid)]
        if len(pids) == nproc and all(len(os.listdir(f"/proc/{q}/task")) == nthreads + 1 for q in pids) \
                and all(Path(f"{out}.{q}").exists() for q in pids):
            break
        time.sleep(0.02)
    else:
        pytest.fail("target did not start")
    time.sleep(0.1)
    return Target(pids, out, masks(pids), maps(pids), fds(pids))


def count(t: Target, pid: int) -> int:
    text = Path(f"{t.out}.{pid}").read_text().strip()
    return int(text) if text else -1


def refcr(pipeline: str, t: Target, images: Path, kill_at: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, REFCR_KILL_AT=kill_at)
    env.pop("REFCR_FAULT", None)
    return subprocess.run([sys.executable, "-m", "refcr", pipeline, "-t", str(t.root), "-D", str(images),
                           "-o", "log", "-v4", *extra], env=env, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def marker(images: Path) -> str | None:
    try:
        return (images / INCOMPLETE_MARKER).read_text().strip()
    except FileNotFoundError:
        return None


def expected_marker(pipeline: str, step: str) -> str:
    """'died': the guardian says so; 'in progress': refcr died when no task was
    its any more (pre-dump writing files); 'none': the images were complete."""
    if pipeline == "dump" and step == "mid-finish":
        return "none"
    if pipeline == "pre-dump" and step in ("after-thaw", "before-inventory"):
        return "in progress"
    return "died"


def wait_marker(images: Path, want: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    got = marker(images)
    while time.monotonic() < deadline:
        got = marker(images)
        if (want == "none" and got is None) or (want == "in progress" and got == IN_PROGRESS) \
                or (want == "died" and got is not None and got.startswith("refcr died")):
            return
        time.sleep(0.05)
    log = images / "log"
    pytest.fail(f"marker is {got!r}, wanted {want}; log tail: {log.read_text()[-2000:] if log.exists() else ''}")


def check_put_back(t: Target, stopped: bool = False, uffd_may_stay: bool = False) -> None:
    """uffd_may_stay: a pre-dump's tracking userfaultfd (refcr/mm/track.py) is
    meant to stay in the task, for the next dump; every other fd is as it was."""
    for pid in t.pids:
        st = procs.read_stat(pid)
        assert st is not None and st.state != "Z", f"process {pid} died"
        assert (st.state == "T") == stopped, f"process {pid} is in state {st.state}"
    assert masks(t.pids) == t.masks, "signal masks not put back"
    assert maps(t.pids) == t.maps, "address space not put back (scratch area or patched code left)"
    now = {pid: {fd: link for fd, link in table.items() if not (uffd_may_stay and link == track.UFFD_LINK)}
           for pid, table in fds(t.pids).items()}
    assert now == t.fds, "fd table not put back (page pipes left)"
    if stopped:
        for pid in t.pids:
            os.kill(pid, signal.SIGCONT)
    before = {pid: count(t, pid) for pid in t.pids}
    time.sleep(0.3)
    for pid in t.pids:
        assert count(t, pid) > before[pid], f"process {pid} does not count on"
    for pid in reversed(t.pids):
        os.kill(pid, signal.SIGTERM)
    for pid in reversed(t.pids):
        ex = procs.wait_exit(pid, 10)
        assert ex is not None, f"process {pid} does not answer SIGTERM"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("pipeline", "step"), CASES, ids=[f"{p}-{s}" for p, s in CASES])
def test_sigkill_of_refcr_puts_target_back(tmp_path: Path, processes: Processes, target_bin: Path,
                                           pipeline: str, step: str, kind: str) -> None:
    t = start(target_bin, kind, processes, tmp_path)
    images = tmp_path / "img"
    res = refcr(pipeline, t, images, f"{pipeline}-{step}", *(["-R"] if pipeline == "dump" else []))
    assert res.returncode == -signal.SIGKILL, f"refcr was not killed at {pipeline}-{step}: {res.stderr}"
    wait_marker(images, expected_marker(pipeline, step))
    check_put_back(t, uffd_may_stay=pipeline == "pre-dump")


@pytest.mark.parametrize("step", ["after-masks", "after-scratch", "mid-syscall", "after-memory"])
def test_sigkill_with_leave_stopped_leaves_it_stopped(tmp_path: Path, processes: Processes, target_bin: Path,
                                                      step: str) -> None:
    t = start(target_bin, "tree", processes, tmp_path)
    images = tmp_path / "img"
    res = refcr("dump", t, images, f"dump-{step}", "--leave-stopped")
    assert res.returncode == -signal.SIGKILL
    wait_marker(images, "died")
    check_put_back(t, stopped=True)


def test_sigkill_while_killing_finishes_the_dump(tmp_path: Path, processes: Processes, target_bin: Path) -> None:
    """Dead after the images were complete, while killing the tree: the guardian
    kills the rest, as asked, and the images restore."""
    t = start(target_bin, "tree", processes, tmp_path)
    images = tmp_path / "img"
    res = refcr("dump", t, images, "dump-mid-finish")
    assert res.returncode == -signal.SIGKILL
    wait_marker(images, "none")
    for pid in t.pids:
        procs.wait_exit(pid, 10)
        assert not procs.is_alive(pid), f"process {pid} was not killed"
    res = subprocess.run([sys.executable, "-m", "refcr", "restore", "-D", str(images), "-d", "-o", "rlog"],
                         text=True, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    processes.pids.add(t.root)
    time.sleep(0.2)
    before = {pid: count(t, pid) for pid in t.pids}
    time.sleep(0.3)
    assert all(count(t, pid) > before[pid] for pid in t.pids), "restored tree does not count"
