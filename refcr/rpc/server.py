"""The RPC server: `refcr swrk FD` and `refcr service`.

A Session serves one client: it reads a criu_req, runs it with the same
pipelines as the command line (refcr.dump, predump, restore) and answers with
a criu_resp; a failure is `success: false` with the one line the command
line would print in cr_errmsg (and cr_errno when an errno applies).  After a
DUMP, PRE_DUMP or RESTORE the session ends unless the request had keep_open
(as CRIU); the informational requests (VERSION, CHECK, FEATURE_CHECK) may
be followed by more on the same connection.

Action scripts: with notify_scripts, every action moment is a NOTIFY round
trip (criu_resp{type: NOTIFY, notify{script, pid}} to the client, which
answers with criu_req{type: NOTIFY, notify_success}) before refcr goes on; a
refused notification fails the run like a failing script.  Without it, the
same moments check that the client is still there: a client that hung up
mid-dump fails the dump, so the tree is resumed rather than killed for
nobody.

`refcr service` accepts on a unix SOCK_SEQPACKET socket and forks one worker
per connection: the worker has every import done already (the point of the
service: no interpreter start per dump), and whatever a run leaves in the
process (the log handler, loaded plugins) dies with the worker.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import socket
from dataclasses import dataclass

from google.protobuf import text_format

from refcr import __version__, actions, log as logmod
from refcr.errors import OptionError, RefcrError
from refcr.log import log
from refcr.pb import rpc_pb2
from refcr.rpc import wire
from refcr.rpc.opts import Request, translate

# The CRIU release whose protocol this server speaks; clients compare it
# against the CRIU versions they need (runc wants >= 3.x for most features).
CRIU_LEVEL = (4, 2)
ONE_SHOT = {rpc_pb2.DUMP, rpc_pb2.PRE_DUMP, rpc_pb2.SINGLE_PRE_DUMP, rpc_pb2.RESTORE}


class NotifyRefused(actions.ActionError):
    """The client answered a notification with notify_success false."""


@dataclass
class Session:
    sock: socket.socket
    peer: int

    def serve(self) -> None:
        """Requests until the client hangs up or a one-shot request is done."""
        while True:
            try:
                req = wire.recv_req(self.sock)
            except wire.ProtocolError as exc:
                self._answer(_failure(rpc_pb2.EMPTY, exc))
                return
            if req is None:
                return
            self._answer(self.handle(req))
            if req.type in ONE_SHOT and not req.keep_open:
                return

    def _answer(self, resp: rpc_pb2.criu_resp) -> None:
        try:
            wire.send(self.sock, resp)
        except wire.ClientGone:
            log.warning("rpc: the client left before its answer")

    def handle(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        name = rpc_pb2.criu_req_type.Name(req.type) if req.type in rpc_pb2.criu_req_type.values() else str(req.type)
        log.info("rpc: %s request from %d", name, self.peer)
        log.debug("rpc: %s", text_format.MessageToString(req, as_one_line=True))
        handler = {
            rpc_pb2.VERSION: self.version,
            rpc_pb2.CHECK: self.check,
            rpc_pb2.FEATURE_CHECK: self.feature_check,
            rpc_pb2.DUMP: self.dump,
            rpc_pb2.PRE_DUMP: self.pre_dump,
            rpc_pb2.SINGLE_PRE_DUMP: self.pre_dump,
            rpc_pb2.RESTORE: self.restore,
            rpc_pb2.WAIT_PID: self.wait_pid,
        }.get(req.type)
        if handler is None:
            why = {rpc_pb2.NOTIFY: "a NOTIFY answer outside a notification",
                   rpc_pb2.PAGE_SERVER: "refcr has no page server",
                   rpc_pb2.PAGE_SERVER_CHLD: "refcr has no page server",
                   rpc_pb2.CPUINFO_DUMP: "refcr makes no cpuinfo images (the xstate layout is in core images)",
                   rpc_pb2.CPUINFO_CHECK: "refcr makes no cpuinfo images"}.get(req.type, "unknown request type")
            return _failure(req.type, OptionError(f"{name}: {why}"))
        try:
            return handler(req)
        except RefcrError as exc:
            log.error("%s", exc)
            return _failure(req.type, exc)
        except Exception as exc:    # a bug: the client gets one line, the log the traceback
            log.debug("internal error", exc_info=True)
            return _failure(req.type, exc, f"refcr: internal error: {type(exc).__name__}: {exc}")

    # -- informational ----------------------------------------------------
    def version(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        resp = rpc_pb2.criu_resp(type=req.type, success=True)
        resp.version.major_number, resp.version.minor_number = CRIU_LEVEL
        resp.version.gitid = __version__
        resp.version.name = "refcr"
        return resp

    def check(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        from refcr.check import run_probes
        missing = [f"{name} ({why})" for name, required, why in run_probes() if required and why]
        if missing:
            return _failure(req.type, OptionError("missing kernel features: " + ", ".join(missing)))
        return rpc_pb2.criu_resp(type=req.type, success=True)

    def feature_check(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        resp = rpc_pb2.criu_resp(type=req.type, success=True)
        if req.features.HasField("mem_track"):
            resp.features.mem_track = True      # uffd-wp where the kernel has it, else page digests
        if req.features.HasField("lazy_pages"):
            resp.features.lazy_pages = False
        if req.features.HasField("pidfd_store"):
            resp.features.pidfd_store = False
        return resp

    def wait_pid(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        try:
            _, status = os.waitpid(req.pid, 0)
        except ChildProcessError:
            return _failure(req.type, OptionError(f"WAIT_PID {req.pid}: not a child of this server"),
                            errno_=errno.ECHILD)
        resp = rpc_pb2.criu_resp(type=req.type, success=True)
        resp.status = status
        return resp

    # -- the pipelines ----------------------------------------------------
    def _prepare(self, req: rpc_pb2.criu_req, command: str) -> Request:
        r = translate(req.opts, self.peer, command, lambda r: logmod.setup(r.opts.verbosity, r.opts.log_file))
        r.opts.notify = lambda action, pid: self.notify(r, action, pid)
        r.opts.hand_fd = lambda action, fd: self.hand_fd(r, action, fd)
        from refcr.external import check_external
        r.opts.ext_unix_sk += [str(ino) for ino in check_external(r.opts.external)]
        return r

    def dump(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        from refcr.dump import dump
        from refcr.images.imagedir import ImageDir
        r = self._prepare(req, "dump")
        try:
            images = ImageDir(r.opts.images_dir, "w", others_ok=True)     # the log, runc's descriptors.json
            dump(r.opts, images)
        finally:
            r.close()
        resp = rpc_pb2.criu_resp(type=req.type, success=True)
        resp.dump.restored = False
        return resp

    def pre_dump(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        from refcr.images.imagedir import ImageDir
        from refcr.predump import pre_dump
        r = self._prepare(req, "pre-dump")
        try:
            images = ImageDir(r.opts.images_dir, "w", others_ok=True)     # the log, runc's descriptors.json
            pre_dump(r.opts, images)
        finally:
            r.close()
        return rpc_pb2.criu_resp(type=req.type, success=True)

    def restore(self, req: rpc_pb2.criu_req) -> rpc_pb2.criu_resp:
        from refcr.restore import restore
        r = self._prepare(req, "restore")
        try:
            if not os.path.isdir(r.opts.images_dir):
                raise OptionError(f"image directory {r.opts.images_dir} does not exist")
            pid = restore(r.opts)
        finally:
            r.close()
        resp = rpc_pb2.criu_resp(type=req.type, success=True)
        resp.restore.pid = pid
        return resp

    # -- notifications ----------------------------------------------------
    def notify(self, r: Request, action: str, pid: int | None, fds: list[int] | None = None) -> None:
        """One action moment: a NOTIFY round trip, or a check that the client is still there."""
        if not r.notify_scripts:
            if _hung_up(self.sock):
                raise wire.ClientGone(f"the client closed the connection (at {action})")
            return
        resp = rpc_pb2.criu_resp(type=rpc_pb2.NOTIFY, success=True)
        resp.notify.script = action
        if pid is not None:
            resp.notify.pid = pid
        wire.send(self.sock, resp, fds)
        answer = wire.recv_req(self.sock)
        if answer is None:
            raise wire.ClientGone(f"the client closed the connection (at notification {action})")
        if answer.type != rpc_pb2.NOTIFY:
            raise wire.ProtocolError(f"notification {action}: the client answered with "
                                     f"{rpc_pb2.criu_req_type.Name(answer.type)}, not NOTIFY")
        if not answer.notify_success:
            raise NotifyRefused(f"the client refused notification {action}")

    def hand_fd(self, r: Request, action: str, fd: int) -> None:
        """A descriptor for the client, with a NOTIFY it acknowledges (as CRIU: only
        where the client takes notifications)."""
        if not r.notify_scripts:
            raise OptionError(f"{action}: the client takes no notifications (notify_scripts), "
                              "so there is no way to hand it the descriptor")
        self.notify(r, action, None, [fd])


def _hung_up(sock: socket.socket) -> bool:
    p = select.poll()
    p.register(sock, select.POLLRDHUP)
    return any(ev & (select.POLLHUP | select.POLLRDHUP | select.POLLERR) for _, ev in p.poll(0))


def _failure(kind: int, exc: BaseException, text: str | None = None, errno_: int | None = None) -> rpc_pb2.criu_resp:
    resp = rpc_pb2.criu_resp(type=kind, success=False)
    resp.cr_errmsg = _one_line(text or f"refcr: error: {exc}")
    code = errno_ if errno_ is not None else getattr(exc, "errno", None)
    if isinstance(code, int):
        resp.cr_errno = code
    return resp


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text.replace("\n", " "))


# ----------------------------------------------------------------- entry --

def swrk(fd: int) -> int:
    """`refcr swrk FD`: serve the client on the inherited socket FD, then exit."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise OptionError(f"swrk {fd}: not a socket ({exc.strerror})") from None
    if sock.type != socket.SOCK_SEQPACKET or sock.family != socket.AF_UNIX:
        raise OptionError(f"swrk {fd}: not a unix SOCK_SEQPACKET socket")
    os.set_inheritable(fd, False)
    with sock:
        Session(sock, wire.peer_pid(sock)).serve()
    return 0


def service(address: str, pidfile: str | None = None, ready: int | None = None) -> int:
    """`refcr service`: accept connections on ADDRESS until SIGTERM/SIGINT,
    one forked worker per connection."""
    if os.path.exists(address):
        if not _stale(address):
            raise OptionError(f"service address {address}: another server is listening there")
        os.unlink(address)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(address)
    except OSError as exc:
        raise OptionError(f"service address {address}: cannot bind: {exc.strerror}") from None
    os.chmod(address, 0o600)        # root's tool: only root may ask it to dump processes
    listener.listen(16)
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    stop = {"now": False}

    def _stop(sig: int, frame: object) -> None:
        stop["now"] = True
        listener.close()

    _warm()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # workers are reaped as they end (not at the next connection): no zombies
    # in between, and the service's CPU figures (cutime) are current
    signal.signal(signal.SIGCHLD, lambda sig, frame: _reap())
    log.info("rpc: serving on %s", address)
    if ready is not None:
        os.write(ready, b"1")
        os.close(ready)
    try:
        while not stop["now"]:
            try:
                conn, _ = listener.accept()
            except OSError:
                if stop["now"]:
                    break
                raise
            _reap()
            if os.fork() == 0:      # the worker
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # its children are the restored tree's
                listener.close()
                code = 1
                try:
                    with conn:
                        Session(conn, wire.peer_pid(conn)).serve()
                    code = 0
                finally:
                    os._exit(code)
            conn.close()
    finally:
        try:
            os.unlink(address)
        except OSError:
            pass
    return 0


def _warm() -> None:
    """Import, once in the server, what every request would import again in
    a cold `refcr` (the pipelines, every fd kind, pyroute2): the workers are
    forks and find it all loaded."""
    import importlib
    for name in ("refcr.dump", "refcr.predump", "refcr.restore", "refcr.check", "refcr.external",
                 "pyroute2", "google.protobuf.json_format"):
        importlib.import_module(name)
    from refcr.fs import files
    files.kinds()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _stale(address: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        probe.connect(address)
        return False
    except OSError:
        return True
    finally:
        probe.close()
