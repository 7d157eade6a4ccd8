"""CRIU's RPC protocol (refcr/rpc): `refcr swrk FD`, `refcr service` and the
Python API, on real processes.

Every request type is asked; dumps and restores are real and the restored
process is checked to count on; malformed, truncated and unknown input gets
`success: false` with one line naming it; a client that refuses a
notification or hangs up mid-dump leaves its process running as before.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from refcr.pb import rpc_pb2
from refcr.rpc import wire
from refcr.rpc.client import Client, RpcError
from support import Processes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dump and restore need root")

# Counts in memory; SIGUSR1 makes it write the count to the file named in argv[1].
COUNTER = r"""
import os, signal, sys, time
n = 0
def report(sig, frame):
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(f"{n}\n")
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.signal(signal.SIGUSR1, report)
report(None, None)              # ready: the handler is in place
while True:
    n += 1
    time.sleep(0.001)
"""

# Writes a line to its stdout (a pipe) when it is ready and on every SIGUSR1.
PIPE_WRITER = r"""
import os, signal, time
signal.signal(signal.SIGUSR1, lambda sig, frame: os.write(1, b"1\n"))
os.write(1, b"ready\n")
while True:
    time.sleep(1)
"""


class Counter:
    """A process counting in memory, asked for its count by signal."""

    def __init__(self, processes: Processes, tmp: Path) -> None:
        self.report = Path(tempfile.mkdtemp(prefix="refcr-counter-")) / "count"    # not in an image dir
        self.proc = subprocess.Popen([sys.executable, "-c", COUNTER, str(self.report)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        processes.pids.add(self.proc.pid)
        self.pid = self.proc.pid
        self._wait_report()

    def _wait_report(self) -> int:
        deadline = time.monotonic() + 30
        while not self.report.exists():
            assert time.monotonic() < deadline, "the counter did not answer"
            time.sleep(0.01)
        return int(self.report.read_text())

    def count(self, pid: int | None = None) -> int:
        self.report.unlink(missing_ok=True)
        os.kill(pid or self.pid, signal.SIGUSR1)
        return self._wait_report()

    def blocked_mask(self) -> str:
        with open(f"/proc/{self.pid}/status") as f:
            return next(line for line in f if line.startswith("SigBlk:"))


@pytest.fixture
def counter(processes: Processes, tmp_path: Path) -> Iterator[Counter]:
    c = Counter(processes, tmp_path)
    yield c
    shutil.rmtree(c.report.parent, ignore_errors=True)


def _raw(sock: socket.socket, data: bytes) -> rpc_pb2.criu_resp:
    sock.send(data)
    return wire.decode(rpc_pb2.criu_resp, sock.recv(1 << 16))


@pytest.fixture
def swrk():
    """A `refcr swrk` on one end of a socketpair; the test gets the other end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child = subprocess.Popen([sys.executable, "-m", "refcr", "swrk", str(theirs.fileno())],
                             pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    theirs.close()
    yield ours
    ours.close()
    child.wait(timeout=60)


def test_version_and_features() -> None:
    c = Client()
    v = c.version()
    assert (v.major_number, v.minor_number, v.name) == (4, 2, "refcr")
    got = c.features(mem_track=True, lazy_pages=True, pidfd_store=True)
    assert got == {"mem_track": True, "lazy_pages": False, "pidfd_store": False}


def test_check() -> None:
    Client().check()


def test_informational_requests_share_a_connection(swrk: socket.socket) -> None:
    for kind in (rpc_pb2.VERSION, rpc_pb2.FEATURE_CHECK, rpc_pb2.VERSION):
        resp = _raw(swrk, rpc_pb2.criu_req(type=kind).SerializeToString())
        assert resp.type == kind and resp.success


@pytest.mark.parametrize("kind", [rpc_pb2.PAGE_SERVER, rpc_pb2.PAGE_SERVER_CHLD, rpc_pb2.CPUINFO_DUMP,
                                  rpc_pb2.CPUINFO_CHECK, rpc_pb2.NOTIFY, rpc_pb2.EMPTY])
def test_unsupported_requests_are_refused(swrk: socket.socket, kind: int) -> None:
    resp = _raw(swrk, rpc_pb2.criu_req(type=kind).SerializeToString())
    assert not resp.success and resp.type == kind
    assert resp.cr_errmsg.startswith("refcr: error: ") and "\n" not in resp.cr_errmsg


def test_wait_pid_of_a_stranger(swrk: socket.socket) -> None:
    resp = _raw(swrk, rpc_pb2.criu_req(type=rpc_pb2.WAIT_PID, pid=1).SerializeToString())
    assert not resp.success and resp.cr_errno == 10 and "not a child" in resp.cr_errmsg


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x08", b"\x12\x05\x08", random.Random(7).randbytes(300)],
                         ids=["ff", "type-only", "short-opts", "random"])
def test_malformed_packets(swrk: socket.socket, data: bytes) -> None:
    try:
        resp = _raw(swrk, data)
    except wire.ProtocolError:          # random bytes may decode as a response-less request: tolerated
        return
    assert not resp.success
    assert "\n" not in resp.cr_errmsg and "Traceback" not in resp.cr_errmsg


def test_unknown_and_refused_fields(counter: Counter, tmp_path: Path) -> None:
    opts = rpc_pb2.criu_opts(images_dir_fd=-1, images_dir=str(tmp_path), pid=counter.pid)
    data = opts.SerializeToString() + bytes([0xc0, 0x3e, 0x01])     # + field 1000 (varint 1): from a newer client
    raw = rpc_pb2.criu_req(type=rpc_pb2.DUMP).SerializeToString() + b"\x12" + bytes([len(data)]) + data
    c = Client()
    with pytest.raises(RpcError, match="criu_opts field 1000 is not known"):
        c.call(wire.decode(rpc_pb2.criu_req, raw))
    with pytest.raises(RpcError, match=r"criu_opts.lazy_pages: refused by refcr \(no lazy pages\)"):
        c.dump(counter.pid, str(tmp_path / "a"), lazy_pages=True)
    with pytest.raises(RpcError, match="criu_opts.log_file '../x': a file name"):
        c.dump(counter.pid, str(tmp_path), log_file="../x")
    with pytest.raises(RpcError, match="does not dump its own client"):
        c.call(rpc_pb2.criu_req(type=rpc_pb2.DUMP,
                                opts=rpc_pb2.criu_opts(images_dir_fd=-1, images_dir=str(tmp_path))))
    assert os.listdir(tmp_path) == ["a"] and os.listdir(tmp_path / "a") == []
    assert counter.count() > 0      # refusals never touched it


def test_dump_and_restore_with_notifications(counter: Counter, tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    c = Client(on_notify=lambda script, pid: seen.append((script, pid)) or True)
    before = counter.count()
    c.dump(counter.pid, str(tmp_path / "img"), notify_scripts=True, log_file="dump.log", log_level=4)
    assert [s for s, _ in seen] == ["pre-dump", "post-dump"]
    assert seen[1][1] == counter.pid
    counter.proc.wait(timeout=10)                       # dumped without leave_running: gone
    assert (tmp_path / "img" / "dump.log").stat().st_size > 0
    seen.clear()
    pid = c.restore(str(tmp_path / "img"), notify_scripts=True, log_file="restore.log")
    assert pid == counter.pid
    assert [s for s, _ in seen] == ["pre-restore", "setup-namespaces", "post-setup-namespaces",
                                    "post-restore", "pre-resume", "post-resume"]
    assert all(p == pid for s, p in seen[1:])
    assert counter.count(pid) > before


def test_leave_running_and_pre_dump_chain(counter: Counter, tmp_path: Path) -> None:
    c = Client(local=True)
    c.pre_dump(counter.pid, str(tmp_path / "pre"), track_mem=True)
    c.dump(counter.pid, str(tmp_path / "d1"), track_mem=True, parent_img="../pre", leave_running=True)
    assert counter.count() > 0
    c.dump(counter.pid, str(tmp_path / "d2"), parent_img="../d1")
    counter.proc.wait(timeout=10)
    pid = c.restore(str(tmp_path / "d2"))
    assert counter.count(pid) > 0


def test_refused_notification_resumes_the_process(counter: Counter, tmp_path: Path) -> None:
    mask = counter.blocked_mask()
    c = Client(on_notify=lambda script, pid: script != "post-dump")
    with pytest.raises(RpcError, match="refused notification post-dump"):
        c.dump(counter.pid, str(tmp_path / "img"), notify_scripts=True)
    assert counter.proc.poll() is None and counter.blocked_mask() == mask
    assert counter.count() > 0


def test_client_gone_mid_dump_resumes_the_process(counter: Counter, tmp_path: Path, swrk: socket.socket) -> None:
    """The client hangs up at the first notification: the dump fails, the process runs on."""
    mask = counter.blocked_mask()
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    req = rpc_pb2.criu_req(type=rpc_pb2.DUMP)
    req.opts.images_dir_fd, req.opts.pid, req.opts.notify_scripts = fd, counter.pid, True
    swrk.send(req.SerializeToString())
    note = wire.decode(rpc_pb2.criu_resp, swrk.recv(1 << 16))
    assert note.type == rpc_pb2.NOTIFY and note.notify.script == "pre-dump"
    os.close(fd)
    swrk.close()
    deadline = time.monotonic() + 30
    while not (tmp_path / "INCOMPLETE").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counter.proc.poll() is None and counter.blocked_mask() == mask
    assert counter.count() > 0


def test_client_gone_without_notifications(counter: Counter, tmp_path: Path) -> None:
    """Without notify_scripts the server still checks the client at each action
    moment: a client that hung up right after asking gets no dump."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    req = rpc_pb2.criu_req(type=rpc_pb2.DUMP)
    req.opts.images_dir_fd, req.opts.images_dir, req.opts.pid = -1, str(tmp_path), counter.pid
    ours.send(req.SerializeToString())
    ours.close()
    subprocess.run([sys.executable, "-m", "refcr", "swrk", str(theirs.fileno())], pass_fds=[theirs.fileno()],
                   check=True, timeout=60, stderr=subprocess.DEVNULL)
    assert counter.proc.poll() is None and counter.count() > 0
    assert (tmp_path / "INCOMPLETE").exists()


def test_service(counter: Counter, tmp_path: Path) -> None:
    address = str(tmp_path / "svc.sock")
    server = subprocess.Popen([sys.executable, "-m", "refcr", "service", "--address", address,
                               "--pidfile", str(tmp_path / "svc.pid")], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(tmp_path / "svc.pid") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert oct(os.stat(address).st_mode & 0o777) == "0o600"
        c = Client(service=address)
        assert c.version().name == "refcr"
        c.dump(counter.pid, str(tmp_path / "img"))
        counter.proc.wait(timeout=10)
        pid = c.restore(str(tmp_path / "img"))
        assert counter.count(pid) > 0
        # a second server on the same address is refused while the first listens
        res = subprocess.run([sys.executable, "-m", "refcr", "service", "--address", address],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1 and "another server is listening" in res.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not os.path.exists(address)


def test_inherit_fd_and_restore_sibling(processes: Processes, tmp_path: Path) -> None:
    """The client hands its own pipe in for the dumped one (runc's stdio), and
    with rst_sibling the restored root is the client's child."""
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", PIPE_WRITER], stdin=subprocess.DEVNULL, stdout=w,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    processes.pids.add(proc.pid)
    os.close(w)
    assert os.read(r, 64) == b"ready\n"
    ino = os.fstat(r).st_ino
    c = Client(local=True)
    c.dump(proc.pid, str(tmp_path), external=[])
    proc.wait(timeout=10)
    os.close(r)
    r2, w2 = os.pipe()
    pid = c.restore(str(tmp_path), rst_sibling=True, inherit_fd=[(f"pipe:[{ino}]", w2)])
    os.close(w2)
    with open(f"/proc/{pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid == os.getpid()
    os.kill(pid, signal.SIGUSR1)
    assert os.read(r2, 64) == b"1\n"        # through the pipe the client handed in
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_manage_cgroups_soft(counter: Counter, tmp_path: Path) -> None:
    """The tree comes back in the cgroup it was dumped in (created if missing), and
    with cg_root in the one the caller maps it to."""
    from refcr.kernel import cgroup
    mounts = cgroup.hierarchies()
    ctrl = next((c for c in ("pids", "") if c in mounts), None)
    assert ctrl is not None, f"no pids or v2 cgroup hierarchy mounted: {mounts}"
    base = Path(mounts[ctrl])
    name = f"refcr-test-{os.getpid()}"
    made = [base / name, base / f"{name}-moved"]
    made[0].mkdir()
    try:
        (made[0] / "cgroup.procs").write_text(f"{counter.pid}\n")
        c = Client(local=True)
        c.dump(counter.pid, str(tmp_path / "img"), manage_cgroups=True, leave_running=True)
        counter.proc.kill()
        counter.proc.wait(timeout=10)
        _rmdir_when_empty(made[0])                       # gone: a soft restore makes it again
        pid = c.restore(str(tmp_path / "img"), manage_cgroups=True)

        def where(p: int) -> str:
            with open(f"/proc/{p}/cgroup") as f:
                return next(line.rstrip().split(":", 2)[2] for line in f
                            if line.split(":", 2)[1] == ctrl)
        assert where(pid) == f"/{name}"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pid = c.restore(str(tmp_path / "img"), cg_root=[rpc_pb2.cgroup_root(ctrl=ctrl, path=f"/{name}-moved")])
        assert where(pid) == f"/{name}-moved"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    finally:
        for d in made:
            if d.exists():
                _rmdir_when_empty(d)


def _rmdir_when_empty(d: Path) -> None:
    """rmdir of a cgroup whose last task was just killed (it leaves a moment later)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            d.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise OSError(f"{d}: still has tasks {(d / 'cgroup.procs').read_text().split()}") from None
            time.sleep(0.05)
