"""The outside writer of a pipe, for inherit_fd_pipe00.

Listens at WORKDIR/peer.sock; to the one client that connects it passes the
read end of a new pipe (SCM_RIGHTS) and writes "one\\n" into the pipe, keeping
the write end: the scenario then reads a pipe whose writer is outside the
dumped tree.  After the restore the task must be reading the pipe the caller
handed in with --inherit-fd instead, so at SIGTERM nobody may hold the read end
of this pipe any more: a write must fail with EPIPE.  Verdict: exactly one
pipe handed out, and that EPIPE."""
from __future__ import annotations

import errno
import os
import signal
import socket
from pathlib import Path

from peerlib import run, say


def prepare(wd: Path) -> tuple[socket.socket, list[int]]:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(wd / "peer.sock"))
    listener.listen(1)
    return listener, []


def work(state: tuple[socket.socket, list[int]], problems: list[str]) -> None:
    listener, writers = state
    conn, _ = listener.accept()
    r, w = os.pipe()
    socket.send_fds(conn, [b"p"], [r])
    os.close(r)
    conn.close()
    os.write(w, b"one\n")
    writers.append(w)
    say("handed out a pipe")


def judge(state: tuple[socket.socket, list[int]], problems: list[str]) -> None:
    writers = state[1]
    if len(writers) != 1:
        problems.append(f"{len(writers)} pipes handed out, expected 1")
    for w in writers:
        try:
            os.write(w, b"late\n")
            problems.append("the old pipe still has a reader after the restore")
        except OSError as e:
            if e.errno != errno.EPIPE:
                problems.append(f"writing to the old pipe: {e}")


if __name__ == "__main__":
    run(prepare, work, judge)
