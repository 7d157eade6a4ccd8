"""A pty slave whose master is outside the tree (a container's console held
by the runtime): dumped with orphan_pts_master, restored with a new master
handed to the RPC client in the "orphan-pts-master" notification
(drivers/tty.py).  The restored process must talk through the new master with
its terminal settings (no echo), window size and controlling terminal kept.

The scenario runs in a private mount namespace with its own devpts instance,
as a container has: the index the restore asks for is free there, whatever
other tests do with the host's ptys.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dump and restore need root")

# The console program: its terminal is the slave named in argv[1], echo off;
# it answers "size" with its window size, anything else with "echo:" + line.
CONSOLE = r"""
import fcntl, os, struct, sys, termios
fd = os.open(sys.argv[1], os.O_RDWR)             # a session leader: the slave becomes its terminal
for i in (0, 1, 2):
    os.dup2(fd, i)
os.close(fd)
attrs = termios.tcgetattr(0)
attrs[3] &= ~termios.ECHO
termios.tcsetattr(0, termios.TCSANOW, attrs)
os.write(1, b"ready\n")
for line in sys.stdin:
    if line.strip() == "size":
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        print(f"size:{rows}x{cols}", flush=True)
    else:
        print("echo:" + line.strip(), flush=True)
"""

SCENARIO = r"""
import fcntl, os, select, signal, struct, subprocess, sys, termios
from refcr.rpc.client import Client

subprocess.run(["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts", "/dev/pts"], check=True)
subprocess.run(["mount", "--bind", "/dev/pts/ptmx", "/dev/ptmx"], check=True)
images, console = sys.argv[1], sys.argv[2]

def read_line(fd):
    out = b""
    while not out.endswith(b"\n"):
        r, _, _ = select.select([fd], [], [], 20)
        assert r, f"no answer from the console program (got {out!r})"
        out += os.read(fd, 1)
    return out.replace(b"\r", b"")

master, slave = os.openpty()
name = os.ttyname(slave)
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 77, 0, 0))
proc = subprocess.Popen([sys.executable, console, name], start_new_session=True,
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
assert read_line(master) == b"ready\n"
os.close(slave)                                   # (kept until then: a master alone reads EIO)
os.write(master, b"before\n")
assert read_line(master) == b"echo:before\n"

c = Client(local=True)
try:
    c.dump(proc.pid, images)
except Exception as exc:
    os.write(master, b"still\n")                  # a refused dump leaves it running as before
    alive = read_line(master) == b"echo:still\n"
    proc.kill()
    print(f"refused (answers: {alive}): {exc}")
    sys.exit(3)
proc.wait(timeout=10)
os.close(master)                                  # the old console is gone with its container

handed = []
c = Client(local=True, on_fd=lambda script, fd: handed.append((script, fd)))
pid = c.restore(images, notify_scripts=True, orphan_pts_master=True, rst_sibling=True)
try:
    assert [s for s, _ in handed] == ["orphan-pts-master"], handed
    new = handed[0][1]
    os.write(new, b"after\n")
    assert read_line(new) == b"echo:after\n", "echo is on again, or the process does not answer"
    os.write(new, b"size\n")
    assert read_line(new) == b"size:33x77\n"
    with open(f"/proc/{pid}/stat") as f:
        tty_nr = int(f.read().rsplit(")", 1)[1].split()[4])
    index = struct.unpack("I", fcntl.ioctl(new, 0x80045430, b"\0" * 4))[0]   # TIOCGPTN
    assert tty_nr == os.makedev(136, index), "the slave is not its controlling terminal"
finally:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print("ok")
"""


def _run(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "console.py").write_text(CONSOLE)
    (tmp_path / "scenario.py").write_text(textwrap.dedent(script))
    return subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                           str(tmp_path / "scenario.py"), str(tmp_path / "img"), str(tmp_path / "console.py")],
                          capture_output=True, text=True, timeout=120)


def test_console_master_outside_the_tree(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    res = _run(tmp_path, SCENARIO.replace("c.dump(proc.pid, images)",
                                          "c.dump(proc.pid, images, orphan_pts_master=True)"))
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


def test_without_the_option_the_dump_refuses_and_the_process_runs_on(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    res = _run(tmp_path, SCENARIO)
    assert res.returncode == 3, res.stdout + res.stderr
    assert res.stdout.startswith("refused (answers: True)") and "--orphan-pts-master" in res.stdout, res.stdout


def test_command_line_restore_refuses_the_option() -> None:
    res = subprocess.run([sys.executable, "-m", "refcr", "restore", "-D", "/nonexistent", "--orphan-pts-master"],
                         capture_output=True, text=True)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "RPC client" in res.stderr
