"""A private "host" network namespace for scenarios with links to the outside
(.desc ``'outer_netns'``), and action scripts (.desc ``'action_script'``).

``'outer_netns': ['ip link add br0 type bridge', ...]``: the harness creates
a network namespace of its own (held by a ``sleep`` process in it), runs each
command there (split on whitespace, no shell), and then runs nslaunch (so the
scenario's namespaces are made from there) and every ``refcr`` command in it
with ``nsenter --net``.  What refcr calls "outside" (the peer of an external
veth, the bridge it joins, what an action script creates) is then this
namespace, never the real host's; it vanishes with the holder at the end.
The scenario gets an fd of it (``ZDTM_OUTER_NETNS_FD``; it must close it
before test_daemon()) to put links there.

``'action_script'``: either the text of a script (starting with ``#!``),
written to ``WORKDIR/action-script`` (mode 0755), or a path relative to the
repository (e.g. ``plugins/ext-link/ext-link-action``); it is given to every
``refcr dump`` and ``refcr restore`` as ``--action-script``.  The scenario
checks what the script recorded (its cwd is the work dir).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .nsholder import NsHolder, NsHolderError

ACTION_FILE = "action-script"
ENV_FD = "ZDTM_OUTER_NETNS_FD"
OuterNetnsError = NsHolderError


@dataclass
class OuterNetns(NsHolder):
    fd: int = -1      # our own fd of the namespace (the holder may be gone first)

    kind = "net"
    label = "outer netns"

    @classmethod
    def start(cls, commands: tuple[str, ...], log: Path) -> "OuterNetns":
        holder = cls.spawn(["--net"])
        ns = cls(holder, os.open(f"/proc/{holder.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        try:
            ns.run(["ip", "link", "set", "lo", "up"], log)
            for cmd in commands:
                ns.run(cmd.split(), log)
        except BaseException:
            ns.stop()
            raise
        return ns

    def child_fd(self) -> int:
        """An inheritable dup of the namespace fd for the scenario (ZDTM_OUTER_NETNS_FD)."""
        fd = os.dup(self.fd)
        os.set_inheritable(fd, True)
        return fd

    def stop(self) -> None:
        os.close(self.fd)
        super().stop()


def action_script(spec: str, workdir: Path, repo: Path) -> Path:
    """The script file for the .desc's action_script value."""
    if spec.startswith("#!"):
        path = workdir / ACTION_FILE
        path.write_text(spec)
        path.chmod(0o755)
        return path
    path = (repo / spec).resolve()
    if not path.is_file():
        raise OuterNetnsError(f"action script {spec} is not a file")
    return path
