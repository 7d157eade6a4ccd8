"""cffi builder for ``refcr._plugins``, the plugin host (out-of-line API mode).

The extension is at the same time the library plugins link against at run
time: it defines ``criu_get_image_dir``, ``print_on_level`` and
``log_get_loglevel`` (native/plugins.c), and refcr.plugins.host makes its symbols
global before any plugin is loaded.  Log messages come back into Python
through the ``extern "Python"`` callback ``refcr_plugin_log``.

Built by setup.py's cffi_modules, or in place: ``python3 native/build_plugins.py``.
"""
from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _cdef() -> str:
    with open(os.path.join(HERE, "plugins.h")) as f:
        header = "".join(l for l in f if not l.lstrip().startswith(("#", "/*")))
    return (
        "typedef struct { const char *name; unsigned int version; unsigned int max_hooks; ...; }"
        " cr_plugin_desc_t;\n"
        + header
        + 'extern "Python" void refcr_plugin_log(unsigned int, const char *);\n'
    )


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "refcr._plugins",
    '#include "plugins.c"\n',     # one translation unit: plugins.c calls the static callback
    include_dirs=[HERE, os.path.join(HERE, "include")],
    depends=[os.path.join(HERE, n) for n in ("plugins.c", "plugins.h", "include/criu-plugin.h",
                                             "include/criu-log.h")],
    libraries=["dl"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
)

if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="refcr-plugins-") as tmp:
        built = ffibuilder.compile(tmpdir=tmp, verbose=True)
        target = os.path.join(ROOT, "refcr", os.path.basename(built))
        os.replace(built, target)
        print("built", target)
