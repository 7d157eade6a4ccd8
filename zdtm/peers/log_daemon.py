"""A syslog-like daemon for ext_unix_dgram00: a datagram socket bound at
WORKDIR/log.sock.  The scenario's socket is connected to it and is dumped
with --ext-unix-sk; it must reach the daemon both before the dump and after
the restore.  Verdict: exactly the datagrams "before" then "after", each
arriving whole."""
from __future__ import annotations

import select
import socket
from pathlib import Path

from peerlib import run, say, until_stopped

EXPECTED = [b"before", b"after"]


def prepare(wd: Path) -> tuple[socket.socket, list[bytes]]:
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sk.bind(str(wd / "log.sock"))
    return sk, []


def work(state: tuple[socket.socket, list[bytes]], problems: list[str]) -> None:
    sk, got = state

    def take(timeout: float) -> None:
        if select.select([sk], [], [], timeout)[0]:
            got.append(sk.recv(4096))
            say(f"got {got[-1]!r}")
    until_stopped(take)


def judge(state: tuple[socket.socket, list[bytes]], problems: list[str]) -> None:
    sk, got = state
    sk.setblocking(False)
    try:
        while True:
            got.append(sk.recv(4096))
    except BlockingIOError:
        pass
    if got != EXPECTED:
        problems.append(f"expected datagrams {EXPECTED}, got {got}")


if __name__ == "__main__":
    run(prepare, work, judge, forever=True)
