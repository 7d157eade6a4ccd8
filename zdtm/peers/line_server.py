"""A stream server outside the tree for ext_unix_stream00 and
ext_unix_inherit00: listens at WORKDIR/peer.sock and answers every line X
with X in upper case.

The scenario connects and says "before" (answered before the dump); the dump
kills it, which must close that connection cleanly (EOF, no reset, nothing
unread).  After the restore the scenario's socket is a NEW connection to this
listener (made by refcr for --ext-unix-sk, or by the harness for
--inherit-fd), on which it says "after".  Verdict: exactly two connections,
the first carried exactly "before" and ended in EOF, the second exactly
"after"."""
from __future__ import annotations

import selectors
import socket

from pathlib import Path

from peerlib import Stop, run, say, until_stopped


class Conn:
    def __init__(self, sk: socket.socket, n: int) -> None:
        self.sk, self.n, self.buf, self.lines, self.end = sk, n, b"", [], ""

    def readable(self) -> bool:
        """Serve what arrived; False once the connection is over."""
        try:
            data = self.sk.recv(4096)
        except ConnectionResetError:
            self.end = "reset"
            return False
        if not data:
            self.end = "eof"
            return False
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode(errors="replace"))
            say(f"connection {self.n}: {self.lines[-1]!r}")
            self.sk.sendall(line.upper() + b"\n")
        return True


def serve(listener: socket.socket, conns: list[Conn], timeout: float | None) -> None:
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    for c in conns:
        if not c.end:
            sel.register(c.sk, selectors.EVENT_READ, c)
    while True:
        events = sel.select(timeout)
        if not events:
            return
        for key, _ in events:
            if key.data is None:
                sk, _ = listener.accept()
                conns.append(Conn(sk, len(conns) + 1))
                say(f"connection {len(conns)} accepted")
                sel.register(sk, selectors.EVENT_READ, conns[-1])
            elif not key.data.readable():
                say(f"connection {key.data.n}: {key.data.end}")
                sel.unregister(key.fileobj)


def judge(conns: list[Conn]) -> list[str]:
    problems = []
    if len(conns) != 2:
        problems.append(f"expected 2 connections (before the dump, after the restore), got {len(conns)}")
    want = [(["before"], "eof"), (["after"], None)]
    for c, (lines, end) in zip(conns, want, strict=False):
        if c.lines != lines:
            problems.append(f"connection {c.n} carried {c.lines}, expected {lines}")
        if end and c.end != end:
            problems.append(f"connection {c.n} ended with {c.end or 'nothing'}, expected {end}")
    return problems


Server = tuple[socket.socket, list[Conn]]


def prepare(wd: Path) -> Server:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(wd / "peer.sock"))
    listener.listen(8)
    return listener, []


def work(state: Server, problems: list[str]) -> None:
    until_stopped(lambda timeout: serve(*state, timeout))


def last_checks(state: Server, problems: list[str]) -> None:
    try:
        serve(*state, 0.2)     # what is already on its way
    except Stop:
        pass
    problems += judge(state[1])


if __name__ == "__main__":
    run(prepare, work, last_checks, forever=True)
