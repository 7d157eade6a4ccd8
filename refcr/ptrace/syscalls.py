"""x86_64 syscall numbers and the few kernel constants refcr injects with."""
from __future__ import annotations

NR = {
    "read": 0, "write": 1, "open": 2, "close": 3, "lseek": 8, "mmap": 9,
    "mprotect": 10, "munmap": 11, "brk": 12, "rt_sigaction": 13,
    "rt_sigprocmask": 14, "mremap": 25, "madvise": 28, "dup": 32, "dup2": 33,
    "nanosleep": 35, "getitimer": 36, "setitimer": 38, "getpid": 39,
    "fcntl": 72, "chdir": 80, "fchdir": 81, "umask": 95, "getppid": 110,
    "setpgid": 109, "setsid": 112, "setgroups": 116, "setresuid": 117,
    "setresgid": 119, "setfsuid": 122, "setfsgid": 123, "capget": 125,
    "capset": 126, "rt_sigqueueinfo": 129, "sigaltstack": 131,
    "personality": 135, "prctl": 157, "arch_prctl": 158, "chroot": 161,
    "gettid": 186, "set_tid_address": 218, "restart_syscall": 219,
    "clock_nanosleep": 230, "set_robust_list": 273, "dup3": 292,
    "rt_tgsigqueueinfo": 297, "prlimit64": 302, "kcmp": 312,
    "rseq": 334, "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "uname": 63,
    "sethostname": 170, "setdomainname": 171, "pidfd_open": 434, "close_range": 436, "pidfd_getfd": 438,
    "clone3": 435, "wait4": 61, "kill": 62, "rt_sigtimedwait": 128, "exit_group": 231,
    "mount": 165, "umount2": 166, "flock": 73, "ioctl": 16, "epoll_ctl": 233, "epoll_wait": 232,
    "timer_create": 222, "timer_settime": 223, "timer_gettime": 224, "timer_getoverrun": 225,
    "timer_delete": 226, "seccomp": 317,
}
NR.update({"mlockall": 151, "mlock2": 325})     # mm/memory.py: locked areas, MCL_FUTURE
NR.update({"io_setup": 206, "io_destroy": 207, "io_getevents": 208, "io_submit": 209})     # mm/aio.py
NR.update({"connect": 42, "listen": 50, "socketpair": 53})     # net/unix.py: SO_PEERCRED as the task
NR.update({"pipe2": 293, "vmsplice": 278, "preadv": 295})     # mm/taskio.py: pages copied by the task

# errno values the kernel uses for syscall restart (never seen by user space)
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516

PAGE_SIZE = 4096

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_GROWSDOWN, MAP_FIXED_NOREPLACE, MAP_NORESERVE = 0x100, 0x100000, 0x4000
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2
MLOCK_ONFAULT = 1

PR_SET_NAME = 15
PR_SET_MM = 35
PR_SET_MM_MAP = 14
PR_GET_SECUREBITS, PR_SET_SECUREBITS = 27, 28
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_CLEAR_ALL = 2, 4

RSEQ_FLAG_UNREGISTER = 1

F_SETFD = 2
F_DUPFD_CLOEXEC = 1030
O_CLOEXEC = 0o2000000


def page_align_up(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def to_signed(value: int) -> int:
    """A 64-bit register value as the signed long the kernel returned."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value
