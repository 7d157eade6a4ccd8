"""Driving a task from outside: what refcr uses to observe and steer processes.

native (the cffi core: ptrace, regsets, process_vm_*, pidfd, clone3, kcmp),
proc (/proc readers), syscalls (x86_64 numbers and constants), tracee (seize,
interrupt, inject one syscall into a stopped task: Remote) and puppet (the
stopped process a restore turns into a dumped task) and guardian (the forked
process that puts a dump's tasks back if refcr dies).  No image messages here.
Must not import any kernel-object package (mm, fs, net, ipc, ns, kernel,
drivers, plugins) except puppet, which uses mm.memory and kernel.task/rlimits.
"""
