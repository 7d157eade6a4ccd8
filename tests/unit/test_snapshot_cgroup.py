"""The harness's /proc state check sees cgroup membership (zdtm/harness/snapshot.py):
a process moved to another cgroup, or a thread of it (cgroup v1), is a difference;
in a cgroup namespace of its own the paths are those the process sees."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from refcr.kernel import cgroup
from zdtm.harness import snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="moving processes between cgroups needs root")


@pytest.fixture
def group():
    mount = cgroup.hierarchies().get("pids")
    if mount is None:
        pytest.skip("no pids hierarchy (cgroup v1) mounted here")
    d = Path(mount) / f"refcr-snap-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir()
    yield d
    for _ in range(50):
        try:
            d.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def test_a_process_in_another_cgroup_differs(group):
    p = subprocess.Popen(["sleep", "100"])
    try:
        before = snapshot.take([p.pid])
        assert any(":pids:" in line for line in before.tasks[0].cgroup)
        (group / "cgroup.procs").write_text(f"{p.pid}\n")
        after = snapshot.take([p.pid])
        out = snapshot.diff(before, after)
        assert any("cgroup" in line for line in out), out
        assert any(group.name in line for line in out), out
    finally:
        p.kill()
        p.wait()


def test_a_thread_in_another_cgroup_differs(group):
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    home = next(x.split(":", 2)[2] for x in Path(f"/proc/self/task/{t.native_id}/cgroup").read_text().splitlines()
                if x.split(":")[1] == "pids")
    try:
        before = snapshot.take([os.getpid()])
        (group / "tasks").write_text(f"{t.native_id}\n")
        after = snapshot.take([os.getpid()])
        out = snapshot.diff(before, after)
        assert any(f"thread {t.native_id}" in line and "cgroup" in line for line in out), out
    finally:
        Path(cgroup.hierarchies()["pids"] + home, "tasks").write_text(f"{t.native_id}\n")
        stop.set()
        t.join()


def test_paths_as_a_cgroup_namespace_shows_them(group):
    """Inside its own cgroup namespace, made in the group, the process is at "/"."""
    p = subprocess.Popen(["sh", "-c", f"echo $$ > {group}/cgroup.procs && exec unshare --cgroup sleep 100"])
    try:
        for _ in range(200):
            if os.readlink(f"/proc/{p.pid}/ns/cgroup") != os.readlink("/proc/self/ns/cgroup"):
                break
            time.sleep(0.02)
        lines = snapshot.take([p.pid]).tasks[0].cgroup
        assert any(x.endswith(":pids:/") for x in lines), lines
        assert not any(group.name in x for x in lines), lines
        assert any(group.name in x for x in Path(f"/proc/{p.pid}/cgroup").read_text().splitlines())
    finally:
        p.kill()
        p.wait()
