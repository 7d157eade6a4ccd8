"""--shell-job: a job of an interactive session, restored onto another terminal.

A tiny "shell" runs on a pexpect pty: it forks the job into a process group
of its own and makes that the terminal's foreground group, as a shell does.
The job answers every line it reads.  refcr dumps the job with --shell-job
(its session and terminal belong to the shell, outside the dump), then
`refcr restore --shell-job` runs on a NEW pexpect pty: the job must answer
through that terminal, have it as its controlling terminal, and be its
foreground process group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from support import Processes, assert_one_line_error
from zdtm.harness import procs

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60
# Terminal tests share the host's pty index space with zdtm's pty scenarios:
# with --dist loadgroup they all run on one worker, one after another.
pytestmark = pytest.mark.xdist_group("terminals")

JOB = r"""
import os, sys
while os.tcgetpgrp(0) != os.getpgrp():      # wait until the shell hands us the terminal
    pass
print("job ready", os.getpid(), flush=True)
for line in sys.stdin:
    print("answer:" + line.strip().upper(), flush=True)
"""

SHELL = r"""
import os, signal, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]])
os.setpgid(pid, pid)
os.tcsetpgrp(0, pid)
os.waitpid(pid, 0)
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), e.get("PYTHONPATH", "")) if p)
    return e


def stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()       # [0] is field 3 (state)


def tty_of(pid: int) -> tuple[int, int, int]:
    """(tty_nr, tpgid, sid) of a process."""
    f = stat_fields(pid)
    return int(f[7 - 3]), int(f[8 - 3]), int(f[6 - 3])


def test_shell_job_moves_to_a_new_terminal(tmp_path: Path, processes: Processes) -> None:
    shell = pexpect.spawn(sys.executable, ["-c", SHELL, JOB], cwd=str(tmp_path), env=env(),
                          timeout=TIMEOUT, encoding="utf-8")
    processes.pids.add(shell.pid)
    try:
        shell.expect(r"job ready (\d+)")
        job = int(shell.match.group(1))
        shell.sendline("before")
        shell.expect("answer:BEFORE")
        old_tty, tpgid, _ = tty_of(job)
        assert tpgid == job and old_tty != 0, "the job is not the foreground of its terminal"

        images = tmp_path / "img"
        images.mkdir()
        res = subprocess.run([sys.executable, "-m", "refcr", "dump", "-t", str(job), "-D", str(images),
                              "--shell-job", "-o", str(tmp_path / "dump.log"), "-v4"],
                             cwd=tmp_path, env=env(), stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=TIMEOUT, start_new_session=True)
        assert res.returncode == 0, f"dump failed: {res.stderr.strip()}"
        shell.expect(pexpect.EOF)       # the job is gone, so the shell ends
    except BaseException:
        shell.close(force=True)
        raise
    assert not procs.is_alive(job)
    # The old terminal stays open (so the new one cannot be the same pty).

    restore = pexpect.spawn(sys.executable, ["-m", "refcr", "restore", "-D", str(images), "--shell-job",
                                             "-o", str(tmp_path / "restore.log"), "-v4"],
                            cwd=str(tmp_path), env=env(), timeout=TIMEOUT, encoding="utf-8")
    processes.pids.add(restore.pid)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not _released(job):
            assert restore.isalive() and time.monotonic() < deadline, \
                f"restore did not bring {job} back: {restore.before!r}"
            time.sleep(0.05)
        restore.sendline("after")
        restore.expect("answer:AFTER")

        new_tty, tpgid, sid = tty_of(job)
        caller_tty, _, caller_sid = tty_of(restore.pid)
        assert new_tty == caller_tty != old_tty, "the job's controlling terminal is not the new one"
        assert sid == caller_sid, "the job is not in the session of refcr's caller"
        assert tpgid == job == os.getpgid(job), "the job is not the foreground process group"

        restore.sendline("again")
        restore.expect("answer:AGAIN")
        os.kill(job, signal.SIGTERM)
        restore.expect(pexpect.EOF)     # refcr restore waits for its root and then exits
    finally:
        restore.close(force=True)
        shell.close(force=True)


def _released(pid: int) -> bool:
    """The restored process runs on its own (refcr no longer traces it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return any(line.split() == ["TracerPid:", "0"] for line in status.splitlines())


def test_terminal_without_shell_job_is_refused(tmp_path: Path, processes: Processes) -> None:
    shell = pexpect.spawn(sys.executable, ["-c", SHELL, JOB], cwd=str(tmp_path), env=env(),
                          timeout=TIMEOUT, encoding="utf-8")
    processes.pids.add(shell.pid)
    try:
        shell.expect(r"job ready (\d+)")
        job = int(shell.match.group(1))
        images = tmp_path / "img"
        images.mkdir()
        res = subprocess.run([sys.executable, "-m", "refcr", "dump", "-t", str(job), "-D", str(images)],
                             cwd=tmp_path, env=env(), stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=TIMEOUT, start_new_session=True)
        assert_one_line_error(res)
        assert "--shell-job" in res.stderr
        shell.sendline("still")
        shell.expect("answer:STILL")        # the failed dump left the job running
    finally:
        shell.close(force=True)
