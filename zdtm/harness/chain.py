"""Incremental checkpoint chains (.desc 'track_mem', 'predump', 'restore_each').

Built on the 'checkpoints' protocol (ckpt-I.go / ckpt-I.done, runner.py):

``track_mem``
    the checkpoints are ``refcr dump --leave-running --track-mem``, each with
    ``--prev-images-dir ../ckpt-(I-1)``; the real dump has the last one as its
    parent and is taken once the test says ``ckpt-(N+1).go`` (with a 'peer',
    which drives the checkpoints, right after the last one).
``predump``
    the same with ``refcr pre-dump`` checkpoints.
``restore_each``
    after the real dump's restore and verdict, every checkpoint is restored
    in turn (WORKDIR/restored names it for the test), signalled, and must
    give its own PASS.
Written-page accounting: when the test wrote ``ckpt-I.written`` ("START END
N") before asking for checkpoint I (I = N+1: the real dump), the pages of
[START, END) stored in that image (not referred to its parent) must be N.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import procs, snapshot

if TYPE_CHECKING:
    from .runner import ScenarioRun

PAGE = 4096
# the features of refcr's tracking userfaultfd (UFFD_FEATURE_WP_ASYNC |
# UFFD_FEATURE_WP_UNPOPULATED), as fdinfo's API line shows them
TRACKING_FEATURES = (1 << 15) | (1 << 13)


def _tracking_uffd(f: snapshot.Fd) -> bool:
    if f.target != "anon_inode:[userfaultfd]":
        return False
    api = dict(f.info).get("API", "").split(":")
    return len(api) == 3 and int(api[1], 16) & ~(1 << 31) == TRACKING_FEATURES


def without_tracking(state: snapshot.TreeState) -> snapshot.TreeState:
    """A snapshot taken between --track-mem checkpoints without refcr's own
    footprint: its userfaultfd in the fd table and the uffd-wp flag ('uw') of
    the areas registered with it.  Neither is the process's state, and both
    are gone after a restore (refcr/mm/track.py)."""
    def task(t: snapshot.TaskState) -> snapshot.TaskState:
        vmas = tuple(dataclasses.replace(v, vmflags=" ".join(f for f in v.vmflags.split() if f != "uw"))
                     for v in t.vmas)
        return dataclasses.replace(t, vmas=vmas, fds=tuple(f for f in t.fds if not _tracking_uffd(f)))
    return snapshot.TreeState(tuple(task(t) for t in state.tasks))


def checkpoint_command(run: "ScenarioRun", i: int) -> tuple[str, list[str]]:
    """The refcr command and its chain options for checkpoint i."""
    sc = run.cfg.scenario
    prev = ["--prev-images-dir", f"../ckpt-{i - 1}"] if i > 1 and (sc.track_mem or sc.predump) else []
    if sc.predump:
        return "pre-dump", prev
    return "dump", ["--leave-running", *(["--track-mem"] if sc.track_mem else []), *prev]


def image_id(run: "ScenarioRun") -> str:
    """The test's pid inside its pid namespace (what the images are named by)."""
    return run.pidfile.read_text().strip()


def stored_pages(run: "ScenarioRun", images: Path, start: int, end: int) -> int:
    """Pages of [start, end) that the image stores itself (refcr show)."""
    path = images / f"pagemap-{image_id(run)}.img"
    out = subprocess.run([*run.cfg.refcr, "show", str(path)], capture_output=True, text=True,
                         env=run.cfg.env, timeout=60, check=False)
    if out.returncode != 0:
        raise OSError(f"refcr show {path.name}: {out.stderr.strip()}")
    total = 0
    for e in json.loads(out.stdout).get("entries", []):
        if e.get("in_parent"):
            continue
        s = int(e["vaddr"])
        t = s + int(e["nr_pages"]) * PAGE
        total += max(0, min(t, end) - max(s, start)) // PAGE
    return total


def check_written(run: "ScenarioRun", i: int, images: Path) -> None:
    from .runner import StepFailed
    spec = run.cfg.workdir / f"ckpt-{i}.written"
    if not spec.exists():
        return
    start, end, want = (int(x) for x in spec.read_text().split())
    got = stored_pages(run, images, start, end)
    if got != want:
        raise StepFailed(run.step, f"{images.name} stores {got} pages of the test's area "
                                   f"{start:#x}-{end:#x}, the test wrote {want}")


def before_final_dump(run: "ScenarioRun") -> None:
    """Wait for the test's ckpt-(N+1).go; the real dump's parent is ckpt-N."""
    from .runner import StepFailed
    sc, wd = run.cfg.scenario, run.cfg.workdir
    if not (sc.track_mem or sc.predump) or not sc.checkpoints:
        return
    n = sc.checkpoints
    if sc.peer is not None:     # a peer drives the checkpoints: the real dump follows the last one
        run.run_opts = dataclasses.replace(run.run_opts, dump=(*run.run_opts.dump, "--prev-images-dir",
                                                               f"../ckpt-{n}"))
        return
    with run._step("chain-ready"):
        deadline = time.monotonic() + run.cfg.timeouts.start
        while not (wd / f"ckpt-{n + 1}.go").exists():
            if run.pid is None or not procs.is_alive(run.pid):
                raise StepFailed("chain-ready", "the test ended before the real dump")
            if time.monotonic() > deadline:
                raise StepFailed("chain-ready", f"no ckpt-{n + 1}.go after {run.cfg.timeouts.start:g}s")
            time.sleep(0.02)
        opts = ["--prev-images-dir", f"../ckpt-{n}"]
        run.run_opts = dataclasses.replace(run.run_opts, dump=(*run.run_opts.dump, *opts))


def restore_each(run: "ScenarioRun", pid: int) -> None:
    """After the real run: restore every checkpoint, each must PASS on its own."""
    from .runner import StepFailed
    sc, wd, to = run.cfg.scenario, run.cfg.workdir, run.cfg.timeouts
    if not sc.restore_each:
        return
    for i in range(1, sc.checkpoints + 1):
        step = f"restore-ckpt-{i}"
        with run._step(step):
            (wd / "restored").write_text(f"{i}\n")
            seen = len(run.outfile.read_text(errors="replace").splitlines())
            pidfile = wd / f"restore-ckpt-{i}.pid"
            res = run._refcr("restore", ["-D", str(wd / f"ckpt-{i}"), "-o", str(wd / f"restore-ckpt-{i}.log"),
                                         run.cfg.verbosity, "-d", "--pidfile", str(pidfile),
                                         *run.cfg.flavor.cr_opts, *sc.restore_opts()],
                             wd / f"restore-ckpt-{i}.stderr", to.restore)
            if res.returncode != 0:
                raise StepFailed(step, f"refcr restore exited with status {res.returncode}: {res.error_line()}")
            run.pid = pid
            run._adopt_restored(pidfile)
            os.kill(run.pid, signal.SIGTERM)
            status = procs.wait_exit(run.pid, to.exit)
            procs.kill_tree(run.pid, run.sid)
            run.pid = None
            new = run.outfile.read_text(errors="replace").splitlines()[seen:]
            fails = [ln for ln in new if ln.startswith("FAIL")]
            if fails or "PASS" not in new:
                raise StepFailed(step, fails[0] if fails else f"no PASS; test {status.describe()}")
