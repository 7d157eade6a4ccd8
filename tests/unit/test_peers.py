"""The peers' SIGTERM handling (zdtm/peers/peerlib.py): a server peer stopped
by the harness right after a datagram arrived must still count it.

The harness stops a peer with SIGTERM as soon as the scenario's verdict is in;
on a loaded machine the peer may not yet have run since the scenario's last
send.  Its recv() then takes the datagram and the SIGTERM handler (which
raises Stop) ran before the datagram was recorded: ext_unix_dgram00::h failed
with "got [b'before']" although "after" had been delivered.  Here the SIGTERM
is sent from inside recv(), the worst moment, deterministically."""
from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "zdtm" / "peers"))
import log_daemon  # noqa: E402
import peerlib  # noqa: E402


class TermAfterRecv:
    """A socket whose recv() returns the data and then SIGTERMs this process."""

    def __init__(self, sk: socket.socket) -> None:
        self.sk = sk

    def fileno(self) -> int:
        return self.sk.fileno()

    def recv(self, n: int) -> bytes:
        data = self.sk.recv(n)
        os.kill(os.getpid(), signal.SIGTERM)
        return data

    def setblocking(self, flag: bool) -> None:
        self.sk.setblocking(flag)


@pytest.fixture
def term_raises_stop():
    old = signal.signal(signal.SIGTERM, peerlib._on_term)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    signal.signal(signal.SIGTERM, old)


def test_log_daemon_counts_the_datagram_it_was_stopped_after(term_raises_stop, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["log_daemon.py"])
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        a.send(b"before")
        a.send(b"after")
        got: list[bytes] = []
        with pytest.raises(peerlib.Stop):
            log_daemon.work((TermAfterRecv(b), got), [])
        problems: list[str] = []
        log_daemon.judge((b, got), problems)
    assert problems == []


def test_until_stopped_unblocks_sigterm(term_raises_stop) -> None:
    steps = []
    with pytest.raises(peerlib.Stop):
        peerlib.until_stopped(lambda t: (steps.append(t), os.kill(os.getpid(), signal.SIGTERM)))
    assert steps == [0.05]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
