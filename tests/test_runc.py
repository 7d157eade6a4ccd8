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
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from refcr.images.imagedir import ImageDir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

# the count is written to a new file and renamed over the old: never seen half-written
LOOP = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done"
_ids = itertools.count()


def _refcr() -> str:
    exe = Path(sys.executable).with_name("refcr")
    assert exe.exists(), f"{exe}: refcr's console script (pip install -e . makes it)"
    return str(exe)


def _errors(log: Path) -> str:
    """The log's warnings and errors, and its last lines."""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join([x for x in lines if " E: " in x or " W: " in x][-20:] + lines[-5:])


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
        # in a private mount namespace: runc's mounts (criu-root at restore) must not show in the
        # host's, which the zdtm ns scenarios running beside us copy
        res = subprocess.run(["unshare", "--mount", "--propagation", "private",
                              runc, "--root", str(self.state), "--criu", _refcr(), *args],
                             cwd=self.bundle, stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            logs = "".join(f"\n--- {p}:\n{_errors(p)}" for p in self.bundle.parent.glob("*/*.log"))
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
    for tool in ("sh", "sleep", "echo", "cat", "mv", "ps", "ls"):
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
    # runc passes its freezer cgroup (freeze_cgroup): the tree was frozen through it
    assert f"froze the cgroup /sys/fs/cgroup/freezer/{container.id}," in (tmp_path / "img" / "dump.log").read_text()
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
    assert f"froze the cgroup /sys/fs/cgroup/freezer/{container.id}," in (tmp_path / "img" / "dump.log").read_text()
    assert Path(f"/sys/fs/cgroup/freezer/{container.id}/freezer.state").read_text().strip() == "THAWED"
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


class ConsoleSocket:
    """What a runtime's caller runs for `terminal: true`: a unix socket on which
    runc hands over the master of the container's console (SCM_RIGHTS)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.master = -1
        self.thread = threading.Thread(target=self._take, daemon=True)
        self.thread.start()

    def _take(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
            self.master = fds[0]

    def wait(self) -> int:
        self.thread.join(timeout=60)
        assert self.master >= 0, "runc handed no console master over the console socket"
        self.sock.close()
        return self.master

    def say(self, line: str, expect: str) -> None:
        """Type a line into the console and wait until the container's answer shows."""
        os.write(self.master, line.encode() + b"\n")
        self.wait_for(expect)

    def wait_for(self, expect: str) -> None:
        seen, deadline = b"", time.monotonic() + 30
        while expect.encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"the console shows {seen!r}, not {expect!r}"
            if select.select([self.master], [], [], left)[0]:
                seen += os.read(self.master, 4096)


def test_terminal_container(container: Container, tmp_path: Path) -> None:
    """`terminal: true`: the console's master is runc's caller's (outside the tree);
    refcr dumps the slave as an orphan pty and hands the new master to runc at
    restore, which passes it on to the new console socket."""
    spec = json.loads((container.bundle / "config.json").read_text())
    spec["process"]["terminal"] = True
    # the counter in the background, the console reader in front (a background job reads /dev/null)
    spec["process"]["args"] = ["sh", "-c", f"({LOOP}) & while read l; do echo got:$l; done"]
    (container.bundle / "config.json").write_text(json.dumps(spec))
    first = ConsoleSocket(tmp_path / "console1.sock")
    container.runc("run", "-d", "--console-socket", str(first.path), container.id, detached=True)
    first.wait()
    first.say("before", "got:before")
    dumped = container.wait_count(0)
    container.runc("checkpoint", "--image-path", str(tmp_path / "img"), container.id)
    os.close(first.master)
    second = ConsoleSocket(tmp_path / "console2.sock")
    container.runc("restore", "-d", "--console-socket", str(second.path), "--image-path", str(tmp_path / "img"),
                   container.id, detached=True)
    second.wait()
    second.say("after", "got:after")                # the same shell, through the new console
    container.runc("exec", container.id, "sh", "-c", "echo via-console > /dev/console")
    second.wait_for("via-console")                  # /dev/console is bound to the live pty again
    assert container.wait_count(dumped) > dumped
    os.close(second.master)


def test_tcp_connection_in_container(container: Container, tmp_path: Path) -> None:
    """A TCP connection inside the container's network namespace (nc to nc over
    its loopback) survives `checkpoint --tcp-established`: the receiver's file
    holds every number the sender sent, in order, none twice, across the restore."""
    spec = json.loads((container.bundle / "config.json").read_text())
    # (the listener's stdin is a pipe that stays open: at EOF on it, nc ends the connection)
    sender = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"
    spec["process"]["args"] = ["sh", "-c", "sleep 100000 | nc -l -p 5000 > /tmp/recv & sleep 0.5; "
                               f"({sender}) | nc 127.0.0.1 5000 & {LOOP}"]
    (container.bundle / "config.json").write_text(json.dumps(spec))
    for tool in ("nc",):
        (container.bundle / "rootfs" / "bin" / tool).symlink_to("busybox")
    container.start()
    recv = container.bundle / "rootfs" / "tmp" / "recv"

    def received() -> list[int]:
        return [int(x) for x in recv.read_text().split()] if recv.exists() else []

    deadline = time.monotonic() + 30
    while len(received()) < 5:
        if time.monotonic() > deadline:
            inside = container.runc("exec", container.id, "sh", "-c", "cat /proc/net/tcp; ps; ls -l /tmp",
                                    check=False)
            raise AssertionError(f"nothing comes through the connection: {received()}\n{inside.stdout}"
                                 f"{inside.stderr}")
        time.sleep(0.05)
    container.runc("checkpoint", "--tcp-established", "--image-path", str(tmp_path / "img"), container.id)
    dumped = received()
    container.runc("restore", "-d", "--tcp-established", "--image-path", str(tmp_path / "img"), container.id,
                   detached=True)
    deadline = time.monotonic() + 30
    while len(received()) < len(dumped) + 5:
        assert time.monotonic() < deadline, f"the connection carries nothing after restore: {received()[-5:]}"
        time.sleep(0.05)
    got = received()
    assert got == list(range(1, len(got) + 1)), f"lost or repeated numbers around {len(dumped)}: {got}"


def test_user_namespace_container(container: Container, tmp_path: Path) -> None:
    """A container with a user namespace of its own (root inside is 100000
    outside, as a rootless runtime sets it up with subordinate ids): runc runs
    it as root here, refcr dumps and restores the user namespace with it."""
    spec = json.loads((container.bundle / "config.json").read_text())
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    (container.bundle / "config.json").write_text(json.dumps(spec))
    rootfs = container.bundle / "rootfs"
    for p in [rootfs, *rootfs.rglob("*")]:
        os.lchown(p, 100000, 100000)                    # the container's root owns its rootfs
    for d in container.bundle.parents:                # uid 100000 must reach its rootfs
        if d in (Path("/tmp"), Path("/")):
            break
        d.chmod(d.stat().st_mode | 0o111)
    container.bundle.chmod(0o755)
    container.start()
    pid = json.loads(container.runc("state", container.id).stdout)["pid"]
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
    container.runc("checkpoint", "--image-path", str(tmp_path / "img"), container.id)
    assert (tmp_path / "img" / "userns.img").exists()
    dumped = container.count()
    container.restore(tmp_path / "img")
    assert container.wait_count(dumped) > dumped
    pid = json.loads(container.runc("state", container.id).stdout)["pid"]
    assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", "100000", "65536"]
    assert Path(f"/proc/{pid}/status").read_text().count("\t100000\t100000\t100000\t100000") == 2   # Uid, Gid
    out = container.runc("exec", container.id, "cat", "/tmp/count").stdout
    assert int(out) > dumped
