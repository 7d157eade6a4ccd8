"""The dump of a removed device node (fs/regfile.py): refused by name when
/dev lacks its node (images/devnodes.py) or when its open holds driver
state a new open would not have; else a ghost with its type, number, mode."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from refcr.errors import UnsupportedObject
from refcr.fs import files, regfile
from refcr.fs.fd import fd_target
from refcr.images import devnodes
from refcr.options import Options
from refcr.pb import filekinds_pb2


def _removed_node(where: Path, kind: int, rdev: int, flags: int) -> int:
    """An fd of a node made at *where* and removed at once."""
    os.mknod(where, kind | 0o640, rdev)
    try:
        return os.open(where, flags | os.O_CLOEXEC)
    finally:
        os.unlink(where)


def _dump(fd: int) -> filekinds_pb2.GhostFileEntry:
    t, kind = fd_target(os.getpid(), fd), regfile.GhostFileKind()
    ctx = files.dump_context(Options())
    assert kind.claims(t, ctx)
    return kind.dump(t, ctx)


def test_dump_refuses_a_node_dev_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dev").mkdir()
    monkeypatch.setattr(devnodes, "DEV", str(tmp_path / "dev"))     # a /dev without zero
    fd = _removed_node(tmp_path / "zero", stat.S_IFCHR, os.makedev(1, 5), os.O_RDONLY)
    try:
        with pytest.raises(UnsupportedObject, match=r"fd \d+ \(.*/zero \(deleted\)\): removed character "
                                                    r"device 1:5: no character node 1:5 in .*/dev"):
            _dump(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind,host", [(stat.S_IFCHR, "/dev/zero"), (stat.S_IFBLK, "/dev/loop7")])
def test_dump_keeps_type_and_number(kind: int, host: str, tmp_path: Path) -> None:
    if not os.path.exists(host):
        pytest.skip(f"no {host} here")
    rdev = os.stat(host).st_rdev
    fd = _removed_node(tmp_path / "node", kind, rdev, os.O_RDONLY)
    try:
        e = _dump(fd)
    finally:
        os.close(fd)
    assert (stat.S_IFMT(e.mode), e.rdev, stat.S_IMODE(e.mode)) == (kind, rdev, 0o640)
    assert not e.data and not e.remap


# TUNSETIFF with IFF_TAP | IFF_NO_PI, in a network namespace of its own (unshare -n)
ATTACHED_TUN = r"""
import fcntl, os, stat, struct, sys
from refcr.errors import UnsupportedObject
from refcr.fs import regfile
from refcr.fs.fd import fd_target
node = sys.argv[1]
os.mknod(node, stat.S_IFCHR | 0o600, os.stat("/dev/net/tun").st_rdev)
fd = os.open(node, os.O_RDWR)
os.unlink(node)
regfile._check_device(fd_target(os.getpid(), fd))       # not attached yet: like a new open
fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH22x", b"refcrtap0", 0x0002 | 0x1000))
try:
    regfile._check_device(fd_target(os.getpid(), fd))
except UnsupportedObject as exc:
    print(exc)
"""


def test_dump_refuses_per_open_driver_state(tmp_path: Path) -> None:
    """An attached tun fd shows its interface in fdinfo ("iff:"); a new open
    of the remade node would be attached to none."""
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun here")
    res = subprocess.run(["unshare", "-n", sys.executable, "-c", ATTACHED_TUN, str(tmp_path / "tun")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "removed character device 10:200 holds per-open driver state ('iff: refcrtap0')" in res.stdout
