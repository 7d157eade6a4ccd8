"""Scenarios flagged ``shell_job``: a job of an interactive shell, moved to a new terminal.

The harness runs a tiny shell on a pexpect pty; it starts the scenario (h: the
binary itself; ns: through nslaunch) with ``ZDTM_SHELL_JOB=1`` in its
environment, so that the test library neither forks nor calls setsid() and
leaves stdin on the terminal.  The scenario makes itself a process group of its
own and the terminal's foreground group (as a shell would), answers every line
``X`` it reads from the terminal with ``answer:X`` in upper case, and writes
its pidfile and ready line as usual.  The harness types ``before`` and expects
``answer:BEFORE``; dumps with the .desc's options (``--shell-job``);
runs ``refcr restore`` (not detached) on a NEW pexpect pty; once the restored
root's pid is there, types ``after`` and expects ``answer:AFTER``, and checks
that the job's controlling terminal is the new one and that it is its
foreground process group.  The scenario checks the rest itself after SIGTERM.
"""
from __future__ import annotations

import os
import sys
import time
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect

from . import procs, snapshot
from .runner import NSLAUNCH, StepFailed, ToolResult

if TYPE_CHECKING:
    from .runner import ScenarioRun

TERMINAL = re.compile(r"^/dev/(pts/\d+|tty\w*)$")
# The shell: starts the job, says its pid (the outer one; nslaunch prints it),
# and stays the session leader of its terminal until it is killed.
SHELL = r"""
import os, signal, subprocess, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
ns = sys.argv[1] == "ns"
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE if ns else None)
pid = int(p.stdout.read()) if ns else p.pid
print("job", pid, flush=True)
p.wait()
while True:
    signal.pause()
"""
# refcr restore with its stderr in a file (the terminal is for the job).
WRAP = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(fd, 2)
os.execvp(sys.argv[2], sys.argv[2:])
"""


@dataclass
class Terminals:
    shell: pexpect.spawn
    restore: pexpect.spawn | None = None
    old_tty: int = 0
    extra: list[int] = field(default_factory=list)


def _spawn(argv: list[str], run: "ScenarioRun", env: dict[str, str]) -> pexpect.spawn:
    timeout = run.cfg.timeouts.start
    return pexpect.spawn(argv[0], argv[1:], cwd=str(run.cfg.workdir), env=env, timeout=timeout,
                         encoding="utf-8", codec_errors="replace")


def tty_fields(pid: int) -> tuple[int, int]:
    """(tty_nr, tpgid) of a process."""
    st = procs.read_stat(pid)
    if st is None:
        raise StepFailed("shell-job", f"process {pid} is gone")
    return int(st.field(7)), int(st.field(8))


def _talk(term: pexpect.spawn, word: str, step: str) -> None:
    term.sendline(word)
    try:
        term.expect(f"answer:{word.upper()}")
    except (pexpect.TIMEOUT, pexpect.EOF):
        raise StepFailed(step, f"typed {word!r} on the terminal, no answer:{word.upper()} "
                         f"(terminal said {term.before!r})") from None


def start(run: "ScenarioRun") -> None:
    fl = run.cfg.flavor
    env = {**run.cfg.env, "ZDTM_SHELL_JOB": "1"}
    with run._step("start"):
        job_argv = fl.launch_argv(str(NSLAUNCH), sys.executable, run._scenario_argv())
        shell = _spawn([sys.executable, "-c", SHELL, fl.name if fl.namespaces else "h", *job_argv], run, env)
        run.shell = Terminals(shell)
        try:
            shell.expect(r"job (\d+)")
        except (pexpect.TIMEOUT, pexpect.EOF):
            raise StepFailed("start", f"the shell did not start the job: {shell.before!r}") from None
        run.pid = int(shell.match.group(1))
    with run._step("pidfile"):
        deadline = time.monotonic() + run.cfg.timeouts.start
        while not (run.pidfile.exists() and run._said_ready()):
            if not procs.is_alive(run.pid):
                raise StepFailed("pidfile", "the job ended before it was ready")
            if time.monotonic() > deadline:
                raise StepFailed("pidfile", f"not ready after {run.cfg.timeouts.start:g}s")
            time.sleep(0.02)
        run.sid = None      # the shell's session: never the job's to kill
    with run._step("shell-job-talk"):
        _talk(shell, "before", "shell-job-talk")
        run.shell.old_tty, tpgid = tty_fields(run.pid)
        if run.shell.old_tty == 0 or tpgid != os.getpgid(run.pid):
            raise StepFailed("shell-job-talk", "the job is not the foreground of its terminal")


def restore(run: "ScenarioRun", args: list[str], stderr_path: Path, pidfile: Path) -> ToolResult:
    """refcr restore on a new pty; 'done' (status 0) once it wrote the pidfile."""
    term = run.shell
    assert isinstance(term, Terminals)
    argv = [sys.executable, "-c", WRAP, str(stderr_path), *run.cfg.refcr, "restore", *args]
    term.restore = _spawn(argv, run, run.cfg.env)
    deadline = time.monotonic() + run.cfg.timeouts.restore
    while not pidfile.exists():
        if not term.restore.isalive():
            term.restore.close()
            return ToolResult(term.restore.exitstatus or 1, stderr_path)
        if time.monotonic() > deadline:
            raise StepFailed("restore", f"refcr restore did not finish in {run.cfg.timeouts.restore:g}s")
        time.sleep(0.05)
    return ToolResult(0, stderr_path)


def after_restore(run: "ScenarioRun") -> None:
    term = run.shell
    assert isinstance(term, Terminals) and term.restore is not None and run.pid is not None
    _talk(term.restore, "after", "shell-job-talk")
    new_tty, tpgid = tty_fields(run.pid)
    caller_tty, _ = tty_fields(term.restore.pid)
    if new_tty != caller_tty or new_tty == term.old_tty:
        raise StepFailed("shell-job-talk", f"the job's terminal is {new_tty:#x}, the new one is {caller_tty:#x} "
                         f"(the old one {term.old_tty:#x})")
    if tpgid != os.getpgid(run.pid):
        raise StepFailed("shell-job-talk", "the job is not the foreground process group of the new terminal")


def normalise(state: snapshot.TreeState) -> snapshot.TreeState:
    """What a shell job legitimately changes: its terminal (another pty) and
    its session (the restore caller's).  shell-job-talk checks both."""
    def task(t: snapshot.TaskState) -> snapshot.TaskState:
        # the restore's terminal is another pty: its inode (fdinfo ino) is not the shell's
        fds = tuple(replace(f, target="<the shell's terminal>", info=tuple(kv for kv in f.info if kv[0] != "ino"))
                    if TERMINAL.match(f.target) else f for f in t.fds)
        status = tuple(kv for kv in t.status if kv[0] != "NSsid")
        return replace(t, sid=0, status=status, fds=fds)

    return snapshot.TreeState(tuple(task(t) for t in state.tasks))


def pids(run: "ScenarioRun") -> set[int]:
    """The harness's own terminal processes (the shell, refcr restore)."""
    term = run.shell
    if not isinstance(term, Terminals):
        return set()
    return {t.pid for t in (term.shell, term.restore) if t is not None}


def close(run: "ScenarioRun") -> None:
    term = run.shell
    run.shell = None
    if not isinstance(term, Terminals):
        return
    for t in (term.restore, term.shell):
        if t is None:
            continue
        try:
            t.close(force=True)
        except (pexpect.ExceptionPexpect, OSError):
            pass    # already reaped (the harness is a subreaper and reaps what it kills)
        procs.kill_tree(t.pid, t.pid)
