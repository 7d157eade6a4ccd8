"""refcr as runc's CRIU: `runc --criu refcr checkpoint/restore` of a busybox
container (Debian's runc, installed by ./dev.sh), through refcr's RPC server.

The container runs a shell loop counting in a variable and writing the count
to /tmp/count of its rootfs; a restored container must go on counting from
where it was (a restarted one would start again at 1) and answer `runc exec`.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from refcr.images.imagedir import ImageDir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

LOOP = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"
_ids = itertools.count()


def _refcr() -> str:
    exe = Path(sys.executable).with_name("refcr")
    assert exe.exists(), f"{exe}: refcr's console script (pip install -e . makes it)"
    return str(exe)


@dataclass
class Container:
    bundle: Path
    state: Path
    id: str

    def runc(self, *args: str, check: bool = True, timeout: float = 120,
             detached: bool = False) -> subprocess.CompletedProcess[str]:
        """runc with refcr as its criu; a detached container gets /dev/null as
        its stdio (runc -d would hand it our pipes, and we would wait for them)."""
        runc = shutil.which("runc")
        assert runc, "runc is not installed (./dev.sh setup installs it)"
        out = subprocess.DEVNULL if detached else subprocess.PIPE
        res = subprocess.run([runc, "--root", str(self.state), "--criu", _refcr(), *args],
                             cwd=self.bundle, stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            logs = "".join(f"\n--- {p}:\n{p.read_text()[-3000:]}" for p in self.bundle.glob("*/*.log"))
            raise AssertionError(f"runc {' '.join(args)}: {(res.stderr or '').strip()}{logs}")
        return res

    def count(self) -> int:
        text = (self.bundle / "rootfs" / "tmp" / "count").read_text().strip()
        return int(text) if text else 0

    def wait_count(self, above: int) -> int:
        deadline = time.monotonic() + 30
        while True:
            try:
                n = self.count()
            except (FileNotFoundError, ValueError):
                n = 0
            if n > above:
                return n
            assert time.monotonic() < deadline, f"the container's count stays at {n}"
            time.sleep(0.05)

    def status(self) -> str:
        res = self.runc("state", self.id, check=False)
        return json.loads(res.stdout)["status"] if res.returncode == 0 else "gone"

    def start(self) -> None:
        self.runc("run", "-d", self.id, detached=True)
        self.wait_count(0)

    def restore(self, images: Path) -> None:
        self.runc("restore", "-d", "--image-path", str(images), self.id, detached=True)
        assert self.status() == "running"


@pytest.fixture
def container(tmp_path: Path):
    rootfs = tmp_path / "bundle" / "rootfs"
    for d in ("bin", "tmp", "proc", "dev", "sys"):
        (rootfs / d).mkdir(parents=True)
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is not installed (./dev.sh setup installs it)"
    shutil.copy(busybox, rootfs / "bin" / "busybox")
    for tool in ("sh", "sleep", "echo", "cat"):
        (rootfs / "bin" / tool).symlink_to("busybox")
    c = Container(tmp_path / "bundle", tmp_path / "state", f"refcr-test-{os.getpid()}-{next(_ids)}")
    subprocess.run([shutil.which("runc") or "runc", "spec"], cwd=c.bundle, check=True)
    spec = json.loads((c.bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sh", "-c", LOOP]
    spec["root"]["readonly"] = False
    (c.bundle / "config.json").write_text(json.dumps(spec))
    yield c
    c.runc("kill", c.id, "KILL", check=False)
    for _ in range(50):
        if c.runc("delete", "-f", c.id, check=False).returncode == 0 or c.status() == "gone":
            break
        time.sleep(0.1)


def test_checkpoint_and_restore(container: Container, tmp_path: Path) -> None:
    container.start()
    before = container.wait_count(5)
    container.runc("checkpoint", "--image-path", str(tmp_path / "img"), container.id)
    assert container.status() == "gone"
    dumped = container.count()
    assert dumped >= before
    time.sleep(0.3)
    assert container.count() == dumped                  # nothing runs while it is checkpointed
    container.restore(tmp_path / "img")
    after = container.wait_count(dumped)
    assert after > dumped                               # counts on from the dumped value, not from 1
    out = container.runc("exec", container.id, "cat", "/tmp/count").stdout
    assert int(out) >= after
    with open(f"/proc/{json.loads(container.runc('state', container.id).stdout)['pid']}/cgroup") as f:
        assert f"/{container.id}" in f.read()           # back in the container's cgroups


def test_leave_running(container: Container, tmp_path: Path) -> None:
    container.start()
    container.runc("checkpoint", "--leave-running", "--image-path", str(tmp_path / "img"), container.id)
    assert container.status() == "running"
    n = container.wait_count(container.count())
    container.runc("kill", container.id, "KILL")
    deadline = time.monotonic() + 10
    while container.status() == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    container.runc("delete", container.id)
    container.restore(tmp_path / "img")
    assert container.wait_count(0) > 0
    assert n > 0


def test_pre_dump_chain(container: Container, tmp_path: Path) -> None:
    """runc's pre-copy migration: CRIU refuses it on this kernel (no soft-dirty);
    refcr tracks memory with uffd-wp (or page digests) instead."""
    container.start()
    container.runc("checkpoint", "--pre-dump", "--image-path", str(tmp_path / "pre"), container.id)
    assert container.status() == "running"
    container.runc("checkpoint", "--parent-path", "../pre", "--image-path", str(tmp_path / "img"), container.id)
    images = ImageDir(str(tmp_path / "img"))
    root_pid = images.read("pstree")[0].pid
    head, _ = images.read_head("pagemap", id=root_pid)
    assert head.pages_in_parent > 0                     # an incremental image: unchanged pages in ../pre
    dumped = container.count()
    container.restore(tmp_path / "img")
    assert container.wait_count(dumped) > dumped
