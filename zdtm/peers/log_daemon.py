"""A syslog-like daemon for ext_unix_dgram00: a datagram socket bound at
WORKDIR/log.sock.  The scenario's socket is connected to it and is dumped
with --ext-unix-sk; it must reach the daemon both before the dump and after
the restore.  Verdict: exactly the datagrams "before" then "after", each
arriving whole."""
from __future__ import annotations

import socket

from peerlib import Stop, ready, say, setup, verdict

EXPECTED = [b"before", b"after"]


def main() -> None:
    wd = setup()
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sk.bind(str(wd / "log.sock"))
    got: list[bytes] = []
    ready(wd)
    try:
        while True:
            msg = sk.recv(4096)
            say(f"got {msg!r}")
            got.append(msg)
    except Stop:
        pass
    sk.setblocking(False)
    try:
        while True:
            got.append(sk.recv(4096))
    except BlockingIOError:
        pass
    verdict([] if got == EXPECTED else [f"expected datagrams {EXPECTED}, got {got}"])


if __name__ == "__main__":
    try:
        main()
    except Stop:
        verdict(["stopped during set-up"])
