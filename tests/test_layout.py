"""The package layout holds (README "Where things are"): no import circle among
refcr's modules, every module imports on its own, the top level stays a table
of contents, and the object packages keep to the dependencies their
__init__ docstrings allow.

Imports are read from the source with ast, every one of them: those at the
top of a module, those inside functions (lazy) and those under
TYPE_CHECKING, since each is a dependency someone has to follow.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "refcr"

# The top level: the pipelines and what one run needs (options, errors, log,
# the --external/--inherit-fd options, action scripts, fault points, check,
# the demo).  A kernel object belongs in its subsystem's package instead.
TOP_LEVEL = {"__init__", "__main__", "cli", "dump", "predump", "restore", "options", "errors", "log",
             "external", "actions", "fault", "check", "demo"}

# What each package must never import (packages, or top-level modules).
PIPELINES = {"cli", "dump", "predump", "restore"}
FORBIDDEN = {
    "images": PIPELINES | {"ptrace", "kernel", "mm", "fs", "drivers", "net", "ipc", "ns", "plugins"},
    "kernel": PIPELINES | {"mm", "fs", "drivers", "net", "ipc", "ns", "plugins"},
    "ipc": PIPELINES | {"kernel", "mm", "fs", "drivers", "net", "ns", "plugins"},
    "fs": PIPELINES | {"net", "drivers", "ns", "ipc", "kernel"},
    "mm": PIPELINES | {"net", "drivers", "ns", "kernel"},
    "drivers": PIPELINES | {"net", "mm", "ns", "ipc", "kernel"},
    "net": PIPELINES | {"drivers", "mm", "ns", "ipc", "kernel"},
    "ns": PIPELINES | {"net", "drivers", "mm", "ipc", "kernel"},
    "plugins": PIPELINES | {"mm", "drivers", "ipc", "kernel"},
    "ptrace": PIPELINES | {"fs", "drivers", "net", "ipc", "ns", "plugins"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "pb" in rel.parts:
            continue
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The refcr modules that module `name` imports, anywhere in it."""
    path = MODULES[name]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m in MODULES and m != name and m != "refcr"}


def _cycles() -> list[list[str]]:
    graph = {m: sorted(_imports(m)) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:           # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    assert _cycles() == []


def test_top_level_is_a_table_of_contents() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL, f"new top-level modules {sorted(top - TOP_LEVEL)}: put them in their subsystem's package"


def test_packages_keep_their_dependencies() -> None:
    wrong = []
    for name in MODULES:
        parts = name.split(".")
        if len(parts) < 3 or parts[1] not in FORBIDDEN:
            continue
        for dep in _imports(name):
            target = dep.split(".")[1]
            if target in FORBIDDEN[parts[1]]:
                wrong.append(f"{name} imports {dep}")
    assert wrong == []


def test_every_package_says_what_it_owns() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "pb":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.splitlines()) >= 3, f"{init}: a docstring of what the package owns"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_imports_on_its_own(name: str) -> None:
    """No import-order dependence: each module works as the first one imported."""
    if name == "refcr.__main__":
        name = "refcr.cli"          # __main__ runs the command line when imported
    subprocess.run([sys.executable, "-c", f"import {name}"], check=True, timeout=60)
