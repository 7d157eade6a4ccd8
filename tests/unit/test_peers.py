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
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "zdtm" / "peers"))
import log_daemon  # noqa: E402
import peerlib  # noqa: E402


def term_this_thread() -> None:
    """SIGTERM to this thread: a peer is single-threaded, a pytest-xdist
    worker is not (a SIGTERM to the process could go to another thread)."""
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)


class TermAfterRecv:
    """A socket whose recv() returns the data and then SIGTERMs this process."""

    def __init__(self, sk: socket.socket) -> None:
        self.sk = sk

    def fileno(self) -> int:
        return self.sk.fileno()

    def recv(self, n: int) -> bytes:
        data = self.sk.recv(n)
        term_this_thread()
        return data


@pytest.fixture
def term_raises_stop():
    old = signal.signal(signal.SIGTERM, peerlib._on_term)
    old_alarm = signal.getsignal(signal.SIGALRM)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    signal.signal(signal.SIGTERM, old)
    signal.signal(signal.SIGALRM, old_alarm)
    peerlib._life.working = peerlib._life.termed = False


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
        peerlib.until_stopped(lambda t: (steps.append(t), term_this_thread()))
    assert steps == [0.05]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())


PEER = """
import sys
from pathlib import Path
sys.path.insert(0, {peers!r})
from peerlib import run, say

def work(wd, problems):
    with open(wd / "fifo", "rb") as f:    # what the scenario sends last, seen late
        if f.read() != b"last":
            problems.append("wrong bytes")

run(lambda wd: wd, work)
"""


def test_a_working_peer_gets_the_grace_to_finish(tmp_path) -> None:
    """tcp_established_ext00::ns: SIGTERM came while the peer still had the
    scenario's EOF to read, and it failed "stopped before it was done"."""
    os.mkfifo(tmp_path / "fifo")
    script = tmp_path / "peer.py"
    script.write_text(PEER.format(peers=str(Path(peerlib.__file__).parent)))
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "peer.ready").exists():
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)                         # the peer blocks in its work
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)                         # the harness's SIGTERM first, the data later
        try:                                    # no reader (the peer gave up): ENXIO, not a hang
            fd = os.open(tmp_path / "fifo", os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"last")
            os.close(fd)
        except OSError as exc:
            pytest.fail(f"the peer stopped reading at SIGTERM: {exc}")
        out, _ = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 0, out
    assert "finished after SIGTERM" in out


def test_a_stuck_peer_is_stopped_when_the_grace_is_over(term_raises_stop, monkeypatch) -> None:
    monkeypatch.setattr(peerlib, "GRACE", 0.2)
    peerlib._life.working = True
    t0 = time.monotonic()
    with pytest.raises(peerlib.Stop):
        term_this_thread()
        time.sleep(5)
    assert 0.15 < time.monotonic() - t0 < 3
