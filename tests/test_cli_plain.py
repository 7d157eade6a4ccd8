"""refcr on plain processes (outside zdtm), and the CLI's handling of bad input.

A Python interpreter that keeps counting, and ``sleep 1000``: each is started,
dumped (it must be gone), restored detached (same pid, running) and checked to
still work.  Then bad invocations must fail with exactly one line on stderr.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from support import Processes, assert_one_line_error

from zdtm.harness import procs

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120

COUNTER = r"""
import os, signal, sys
out = sys.argv[1]
n = 0
def report(*_):
    with open(out + ".tmp", "w") as f:
        f.write(str(n))
    os.rename(out + ".tmp", out)
signal.signal(signal.SIGUSR1, report)
report()
while True:
    n += 1
"""


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def refcr(*args: str, cwd: Path) -> CliResult:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    p = subprocess.run(
        [sys.executable, "-m", "refcr", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=TIMEOUT, start_new_session=True,
    )
    return CliResult(p.returncode, p.stdout, p.stderr)


def dump_and_restore(pid: int, popen: subprocess.Popen[bytes], work: Path) -> None:
    """refcr dump (process must be gone), refcr restore -d (same pid must run)."""
    images = work / "img"
    images.mkdir()
    res = refcr("dump", "-t", str(pid), "-D", str(images), "-o", str(work / "dump.log"), "-v4", cwd=work)
    assert res.returncode == 0, f"dump failed: {res.stderr.strip()}"
    # It was killed by the dump; reap it so its pid is free for the restore.
    popen.wait(timeout=10)
    assert not procs.is_alive(pid), f"{pid} still alive after dump"
    pidfile = work / "restore.pid"
    res = refcr("restore", "-D", str(images), "-o", str(work / "restore.log"), "-v4", "-d",
                "--pidfile", str(pidfile), cwd=work)
    assert res.returncode == 0, f"restore failed: {res.stderr.strip()}"
    assert pidfile.read_text().strip() == str(pid)
    assert procs.is_alive(pid), f"restored {pid} is not running"


def read_count(pid: int, path: Path, after: int = -1) -> int:
    """Ask the counter for its count (SIGUSR1) and wait for a new report."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime_ns != before:
            n = int(path.read_text())
            if n > after:
                return n
        time.sleep(0.01)
    raise AssertionError(f"counter {pid} did not report (alive: {procs.is_alive(pid)})")


def test_python_counter_survives(tmp_path: Path, processes: Processes) -> None:
    count = tmp_path / "count"
    p = processes.spawn([sys.executable, "-c", COUNTER, str(count)], tmp_path)
    deadline = time.monotonic() + 10
    while not count.exists():
        assert time.monotonic() < deadline and p.poll() is None, "counter did not start"
        time.sleep(0.01)
    time.sleep(0.3)
    n1 = read_count(p.pid, count)
    assert n1 > 0
    dump_and_restore(p.pid, p, tmp_path)
    n2 = read_count(p.pid, count, after=n1)  # continued from where it was, not from 0
    time.sleep(0.1)
    n3 = read_count(p.pid, count, after=n2)  # and is still counting
    assert n1 < n2 < n3
    os.kill(p.pid, signal.SIGKILL)
    assert procs.wait_exit(p.pid, 10).status is not None, "restored process is not our child"


def test_sleep_survives(tmp_path: Path, processes: Processes) -> None:
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.2)
    cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes()
    dump_and_restore(p.pid, p, tmp_path)
    assert Path(f"/proc/{p.pid}/cmdline").read_bytes() == cmdline
    st = procs.read_stat(p.pid)
    assert st is not None and st.state == "S", f"restored sleep in state {st and st.state}"
    os.kill(p.pid, signal.SIGTERM)
    status = procs.wait_exit(p.pid, 10).status
    assert status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


# ---- bad input: non-zero exit, exactly one line on stderr, no traceback -----------

def unused_pid() -> int:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    for pid in range(pid_max - 1, 1, -1):
        if not Path(f"/proc/{pid}").exists():
            return pid
    raise AssertionError("no free pid")


def test_dump_nonexistent_pid(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    assert_one_line_error(refcr("dump", "-t", str(unused_pid()), "-D", str(tmp_path / "img"), cwd=tmp_path))


def test_restore_missing_dir(tmp_path: Path) -> None:
    assert_one_line_error(refcr("restore", "-D", str(tmp_path / "missing"), "-d", cwd=tmp_path))


def test_dump_into_non_empty_dir(tmp_path: Path, processes: Processes) -> None:
    images = tmp_path / "img"
    images.mkdir()
    (images / "something").write_text("already here\n")
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.1)
    assert_one_line_error(refcr("dump", "-t", str(p.pid), "-D", str(images), cwd=tmp_path))
    st = procs.read_stat(p.pid)
    assert st is not None and st.state == "S", "a refused dump must leave the process running"
    assert (images / "something").read_text() == "already here\n"


def test_dump_kernel_thread(tmp_path: Path) -> None:
    assert procs.read_stat(2) is not None and procs.read_stat(2).comm == "kthreadd"
    (tmp_path / "img").mkdir()
    assert_one_line_error(refcr("dump", "-t", "2", "-D", str(tmp_path / "img"), cwd=tmp_path))
