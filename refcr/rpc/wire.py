"""Framing of CRIU's RPC: one serialized criu_req/criu_resp per
SOCK_SEQPACKET packet, file descriptors beside it as SCM_RIGHTS.

A packet larger than MAX_PACKET, one that does not decode, or one cut short
(MSG_TRUNC) is a ProtocolError naming what was wrong: the peer gets an
answer saying so (when it can still take one), never a traceback.
"""
from __future__ import annotations

import array
import os
import socket

from google.protobuf.message import DecodeError, Message

from refcr.errors import RefcrError
from refcr.pb import rpc_pb2

MAX_PACKET = 1 << 20        # a criu_req is a few hundred bytes; anything near this is garbage
MAX_FDS = 16                # fds accepted beside one packet (CRIU sends at most one)


class ProtocolError(RefcrError):
    """A packet that is not a well-formed message of the protocol."""


class ClientGone(RefcrError):
    """The client closed its end while refcr was working for it."""


def recv_packet(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """The next packet and the fds that came with it; None at end of stream."""
    fds = array.array("i")
    try:
        data, anc, flags, _ = sock.recvmsg(MAX_PACKET, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    except ConnectionResetError:
        return None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            _close(fd)
        raise ProtocolError(f"a packet of more than {MAX_PACKET} bytes or {MAX_FDS} fds")
    if not data and not fds:
        return None
    return data, list(fds)


def recv_req(sock: socket.socket) -> rpc_pb2.criu_req | None:
    """The next request, None at end of stream; fds sent with it are closed."""
    got = recv_packet(sock)
    if got is None:
        return None
    data, fds = got
    for fd in fds:
        _close(fd)
    return decode(rpc_pb2.criu_req, data)


def decode(cls: type[Message], data: bytes) -> Message:
    msg = cls()
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError(f"a packet of {len(data)} bytes is not a {cls.DESCRIPTOR.name}: {exc}") from None
    return msg


def send(sock: socket.socket, msg: Message, fds: list[int] | None = None) -> None:
    """One message in one packet (with fds as SCM_RIGHTS); ClientGone if the peer left."""
    data = msg.SerializeToString()
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    try:
        sock.sendmsg([data], anc)
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ClientGone(f"the client closed the connection ({exc.strerror})") from None


def peer_pid(sock: socket.socket) -> int:
    """The client's pid (SO_PEERCRED: the process that made its end)."""
    creds = array.array("i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return creds[0]


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
