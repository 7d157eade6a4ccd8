"""External resources handed in at restore (--inherit-fd), and strict
checking of every external/inherit option."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import Processes, assert_one_line_error
from zdtm.harness import procs

ECHO = r"""
import sys
out = open(sys.argv[1], "a", buffering=1)
for line in sys.stdin:
    out.write("got " + line)
"""


def refcr(*args: str, cwd: Path, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, pass_fds=pass_fds, timeout=120)


def wait_for(path: Path, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never showed up in {path}"
        time.sleep(0.02)


def test_inherit_fd_pipe00(tmp_path: Path, processes: Processes) -> None:
    """The task reads a pipe whose writer is outside the tree; after restore it
    reads the pipe the caller hands in with --inherit-fd."""
    out = tmp_path / "out"
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-c", ECHO, str(out)], stdin=r, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path)
    processes.pids.add(p.pid)
    os.close(r)
    os.write(w, b"one\n")
    wait_for(out, "got one")
    ino = os.fstat(w).st_ino
    res = refcr("dump", "-t", str(p.pid), "-D", "img", "-o", "dump.log", "-v4", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    p.wait(timeout=10)
    os.close(w)                          # the old pipe is gone for good
    r2, w2 = os.pipe()
    res = refcr("restore", "-D", "img", "-o", "restore.log", "-v4", "-d",
                "--inherit-fd", f"fd[{r2}]:pipe:[{ino}]", cwd=tmp_path, pass_fds=(r2,))
    assert res.returncode == 0, res.stderr
    os.close(r2)
    os.write(w2, b"two\n")
    wait_for(out, "got two")
    assert os.readlink(f"/proc/{p.pid}/fd/0") == f"pipe:[{os.fstat(w2).st_ino}]"
    os.close(w2)                         # EOF: the restored task finishes its loop and exits
    assert procs.wait_exit(p.pid, 10).status == 0


@pytest.mark.parametrize("option, says", [
    ("3:pipe:[1]", "expected fd[N]:RESOURCE"),
    ("fd[x]:pipe:[1]", "expected fd[N]:RESOURCE"),
    ("fd[0]:pipe[1]", "unknown resource"),
    ("fd[0]:relative/path", "unknown resource"),
    ("fd[987]:pipe:[1]", "no open fd 987"),
    ("fd[0]:pipe:[1]", "matches nothing"),
])
def test_external_option_errors(tmp_path: Path, processes: Processes, option: str, says: str) -> None:
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.1)
    assert refcr("dump", "-t", str(p.pid), "-D", "img", cwd=tmp_path).returncode == 0
    p.wait(timeout=10)
    res = refcr("restore", "-D", "img", "-d", "--inherit-fd", option, cwd=tmp_path)
    assert_one_line_error(res)
    assert option in res.stderr and says in res.stderr, res.stderr
    assert procs.read_stat(p.pid) is None, "a refused restore must leave nothing behind"
