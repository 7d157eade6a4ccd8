"""--manage-cgroups with CRIU's modes (refcr/kernel/cgroup.py), on real
processes in this machine's pids and cpu hierarchies: membership and the
controller properties (pids.max, cpu.shares) come back as each mode says;
a mode whose condition does not hold refuses in one line and leaves nothing
running."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from refcr.kernel import cgroup
from support import Processes, assert_one_line_error

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and dumps need root")

CONTROLLERS = ("pids", "cpu")
PROPS = {"pids": ("pids.max", "77"), "cpu": ("cpu.shares", "333")}


def refcr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture
def groups() -> Iterator[dict[str, Path]]:
    mounts = cgroup.hierarchies()
    missing = [c for c in CONTROLLERS if c not in mounts]
    assert not missing, f"hierarchies {missing} are not mounted here: {mounts}"
    name = f"refcr-cg-{os.getpid()}-{time.monotonic_ns()}"
    out = {c: Path(mounts[c]) / name for c in CONTROLLERS}
    yield out
    for d in out.values():
        for _ in range(50):
            try:
                if d.exists():
                    d.rmdir()
                break
            except OSError:
                time.sleep(0.1)          # its last task is still being reaped


def _set_up(groups: dict[str, Path], values: dict[str, tuple[str, str]]) -> None:
    for c, d in groups.items():
        d.mkdir(exist_ok=True)
        name, value = values[c]
        (d / name).write_text(value)


def _dump(processes: Processes, groups: dict[str, Path], tmp_path: Path, mode: str = "full") -> Path:
    _set_up(groups, PROPS)
    p = processes.spawn(["sleep", "1000"], tmp_path)
    for d in groups.values():
        (d / "cgroup.procs").write_text(f"{p.pid}\n")
    img = tmp_path / "img"
    res = refcr("dump", "-t", str(p.pid), "-D", str(img), f"--manage-cgroups={mode}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    p.wait(timeout=10)
    return img


def _restore(img: Path, tmp_path: Path, *opts: str) -> subprocess.CompletedProcess[str]:
    return refcr("restore", "-d", "-D", str(img), "--pidfile", str(tmp_path / "pid"), *opts, cwd=tmp_path)


def _restored(processes: Processes, tmp_path: Path) -> int:
    pid = int((tmp_path / "pid").read_text())
    processes.pids.add(pid)
    return pid


def _in(pid: int, d: Path) -> bool:
    return str(pid) in (d / "cgroup.procs").read_text().split()


def _value(groups: dict[str, Path], c: str) -> str:
    return (groups[c] / PROPS[c][0]).read_text().strip()


def test_soft_makes_a_missing_cgroup_with_its_properties(processes: Processes, groups: dict[str, Path],
                                                         tmp_path: Path) -> None:
    img = _dump(processes, groups, tmp_path)
    for d in groups.values():
        d.rmdir()
    res = _restore(img, tmp_path, "--manage-cgroups=soft")
    assert res.returncode == 0, res.stderr
    pid = _restored(processes, tmp_path)
    for c, d in groups.items():
        assert _in(pid, d)
        assert _value(groups, c) == PROPS[c][1]


def test_soft_leaves_an_existing_cgroup_as_it_is(processes: Processes, groups: dict[str, Path],
                                                 tmp_path: Path) -> None:
    img = _dump(processes, groups, tmp_path)
    _set_up(groups, {"pids": ("pids.max", "55"), "cpu": ("cpu.shares", "555")})
    res = _restore(img, tmp_path, "--manage-cgroups=soft")
    assert res.returncode == 0, res.stderr
    pid = _restored(processes, tmp_path)
    assert _in(pid, groups["pids"])
    assert _value(groups, "pids") == "55" and _value(groups, "cpu") == "555"


def test_full_sets_the_properties_of_an_existing_cgroup(processes: Processes, groups: dict[str, Path],
                                                        tmp_path: Path) -> None:
    img = _dump(processes, groups, tmp_path)
    _set_up(groups, {"pids": ("pids.max", "55"), "cpu": ("cpu.shares", "555")})
    res = _restore(img, tmp_path, "--manage-cgroups=full")
    assert res.returncode == 0, res.stderr
    _restored(processes, tmp_path)
    assert _value(groups, "pids") == "77" and _value(groups, "cpu") == "333"


def test_cgroup_root_moves_the_tree(processes: Processes, groups: dict[str, Path], tmp_path: Path) -> None:
    img = _dump(processes, groups, tmp_path)
    moved = groups["pids"].parent / (groups["pids"].name + "-moved")
    try:
        res = _restore(img, tmp_path, "--cgroup-root", f"pids:/{moved.name}")
        assert res.returncode == 0, res.stderr
        pid = _restored(processes, tmp_path)
        assert _in(pid, moved) and (moved / "pids.max").read_text().strip() == "77"   # made: soft sets it
        assert _in(pid, groups["cpu"])
    finally:
        for pid in processes.pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for _ in range(50):
            try:
                moved.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


@pytest.mark.parametrize("mode, prepare, words", [
    ("strict", "keep", "exists already"),
    ("none", "remove", "does not exist"),
    ("props", "remove", "does not exist"),
])
def test_refusals(processes: Processes, groups: dict[str, Path], tmp_path: Path, mode: str, prepare: str,
                  words: str) -> None:
    img = _dump(processes, groups, tmp_path)
    if prepare == "remove":
        for d in groups.values():
            d.rmdir()
    res = _restore(img, tmp_path, f"--manage-cgroups={mode}")
    assert_one_line_error(res)
    assert words in res.stderr
    assert not (tmp_path / "pid").exists()
    if prepare == "keep":
        assert not (groups["pids"] / "cgroup.procs").read_text().strip()      # nothing half-alive in it
