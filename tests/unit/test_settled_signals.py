"""zdtm/harness/snapshot.py: a pending signal that a live thread does not
block is in delivery and left out; a blocked one, and every pending signal of
a stopped thread, is compared."""
from __future__ import annotations

from zdtm.harness import snapshot
from zdtm.harness.snapshot import ThreadState

USR1 = 1 << 9   # SIGUSR1 (10)
RT2 = 1 << 35   # SIGRTMIN+2 (36)


def _thread(tid: int, state: str, pnd: int, blk: int) -> ThreadState:
    return ThreadState(tid, (("State", state), ("SigPnd", f"{pnd:016x}"), ("SigBlk", f"{blk:016x}")),
                       outer=tid)


def _pending(status: tuple) -> int:
    return int(dict(status)["SigPnd"], 16)


def test_unblocked_pending_of_a_live_thread_is_in_delivery() -> None:
    threads = [_thread(10, "live", USR1, USR1), _thread(11, "live", USR1 | RT2, USR1)]
    status = (("SigPnd", f"{USR1 | RT2:016x}"), ("ShdPnd", f"{USR1 | RT2:016x}"))
    out, st = snapshot._settled_signals(10, threads, status)
    assert [_pending(t.status) for t in out] == [USR1, USR1]     # blocked USR1 stays, RT2 goes
    assert dict(st)["SigPnd"] == f"{USR1:016x}"
    assert dict(st)["ShdPnd"] == f"{USR1:016x}"                  # both threads block USR1 only


def test_shared_pending_stays_while_every_live_thread_blocks_it() -> None:
    threads = [_thread(10, "live", 0, USR1), _thread(11, "live", 0, USR1 | RT2)]
    _, st = snapshot._settled_signals(10, threads, (("ShdPnd", f"{RT2:016x}"),))
    assert dict(st)["ShdPnd"] == f"{0:016x}"                     # thread 10 takes RT2


def test_a_stopped_thread_keeps_what_is_pending() -> None:
    threads = [_thread(10, "stopped", USR1 | RT2, 0)]
    out, st = snapshot._settled_signals(10, threads, (("SigPnd", f"{USR1 | RT2:016x}"),
                                                      ("ShdPnd", f"{RT2:016x}")))
    assert _pending(out[0].status) == USR1 | RT2
    assert dict(st)["SigPnd"] == f"{USR1 | RT2:016x}"
    assert dict(st)["ShdPnd"] == f"{RT2:016x}"
