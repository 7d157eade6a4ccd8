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

from peerlib import Stop, ready, say, setup, verdict, wait_stop


def main() -> None:
    wd = setup()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(wd / "peer.sock"))
    listener.listen(1)
    ready(wd)
    writers: list[int] = []
    try:
        conn, _ = listener.accept()
        r, w = os.pipe()
        socket.send_fds(conn, [b"p"], [r])
        os.close(r)
        conn.close()
        os.write(w, b"one\n")
        writers.append(w)
        say("handed out a pipe")
        wait_stop()
    except Stop:
        pass
    problems = []
    if len(writers) != 1:
        problems.append(f"{len(writers)} pipes handed out, expected 1")
    for w in writers:
        try:
            os.write(w, b"late\n")
            problems.append("the old pipe still has a reader after the restore")
        except OSError as e:
            if e.errno != errno.EPIPE:
                problems.append(f"writing to the old pipe: {e}")
    verdict(problems)


if __name__ == "__main__":
    try:
        main()
    except Stop:
        verdict(["stopped during set-up"])
