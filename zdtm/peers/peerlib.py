"""What every peer (zdtm/harness/peers.py) needs: readiness, SIGTERM, verdict.

A peer script does ``from peerlib import ...`` (its own directory is on
sys.path when it is run as a script).
"""
from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T")

# Seconds a peer still in its work() gets after SIGTERM.  The harness stops
# the peer as soon as the scenario's verdict is in; on a loaded machine the
# peer may not have run since the scenario's last send or close (the EOF
# tcp_established_ext00's peer waits for), and must not fail for that.
GRACE = 15.0


class Stop(Exception):
    """SIGTERM from the harness: finish the checks and give the verdict."""


@dataclass
class _Life:
    working: bool = False       # run()'s work() runs (not a forever server): SIGTERM starts the grace
    termed: bool = False        # SIGTERM has come


_life = _Life()


def _on_term(signum, frame) -> None:  # type: ignore[no-untyped-def]
    _life.termed = True
    if _life.working:           # the call it interrupted goes on (PEP 475); Stop when the grace is over
        signal.signal(signal.SIGALRM, _on_grace_over)
        signal.setitimer(signal.ITIMER_REAL, GRACE)
        return
    raise Stop()


def _on_grace_over(signum, frame) -> None:  # type: ignore[no-untyped-def]
    raise Stop()


def setup() -> Path:
    """The work dir (argv[1]); SIGTERM raises Stop from then on."""
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} WORKDIR", file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGTERM, _on_term)
    return Path(sys.argv[1])


def say(msg: str) -> None:
    print(f"{Path(sys.argv[0]).stem}: {msg}", flush=True)


def ready(workdir: Path) -> None:
    tmp = workdir / "peer.ready.tmp"
    tmp.write_text(f"{os.getpid()}\n")
    tmp.rename(workdir / "peer.ready")
    say("ready")


def verdict(problems: list[str]) -> NoReturn:
    """Exit 0 if nothing went wrong, else 1 with the first problem last."""
    for p in problems[1:]:
        say(f"also: {p}")
    if problems:
        say(f"FAIL: {problems[0]}")
        sys.exit(1)
    say("PASS")
    sys.exit(0)


def until_stopped(step: Callable[[float], object], poll: float = 0.05) -> NoReturn:
    """Serve until SIGTERM: call step(poll) (wait at most poll seconds for
    input and handle it) over and over.  SIGTERM is held blocked meanwhile and
    only looked at between steps, so it can never land between a recv() that
    took data off a socket and the bookkeeping of that data: raised from the
    handler there, it lost the datagram (ext_unix_dgram00's "after" on a
    loaded machine).  Raises Stop."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        while signal.SIGTERM not in signal.sigpending():
            step(poll)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})   # a pending one raises Stop here
    raise Stop()


def wait_stop() -> None:
    """Block until SIGTERM (raises Stop)."""
    while True:
        time.sleep(3600)


def run(prepare: Callable[[Path], T], work: Callable[[T, list[str]], None],
        judge: Callable[[T, list[str]], None] | None = None, forever: bool = False) -> NoReturn:
    """The life of a peer.  prepare(workdir) sets up (binds, listens) before
    ready(); work(state, problems) then runs; if it returns, the peer waits
    for SIGTERM.  A SIGTERM during work leaves it GRACE seconds to finish;
    not finished then is a problem ("stopped before it was done"), unless
    forever (a server that runs until it is stopped: stopped at once, or by
    until_stopped between two steps).  After SIGTERM,
    judge(state, problems) makes the last checks.  An OSError (a reset above
    all) is a problem.  The verdict is the exit status."""
    wd = setup()
    problems: list[str] = []
    try:
        state = prepare(wd)
        ready(wd)
    except Stop:
        verdict(["stopped during set-up"])
    finished = False
    try:
        _life.working = not forever
        work(state, problems)
        _life.working = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        finished = True
        if _life.termed:
            say("finished after SIGTERM (within the grace)")
        else:
            wait_stop()
    except Stop:
        pass
    except OSError as e:
        problems.append(f"{type(e).__name__}: {e}")
    if not (finished or forever or problems):
        problems.append("stopped before it was done")
    if judge is not None:
        judge(state, problems)
    verdict(problems)


def wait_file(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


_M = (1 << 64) - 1


def _mix(seed: int, idx: int) -> int:
    z = (seed * 0x9E3779B97F4A7C15 + (idx + 1) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
    return z ^ (z >> 31)


def datagen(length: int, seed: int, off: int = 0) -> bytes:
    """zdtm/lib's datagen_at(): byte i is byte (i % 8) of mix(seed, i / 8)."""
    first, last = off // 8, (off + length + 7) // 8
    raw = b"".join(_mix(seed, i).to_bytes(8, "little") for i in range(first, last))
    start = off - first * 8
    return raw[start:start + length]
