"""Client B of the seed-001 workflow (seed001_replay00).

Server A (the scenario) keeps a running total of the numbers B sends and
answers "total N".  B listens at WORKDIR/b1.sock; A connects.  B sends 5, 7,
11, 13; after each answer it asks the harness for a checkpoint of A
(``ckpt-I.go``, the harness dumps A with --leave-running into ckpt-I and says
``ckpt-I.done``).  The harness then dumps A for good and restores ckpt-2 with
--ext-unix-sk ID:WORKDIR/b2.sock: a FRESH B (a listener at b2.sock, which A
never saw) must get A's reconnection; B sends 100 and 1 and must get
"total 112" and "total 113" (A continued from its second message), then
closes.  Verdict: every answer right, the first connection ended by EOF."""
from __future__ import annotations

import socket
from pathlib import Path

from peerlib import run, say, wait_file

BEFORE = [(5, 5), (7, 12), (11, 23), (13, 36)]
AFTER = [(100, 112), (1, 113)]


def listener(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    return s


def ask(conn: socket.socket, n: int) -> str:
    conn.sendall(f"{n}\n".encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(100)
        if not chunk:
            return "EOF"
        data += chunk
    return data.decode().strip()


def talk(conn: socket.socket, rounds: list[tuple[int, int]], problems: list[str], wd: Path | None) -> None:
    for i, (n, total) in enumerate(rounds, 1):
        got = ask(conn, n)
        say(f"sent {n}, got {got!r}")
        if got != f"total {total}":
            problems.append(f"sent {n}, expected 'total {total}', got {got!r}")
            return
        if wd is not None:
            (wd / f"ckpt-{i}.go").touch()
            if not wait_file(wd / f"ckpt-{i}.done", 120):
                problems.append(f"checkpoint {i} was never taken")
                return


def prepare(wd: Path) -> tuple[Path, socket.socket, socket.socket]:
    return wd, listener(wd / "b1.sock"), listener(wd / "b2.sock")


def work(state: tuple[Path, socket.socket, socket.socket], problems: list[str]) -> None:
    wd, b1, b2 = state
    conn, _ = b1.accept()
    talk(conn, BEFORE, problems, wd)
    if problems:
        return
    conn.settimeout(60)
    end = conn.recv(100)                # the real dump kills A: EOF
    if end:
        problems.append(f"A sent {end!r} after its last answer")
    conn.close()
    b2.settimeout(120)
    fresh, _ = b2.accept()
    say("A reconnected to the fresh B")
    talk(fresh, AFTER, problems, None)
    fresh.close()


if __name__ == "__main__":
    run(prepare, work)
