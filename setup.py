"""Build glue that pyproject.toml cannot express on its own.

* ``cffi_modules``: the out-of-line cffi module ``refcr._native`` whose builder
  is ``native/build_native.py:ffibuilder``, and ``refcr._plugins``, the plugin
  host (``native/build_plugins.py:ffibuilder``).
* the plugin API headers ``native/include/criu-*.h`` are installed as
  ``refcr/include`` (``refcr plugin-cflags`` prints ``-I`` for them).
* ``build_proto``: compiles every ``proto/*.proto`` with grpc_tools' protoc into
  the source tree's ``refcr/pb`` package (generated, git-ignored), so that an
  editable install sees it in place and a normal install copies it.  It runs
  before ``build_py`` (which editable installs run too), and can be run by hand
  after changing a .proto: ``python setup.py build_proto``.
"""

from __future__ import annotations

import glob
import os
import re

from setuptools import Command, find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "proto")
PB_DIR = os.path.join(HERE, "refcr", "pb")


def _make_pb_package(out_dir: str = PB_DIR) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "__init__.py"), "w") as f:
        f.write('"""Generated from proto/*.proto at build time; do not edit."""\n')


def compile_protos(proto_dir: str = PROTO_DIR, out_dir: str = PB_DIR) -> list[str]:
    """Generate ``*_pb2.py`` (and ``.pyi``) for every proto in ``proto_dir``.

    Imports between our own protos come out of protoc as absolute
    ``import x_pb2``; they are rewritten to ``from . import x_pb2`` so the
    modules work as the package ``refcr.pb``.  Returns the module names.
    """
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(glob.glob(os.path.join(proto_dir, "*.proto")))
    _make_pb_package(out_dir)
    for old in glob.glob(os.path.join(out_dir, "*_pb2.py*")):
        os.unlink(old)
    if not protos:
        return []
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    argv = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *protos,
    ]
    if protoc.main(argv) != 0:
        raise RuntimeError("protoc failed on " + " ".join(protos))

    modules = [os.path.basename(p)[: -len(".proto")] + "_pb2" for p in protos]
    own = "|".join(re.escape(m) for m in modules)
    absolute = re.compile(rf"^import ({own})( as \w+)?$", re.M)
    for mod in modules:
        for ext in (".py", ".pyi"):
            path = os.path.join(out_dir, mod + ext)
            if not os.path.exists(path):
                continue
            with open(path) as f:
                text = f.read()
            text = absolute.sub(r"from . import \1\2", text)
            if ext == ".py":
                text = _fast_runtime(text)
            with open(path, "w") as f:
                f.write(text)
    return modules


# protoc's imports of the protobuf runtime -> refcr/images/pbruntime.py (the
# same module contents built from upb without the library's Python layer:
# ~40 ms of every cold command; that module says why).
_RUNTIME_IMPORTS = re.compile(
    r"^from google\.protobuf(?:\.internal)? import "
    r"(descriptor|descriptor_pool|runtime_version|symbol_database|builder) as (_\w+)$", re.M)


def _fast_runtime(text: str) -> str:
    text = _RUNTIME_IMPORTS.sub(r"from refcr.images import pbruntime as \2", text)
    return text.replace("_sym_db = _symbol_database.Default()", "_sym_db = _symbol_database.symbol_default()")


class BuildProto(Command):
    description = "compile proto/*.proto into refcr/pb"
    user_options: list = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        mods = compile_protos()
        self.announce(f"generated refcr.pb: {', '.join(mods) or '(no protos)'}", level=2)


class BuildPy(build_py):
    def run(self) -> None:
        self.run_command("build_proto")
        super().run()
        if not self.editable_mode:      # an editable install finds them in native/include
            out = os.path.join(self.build_lib, "refcr", "include")
            os.makedirs(out, exist_ok=True)
            for h in glob.glob(os.path.join(HERE, "native", "include", "criu-*.h")):
                self.copy_file(h, os.path.join(out, os.path.basename(h)))


# egg_info (run before any build command) wants every listed package to exist.
if not os.path.exists(os.path.join(PB_DIR, "__init__.py")):
    _make_pb_package()

packages = sorted(set(find_packages(include=["refcr", "refcr.*"])) | {"refcr.pb"})

setup(
    packages=packages,
    package_data={"refcr.pb": ["*.pyi"]},
    cffi_modules=["native/build_native.py:ffibuilder", "native/build_plugins.py:ffibuilder"],
    cmdclass={"build_proto": BuildProto, "build_py": BuildPy},
)
