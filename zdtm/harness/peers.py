"""Peer daemons: processes a scenario talks to that are NOT part of the dumped tree.

A scenario whose .desc says ``'peer': 'NAME'`` gets ``zdtm/peers/NAME`` (an
executable; ``NAME.py`` is run with the harness's Python) started by the harness:

* argv ``[peer, WORKDIR]``, cwd the work dir, stdin /dev/null, stdout and
  stderr to ``WORKDIR/peer.log``, its own session, in the harness's
  namespaces (outside the ns flavor's pid/mount/net/ipc/uts namespaces), with
  ``ZDTM_FLAVOR`` and ``ZDTM_SCENARIO`` in its environment;
* with ``'peer_netns': True`` in a namespaced flavor it is started right after
  the scenario's namespaces exist, in the scenario's net namespace only
  (``nsenter --net``): same loopback, still outside the dumped pid tree;
* the peer says it is ready by creating ``WORKDIR/peer.ready`` (write
  ``peer.ready.tmp`` and rename it).  The harness waits for that before it
  starts the scenario, except with ``peer_netns`` in a namespaced flavor,
  where the scenario must wait for the file itself (its cwd is the work dir);
* after the scenario's verdict the harness sends the peer SIGTERM and waits
  for it (a peer still in its work finishes it first, within peerlib's
  GRACE): the peer then finishes its own checks and exits 0 if everything it
  saw was right (no RST, no lost or duplicated byte, the expected messages),
  non-zero otherwise, with the reason as the last line of peer.log.  Any other
  end (killed by a signal, not exiting in time, dying before it was ready)
  fails the item too.  Named unix sockets under the work dir are reachable
  from both sides: the ns flavor's mount namespace is a private copy of the
  harness's.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import procs

PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"
READY = "peer.ready"
LOG = "peer.log"


class PeerError(Exception):
    """The peer did not start, or ended badly; the message says how."""


def peer_argv(name: str) -> list[str]:
    script = PEERS_DIR / f"{name}.py"
    if script.is_file():
        return [sys.executable, str(script)]
    exe = PEERS_DIR / name
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise PeerError(f"no peer {name!r}: neither {script} nor an executable {exe}")
    return [str(exe)]


@dataclass
class Peer:
    name: str
    workdir: Path
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, name: str, workdir: Path, env: dict[str, str], netns_of: int | None = None) -> "Peer":
        argv = [*peer_argv(name), str(workdir)]
        if netns_of is not None:
            argv = ["nsenter", f"--net=/proc/{netns_of}/ns/net", "--", *argv]
        with open(workdir / LOG, "wb") as log:
            p = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        return cls(name, workdir, p)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def last_line(self) -> str:
        try:
            lines = [ln for ln in (self.workdir / LOG).read_text(errors="replace").splitlines() if ln.strip()]
        except FileNotFoundError:
            lines = []
        return lines[-1] if lines else "(nothing in peer.log)"

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not (self.workdir / READY).exists():
            if self.proc.poll() is not None:
                raise PeerError(f"peer {self.name} exited with status {self.proc.returncode} before it was "
                                f"ready: {self.last_line()}")
            if time.monotonic() > deadline:
                raise PeerError(f"peer {self.name} not ready after {timeout:g}s (no {READY})")
            time.sleep(0.02)

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise PeerError(f"peer {self.name} ended early with status {self.proc.returncode}: {self.last_line()}")

    def finish(self, timeout: float) -> None:
        """SIGTERM, wait, and turn its exit status into a verdict."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise PeerError(f"peer {self.name} did not exit within {timeout:g}s of SIGTERM") from None
        finally:
            procs.kill_tree(self.proc.pid, self.proc.pid)     # anything it left behind
        if rc != 0:
            how = f"status {rc}" if rc > 0 else f"signal {-rc}"
            raise PeerError(f"peer {self.name} failed ({how}): {self.last_line()}")

    def kill(self) -> None:
        procs.kill_tree(self.proc.pid, self.proc.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
