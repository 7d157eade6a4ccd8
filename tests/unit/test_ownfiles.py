"""zdtm/harness/ownfiles.py: the test's own output file's offset may move
forward across C/R (the test logged), never back; other fds are untouched."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from zdtm.harness import ownfiles, snapshot


def _sleeper(fd: int) -> subprocess.Popen:
    """`sleep` with fd as its stdout, once it sleeps (its exec done)."""
    p = subprocess.Popen(["sleep", "60"], stdout=fd, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{p.pid}/stat").read_text().split(") ")[1][0] != "S" or \
            Path(f"/proc/{p.pid}/comm").read_text().strip() != "sleep":
        assert time.monotonic() < deadline, "sleep did not start"
        time.sleep(0.01)
    return p


def _states(tmp_path: Path, flags: int, move) -> tuple[str, str]:  # noqa: ANN001
    """(plain diff, diff after ownfiles.normalise), each as one text."""
    out = tmp_path / "t.out"
    out.write_bytes(b"0123456789")
    fd = os.open(out, flags)
    os.lseek(fd, 5, os.SEEK_SET)
    p = _sleeper(fd)
    try:
        before = snapshot.take_tree(p.pid)
        move(fd)
        after = snapshot.take_tree(p.pid)
        plain = snapshot.diff(before, after)
        b, a = ownfiles.normalise(before, after, out)
        return "\n".join(plain), "\n".join(snapshot.diff(b, a))
    finally:
        p.kill()
        p.wait()
        os.close(fd)


def test_offset_moved_forward_is_not_a_difference(tmp_path: Path) -> None:
    got = _states(tmp_path, os.O_WRONLY | os.O_APPEND, lambda fd: os.write(fd, b"logged after restore\n"))
    # the plain diff sees it, the normalised one does not
    assert "pos=5 " in got[0] and "pos=31 " in got[0] and got[1] == ""


def test_offset_moved_back_still_is(tmp_path: Path) -> None:
    got = _states(tmp_path, os.O_RDWR, lambda fd: os.lseek(fd, 0, os.SEEK_SET))
    assert "pos=5" in got[1] and "pos=0" in got[1], got


def test_other_files_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(b"x" * 10)
    fd = os.open(other, os.O_WRONLY | os.O_APPEND)
    p = _sleeper(fd)
    try:
        before = snapshot.take_tree(p.pid)
        os.write(fd, b"more")
        after = snapshot.take_tree(p.pid)
        b, a = ownfiles.normalise(before, after, tmp_path / "t.out")
        assert "pos=14" in "\n".join(snapshot.diff(b, a))
    finally:
        p.kill()
        p.wait()
        os.close(fd)
