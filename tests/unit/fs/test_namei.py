"""fs/namei.py: the contained lookup of paths an image names."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from refcr.errors import RestoreError
from refcr.fs import namei
from refcr.fs.namei import Root


class _RootAt(Root):
    """A Root whose root is a test directory (as /proc/PID/root is for a tree)."""

    def __init__(self, top: Path) -> None:
        super().__init__()
        self._fd = os.open(top, namei.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


@pytest.fixture
def root(tmp_path: Path) -> _RootAt:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("inside\n")
    r = _RootAt(tmp_path)
    yield r
    r.close()


@pytest.mark.parametrize("bad", ["etc/passwd", "../etc/passwd", "", "/etc/\0x"])
def test_relative_and_nul_refused(root: Root, bad: str) -> None:
    with pytest.raises(RestoreError):
        root.open(bad, os.O_RDONLY, "file")


def test_dotdot_and_absolute_symlinks_stay_inside(root: _RootAt, tmp_path: Path) -> None:
    os.symlink("/etc", tmp_path / "link")            # absolute: resolves in the root, not in refcr's /
    for path in ("/../../../etc/passwd", "/link/passwd"):
        fd = root.open(path, os.O_RDONLY, "file", {stat.S_IFREG})
        try:
            assert os.read(fd, 100) == b"inside\n"
        finally:
            os.close(fd)


def test_magic_links_refused(root: Root) -> None:
    with pytest.raises(OSError):
        Root().open("/proc/self/fd/0", os.O_RDONLY, "file")


def test_never_creates_or_truncates(root: _RootAt, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        root.open("/new", os.O_RDWR | os.O_CREAT, "file")
    assert not (tmp_path / "new").exists()
    os.close(root.open("/etc/passwd", os.O_RDWR | os.O_TRUNC, "file", {stat.S_IFREG}))
    assert (tmp_path / "etc" / "passwd").read_text() == "inside\n"
    os.close(root.open("/etc/passwd", os.O_RDWR | os.O_CREAT | os.O_TRUNC, "area", namei.MAPPABLE))
    assert (tmp_path / "etc" / "passwd").read_text() == "inside\n"


def test_wrong_type_refused_before_open(root: _RootAt, tmp_path: Path) -> None:
    """A FIFO where a regular file is expected is refused, not opened (which would block)."""
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(RestoreError, match="FIFO"):
        root.open("/fifo", os.O_RDONLY, "file", {stat.S_IFREG})


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_probes_kept_bounded_and_closed(root: _RootAt, tmp_path: Path) -> None:
    """One lookup per path serves every open of it; at most PROBES_KEPT probes
    stay open, and close() closes them (fds of refcr's own)."""
    before = _open_fds()
    for i in range(namei.PROBES_KEPT + 10):
        (tmp_path / f"f{i}").write_text("x")
        for _ in range(3):
            os.close(root.open(f"/f{i}", os.O_RDONLY, "file", {stat.S_IFREG}))
    assert _open_fds() - before == namei.PROBES_KEPT
    root.close()
    assert _open_fds() - before == -1          # the root's own fd as well


def test_kept_probe_still_checks_the_type(root: _RootAt) -> None:
    os.close(root.open("/etc/passwd", os.O_RDONLY, "file", {stat.S_IFREG}))
    with pytest.raises(RestoreError, match="not the kind of file"):
        root.open("/etc/passwd", os.O_RDONLY, "fifo", {stat.S_IFIFO})
