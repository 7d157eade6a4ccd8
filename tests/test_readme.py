"""README's shell examples, run as written, so that every one keeps working.

What counts as an example: every fenced block tagged ```` ```sh ```` (or
bash/shell) anywhere in README.md, indented or not (new sections are picked
up by themselves).  The line just before a block (blank lines skipped) says
what to do with it:

- ``*Needs X ...*``: not run; the line says what it needs and why it cannot
  run here (a program of the reader's, a fresh machine, minutes of time).
- ``<!-- continues -->``: run after the example before it, in the same
  shell (the variables and files it made are still there).
- anything else: run.

Each chain of examples runs once, with ``bash -euo pipefail`` (so an unset
variable or a failing command fails it), in a scratch directory that looks
like the repository's root (``.venv`` and ``plugins`` are links to the
repository's), with ``refcr`` of this tree on PATH, as pid 1 of private
mount, network and pid namespaces (the machine is root): an example may
make bridges, mount on /srv (a private tmpfs here) and start containers,
and whatever it leaves running dies with its pid namespace.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SHELLS = {"sh", "bash", "shell"}
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
NEEDS = re.compile(r"^\*Needs (.{10,})\*$")
CONTINUES = "<!-- continues -->"
TIMEOUT = 300


@dataclass
class Example:
    line: int                  # 1-based line of the opening fence
    code: str
    marker: str                # the line before the fence, stripped


@dataclass
class Chain:
    """Examples run one after the other in one shell."""

    examples: list[Example] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "README.md:" + "+".join(str(e.line) for e in self.examples)

    @property
    def script(self) -> str:
        return "".join(f"# README.md line {e.line}\n{e.code}" for e in self.examples)


def shell_examples(text: str) -> list[Example]:
    lines = text.splitlines()
    out: list[Example] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if lang in SHELLS:
            body = [ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines[i + 1:j]]
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            out.append(Example(i + 1, "\n".join(body) + "\n", lines[k].strip() if k >= 0 else ""))
        i = j + 1
    return out


def classify(examples: list[Example]) -> tuple[list[Chain], list[Example]]:
    """Runnable chains, and the examples marked as needing something."""
    chains: list[Chain] = []
    needs: list[Example] = []
    last_run = False
    for e in examples:
        if NEEDS.match(e.marker):
            needs.append(e)
            last_run = False
        elif e.marker == CONTINUES:
            assert last_run, f"README.md:{e.line}: '{CONTINUES}' after an example that is not run"
            chains[-1].examples.append(e)
        else:
            chains.append(Chain([e]))
            last_run = True
    return chains, needs


EXAMPLES = shell_examples(README.read_text())       # read once: the parametrized tests use the same text
CHAINS, MARKED = classify(EXAMPLES)


def test_every_example_is_run_or_marked() -> None:
    examples = EXAMPLES
    run = {e.line for c in CHAINS for e in c.examples}
    marked = {e.line for e in MARKED}
    assert run | marked == {e.line for e in examples} and not run & marked
    assert len(CHAINS) >= 5, f"only {len(CHAINS)} runnable examples found: is the extractor broken?"
    for e in MARKED:
        reason = NEEDS.match(e.marker).group(1)
        assert len(reason.split()) >= 3, f"README.md:{e.line}: say what the example needs and why"


def scratch_root(tmp_path: Path) -> dict[str, str]:
    """A directory that looks like the repository's root, and the environment to run in it."""
    for name in (".venv", "plugins"):
        if (REPO / name).exists():
            (tmp_path / name).symlink_to(REPO / name)
    bindir = tmp_path / ".readme-bin"
    bindir.mkdir()
    wrapper = bindir / "refcr"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m refcr \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bindir), str(REPO / ".venv" / "bin"), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("REFCR_FAULT", None)
    return env


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
@pytest.mark.parametrize("chain", CHAINS, ids=[c.id for c in CHAINS])
def test_example_runs_as_written(chain: Chain, tmp_path: Path) -> None:
    env = scratch_root(tmp_path)
    script = tmp_path / "example.sh"
    script.write_text(chain.script)
    inner = 'mount -t tmpfs readme-srv /srv && cd "$1" && exec bash -euo pipefail "$2"'
    argv = ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--propagation", "private",
            "bash", "-c", inner, "bash", str(tmp_path), str(script)]
    try:
        res = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=TIMEOUT, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{chain.id} did not finish in {TIMEOUT} s:\n{exc.stdout}\n{exc.stderr}") from None
    assert res.returncode == 0, (f"{chain.id} failed (exit {res.returncode}):\n{chain.script}\n"
                                 f"--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")
