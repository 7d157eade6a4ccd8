"""unix_broker: a subscription broker outside the dumped tree (ext_unix_plugin's peer).

It stands for D-Bus and the like: a daemon that keeps state per client
*connection* (here, the topics each client subscribed to), so a client's
socket cannot simply be connected again after a restore.  plugins/unix-sk
dumps and restores such connections; this is the broker it talks to.

Listens on WORKDIR/peer.broker (SOCK_STREAM, absolute path: the plugin
recognises brokers by the ".broker" suffix).  One request line, one answer
line (see plugins/unix-sk/unix-sk.c for the protocol):

    SUB <topic>            -> OK SUB <topic>
    PUB <topic> <payload>  -> OK PUB <n>; EVENT <topic> <payload> to each of the n subscribers
    LIST <inode>           -> SUBS [<topic> ...] of the client whose socket has that inode, or NONE
    RESUB [<topic> ...]    -> OK RESUB <n>

A client is known by the inode of its own socket (the peer of the socket
the broker accepted), which the broker learns from sock_diag
(UNIX_DIAG_PEER) when it accepts the connection, asked in the namespace of
the accepted socket (SIOCGSKNS): that is the client's network namespace.
PUB delivers to every subscriber other than the publisher.

Verdict on SIGTERM (exit 0 = good): no malformed request, and every client
whose subscriptions were LISTed (the plugin's dump) was followed by a RESUB
of exactly those topics (the plugin's restore).  Without any C/R (run_plain)
neither happens, which is fine.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import re
import selectors
import socket
import struct
from dataclasses import dataclass, field

from peerlib import Stop, ready, say, setup, until_stopped, verdict

TOPIC = re.compile(r"[A-Za-z0-9._-]{1,63}")
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, NLMSG_ERROR = 4, 20, 1, 2
UDIAG_SHOW_PEER, UNIX_DIAG_PEER = 0x4, 2
SIOCGSKNS, CLONE_NEWNET = 0x894C, 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


def diag_socket(sk: socket.socket) -> socket.socket:
    """A sock_diag socket in the network namespace of `sk`: an accepted socket
    belongs to the client's namespace (the ns flavor's own one), not ours."""
    nsfd = fcntl.ioctl(sk.fileno(), SIOCGSKNS, 0)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if LIBC.setns(nsfd, CLONE_NEWNET):
            raise OSError(ctypes.get_errno(), "setns")
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        finally:
            LIBC.setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(nsfd)


def peer_inode(sk: socket.socket) -> int:
    """The inode of the socket at the other end of `sk` (sock_diag, exact lookup)."""
    ino = os.fstat(sk.fileno()).st_ino
    req = struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, ino, UDIAG_SHOW_PEER, 0xFFFFFFFF, 0xFFFFFFFF)
    with diag_socket(sk) as nl:
        nl.send(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0) + req)
        data = nl.recv(65536)
    length, kind = struct.unpack_from("=IH", data)
    if kind == NLMSG_ERROR:
        raise OSError(-struct.unpack_from("=i", data, 16)[0], f"sock_diag of socket {ino}")
    off = 16 + 16                                   # nlmsghdr, unix_diag_msg
    while off + 4 <= length:
        alen, atype = struct.unpack_from("=HH", data, off)
        if atype == UNIX_DIAG_PEER:
            return struct.unpack_from("=I", data, off + 4)[0]
        off += (alen + 3) & ~3
    raise OSError(0, f"sock_diag: socket {ino} has no peer")


@dataclass
class Client:
    sk: socket.socket
    ino: int                                        # the client's own socket
    buf: bytes = b""
    topics: list[str] = field(default_factory=list)


@dataclass
class Broker:
    sel: selectors.DefaultSelector = field(default_factory=selectors.DefaultSelector)
    clients: dict[int, Client] = field(default_factory=dict)     # by our socket's fd
    errors: list[str] = field(default_factory=list)
    listed: dict[int, list[str]] = field(default_factory=dict)   # client inode -> topics LISTed
    resubs: list[list[str]] = field(default_factory=list)

    def error(self, msg: str) -> None:
        say("ERROR " + msg)
        self.errors.append(msg)

    def accept(self, lsk: socket.socket) -> None:
        sk, _ = lsk.accept()
        c = Client(sk, peer_inode(sk))
        self.clients[sk.fileno()] = c
        self.sel.register(sk, selectors.EVENT_READ, c)
        say(f"client {c.ino} connected")

    def drop(self, c: Client) -> None:
        say(f"client {c.ino} gone (subscribed to {' '.join(c.topics) or 'nothing'})")
        self.sel.unregister(c.sk)
        del self.clients[c.sk.fileno()]
        c.sk.close()

    def readable(self, c: Client) -> None:
        try:
            data = c.sk.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.drop(c)
            return
        c.buf += data
        while b"\n" in c.buf:
            line, c.buf = c.buf.split(b"\n", 1)
            answer = self.handle(c, line.decode(errors="replace"))
            c.sk.sendall(answer.encode() + b"\n")

    def handle(self, c: Client, line: str) -> str:
        words = line.split(" ")
        cmd, args = words[0], words[1:]
        if cmd == "SUB" and len(args) == 1 and TOPIC.fullmatch(args[0]):
            if args[0] not in c.topics:
                c.topics.append(args[0])
            return f"OK SUB {args[0]}"
        if cmd == "PUB" and len(args) == 2 and TOPIC.fullmatch(args[0]):
            subs = [x for x in self.clients.values() if args[0] in x.topics and x is not c]
            for x in list(subs):
                try:
                    x.sk.sendall(f"EVENT {args[0]} {args[1]}\n".encode())
                except OSError:                     # a client that went away (e.g. killed by a dump)
                    subs.remove(x)
                    self.drop(x)
            say(f"PUB {args[0]} {args[1]}: {len(subs)} subscriber(s)")
            return f"OK PUB {len(subs)}"
        if cmd == "LIST" and len(args) == 1 and args[0].isdigit():
            who = next((x for x in self.clients.values() if x.ino == int(args[0])), None)
            say(f"LIST {args[0]}: {'unknown' if who is None else ' '.join(who.topics) or '-'}")
            if who is None:
                return "NONE"
            self.listed[who.ino] = list(who.topics)
            return " ".join(["SUBS", *who.topics])
        if cmd == "RESUB" and all(TOPIC.fullmatch(t) for t in args):
            c.topics = list(dict.fromkeys(args))
            self.resubs.append(list(c.topics))
            say(f"RESUB by client {c.ino}: {' '.join(c.topics) or '-'}")
            return f"OK RESUB {len(c.topics)}"
        self.error(f"bad request from client {c.ino}: {line[:80]!r}")
        return "ERR"

    def problems(self) -> list[str]:
        missing = [t for t in self.listed.values() if t not in self.resubs]
        return self.errors + ([f"subscriptions listed at dump but never made again: {missing}"] if missing else [])


def main() -> None:
    wd = setup().resolve()
    b = Broker()
    lsk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsk.bind(str(wd / "peer.broker"))
    lsk.listen(16)
    b.sel.register(lsk, selectors.EVENT_READ, None)
    ready(wd)

    def step(timeout: float) -> None:
        for key, _ in b.sel.select(timeout):
            try:
                b.accept(lsk) if key.data is None else b.readable(key.data)
            except OSError as exc:
                b.error(f"{type(exc).__name__}: {exc}")
    try:
        until_stopped(step)
    except Stop:
        pass
    say(f"{len(b.listed)} client(s) listed, {len(b.resubs)} re-subscribed")
    verdict(b.problems())


if __name__ == "__main__":
    main()
