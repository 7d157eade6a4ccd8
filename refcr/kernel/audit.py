"""The audit login uid and session id of a process (/proc/PID/loginuid, sessionid).

A new process inherits both from its parent, so every puppet has refcr's.
The kernel lets a process set its loginuid (once, with CAP_AUDIT_CONTROL),
but then gives it a *new* session id: no one can choose a session id.  So a
process whose ids differ from refcr's cannot come back with them, and the
restore refuses it (before anything is created), naming both.  Restore from
a process of the same audit session (a shell of the same login) instead.
"""
from __future__ import annotations

from refcr.errors import RestoreError
from refcr.pb import core_pb2
from refcr.ptrace import proc

UNSET = 0xFFFFFFFF


def _read(pid: int | str, name: str) -> int:
    try:
        with open(proc.path(pid, name)) as f:
            return int(f.read())
    except OSError:
        return UNSET          # a kernel without CONFIG_AUDIT


def dump(pid: int, core: core_pb2.CoreEntry) -> None:
    core.loginuid, core.sessionid = _read(pid, "loginuid"), _read(pid, "sessionid")


def check(core: core_pb2.CoreEntry) -> None:
    own = _read("self", "loginuid"), _read("self", "sessionid")
    if (core.loginuid, core.sessionid) != own:
        raise RestoreError(f"process {core.pid}: audit loginuid {core.loginuid} sessionid {core.sessionid} "
                           f"differ from refcr's ({own[0]}, {own[1]}), which a restored process inherits: "
                           "the kernel cannot set a session id; restore from that audit session")
