"""Action scripts (--action-script FILE, repeatable), as CRIU runs them.

Each script is executed directly (execve, no shell in between) with no
arguments, with refcr's environment plus:

    CRTOOLS_SCRIPT_ACTION   the action (below)
    CRTOOLS_IMAGE_DIR       the image directory (absolute path)
    CRTOOLS_INIT_PID        the tree's root pid as refcr sees it, once known
                            (dump: every action after pre-dump; restore: from
                            network-lock / setup-namespaces on)

No string from an image ever reaches a script's argv or environment.  A
script that exits non-zero (or cannot be run) fails the run: a failed dump
resumes the tree, a failed restore kills every puppet.

Order of a dump:    pre-dump, [freeze], network-lock (tree with its own net
                    namespace), post-dump; network-unlock only when the tree
                    runs on (--leave-running/--leave-stopped, or a failure).
Order of a restore: pre-restore, [root created], network-lock,
                    setup-namespaces, post-setup-namespaces, post-restore,
                    pre-resume, [tasks released], network-unlock, post-resume.
"""
from __future__ import annotations

import os

from refcr.errors import OptionError, RefcrError
from refcr.log import log

ACTIONS = ("pre-dump", "post-dump", "pre-restore", "setup-namespaces", "post-setup-namespaces",
           "pre-resume", "post-resume", "post-restore", "network-lock", "network-unlock")
TIMEOUT = 120.0


class ActionError(RefcrError):
    """An action script failed."""


def check_scripts(scripts: list[str]) -> list[str]:
    """Absolute paths of the --action-script options; each must be an executable file."""
    out = []
    for s in scripts:
        path = os.path.abspath(s)
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise OptionError(f"--action-script {s}: not an executable file")
        out.append(path)
    return out


def run(opts, action: str, init_pid: int | None = None) -> None:  # noqa: ANN001  (refcr.options.Options)
    """Run every action script for `action`, in the order given; the first failure raises."""
    assert action in ACTIONS, action
    _run_scripts(opts, action, init_pid)
    notify = getattr(opts, "notify", None)
    if notify is not None:          # an RPC client's turn (refcr/rpc/server.py)
        notify(action, init_pid)


def _run_scripts(opts, action: str, init_pid: int | None) -> None:  # noqa: ANN001
    scripts = getattr(opts, "action_scripts", [])
    if not scripts:
        return
    env = dict(os.environ, CRTOOLS_SCRIPT_ACTION=action, CRTOOLS_IMAGE_DIR=os.path.abspath(opts.images_dir))
    env.pop("CRTOOLS_INIT_PID", None)
    if init_pid is not None:
        env["CRTOOLS_INIT_PID"] = str(init_pid)
    for script in scripts:
        log.info("action %s: running %s", action, script)
        import subprocess          # only when a script runs: it pulls threading in
        try:
            res = subprocess.run([script], env=env, stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ActionError(f"action script {script} ({action}) did not finish in {TIMEOUT:g}s") from None
        except OSError as exc:
            raise ActionError(f"action script {script} ({action}) cannot be run: {exc.strerror}") from None
        if res.returncode != 0:
            rc = res.returncode
            how = f"exited with status {rc}" if rc > 0 else f"killed by signal {-rc}"
            raise ActionError(f"action script {script} ({action}) {how}")
