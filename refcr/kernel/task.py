"""Small per-task attributes: name, personality and the rseq registration."""
from __future__ import annotations

from refcr.pb import core_pb2
from refcr.ptrace import native, proc
from refcr.ptrace.syscalls import PR_SET_NAME, RSEQ_FLAG_UNREGISTER
from refcr.ptrace.tracee import Remote


def dump_personality(pid: int) -> int:
    with open(proc.path(pid, "personality")) as f:
        return int(f.read(), 16)


def restore_personality(remote: Remote, value: int) -> None:
    remote.defer("personality", value)


def restore_comm(remote: Remote, name: str) -> None:
    remote.defer("prctl", PR_SET_NAME, remote.put_str(name[:15]), 0, 0, 0)


def dump_rseq(tid: int, tc: core_pb2.ThreadCore) -> None:
    conf = native.get_rseq_conf(tid)
    if conf["rseq_abi_pointer"]:
        tc.rseq.CopyFrom(core_pb2.RseqEntry(ptr=conf["rseq_abi_pointer"], size=conf["rseq_abi_size"],
                                            signature=conf["signature"]))


def unregister_rseq(remote: Remote) -> None:
    """Drop the rseq area the puppet inherited from refcr's libc: the kernel
    writes to it on every preemption, and its memory is about to go away."""
    conf = native.get_rseq_conf(remote.tid)
    if conf["rseq_abi_pointer"]:
        remote.check("rseq", conf["rseq_abi_pointer"], conf["rseq_abi_size"],
                     RSEQ_FLAG_UNREGISTER, conf["signature"])


def restore_rseq(remote: Remote, tc: core_pb2.ThreadCore) -> None:
    if tc.HasField("rseq"):
        remote.defer("rseq", tc.rseq.ptr, tc.rseq.size, 0, tc.rseq.signature)
