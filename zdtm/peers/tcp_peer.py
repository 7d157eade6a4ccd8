"""The outside end of tcp_established_ext00's TCP connection.

Waits for WORKDIR/tcp.port (the scenario listens on 127.0.0.1 and writes its
port there), connects, and then: checks N0 counted bytes from the scenario,
sends N1, waits until nothing it sent is unacknowledged, and blocks reading
while the scenario is checkpointed and restored.  After the restore the
scenario sends N2 bytes; the peer checks them, answers with its verdict byte
('P' or 'F') and N3 bytes, shuts down its side and must then see EOF with no
extra byte.  Any reset, short read or wrong byte is a failure: the verdict
also travels over the connection, so the scenario fails too.  In the ns flavor
the harness runs this peer in the scenario's net namespace (peer_netns): same
loopback, outside the dumped pid tree."""
from __future__ import annotations

import fcntl
import socket
import struct
import time
from pathlib import Path

from peerlib import datagen, run, say, wait_file

N0, N1, N2, N3 = 20000, 30000, 50000, 50000
TIOCOUTQ = 0x5411


def recv_exactly(sk: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sk.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def quiet(sk: socket.socket) -> None:
    """Until everything sent is acknowledged (at most 5 s)."""
    for _ in range(5000):
        if struct.unpack("i", fcntl.ioctl(sk.fileno(), TIOCOUTQ, b"\0" * 4))[0] == 0:
            return
        time.sleep(0.001)


def converse(sk: socket.socket, problems: list[str]) -> None:
    if recv_exactly(sk, N0) != datagen(N0, 1):
        problems.append("the bytes before the dump are wrong")
        return
    sk.sendall(datagen(N1, 2))
    quiet(sk)
    say("waiting across the checkpoint")
    got = recv_exactly(sk, N2)            # the tree is checkpointed and restored meanwhile
    ok = got == datagen(N2, 3)
    if not ok:
        problems.append(f"the bytes after restore are wrong ({len(got)} of {N2} arrived)")
    sk.sendall(b"P" if ok else b"F")
    sk.sendall(datagen(N3, 4))
    sk.shutdown(socket.SHUT_WR)
    extra = sk.recv(1)
    if extra:
        problems.append(f"expected EOF, got {extra!r}")


def work(wd: Path, problems: list[str]) -> None:
    if not wait_file(wd / "tcp.port", 60):
        problems.append("the scenario never wrote tcp.port")
        return
    port = int((wd / "tcp.port").read_text())
    sk = socket.create_connection(("127.0.0.1", port), timeout=10)
    sk.settimeout(None)
    say(f"connected to port {port}")
    converse(sk, problems)


if __name__ == "__main__":
    run(lambda wd: wd, work)
