"""cffi builder for refcr's native core (out-of-line API mode).

Used two ways:
  * from setup.py: ``cffi_modules=["native/build_native.py:ffibuilder"]``;
  * by hand, for development: ``python3 native/build_native.py`` builds
    ``refcr/_native*.so`` in place.

The C declarations live once, in native/core.h; cffi gets that header with
its preprocessor lines dropped, plus the layout of ``struct user_regs_struct``
(cffi checks each field against <sys/user.h> at compile time) and the
constants, whose values cffi reads from the system headers.
"""
from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

REGS_FIELDS = (
    "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax "
    "rip cs eflags rsp ss fs_base gs_base ds es fs gs"
).split()

# Constants taken from the C headers (cffi verifies them when compiling).
CONSTANTS = """
PTRACE_EVENT_FORK PTRACE_EVENT_VFORK PTRACE_EVENT_CLONE PTRACE_EVENT_EXEC
PTRACE_EVENT_VFORK_DONE PTRACE_EVENT_EXIT PTRACE_EVENT_STOP
PTRACE_O_TRACESYSGOOD PTRACE_O_TRACEFORK PTRACE_O_TRACEVFORK PTRACE_O_TRACECLONE
PTRACE_O_TRACEEXEC PTRACE_O_TRACEVFORKDONE PTRACE_O_TRACEEXIT PTRACE_O_EXITKILL
PTRACE_O_SUSPEND_SECCOMP
CLONE_VM CLONE_FS CLONE_FILES CLONE_SIGHAND CLONE_PIDFD CLONE_PTRACE CLONE_VFORK
CLONE_PARENT CLONE_THREAD CLONE_NEWNS CLONE_SYSVSEM CLONE_SETTLS
CLONE_PARENT_SETTID CLONE_CHILD_CLEARTID CLONE_UNTRACED CLONE_CHILD_SETTID
CLONE_NEWCGROUP CLONE_NEWUTS CLONE_NEWIPC CLONE_NEWUSER CLONE_NEWPID CLONE_NEWNET
CLONE_IO CLONE_NEWTIME
RC_KCMP_UNORDERED
""".split()


def _cdef() -> str:
    with open(os.path.join(HERE, "core.h")) as f:
        header = "".join(l for l in f if not l.lstrip().startswith("#"))
    regs = "struct user_regs_struct {\n%s\n};\n" % "\n".join(
        f"    unsigned long long {name};" for name in REGS_FIELDS)
    consts = "".join(f"#define {name} ...\n" for name in CONSTANTS)
    return regs + header + consts


def _source(name: str) -> str:
    path = os.path.join(HERE, name)
    if os.path.abspath(os.getcwd()) == ROOT and __name__ != "__main__":
        return os.path.relpath(path, ROOT)
    return path


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "refcr._native",
    "#ifndef _GNU_SOURCE\n#define _GNU_SOURCE\n#endif\n"
    '#include <sched.h>\n#include <sys/ptrace.h>\n#include "core.h"\n',
    # setuptools wants paths relative to setup.py's directory; anywhere else
    # (and for the in-place build below) an absolute path is what works.
    sources=[_source("core.c")],
    include_dirs=[HERE],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-std=gnu11"],
)

if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="refcr-native-") as tmp:
        built = ffibuilder.compile(tmpdir=tmp, verbose=True)
        target = os.path.join(ROOT, "refcr", os.path.basename(built))
        os.replace(built, target)
        print("built", target)
