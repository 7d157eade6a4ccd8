"""A rootless user namespace (refcr/kernel/userns.py): what a rootless
container runtime makes.  An unprivileged user (uid 1000) runs
``unshare --user --map-root-user --pid --fork --mount --mount-proc --uts
--ipc --net``: the user namespace is owned by uid 1000, maps only root to
1000 (``0 1000 1``), has setgroups denied, owns the other namespaces, and
its tasks have no supplementary groups.  The tree is dumped and restored by
root; the harness's whole /proc state check (zdtm/harness/snapshot.py: maps,
setgroups, owner, parent and the owner of every namespace, credentials as
the host sees them, mounts, ...) must find no difference, and the counter
counts on.  The images hold in-namespace credentials (uid 0).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from refcr.ptrace import proc
from support import Processes
from zdtm.harness import procs, snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dumps need root")
HERE = Path(__file__).resolve().parent
USER = 1000


def refcr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory uid 1000 can reach and write (pytest's tmp dirs are root's, 0700)."""
    d = Path(tempfile.mkdtemp(prefix="refcr-userns-", dir="/tmp"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def counter(work: Path) -> Path:
    exe = work / "counter"
    subprocess.run(["cc", "-O1", "-o", str(exe), str(HERE / "userns" / "counter.c")], check=True)
    exe.chmod(0o755)
    return exe


def count(work: Path) -> int:
    text = (work / "count").read_text().strip() if (work / "count").exists() else ""
    return int(text) if text else 0


def counts_on(work: Path) -> bool:
    before = count(work)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if count(work) > before:
            return True
        time.sleep(0.05)
    return False


def start(counter: Path, work: Path, processes: Processes) -> int:
    p = processes.spawn(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
                         "unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount", "--mount-proc",
                         "--uts", "--ipc", "--net", str(counter), str(work / "count")], work)
    deadline = time.monotonic() + 10
    while not proc.children(p.pid) or count(work) < 3:
        assert p.poll() is None, "unshare failed (unprivileged user namespaces off?)"
        assert time.monotonic() < deadline, "the counter did not start"
        time.sleep(0.02)
    return proc.children(p.pid)[0]


def test_rootless_userns_dumped_and_restored(counter: Path, work: Path, processes: Processes) -> None:
    root = start(counter, work, processes)
    before = snapshot.take_tree(root)
    ns = dict(before.tasks[0].userns)
    assert ns["uid_map"] == f"0 {USER} 1" and ns["setgroups"] == "deny" and ns["owner_uid"] == str(USER)
    images = work / "img"
    res = refcr("dump", "-t", str(root), "-D", str(images), "-o", "log", "-v4", cwd=work)
    assert res.returncode == 0, res.stderr
    core = json.loads(refcr("show", str(images / "core-1.img"), cwd=work).stdout)["entries"][0]
    assert core["creds"].get("uid", 0) == 0 and core["creds"].get("euid", 0) == 0, core["creds"]
    procs.wait_exit(root, 10)
    res = refcr("restore", "-D", str(images), "-d", "-o", "rlog", "-v4", "--pidfile", str(work / "pid"), cwd=work)
    assert res.returncode == 0, res.stderr + (images / "rlog").read_text()[-3000:]
    new = int((work / "pid").read_text())
    processes.pids.add(new)
    after = snapshot.take_tree(new)
    problems = snapshot.diff(before, after)
    assert not problems, "\n".join(problems)
    assert counts_on(work), "the restored counter does not count on"


def _extent(es: list, **kw: int) -> None:
    for k, v in kw.items():
        setattr(es[0].uid_map[0], k, v)


# edit of userns.img (or the inventory) -> words the one-line refusal must hold
BAD = {
    "empty extent": (lambda es: _extent(es, count=0), ("userns.img", "uid_map[0]")),
    "past 2^32": (lambda es: _extent(es, first=(1 << 32) - 1, count=2), ("userns.img", "uid_map[0]")),
    "overlapping": (lambda es: es[0].gid_map.add(first=0, lower_first=5000, count=1), ("userns.img", "gid_map")),
    "no uid map": (lambda es: es[0].ClearField("uid_map"), ("userns.img", "uid_map")),
    "too many extents": (lambda es: [es[0].uid_map.add(first=10 + i, lower_first=10 + i, count=1)
                                     for i in range(340)], ("userns.img", "uid_map")),
}


def test_bad_userns_images_refused(counter: Path, work: Path, processes: Processes) -> None:
    """Each bad map is one line naming userns.img and the field, before any
    process is made; a userns.img without a pid namespace names the inventory."""
    from crafted import edit
    root = start(counter, work, processes)
    images = work / "img"
    res = refcr("dump", "-t", str(root), "-D", str(images), "-R", cwd=work)
    assert res.returncode == 0, res.stderr
    for name, (change, words) in BAD.items():
        bad = work / name.replace(" ", "_")
        shutil.copytree(images, bad)
        edit(bad, "userns", change)
        res = refcr("restore", "-D", str(bad), "-d", cwd=work)
        assert res.returncode == 1 and len(res.stderr.splitlines()) == 1, (name, res.stderr)
        assert all(w in res.stderr for w in words), (name, res.stderr)
    bad = work / "nopid"
    shutil.copytree(images, bad)
    edit(bad, "inventory", lambda es: es[0].root_namespaces.remove("pid"))
    res = refcr("restore", "-D", str(bad), "-d", cwd=work)
    assert res.returncode == 1 and "root_namespaces" in res.stderr and "inventory.img" in res.stderr, res.stderr
    assert procs.is_alive(root) and counts_on(work)
