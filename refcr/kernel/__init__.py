"""Per-task state the kernel keeps in kernel/ and arch/: the process tree,
registers and xstate, signals, credentials, rlimits, interval timers,
personality/comm/rseq.

Images: core-PID.img (proto/core.proto: CoreEntry, ThreadCore) and
pstree.img (proto/pstree.proto).  Imports ptrace/ and the shared top modules
(errors, log, options) only; never the pipelines or other object packages.
"""
