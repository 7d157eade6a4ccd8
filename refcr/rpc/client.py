"""The Python API: dump, pre-dump, restore and check from a program, shaped
like pycriu's (options as keywords named as criu_opts fields, failures as
exceptions carrying the server's message).

    from refcr.rpc.client import Client
    c = Client()                                  # a `refcr swrk` child per call
    c.dump(pid, "/tmp/img", leave_running=True, tcp_established=True)
    pid = c.restore("/tmp/img", rst_sibling=True)

    c = Client(service="/run/refcr_service.socket")   # a running `refcr service`
    c = Client(local=True)                        # this interpreter, forked: no exec

Keyword options are criu_opts fields (proto/rpc.proto): scalars by value,
repeated fields as lists (`external=["unix[123]"]`), `inherit_fd` as a list
of (key, fd) pairs of this process, `veths` as (inside, outside) pairs.
`on_notify(script, pid) -> bool` answers the server's notifications when
`notify_scripts=True` (False refuses, which fails the run).  A notification
may carry a descriptor (the new master of an orphan pty: script
"orphan-pts-master"): `on_fd(script, fd)` gets it and owns it from then on;
without on_fd it is closed.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from refcr.errors import RefcrError
from refcr.pb import rpc_pb2
from refcr.rpc import wire


class RpcError(RefcrError):
    """A request the server did not serve: its message, errno and request type."""

    def __init__(self, request: str, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.request = request
        self.message = message
        self.errno = errno


@dataclass
class Client:
    service: str | None = None          # path of a `refcr service` socket
    binary: str | None = None           # the refcr (or criu) executable for swrk; default: this refcr
    local: bool = False                 # serve from a fork of this interpreter
    on_notify: Callable[[str, int], bool] | None = None
    on_fd: Callable[[str, int], None] | None = None

    # -- the requests -------------------------------------------------------
    def version(self) -> rpc_pb2.criu_version:
        return self.call(rpc_pb2.criu_req(type=rpc_pb2.VERSION)).version

    def check(self) -> None:
        self.call(rpc_pb2.criu_req(type=rpc_pb2.CHECK))

    def features(self, **asked: bool) -> dict[str, bool]:
        req = rpc_pb2.criu_req(type=rpc_pb2.FEATURE_CHECK)
        for name, value in asked.items():
            setattr(req.features, name, value)
        got = self.call(req).features
        return {f.name: v for f, v in got.ListFields()}

    def dump(self, pid: int, images_dir: str, **opts: object) -> None:
        self._with_dir(rpc_pb2.DUMP, images_dir, dict(opts, pid=pid))

    def pre_dump(self, pid: int, images_dir: str, **opts: object) -> None:
        self._with_dir(rpc_pb2.PRE_DUMP, images_dir, dict(opts, pid=pid))

    def restore(self, images_dir: str, **opts: object) -> int:
        return self._with_dir(rpc_pb2.RESTORE, images_dir, opts).restore.pid

    # -- plumbing -----------------------------------------------------------
    def _with_dir(self, kind: int, images_dir: str, opts: dict[str, object]) -> rpc_pb2.criu_resp:
        if kind != rpc_pb2.RESTORE:
            os.makedirs(images_dir, mode=0o700, exist_ok=True)      # as the command line does
        fd = os.open(images_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            req = rpc_pb2.criu_req(type=kind)
            req.opts.images_dir_fd = fd
            fill_opts(req.opts, opts)
            return self.call(req)
        finally:
            os.close(fd)

    def call(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        """Send one request, answer its notifications, return the final response."""
        with self._connect() as (sock, wait):
            try:
                wire.send(sock, req)
                while True:
                    got = wire.recv_packet(sock)
                    if got is None:
                        raise RpcError(_name(req.type), "the server closed the connection without an answer")
                    data, fds = got
                    resp = self._decode(data, fds)
                    if resp.type != rpc_pb2.NOTIFY:
                        break
                    ok = self.on_notify(resp.notify.script, resp.notify.pid) if self.on_notify else True
                    wire.send(sock, rpc_pb2.criu_req(type=rpc_pb2.NOTIFY, notify_success=bool(ok)))
            finally:
                sock.close()
                wait()
        if not resp.success:
            raise RpcError(_name(req.type), resp.cr_errmsg or "failed (no message)",
                           resp.cr_errno if resp.HasField("cr_errno") else None)
        return resp

    def _decode(self, data: bytes, fds: list[int]) -> rpc_pb2.criu_resp:
        """A response; the descriptors of a notification go to on_fd, others are closed."""
        try:
            resp = wire.decode(rpc_pb2.criu_resp, data)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        for fd in fds:
            if resp.type == rpc_pb2.NOTIFY and self.on_fd is not None:
                self.on_fd(resp.notify.script, fd)
            else:
                os.close(fd)
        return resp

    def _connect(self) -> "_Connection":
        if self.service:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            sock.connect(self.service)
            return _Connection(sock, lambda: None)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if self.local:
            pid = os.fork()
            if pid == 0:
                ours.close()
                code = 1
                try:
                    from refcr.rpc.server import swrk
                    code = swrk(theirs.detach())
                finally:
                    os._exit(code)
            theirs.close()
            return _Connection(ours, lambda: os.waitpid(pid, 0))
        argv = [self.binary or shutil.which("refcr") or sys.executable, "swrk", str(theirs.fileno())]
        if not self.binary and not shutil.which("refcr"):
            argv[1:1] = ["-m", "refcr"]
        child = subprocess.Popen(argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        return _Connection(ours, child.wait)


@dataclass
class _Connection:
    sock: socket.socket
    wait: Callable[[], object]

    def __enter__(self) -> tuple[socket.socket, Callable[[], object]]:
        return self.sock, self.wait

    def __exit__(self, *exc: object) -> None:
        pass


def fill_opts(msg: rpc_pb2.criu_opts, opts: dict[str, object]) -> None:
    """Keyword options into criu_opts (unknown names: TypeError, as for a call)."""
    fields = msg.DESCRIPTOR.fields_by_name
    for name, value in opts.items():
        f = fields.get(name)
        if f is None:
            raise TypeError(f"no criu_opts field {name!r}")
        if name == "inherit_fd":
            for key, fd in value:  # type: ignore[attr-defined]
                msg.inherit_fd.add(key=key, fd=fd)
        elif name == "veths":
            for inside, outside in value:  # type: ignore[attr-defined]
                msg.veths.add(if_in=inside, if_out=outside)
        elif name == "ext_mnt":
            for key, val in value:  # type: ignore[attr-defined]
                msg.ext_mnt.add(key=key, val=val)
        elif name == "unix_sk_ino":
            for ino in value:  # type: ignore[attr-defined]
                msg.unix_sk_ino.add(inode=ino)
        elif f.is_repeated:
            getattr(msg, name).extend(value)  # type: ignore[arg-type]
        else:
            setattr(msg, name, value)


def _name(kind: int) -> str:
    return rpc_pb2.criu_req_type.Name(kind) if kind in rpc_pb2.criu_req_type.values() else str(kind)
