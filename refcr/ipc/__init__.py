"""The IPC namespace: SysV shared memory, semaphores, message queues and
the namespace's sysctls (sysv).

Images: ipc-*.img (proto/ipc.proto).  Imports ptrace/ and images/ only.
"""
