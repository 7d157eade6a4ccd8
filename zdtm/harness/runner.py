"""Run one scenario in one flavor: start -> dump -> restore -> verify.

Every step is named; a failure raises StepFailed naming the step, so the
report says where it broke.  Whatever happens, the scenario's process tree and
any refcr process left behind are killed and reaped before run() returns.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import chain, cropts, outermnt, outerns, ownfiles, procs, snapshot
from .desc import Scenario
from .peers import Peer, PeerError
from .flavors import Flavor

NSLAUNCH = Path(__file__).with_name("nslaunch.py")
# The namespaces the ns flavors create (user: only uns).
FLAVOR_NAMESPACES = ("pid", "mnt", "net", "ipc", "uts")


class StepFailed(Exception):
    """A step of the run did not go as expected."""

    def __init__(self, step: str, message: str, details: list[str] | None = None) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class Timeouts:
    start: float = 30.0
    pidfile: float = 10.0
    dump: float = 180.0
    restore: float = 180.0
    gone: float = 10.0
    exit: float = 30.0

    def scaled(self, factor: float) -> "Timeouts":
        return Timeouts(*(getattr(self, f) * factor for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class RunConfig:
    scenario: Scenario
    flavor: Flavor
    workdir: Path
    env: dict[str, str]  # environment for the scenario and for refcr
    no_cr: bool = False
    iterations: int = 1
    timeouts: Timeouts = Timeouts()
    refcr: tuple[str, ...] = (sys.executable, "-m", "refcr")
    verbosity: str = "-v4"


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stderr_path: Path

    def error_line(self) -> str:
        lines = [ln for ln in self.stderr_path.read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1] if lines else "(nothing on stderr)"


@dataclass
class ScenarioRun:
    """The state of one run; run() drives it."""

    cfg: RunConfig
    step: str = "setup"
    steps_done: list[str] = field(default_factory=list)
    pid: int | None = None
    sid: int | None = None
    tree: list[int] = field(default_factory=list)
    crfail_confirmed: bool = False
    peer: Peer | None = None                      # .desc 'peer' (peers.py)
    run_opts: cropts.RunOpts = field(default_factory=cropts.RunOpts)   # cr-opts.json (cropts.py)
    handed_names: dict[str, str] = field(default_factory=dict)       # cropts.Handed.names of the restores
    shell: object | None = None                   # shell_job: the pexpect terminals (shelljob.py)
    outer: outerns.OuterNetns | None = None       # .desc 'outer_netns' (outerns.py)
    action_script: Path | None = None             # .desc 'action_script' (outerns.py)
    outer_mnt: outermnt.OuterMnt | None = None    # .desc 'outer_mnt' (outermnt.py)

    # ---- files of the work dir -------------------------------------------------
    @property
    def pidfile(self) -> Path:
        return self.cfg.workdir / f"{self.cfg.scenario.name}.pid"

    @property
    def outfile(self) -> Path:
        return self.cfg.workdir / f"{self.cfg.scenario.name}.out"

    @property
    def start_log(self) -> Path:
        return self.cfg.workdir / "start.log"

    def _iter_name(self, base: str, it: int, ext: str = "") -> Path:
        suffix = "" if self.cfg.iterations == 1 else f"-{it}"
        return self.cfg.workdir / f"{base}{suffix}{ext}"

    def artifacts(self) -> list[Path]:
        """Files worth showing when the run failed, in a useful order."""
        wd = self.cfg.workdir
        found = [self.start_log]
        for kind in ("dump", "restore"):
            found += sorted(wd.glob(f"{kind}*.log"))[-1:]
            found += sorted(wd.glob(f"{kind}*.stderr"))[-1:]
        found.append(self.outfile)
        return [p for p in found if p.is_file() and p.stat().st_size > 0]

    # ---- driver --------------------------------------------------------------------
    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        self.step = name
        try:
            yield
        except StepFailed:
            raise
        except (PeerError, cropts.CrOptsError, outerns.OuterNetnsError, outermnt.OuterMntError) as e:
            raise StepFailed(name, str(e)) from e
        except (OSError, ValueError, TimeoutError, subprocess.SubprocessError) as e:
            raise StepFailed(name, f"{type(e).__name__}: {e}") from e
        self.steps_done.append(name)

    def run(self) -> None:
        try:
            self._prepare()
            self._start_peer()
            self._start()
            before = self._snapshot("snapshot")
            if self.cfg.no_cr:
                time.sleep(0.1)
                self._compare("snapshot-stable", before)
            else:
                with self._step("cr-opts"):
                    self.run_opts = cropts.load(self.cfg.workdir)
                self._refused_dumps(before)
                before = self._checkpoints() or before
                chain.before_final_dump(self)
                for it in range(1, self.cfg.iterations + 1):
                    if not self._checkpoint_restore(it, before):
                        break  # crfail: dump failed as expected, no restore
            pid = self.pid
            self._stop()
            if not self.cfg.no_cr and pid is not None:
                chain.restore_each(self, pid)
            self._finish_peer()
        finally:
            self._cleanup()

    def _fresh_workdir(self) -> None:
        wd = self.cfg.workdir
        if wd.exists():
            shutil.rmtree(wd)
        wd.mkdir(parents=True)

    def _prepare(self) -> None:
        with self._step("prepare"):
            self._fresh_workdir()
            if not self.cfg.scenario.binary.is_file():
                raise StepFailed("prepare", f"{self.cfg.scenario.binary} is not built")
            self._prepare_outer()

    def _prepare_outer(self) -> None:
        """.desc 'outer_netns' and 'action_script' (outerns.py)."""
        sc = self.cfg.scenario
        if sc.action_script is not None:
            repo = sc.source.resolve().parents[2]
            self.action_script = outerns.action_script(sc.action_script, self.cfg.workdir, repo)
        if sc.outer_netns is not None:
            self.outer = outerns.OuterNetns.start(sc.outer_netns, self.start_log)
        if sc.outer_mnt:
            self.outer_mnt = outermnt.OuterMnt.start(sc.outer_mnt, self.cfg.workdir, self.start_log)

    def _start_peer(self) -> None:
        """Start the .desc's peer before the scenario; with peer_netns in a
        namespaced flavor _start_pid1 does it once the namespaces exist."""
        sc = self.cfg.scenario
        if sc.peer is None or (sc.peer_netns and self.cfg.flavor.namespaces):
            return
        with self._step("peer"):
            self.peer = Peer.start(sc.peer, self.cfg.workdir, self._peer_env())
            self.peer.wait_ready(self.cfg.timeouts.start)

    def _peer_env(self) -> dict[str, str]:
        return {**self.cfg.env, "ZDTM_FLAVOR": self.cfg.flavor.name, "ZDTM_SCENARIO": self.cfg.scenario.name}

    def _finish_peer(self) -> None:
        if self.peer is not None:
            with self._step("peer-verdict"):
                peer, self.peer = self.peer, None
                peer.finish(self.cfg.timeouts.exit)

    def _start(self) -> None:
        if self.cfg.scenario.shell_job:
            from . import shelljob
            shelljob.start(self)
        elif self.cfg.flavor.pid1:
            self._start_pid1()
        else:
            self._start_host()
        assert self.pid is not None
        with self._step("namespaces"):
            self._check_namespaces(self.pid)

    def _scenario_argv(self) -> list[str]:
        sc = self.cfg.scenario
        return [str(sc.binary), f"--pidfile={self.pidfile}", f"--outfile={self.outfile}"]

    def _start_host(self) -> None:
        """h: the library forks, daemonizes, and its launcher exits 0 once ready."""
        with self._step("start"):
            with open(self.start_log, "wb") as log:
                launcher = subprocess.Popen(
                    self._scenario_argv(), cwd=self.cfg.workdir, env=self.cfg.env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            try:
                rc = launcher.wait(timeout=self.cfg.timeouts.start)
            except subprocess.TimeoutExpired:
                procs.kill_tree(launcher.pid)
                launcher.wait()
                self._adopt_pidfile()
                raise StepFailed("start", f"not ready after {self.cfg.timeouts.start:g}s") from None
            if rc != 0:
                self._adopt_pidfile()
                raise StepFailed("start", f"launcher exited with status {rc} (see start.log and the outfile)")
        with self._step("pidfile"):
            deadline = time.monotonic() + self.cfg.timeouts.pidfile
            while not self._adopt_pidfile():
                if time.monotonic() > deadline:
                    raise StepFailed("pidfile", f"{self.pidfile} missing or malformed after a successful start")
                time.sleep(0.02)
            assert self.pid is not None
            if not procs.is_alive(self.pid):
                raise StepFailed("pidfile", f"test process {self.pid} is not running")

    def _adopt_pidfile(self) -> bool:
        """Read the pidfile into self.pid/self.sid; False if not there yet."""
        try:
            text = self.pidfile.read_text()
        except FileNotFoundError:
            return False
        if not text.endswith("\n") or not text.strip().isdigit():
            return False
        self.pid = int(text)
        self.sid = procs.own_session(self.pid)
        return True

    def _start_pid1(self) -> None:
        """ns/uns: nslaunch.py starts the test as pid 1 of new namespaces and
        prints its OUTER pid; the library does not fork, the pidfile says 1."""
        fl, to = self.cfg.flavor, self.cfg.timeouts
        with self._step("start"):
            argv = fl.launch_argv(str(NSLAUNCH), sys.executable, self._scenario_argv())
            env, fds = self.cfg.env, ()
            if self.outer is not None:      # the scenario's namespaces are made from the outer one
                argv, fds = self.outer.wrap(argv), (self.outer.child_fd(),)
                env = {**env, outerns.ENV_FD: str(fds[0])}
            if self.outer_mnt is not None:
                argv = self.outer_mnt.wrap(argv)
            with open(self.start_log, "ab") as log:
                launcher = subprocess.Popen(
                    argv, cwd=self.cfg.workdir, env=env,
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, pass_fds=fds,
                )
            for fd in fds:
                os.close(fd)
            try:
                out, _ = launcher.communicate(timeout=to.start)
            except subprocess.TimeoutExpired:
                procs.kill_tree(launcher.pid)
                launcher.wait()
                raise StepFailed("start", f"nslaunch did not finish in {to.start:g}s") from None
            text = out.decode(errors="replace").strip()
            if launcher.returncode != 0 or not text.isdigit():
                raise StepFailed("start", f"nslaunch exited with status {launcher.returncode} (see start.log)")
            self.pid = int(text)
            self.sid = None
        if self.cfg.scenario.peer and self.cfg.scenario.peer_netns:
            with self._step("peer"):
                self.peer = Peer.start(self.cfg.scenario.peer, self.cfg.workdir, self._peer_env(), self.pid)
        with self._step("pidfile"):
            deadline = time.monotonic() + to.start
            while not (self.pidfile.exists() and self._said_ready()):
                try:
                    r, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    r, status = (self.pid, -1) if not procs.is_alive(self.pid) else (0, 0)
                if r == self.pid:
                    how = procs.ExitStatus(self.pid, None if status < 0 else status).describe()
                    self.pid = None
                    raise StepFailed("pidfile", f"the test (pid 1 of its namespaces) {how} before it was ready")
                if time.monotonic() > deadline:
                    raise StepFailed("pidfile", f"not ready after {to.start:g}s: no {self.pidfile.name}")
                time.sleep(0.02)
            text = self.pidfile.read_text()
            if text != "1\n":
                raise StepFailed("pidfile", f"{self.pidfile.name} says {text!r}, expected '1\\n': "
                                 "the test is not running as pid 1 (library without pid-1 mode?)")
            self.sid = procs.own_session(self.pid)

    def _said_ready(self) -> bool:
        """In pid-1 mode no launcher waits for the test: its pidfile appears just
        before it writes "NAME: ready" to the outfile, and that write moves the
        outfile's offset, so the snapshot waits for the line too."""
        try:
            lines = self.outfile.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return False
        return f"{self.cfg.scenario.name}: ready" in lines

    def _check_namespaces(self, pid: int) -> None:
        """The test runs where its flavor says.

        ns/uns: in new namespaces of every kind the flavor creates, as pid 1.
        h: in the harness's PID namespace (which a process cannot leave); other
        kinds are not checked, as a scenario may unshare its own
        (test_private_ns); the snapshot compares them across C/R.
        """
        own = snapshot.host_namespaces()
        fl = self.cfg.flavor
        kinds = (FLAVOR_NAMESPACES + (("user",) if fl.userns else ())) if fl.namespaces else ("pid",)
        for kind in kinds:
            if fl.namespaces == (os.readlink(f"/proc/{pid}/ns/{kind}") == own[kind]):
                where = "new" if fl.namespaces else "the harness's"
                raise StepFailed(self.step, f"process {pid} is not in {where} {kind} namespace")
        if fl.pid1 and procs.inner_pid(pid) != 1:
            raise StepFailed(self.step, f"process {pid} is not pid 1 of its pid namespace "
                             f"(NSpid {procs.ns_ids(pid)})")

    def _snapshot(self, step: str) -> snapshot.TreeState:
        with self._step(step):
            assert self.pid is not None
            state = snapshot.take_tree(self.pid, self.cfg.scenario.transient)
            self.tree = state.outer_pids()
            return state

    def _after_state(self, step: str) -> snapshot.TreeState:
        """The state to compare with the one before the dump."""
        assert self.pid is not None
        return snapshot.take_tree(self.pid, self.cfg.scenario.transient)

    def _compare(self, step: str, before: snapshot.TreeState) -> None:
        with self._step(step):
            after = self._after_state(step)
            if self.cfg.scenario.shell_job:
                from . import shelljob
                before, after = shelljob.normalise(before), shelljob.normalise(after)
            inh = self.run_opts.inherit
            before, after = (cropts.normalise(before, inh, self.cfg.workdir, self.handed_names),
                             cropts.normalise(after, inh, self.cfg.workdir, self.handed_names))
            before, after = cropts.reconnected(before, after, self.run_opts.restore)
            before, after = ownfiles.normalise(before, after, self.outfile)
            delta = snapshot.diff(before, after, self.cfg.flavor.ignore_fields, self.cfg.scenario.transient)
            if delta:
                raise StepFailed(step, "the visible state changed", delta)

    # ---- checkpoint / restore ------------------------------------------------
    def _refcr(self, what: str, args: list[str], stderr_path: Path, timeout: float,
               extra_env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()) -> ToolResult:
        env = dict(self.cfg.env)
        env.update(extra_env or {})
        argv = [*self.cfg.refcr, what, *args]
        if self.action_script is not None and what in ("dump", "restore"):
            argv.append(f"--action-script={self.action_script}")
        if self.outer is not None:
            argv = self.outer.wrap(argv)
        if self.outer_mnt is not None:
            argv = self.outer_mnt.wrap(argv)
        with open(stderr_path, "wb") as err:
            p = subprocess.Popen(
                argv, cwd=self.cfg.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
                pass_fds=pass_fds,
            )
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            procs.kill_tree(p.pid, p.pid)
            p.wait()
            raise StepFailed(what, f"refcr {what} did not finish in {timeout:g}s") from None
        return ToolResult(rc, stderr_path)

    # ---- cr-opts.json: refusals, checkpoints (cropts.py) ---------------------
    def _check_refused(self, step: str, r: cropts.Refusal, res: ToolResult) -> None:
        text = res.stderr_path.read_text(errors="replace")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        shown = f"refcr {r.step} {' '.join(r.opts)}"
        if res.returncode == 0:
            raise StepFailed(step, f"{shown}: succeeded, but must be refused")
        if "Traceback" in text or len(lines) != 1:
            raise StepFailed(step, f"{shown}: expected one error line, got {len(lines)}", lines[-10:])
        if r.says not in lines[0]:
            raise StepFailed(step, f"{shown}: the error does not say {r.says!r}: {lines[0]}")

    def _refused_dumps(self, before: snapshot.TreeState) -> None:
        for i, r in enumerate(self.run_opts.refusals("dump"), 1):
            step = f"refused-dump-{i}"
            with self._step(step):
                assert self.pid is not None
                images = self.cfg.workdir / f"img-refused-{i}"
                images.mkdir()
                res = self._refcr("dump", ["-t", str(self.pid), "-D", str(images), "-o",
                                           str(self.cfg.workdir / f"refused-dump-{i}.log"), self.cfg.verbosity,
                                           *self.cfg.flavor.cr_opts, *r.opts],
                                  self.cfg.workdir / f"refused-dump-{i}.stderr", self.cfg.timeouts.dump)
                self._check_refused(step, r, res)
            self._compare(f"{step}-survived", before)

    def _refused_restores(self, images: Path) -> None:
        for i, r in enumerate(self.run_opts.refusals("restore"), 1):
            step = f"refused-restore-{i}"
            with self._step(step):
                pidfile = self.cfg.workdir / f"refused-restore-{i}.pid"
                res = self._refcr("restore", ["-D", str(images), "-o",
                                              str(self.cfg.workdir / f"refused-restore-{i}.log"),
                                              self.cfg.verbosity, "-d", "--pidfile", str(pidfile),
                                              *self.cfg.flavor.cr_opts, *r.opts],
                                  self.cfg.workdir / f"refused-restore-{i}.stderr", self.cfg.timeouts.restore)
                self._check_refused(step, r, res)
                left = self._leftovers()
                if pidfile.exists() or left:
                    raise StepFailed(step, f"a refused restore left processes behind: {sorted(left)}")

    def _leftovers(self) -> set[int]:
        """Live processes reparented to the harness (a subreaper) that are
        neither the peer nor anything the run knows about."""
        me, known = os.getpid(), {self.peer.pid} if self.peer else set()
        known |= {o.holder.pid for o in (self.outer, self.outer_mnt) if o is not None}   # namespace holders
        if self.outer is not None:
            known.add(self.outer.holder.pid)       # the outer netns holder (outerns.py)
        if self.shell is not None:
            from . import shelljob
            known |= shelljob.pids(self)
        procs.reap_zombie_children()
        return {p.pid for p in procs.iter_procs() if p.ppid == me and not p.zombie and p.pid not in known}

    def _checkpoints(self) -> snapshot.TreeState | None:
        """.desc 'checkpoints': N: dumps with --leave-running into ckpt-I, each
        once WORKDIR/ckpt-I.go exists; WORKDIR/ckpt-I.done says it is taken.
        With 'restore_checkpoint' the state to compare after the restore is
        the one right before that checkpoint (returned): the first snapshot
        can hold a message the test had not read yet (inq=2 in seed001)."""
        sc, wd = self.cfg.scenario, self.cfg.workdir
        at: snapshot.TreeState | None = None
        for i in range(1, sc.checkpoints + 1):
            step = f"checkpoint-{i}"
            with self._step(step):
                deadline = time.monotonic() + self.cfg.timeouts.start
                while not (wd / f"ckpt-{i}.go").exists():
                    if self.peer is not None:
                        self.peer.check_alive()
                    if self.pid is None or not procs.is_alive(self.pid):
                        raise StepFailed(step, "the test ended before the checkpoint")
                    if time.monotonic() > deadline:
                        raise StepFailed(step, f"no ckpt-{i}.go after {self.cfg.timeouts.start:g}s")
                    time.sleep(0.02)
                if i == sc.restore_checkpoint:
                    assert self.pid is not None
                    at = snapshot.take_tree(self.pid, sc.transient)
                    at = chain.without_tracking(at) if sc.track_mem else at
                images = wd / f"ckpt-{i}"
                images.mkdir()
                command, chained = chain.checkpoint_command(self, i)
                res = self._refcr(command, ["-t", str(self.pid), "-D", str(images), *chained,
                                            "-o", str(wd / f"ckpt-{i}.log"), self.cfg.verbosity,
                                           *self.cfg.flavor.cr_opts, *sc.dump_opts(), *self.run_opts.dump],
                                  wd / f"ckpt-{i}.stderr", self.cfg.timeouts.dump, sc.dump_env)
                if res.returncode != 0:
                    raise StepFailed(step, f"refcr {command} {' '.join(chained)} exited with status "
                                     f"{res.returncode}: {res.error_line()}")
                chain.check_written(self, i, images)
                (wd / f"ckpt-{i}.done").touch()
        return at

    def _checkpoint_restore(self, it: int, before: snapshot.TreeState) -> bool:
        sc, fl, to = self.cfg.scenario, self.cfg.flavor, self.cfg.timeouts
        assert self.pid is not None
        images = self._iter_name("img", it)
        images.mkdir()
        with self._step("dump"):
            res = self._refcr(
                "dump",
                ["-t", str(self.pid), "-D", str(images), "-o", str(self._iter_name("dump", it, ".log")),
                 self.cfg.verbosity, *fl.cr_opts, *sc.dump_opts(), *self.run_opts.dump],
                self._iter_name("dump", it, ".stderr"), to.dump, sc.dump_env,
            )
            if sc.crfail and res.returncode == 0:
                raise StepFailed("dump", "refcr dump succeeded, but the scenario is marked crfail")
            if not sc.crfail and res.returncode != 0:
                raise StepFailed("dump", f"refcr dump exited with status {res.returncode}: {res.error_line()}")
            if not sc.crfail:
                chain.check_written(self, sc.checkpoints + 1, images)
        if sc.crfail:
            with self._step("dump-survived"):
                dead = [p for p in self.tree if procs.read_stat(p) is None]
                if dead:
                    raise StepFailed("dump-survived", f"a failed dump killed {dead}")
            self._compare("dump-survived-state", before)
            self.crfail_confirmed = True
            return False
        with self._step("dump-gone"):
            left = procs.wait_gone(set(self.tree), to.gone)
            if left:
                raise StepFailed("dump-gone", f"still running after a successful dump: {sorted(left)}")
        if sc.restore_checkpoint:
            images = self.cfg.workdir / f"ckpt-{sc.restore_checkpoint}"
        self._refused_restores(images)
        restore_pidfile = self._iter_name("restore", it, ".pid")
        with self._step("restore"):
            handed = cropts.make_inherited(self.run_opts.inherit, self.cfg.workdir,
                                           self.peer.pid if self.peer else None)
            self.handed_names.update(handed.names)
            try:
                args = ["-D", str(images), "-o", str(self._iter_name("restore", it, ".log")), self.cfg.verbosity,
                        "--pidfile", str(restore_pidfile), *fl.cr_opts, *sc.restore_opts(),
                        *self.run_opts.restore, *handed.opts]
                if sc.shell_job:
                    from . import shelljob
                    res = shelljob.restore(self, args, self._iter_name("restore", it, ".stderr"), restore_pidfile)
                else:
                    res = self._refcr("restore", ["-d", *args], self._iter_name("restore", it, ".stderr"),
                                      to.restore, pass_fds=tuple(handed.pass_fds))
            finally:
                handed.close_all()
            if res.returncode != 0:
                raise StepFailed("restore", f"refcr restore exited with status {res.returncode}: {res.error_line()}")
        with self._step("restore-pid"):
            self._adopt_restored(restore_pidfile)
        self._compare("compare", before)
        if sc.shell_job:
            from . import shelljob
            with self._step("shell-job-talk"):
                shelljob.after_restore(self)
        return True

    def _adopt_restored(self, restore_pidfile: Path) -> None:
        """Take the restored root's outer pid from refcr's pidfile.

        h: it must be the original pid.  ns/uns: the outer pid may differ (the
        engine tries to keep it); what must hold is the inner pid 1, and the
        whole tree's inner pids are compared by the snapshot.
        """
        try:
            text = restore_pidfile.read_text().strip()
        except FileNotFoundError:
            raise StepFailed("restore-pid", f"refcr restore wrote no {restore_pidfile.name}") from None
        if not text.isdigit():
            raise StepFailed("restore-pid", f"{restore_pidfile.name} says {text!r}, not a pid")
        pid = int(text)
        if not self.cfg.flavor.pid1 and pid != self.pid:
            raise StepFailed("restore-pid", f"restored pid is {pid}, expected {self.pid}")
        if not procs.is_alive(pid):
            raise StepFailed("restore-pid", f"restored root {pid} is not running")
        self.pid = pid
        self.sid = procs.own_session(pid)
        self._check_namespaces(pid)

    # ---- the end -----------------------------------------------------------------
    def _stop(self) -> None:
        assert self.pid is not None
        with self._step("sigterm"):
            os.kill(self.pid, signal.SIGTERM)
            try:
                status = procs.wait_exit(self.pid, self.cfg.timeouts.exit)
            except TimeoutError:
                limit = self.cfg.timeouts.exit
                raise StepFailed("sigterm", f"test did not exit within {limit:g}s of SIGTERM") from None
            pid, self.pid = self.pid, None
            procs.kill_tree(pid, self.sid)  # helpers the test left behind
        with self._step("result"):
            lines = self.outfile.read_text(errors="replace").splitlines() if self.outfile.exists() else []
            fails = [ln for ln in lines if ln.startswith("FAIL")]
            if fails:
                raise StepFailed("result", fails[0])
            if "PASS" not in lines:
                raise StepFailed("result", f"no PASS in {self.outfile.name}; test {status.describe()}")
            if status.status is not None and not status.success:
                raise StepFailed("result", f"test printed PASS but {status.describe()}")

    def _cleanup(self) -> None:
        if self.pid is not None:
            procs.kill_tree(self.pid, self.sid)
        if self.peer is not None:
            self.peer.kill()
        if self.shell is not None:
            from . import shelljob
            shelljob.close(self)
        if self.outer is not None:
            self.outer.stop()
            self.outer = None
        if self.outer_mnt is not None:
            self.outer_mnt.stop()
            self.outer_mnt = None
        procs.reap_zombie_children()
