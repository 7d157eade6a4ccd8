"""zdtm/lib's test_waitsig() leaves the signal mask as the scenario set it for
the whole wait.  The harness snapshots /proc/PID/status at any moment after
"ready" and compares SigBlk across C/R; the first version blocked SIGTERM and
then sigsuspend()ed, so a snapshot taken between the two calls (the machine
busy) saw SIGTERM blocked and every later one did not: inotify00::h and
unix_stream00::h failed 'compare' that way.

The scenario programs are built here from zdtm/lib's sources.  With SIGTERM
free, a seccomp filter kills the program on any call that changes a mask
(rt_sigsuspend, rt_sigprocmask with a new set) from test_daemon() on; with
SIGTERM blocked by the scenario, the mask /proc shows during the wait is the
scenario's.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "zdtm" / "lib"
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)

PROGRAM = r"""
#include "zdtmtst.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* Kill on rt_sigsuspend and on rt_sigprocmask with a new set (args[1] != 0). */
static void forbid_mask_changes(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigsuspend, 6, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigprocmask, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		fail("seccomp");
}

int main(int argc, char **argv)
{
	const char *mode = getenv("WAITSIG_MODE");
	sigset_t term;

	test_init(argc, argv);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (!strcmp(mode, "blocked") && sigprocmask(SIG_BLOCK, &term, NULL))
		fail("sigprocmask");
	test_daemon();
	if (!strcmp(mode, "free") || !strcmp(mode, "early"))
		forbid_mask_changes();
	if (!strcmp(mode, "early"))
		kill(getpid(), SIGTERM);
	test_waitsig();
	test_msg("woke");
	pass();
	return 0;
}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("waitsig")
    (where / "waitsig.c").write_text(PROGRAM)
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-D_GNU_SOURCE", f"-I{LIB}", "-o", str(where / "waitsig"),
                    str(where / "waitsig.c"), *map(str, sorted(LIB.glob("*.c"))), "-lpthread"],
                   check=True, capture_output=True)
    return where / "waitsig"


def _start(program: Path, tmp_path: Path, mode: str) -> tuple[int, Path]:
    """The scenario started as the harness starts one; its pid once it is ready."""
    pidfile, outfile = tmp_path / "pid", tmp_path / "out"
    subprocess.run([str(program), f"--pidfile={pidfile}", f"--outfile={outfile}"],
                   env={**os.environ, "WAITSIG_MODE": mode}, check=True, timeout=30)
    return int(pidfile.read_text()), outfile


def _sigblk(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1], 16) for ln in f if ln.startswith("SigBlk:"))


def _ended(pid: int, outfile: Path, timeout: float = 10) -> str:
    """The outfile once the test process (not our child: test_init forks) is gone."""
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.02)
    return outfile.read_text()


def test_wait_changes_no_mask(program: Path, tmp_path: Path) -> None:
    pid, outfile = _start(program, tmp_path, "free")
    time.sleep(0.3)                      # well into the wait
    assert _sigblk(pid) == 0
    os.kill(pid, signal.SIGTERM)
    out = _ended(pid, outfile)
    assert "woke" in out and "PASS" in out, out   # killed by SIGSYS if the wait changed a mask


def test_sigterm_before_the_wait_returns_at_once(program: Path, tmp_path: Path) -> None:
    pid, outfile = _start(program, tmp_path, "early")
    out = _ended(pid, outfile)
    assert "woke" in out and "PASS" in out, out


def test_a_scenario_blocking_sigterm_keeps_it_blocked_while_waiting(program: Path, tmp_path: Path) -> None:
    pid, outfile = _start(program, tmp_path, "blocked")
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert _sigblk(pid) & SIGTERM_BIT, "SIGTERM unblocked during the wait"
        time.sleep(0.01)
    os.kill(pid, signal.SIGTERM)
    out = _ended(pid, outfile)
    assert "woke" in out and "PASS" in out, out
