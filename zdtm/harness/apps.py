"""Real programs as zdtm scenarios: zdtm/apps/NAME.py (issue 17).

An app scenario is a small Python driver: a module that defines ``APP``, an
instance of a subclass of App, whose hooks say how the program is set up,
started as its users start it, given state through its own client, checked
through that client after the restore, reloaded and shut down.  AppRun runs
it with the runner's own steps (ScenarioRun): the same work dir, logs,
dump/restore commands and the full /proc snapshot comparison; only the start
and the end differ:

    app-prepare   App.prepare: config files, data dirs (initdb, ...)
    start         h: App.command(pid1=False), the program's own daemon mode
                  (its pidfile names the root) or, for programs that do not
                  daemonize, started in a session of its own; ns: the
                  foreground command as pid 1 of new namespaces (nslaunch)
    ready         App.ready until it answers
    populate      App.populate: state given through the program's client
    snapshot, settled   the runner's snapshot, repeated until two agree (the
                  program works on its own; App.normalise takes out what it
                  changes by itself)
    dump, restore, compare   (the runner's)
    verify        App.verify: the state is there, new clients are served
    reload        App.reload: SIGHUP, and its visible effect
    shutdown      SIGTERM; the whole tree exits, App.stale files are gone
    logs          App.log_errors over what the logs got after the dump

A client runs in the program's network namespace (``ns``: nsenter --net) and,
where the program serves others, as another user (setpriv).  Costs: an app
item runs the program for real (seconds, not milliseconds); the set of apps
is kept small.  Deviations from the C scenarios: there is no outfile verdict;
the verdict is the driver's checks.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import procs, snapshot
from .desc import Scenario
from .runner import NSLAUNCH, ScenarioRun, StepFailed

CLONE_NEWNET = 0x40000000
SETTLE_GAP, SETTLE_TIME = 0.3, 20.0    # seconds between two snapshots that must agree; how long to try
_libc = ctypes.CDLL(None, use_errno=True)



# Signals a service manager hands a service at their defaults (systemd resets them all);
# a suite started under nohup, or from a shell that ignores SIGINT/SIGQUIT for a
# background job, would otherwise pass SIG_IGN on, and the JVM, for one, then refuses
# to handle SIGHUP (its reload failed after every restore when CI ran under nohup).
SERVICE_DEFAULT_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
                           signal.SIGUSR2, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)


def default_signal_dispositions() -> None:
    """preexec_fn of every program the harness starts: the signals above at SIG_DFL."""
    for sig in SERVICE_DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)

class AppFailed(Exception):
    """A check of an app driver failed; the step it ran in is reported."""


class App:
    """The hooks of one program; subclasses set the class attributes they need."""

    flavors: tuple[str, ...] = ("h", "ns")
    opts: tuple[str, ...] = ()           # for refcr dump and restore
    dopts: tuple[str, ...] = ()
    ropts: tuple[str, ...] = ()
    transient: tuple[str, ...] = ()      # as the .desc key (what the program churns by itself)
    group: str | None = None             # xdist group (e.g. 'terminals' for a program using ptys)
    daemon: bool = False                 # h: command() daemonizes and pidfile() names the root
    deps: tuple[str, ...] = ()           # programs it needs (installed by dev.sh)
    start_timeout: float = 30.0

    def prepare(self, ctx: "AppCtx") -> None:
        """Files the program needs before it starts."""

    def command(self, ctx: "AppCtx", pid1: bool) -> list[str]:
        raise NotImplementedError

    def pidfile(self, ctx: "AppCtx") -> Path | None:
        return None

    def root_pid(self, ctx: "AppCtx") -> int | None:
        """h, daemon: the root's pid once it is known (default: from pidfile())."""
        pidfile = self.pidfile(ctx)
        assert pidfile is not None, "a daemon app has a pidfile() or a root_pid()"
        first = (pidfile.read_text() if pidfile.exists() else "").split("\n", 1)
        return int(first[0]) if len(first) > 1 and first[0].strip().isdigit() else None

    def ready(self, ctx: "AppCtx") -> bool:
        return True

    def populate(self, ctx: "AppCtx") -> None:
        """Give it state through its own client."""

    def verify(self, ctx: "AppCtx") -> None:
        """After the restore: state kept, new clients served."""

    def reload(self, ctx: "AppCtx") -> None:
        """SIGHUP (or the program's own reload) and its effect."""

    def stale(self, ctx: "AppCtx") -> list[Path]:
        """Files a clean shutdown removes."""
        return []

    def logs(self, ctx: "AppCtx") -> list[Path]:
        return []

    def log_errors(self, text: str) -> list[str]:
        """The error lines among what a log got after the dump."""
        return [ln for ln in text.splitlines() if re.search(r"\b(error|fatal|panic)\b", ln, re.I)]

    def normalise(self, state: snapshot.TreeState) -> snapshot.TreeState:
        """What of the /proc state the program changes by itself as it runs, taken
        out of both snapshots (default: nothing)."""
        return state

    def shutdown(self, ctx: "AppCtx") -> None:
        """SIGTERM to the root; every process of the tree must exit."""
        ctx.signal(signal.SIGTERM)
        ctx.wait_exit()


@dataclass
class AppCtx:
    """What a driver sees of its run."""

    run: "AppRun"

    @property
    def workdir(self) -> Path:
        return self.run.cfg.workdir

    @property
    def ns(self) -> bool:
        return self.run.cfg.flavor.namespaces

    @property
    def pid(self) -> int:
        assert self.run.pid is not None
        return self.run.pid

    def path(self, name: str) -> Path:
        return self.workdir / name

    def fail(self, message: str) -> None:
        raise AppFailed(message)

    def check(self, cond: bool, message: str) -> None:
        if not cond:
            raise AppFailed(message)

    def log(self, message: str) -> None:
        with open(self.workdir / "app.log", "a") as f:
            f.write(message.rstrip("\n") + "\n")

    def wrap(self, argv: list[str], user: str | None = None) -> list[str]:
        """argv in the program's net namespace (ns) and as `user` (a name)."""
        if user is not None:
            pw = pwd.getpwnam(user)
            argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--", *argv]
        if self.ns and self.run.pid is not None:
            argv = ["nsenter", f"--net=/proc/{self.pid}/ns/net", "--", *argv]
        return argv

    def client(self, argv: list[str], user: str | None = None, input: str | None = None,
               timeout: float = 30.0, check: bool = True, env: dict[str, str] | None = None) -> str:
        """Run the program's client; its stdout, or AppFailed naming it and its stderr."""
        full = self.wrap(argv, user)
        self.log(f"$ {' '.join(full)}")
        try:
            p = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout,
                               cwd=self.workdir, env={**self.run.cfg.env, **(env or {})})
        except subprocess.TimeoutExpired:
            raise AppFailed(f"{argv[0]} did not answer in {timeout:g}s") from None
        self.log(p.stdout + p.stderr)
        if check and p.returncode != 0:
            raise AppFailed(f"{' '.join(argv)} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
        return p.stdout

    def connect(self, family: int, address: object, timeout: float = 10.0) -> socket.socket:
        """A connected socket of this process made in the program's net namespace."""
        if not self.ns:
            return socket.create_connection(address, timeout) if family == socket.AF_INET else \
                _unix(address, timeout)
        box: dict[str, object] = {}

        def enter() -> None:
            try:
                fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET)")
                finally:
                    os.close(fd)
                box["sock"] = socket.create_connection(address, timeout)
            except OSError as e:
                box["error"] = e

        t = threading.Thread(target=enter)    # setns changes only this (short-lived) thread
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["sock"]  # type: ignore[return-value]

    def wait(self, cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AppFailed(f"{what}: not after {timeout:g}s")
            time.sleep(0.05)

    def signal(self, sig: int, pid: int | None = None) -> None:
        os.kill(self.pid if pid is None else pid, sig)

    def tree(self) -> list[int]:
        return [p for p, _ in procs.descendants(self.pid)]

    def wait_exit(self, timeout: float = 30.0) -> None:
        """The root and every process of its tree are gone."""
        pids = set(self.tree())
        try:
            status = procs.wait_exit(self.pid, timeout)
        except TimeoutError:
            raise AppFailed(f"process {self.pid} did not exit within {timeout:g}s of SIGTERM") from None
        left = procs.wait_gone(pids, timeout)
        if left:
            raise AppFailed(f"processes {sorted(left)} still run after the root exited")
        if status.status is not None and not clean_exit(status.status):
            raise AppFailed(f"the program {status.describe()} on SIGTERM")
        self.run.pid = None


def clean_exit(status: int) -> bool:
    """Exit 0, death by SIGTERM, or exit 128 + SIGTERM (the JVM's, a shell's)."""
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) == signal.SIGTERM
    return os.WEXITSTATUS(status) in (0, 128 + signal.SIGTERM)


def free_port() -> int:
    """A TCP port of the host's loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unix(path: object, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    return s


def load_app(source: Path) -> App:
    """zdtm/apps/NAME.py's APP."""
    spec = importlib.util.spec_from_file_location(f"zdtm_app_{source.stem}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = getattr(module, "APP", None)
    if not isinstance(app, App):
        raise TypeError(f"{source}: defines no APP (an instance of zdtm.harness.apps.App)")
    return app


def scenario_of(source: Path, app: App) -> Scenario:
    return Scenario(name=source.stem, source=source, opts=app.opts, dopts=app.dopts, ropts=app.ropts,
                    flavors=app.flavors, transient=frozenset(app.transient), deps=app.deps)


class AppRun(ScenarioRun):
    """ScenarioRun with an app driver's start, checks and end."""

    def __init__(self, cfg, app: App) -> None:  # type: ignore[no-untyped-def]
        super().__init__(cfg)
        self.app = app
        self.ctx = AppCtx(self)
        self.log_marks: dict[Path, int] = {}

    def _app_step(self, name: str, fn: Callable[[AppCtx], None]) -> None:
        with self._step(name):
            try:
                fn(self.ctx)
            except AppFailed as e:
                raise StepFailed(name, str(e)) from None

    def artifacts(self) -> list[Path]:
        extra = [self.cfg.workdir / "app.log", *self.app.logs(self.ctx)]
        return [*super().artifacts(), *[p for p in extra if p.is_file() and p.stat().st_size > 0]]

    def _prepare(self) -> None:
        with self._step("prepare"):
            self._fresh_workdir()
            self.cfg.workdir.chmod(0o755)    # the program's own user and other users' clients get in
            closed = [p for p in self.cfg.workdir.parents if not p.stat().st_mode & 0o001]
            if closed:
                raise StepFailed("prepare", f"{closed[0]} is mode {closed[0].stat().st_mode & 0o777:o}: other "
                                 "users (the program's own, the clients as nobody) cannot reach the work dir")
        self._app_step("app-prepare", self.app.prepare)

    def _start(self) -> None:
        with self._step("start"):
            if self.cfg.flavor.pid1:
                self._launch_pid1()
            else:
                self._launch_host()
        with self._step("ready"):
            deadline = time.monotonic() + self.app.start_timeout * (self.cfg.timeouts.start / 30.0)
            while True:
                try:
                    if self.app.ready(self.ctx):
                        break
                except (OSError, AppFailed):
                    pass
                if self.pid is None or not procs.is_alive(self.pid):
                    raise StepFailed("ready", "the program ended before it was ready (see start.log)")
                if time.monotonic() > deadline:
                    raise StepFailed("ready", f"not ready after {self.app.start_timeout:g}s")
                time.sleep(0.1)
            self.sid = procs.own_session(self.pid)
            if not self.cfg.flavor.pid1 and self.sid is None:
                raise StepFailed("ready", f"process {self.pid} does not lead a session of its own")
        self._app_step("populate", self.app.populate)
        with self._step("namespaces"):
            self._check_namespaces(self.pid)

    def _launch_host(self) -> None:
        argv = self.app.command(self.ctx, pid1=False)
        with open(self.start_log, "ab") as log:
            if self.app.daemon:
                rc = subprocess.run(argv, cwd=self.cfg.workdir, env=self.cfg.env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, timeout=self.cfg.timeouts.start,
                                    preexec_fn=default_signal_dispositions).returncode
                if rc != 0:
                    raise StepFailed("start", f"{argv[0]} exited with status {rc} (see start.log)")
                deadline = time.monotonic() + self.cfg.timeouts.pidfile
                while (pid := self.app.root_pid(self.ctx)) is None:
                    if time.monotonic() > deadline:
                        raise StepFailed("start", f"no pid of the program after {self.cfg.timeouts.pidfile:g}s")
                    time.sleep(0.05)
                self.pid = pid
            else:
                p = subprocess.Popen(argv, cwd=self.cfg.workdir, env=self.cfg.env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True,
                                     preexec_fn=default_signal_dispositions)
                self.pid = p.pid

    def _launch_pid1(self) -> None:
        # The init leads its own session (as a container runtime makes it), with its
        # stdio opened inside its mount namespace (files of the host's would be
        # of no mount the restored tree has).
        init = ["/bin/sh", "-c", 'exec </dev/null >>"$0" 2>&1; exec setsid -- "$@"', str(self.start_log),
                *self.app.command(self.ctx, pid1=True)]
        argv = self.cfg.flavor.launch_argv(str(NSLAUNCH), sys.executable, init)
        with open(self.start_log, "ab") as log:
            p = subprocess.run(argv, cwd=self.cfg.workdir, env=self.cfg.env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=log, timeout=self.cfg.timeouts.start,
                               preexec_fn=default_signal_dispositions)
        text = p.stdout.decode(errors="replace").strip()
        if p.returncode != 0 or not text.isdigit():
            raise StepFailed("start", f"nslaunch exited with status {p.returncode} (see start.log)")
        self.pid = int(text)

    def _snapshot(self, step: str) -> snapshot.TreeState:
        """The state before the dump, once the program has settled: a real
        program works on its own (a JIT commits code cache, a cron resizes a
        table), so two snapshots SETTLE_GAP apart must agree first; then the
        dump follows at once.  A program still changing after SETTLE_TIME is
        snapshotted as it is (the comparison then shows what moved)."""
        state = self.app.normalise(super()._snapshot(step))
        with self._step("settled"):
            deadline = time.monotonic() + SETTLE_TIME * (self.cfg.timeouts.start / 30.0)
            while time.monotonic() < deadline:
                time.sleep(SETTLE_GAP)
                assert self.pid is not None
                again = self.app.normalise(snapshot.take_tree(self.pid, self.cfg.scenario.transient))
                self.tree = again.outer_pids()
                if not snapshot.diff(state, again, self.cfg.flavor.ignore_fields, self.cfg.scenario.transient):
                    return again
                state = again
            self.ctx.log(f"{step}: still changing after {SETTLE_TIME:g}s")
        return state

    def _after_state(self, step: str) -> snapshot.TreeState:
        return self.app.normalise(super()._after_state(step))

    def _checkpoint_restore(self, it: int, before) -> bool:  # type: ignore[no-untyped-def]
        for log in self.app.logs(self.ctx):
            self.log_marks[log] = log.stat().st_size if log.exists() else 0
        done = super()._checkpoint_restore(it, before)
        if done:
            self._app_step("verify", self.app.verify)
        return done

    def _stop(self) -> None:
        self._app_step("reload", self.app.reload)
        self._app_step("shutdown", self.app.shutdown)
        with self._step("stale-files"):
            left = [str(p) for p in self.app.stale(self.ctx) if p.exists()]
            if left:
                raise StepFailed("stale-files", f"left after a clean shutdown: {', '.join(left)}")
        with self._step("logs"):
            errors = []
            for log in self.app.logs(self.ctx):
                if not log.exists():
                    continue
                with open(log, errors="replace") as f:
                    f.seek(self.log_marks.get(log, 0))
                    errors += [f"{log.name}: {ln}" for ln in self.app.log_errors(f.read())]
            if errors:
                raise StepFailed("logs", f"{len(errors)} error line(s) after the dump", errors[:10])
