"""--freeze-cgroup (refcr/kernel/freezer.py): the tree is frozen through its
freezer cgroup (this machine's v1 hierarchy, and v2 where cgroup.freeze
exists), seized while frozen, thawed, then dumped.

The target is a bounded fork bomb (tests/freezer/forker.c: twelve children
alive at any time, each forking a grandchild, all living a few ms).  A dump
with --freeze-cgroup must list a consistent tree (every parent in it, every
task of the cgroup's tree at the freeze) and restore; the cgroup is THAWED
after a dump, after a refused one, and after refcr was SIGKILLed while it was
frozen (its guardian thaws it).  A cgroup frozen by someone else is refused
and left frozen.  Each case runs in a v1 freezer cgroup and in a v2 one
(/sys/fs/cgroup/unified here).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from refcr.kernel import cgroup, freezer
from refcr.ptrace import proc
from support import Processes, assert_one_line_error
from zdtm.harness import procs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and dumps need root")
HERE = Path(__file__).resolve().parent


def refcr(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120, env=env)


@pytest.fixture(scope="module")
def forker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("freezer") / "forker"
    subprocess.run(["cc", "-O1", "-o", str(exe), str(HERE / "freezer" / "forker.c")], check=True)
    return exe


@pytest.fixture(params=["v1", "v2"])
def group(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh freezer cgroup: in the v1 freezer hierarchy, or in the v2 one."""
    mounts = cgroup.hierarchies()
    where = mounts.get("freezer") if request.param == "v1" else mounts.get("")
    assert where, f"no {request.param} freezer hierarchy mounted here: {mounts}"
    d = Path(where) / f"refcr-fz-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir()
    yield d
    thaw(d)
    for _ in range(100):
        try:
            d.rmdir()
            break
        except OSError:
            time.sleep(0.1)          # its last task is still being reaped


def state(d: Path) -> str:
    return freezer.Freezer.open(str(d)).state()


def freeze(d: Path) -> None:
    f = freezer.Freezer.open(str(d))
    (d / ("cgroup.freeze" if f.v2 else "freezer.state")).write_text("1" if f.v2 else "FROZEN")


def thaw(d: Path) -> None:
    freezer.Freezer.open(str(d)).thaw()


def _number(path: Path) -> int:
    """The forker's count, read once (it rewrites the file: a second read may find it empty)."""
    text = path.read_text().strip()
    return int(text) if text.isdigit() else 0


def start(forker: Path, d: Path, processes: Processes, cwd: Path) -> tuple[int, Path]:
    """The forker as pid 1 of its own pid (and mount) namespace: the pids it
    churns through cannot collide with the machine's at restore.  Returns its
    pid as seen here."""
    count = cwd / "count"
    p = processes.spawn(["sh", "-c", f"echo $$ > {d}/cgroup.procs && "
                         f"exec unshare --pid --fork --mount --mount-proc {forker} {count}"], cwd)
    deadline = time.monotonic() + 10
    while not (count.exists() and _number(count) > 200):
        assert time.monotonic() < deadline, "the forker did not start"
        time.sleep(0.02)
    while not proc.children(p.pid):
        time.sleep(0.01)
    kids = proc.children(p.pid)
    assert len(kids) == 1, kids
    return kids[0], count


def made(count: Path) -> int:
    text = count.read_text().strip()
    return int(text) if text else 0


def runs_on(count: Path) -> bool:
    before = made(count)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if made(count) > before:
            return True
        time.sleep(0.05)
    return False


def pstree(images: Path, cwd: Path) -> list[dict]:
    res = refcr("show", str(images / "pstree.img"), cwd=cwd)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["entries"]


def test_forking_tree_dumped_consistently_and_restored(forker: Path, group: Path, processes: Processes,
                                                       tmp_path: Path) -> None:
    root, count = start(forker, group, processes, tmp_path)
    images = tmp_path / "img"
    res = refcr("dump", "-t", str(root), "-D", str(images), "-o", "log", "-v4",
                "--freeze-cgroup", str(group), cwd=tmp_path)
    assert res.returncode == 0, res.stderr + (images / "log").read_text()[-3000:]
    assert state(group) == "THAWED"
    log = (images / "log").read_text()
    assert f"froze the cgroup {group}" in log, "the dump did not go through the freezer"
    entries = pstree(images, tmp_path)
    pids = [e["pid"] for e in entries]
    assert len(set(pids)) == len(pids) and len(pids) > 1
    assert all(e.get("ppid", 0) in pids for e in entries[1:]), "a process whose parent is not in the tree"
    procs.wait_exit(root, 10)
    res = refcr("restore", "-D", str(images), "-d", "-o", "rlog", "--pidfile", str(tmp_path / "pid"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr + (images / "rlog").read_text()[-3000:]
    processes.pids.add(int((tmp_path / "pid").read_text()))
    assert runs_on(count), "the restored forker does not fork on"


def test_leave_running_thaws_and_runs_on(forker: Path, group: Path, processes: Processes, tmp_path: Path) -> None:
    root, count = start(forker, group, processes, tmp_path)
    res = refcr("dump", "-t", str(root), "-D", str(tmp_path / "img"), "-R", "--freeze-cgroup", str(group),
                cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert state(group) == "THAWED"
    assert runs_on(count)


def test_root_outside_the_cgroup_refused_and_thawed(group: Path, processes: Processes, tmp_path: Path) -> None:
    other = processes.spawn(["sh", "-c", f"echo $$ > {group}/cgroup.procs && exec sleep 1000"], tmp_path)
    target = processes.spawn(["sleep", "1000"], tmp_path)
    deadline = time.monotonic() + 5
    while str(other.pid) not in (group / "cgroup.procs").read_text().split():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    res = refcr("dump", "-t", str(target.pid), "-D", str(tmp_path / "img"), "--freeze-cgroup", str(group),
                cwd=tmp_path)
    assert_one_line_error(res)
    assert "is not in that cgroup" in res.stderr
    assert state(group) == "THAWED"
    assert procs.is_alive(target.pid) and procs.read_stat(target.pid).state != "t"


def test_frozen_by_someone_else_refused(group: Path, processes: Processes, tmp_path: Path) -> None:
    p = processes.spawn(["sh", "-c", f"echo $$ > {group}/cgroup.procs && exec sleep 1000"], tmp_path)
    time.sleep(0.2)
    freeze(group)
    deadline = time.monotonic() + 5
    while state(group) != "FROZEN":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    res = refcr("dump", "-t", str(p.pid), "-D", str(tmp_path / "img"), "--freeze-cgroup", str(group),
                cwd=tmp_path)
    assert_one_line_error(res)
    assert "frozen already" in res.stderr
    assert state(group) == "FROZEN"


def test_not_a_freezer_cgroup(processes: Processes, tmp_path: Path) -> None:
    p = processes.spawn(["sleep", "1000"], tmp_path)
    for path in ("/tmp", "/sys/fs/cgroup/pids"):
        res = refcr("dump", "-t", str(p.pid), "-D", str(tmp_path / path.replace("/", "_")), "--freeze-cgroup", path,
                    cwd=tmp_path)
        assert_one_line_error(res)
        assert "--freeze-cgroup" in res.stderr


def test_sigkill_while_frozen_guardian_thaws(forker: Path, group: Path, processes: Processes,
                                            tmp_path: Path) -> None:
    """refcr dies with the cgroup frozen and every task seized: its guardian thaws
    the cgroup and puts the tasks back; the tree forks on."""
    root, count = start(forker, group, processes, tmp_path)
    env = dict(os.environ, REFCR_KILL_AT="dump-cgroup-frozen")
    env.pop("REFCR_FAULT", None)
    images = tmp_path / "img"
    res = refcr("dump", "-t", str(root), "-D", str(images), "--freeze-cgroup", str(group), cwd=tmp_path, env=env)
    assert res.returncode == -signal.SIGKILL, res.stderr
    deadline = time.monotonic() + 10
    while state(group) != "THAWED":
        assert time.monotonic() < deadline, "the cgroup stayed frozen after refcr's death"
        time.sleep(0.05)
    assert runs_on(count), "the tree does not fork on after refcr's death"
    assert procs.read_stat(root).state not in ("t", "T", "Z")


def test_pre_dump_through_the_freezer(forker: Path, group: Path, processes: Processes, tmp_path: Path) -> None:
    """A pre-dump (runc's pre-copy passes freeze_cgroup too) freezes the same way."""
    root, count = start(forker, group, processes, tmp_path)
    res = refcr("pre-dump", "-t", str(root), "-D", str(tmp_path / "pre"), "-o", "log", "-v4",
                "--freeze-cgroup", str(group), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"froze the cgroup {group}" in (tmp_path / "pre" / "log").read_text()
    assert state(group) == "THAWED"
    assert runs_on(count)
