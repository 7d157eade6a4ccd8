"""oom_score_adj of a process (/proc/PID/oom_score_adj, shared by its threads).

Read and written from outside.  Raising it is always allowed; lowering it
below the floor the new process inherited from refcr (its oom_score_adj_min)
needs CAP_SYS_RESOURCE, which refcr may lack (it does on the test machine):
such a restore fails naming the value rather than leaving it higher.
"""
from __future__ import annotations

from refcr.errors import RestoreError
from refcr.ptrace import proc


def dump(pid: int) -> int:
    with open(proc.path(pid, "oom_score_adj")) as f:
        return int(f.read())


def restore(vpid: int, pid: int, value: int) -> None:
    """vpid: the process as the images name it; pid: as refcr sees it."""
    if not -1000 <= value <= 1000:
        raise RestoreError(f"process {vpid}: oom_score_adj {value} is out of range in the image")
    if dump(pid) == value:
        return
    try:
        with open(proc.path(pid, "oom_score_adj"), "w") as f:
            f.write(str(value))
    except OSError as exc:
        raise RestoreError(f"process {vpid}: cannot set oom_score_adj {value}: {exc.strerror} "
                           "(lowering it needs CAP_SYS_RESOURCE)") from exc
