"""The outside end of tcp_lock00's TCP connection: a peer that never stops
sending while the scenario is checkpointed and restored.

Listens on 127.0.0.1 (port in WORKDIR/peer.port), accepts the scenario's
connection and sends counted bytes (datagen seed 7, offset-continuous) in
chunks of CHUNK every PERIOD seconds (200 KB/s), through the dump, the time the tree is
down and the restore, until the scenario sends 'S' (it does after restore).
Then it finishes its chunk and shuts down its side; the scenario reads to
EOF (checking every byte at its offset) and answers with the number of bytes
it got (8 bytes, little-endian), which must be the number sent, then EOF.  A RST (ECONNRESET,
EPIPE) at any time is a failure: without the network lock the dumped
socket is gone while the tree is down and the next segment is answered with
a RST.  In the ns flavor the harness runs this peer in the scenario's net
namespace (peer_netns)."""
from __future__ import annotations

import select
import socket
import time
from pathlib import Path

from peerlib import datagen, run, say

CHUNK, PERIOD = 1024, 0.005
SEED = 7


def prepare(wd: Path) -> socket.socket:
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    tmp = wd / "peer.port.tmp"
    tmp.write_text(f"{ls.getsockname()[1]}\n")
    tmp.rename(wd / "peer.port")
    return ls


def stream(sk: socket.socket) -> int:
    """Send until 'S' arrives; the number of bytes sent."""
    sent = 0
    pending = b""
    while True:
        readable, writable, _ = select.select([sk], [sk] if pending else [], [], PERIOD)
        if readable:
            got = sk.recv(1)
            if got == b"S":
                break
            raise ConnectionError(f"expected 'S' from the scenario, got {got!r}")
        if not pending:
            pending = datagen(CHUNK, SEED, sent)
        if writable or not readable:
            try:
                n = sk.send(pending, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            pending = pending[n:]
            sent += n
    if pending:         # the rest of the chunk: the scenario reads all before it closes
        sk.sendall(pending)
        sent += len(pending)
    return sent


def work(ls: socket.socket, problems: list[str]) -> None:
    sk, _ = ls.accept()
    ls.close()
    say("connected; streaming")
    start = time.monotonic()
    sent = stream(sk)
    say(f"'S' after {time.monotonic() - start:.1f} s: sent {sent} bytes")
    sk.shutdown(socket.SHUT_WR)
    got = b""
    while len(got) < 8 and (chunk := sk.recv(8 - len(got))):
        got += chunk
    if len(got) != 8 or int.from_bytes(got, "little") != sent:
        problems.append(f"the scenario got {int.from_bytes(got, 'little') if len(got) == 8 else got!r} "
                        f"bytes, {sent} were sent")
    extra = sk.recv(1)
    if extra:
        problems.append(f"expected EOF, got {extra!r}")


if __name__ == "__main__":
    run(prepare, work)
