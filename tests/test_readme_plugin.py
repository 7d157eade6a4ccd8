"""README's minimal plugin builds with the command README shows and passes
`refcr plugin-check` (so the example cannot rot)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARK = "<!-- readme-plugin: myplugin.c"


def _snippets() -> tuple[str, str]:
    """(the C block after the marker, the `cc ...` line of the next sh block)."""
    text = (REPO / "README.md").read_text()
    at = text.index(MARK)
    c = re.search(r"```c\n(.*?)```", text[at:], re.S)
    sh = re.search(r"```sh\n(.*?)```", text[at + c.end():], re.S)
    assert c and sh, "README's plugin example or its build command is missing"
    cc = [line for line in sh.group(1).splitlines() if line.startswith("cc ")]
    assert len(cc) == 1, sh.group(1)
    return c.group(1), cc[0].split("#", 1)[0].strip()


def test_readme_plugin_builds_and_passes_plugin_check(tmp_path: Path) -> None:
    source, build = _snippets()
    for name in ("CR_PLUGIN_REGISTER(", "CR_PLUGIN_REGISTER_HOOK(CR_PLUGIN_HOOK__", "static int my_init(int stage)",
                 "static void my_exit(int stage, int ret)"):
        assert name in source
    (tmp_path / "myplugin.c").write_text(source)
    # `refcr` as README says: the venv's (the one running these tests)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    res = subprocess.run(["bash", "-euo", "pipefail", "-c", f"{build} -Wall -Wextra -Werror"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"{build}\n{res.stderr}"
    res = subprocess.run([sys.executable, "-m", "refcr", "plugin-check", "./myplugin.so"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"^DUMP_EXT_FILE\s+ok", res.stdout, re.M), res.stdout
    assert "'myplugin'" in res.stdout
