"""The outside owner of a terminal, for inherit_fd_tty00.

Listens at WORKDIR/peer.sock.  To its first client (the scenario) it passes
the slave of a new pty pair (SCM_RIGHTS) and keeps the master: the task then
holds a terminal that is not its own.  On it the task says "before", answered
"one".  Its second client is the harness at restore (cr-opts.json inherit
"master_to"): it passes the master of the NEW pty pair whose slave it hands
to `refcr restore --inherit-fd`; the peer sets that pty up and closes the
connection (the harness waits for that), then on the new master the restored
task says "after", answered "two".

Both ptys are set to no echo and no output processing, lines are canonical.
Verdict: the two lines came on the right terminals, and at SIGTERM nobody
holds the old terminal's slave any more (its master reads EIO): the restored
task uses the terminal handed in, not the old one reopened."""
from __future__ import annotations

import errno
import os
import socket
import termios
from dataclasses import dataclass, field
from pathlib import Path

from peerlib import run, say


@dataclass
class State:
    listener: socket.socket
    masters: list[int] = field(default_factory=list)     # old pty, new pty


def quiet(master: int) -> None:
    """No echo, no output processing (set through the master: the pair's termios)."""
    attrs = termios.tcgetattr(master)
    attrs[1] &= ~termios.OPOST
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)
    termios.tcsetattr(master, termios.TCSANOW, attrs)


def read_line(master: int) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(master, 64)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")


def answer(master: int, want: str, reply: str, what: str, problems: list[str]) -> None:
    line = read_line(master)
    say(f"{what}: {line!r}")
    if line != want:
        problems.append(f"{what}: read {line!r}, expected {want!r}")
        return
    os.write(master, reply.encode())


def prepare(wd: Path) -> State:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(wd / "peer.sock"))
    listener.listen(2)
    return State(listener)


def work(st: State, problems: list[str]) -> None:
    conn, _ = st.listener.accept()
    master, slave = os.openpty()
    st.masters.append(master)
    quiet(master)
    name = os.ttyname(slave)
    socket.send_fds(conn, [b"t"], [slave])
    os.close(slave)
    conn.close()
    say(f"handed out {name}")
    answer(master, "before\n", "one\n", "old terminal", problems)

    conn, _ = st.listener.accept()
    _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    if len(fds) != 1:
        problems.append(f"the second client passed {len(fds)} fds, expected the new pty's master")
        conn.close()
        return
    st.masters.append(fds[0])
    quiet(fds[0])
    conn.close()
    say("got the new pty's master")
    answer(fds[0], "after\n", "two\n", "new terminal", problems)


def judge(st: State, problems: list[str]) -> None:
    if len(st.masters) != 2:
        problems.append(f"{len(st.masters)} ptys seen, expected 2 (the old one, the one handed in)")
    if not st.masters:
        return
    old = st.masters[0]
    os.set_blocking(old, False)
    try:
        data = os.read(old, 64)
        problems.append(f"the old terminal still has its slave open (read {data!r})")
    except BlockingIOError:
        problems.append("the old terminal still has its slave open (nothing to read, no EIO)")
    except OSError as e:
        if e.errno != errno.EIO:
            problems.append(f"reading the old terminal's master: {e}")


if __name__ == "__main__":
    run(prepare, work, judge)
