"""Source compatibility for plugin authors (issue 13).

A plugin written for CRIU's public API, v2 and old style, and its zdtm test
written for CRIU's test library, all in tests/compat/src and tests/compat/zdtm
(written here in CRIU's style, using every public name), build unchanged with
`refcr plugin-cflags` and zdtm/lib/criu, pass `refcr plugin-check` (with the
test as --scenario), and run through `pytest zdtm --zdtm-static=DIR
--zdtm-libdir=DIR`.  The host exports what the headers say it provides
(nm -D), and refuses, by name, a plugin calling what it does not.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from zdtm.harness import desc

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
TESTS = HERE / "zdtm"
INCLUDE = REPO / "native" / "include"
PLUGINS = ("kmsg_v2", "kmsg_old", "dummy", "unprovided")


def refcr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refcr", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def cflags(tmp: Path) -> list[str]:
    res = refcr("plugin-cflags", cwd=tmp)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every plugin of src/, built as an author would: cc $(refcr plugin-cflags), warnings as errors."""
    d = tmp_path_factory.mktemp("compat-built")
    flags = cflags(d)
    out = {}
    for name in PLUGINS:
        so = d / name / f"{name}.so"
        so.parent.mkdir()
        subprocess.run(["cc", *flags, "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-fPIC",
                        "-shared", "-o", str(so), str(SRC / f"{name}.c")], check=True)
        out[name] = so
    return out


def rows(stdout: str) -> dict[str, tuple[str, str]]:
    out = {}
    for line in stdout.splitlines()[1:]:
        m = re.match(r"(\S+)\s+(ok|FAIL)\s*(.*)$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


@pytest.mark.parametrize("name", ["kmsg_v2", "kmsg_old"])
def test_plugin_check_with_criu_style_test(tmp_path: Path, built: dict[str, Path], name: str) -> None:
    res = refcr("plugin-check", str(built[name]), "--scenario", str(TESTS / "kmsg00.c"), cwd=tmp_path)
    got = rows(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    assert got["scenario"][0] == "ok" and "kmsg00.c: PASS after dump and restore" in got["scenario"][1]
    assert "the images name it" in got["scenario"][1]
    old = "old-style: generated" in got["descriptor"][1]
    assert old == (name == "kmsg_old"), got["descriptor"]
    # every hook of the first API found by its name, every v2 hook registered
    hooks = {"DUMP_UNIX_SK", "RESTORE_UNIX_SK", "DUMP_EXT_FILE", "RESTORE_EXT_FILE", "DUMP_EXT_MOUNT",
             "RESTORE_EXT_MOUNT", "DUMP_EXT_LINK", "HANDLE_DEVICE_VMA", "UPDATE_VMA_MAP", "RESUME_DEVICES_LATE",
             "POST_FORKING"}
    if not old:
        hooks |= {"PAUSE_DEVICES", "CHECKPOINT_DEVICES", "RESTORE_INIT", "DUMP_DEVICES_LATE"}
    assert hooks <= set(got), sorted(hooks - set(got))


def test_plugin_check_dummy(tmp_path: Path, built: dict[str, Path]) -> None:
    res = refcr("plugin-check", str(built["dummy"]), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert all(r == "ok" for r, _ in rows(res.stdout).values())


def test_unprovided_log_functions_are_named(tmp_path: Path, built: dict[str, Path]) -> None:
    """criu-log.h's log-file functions: the plugin builds, refcr refuses it naming one."""
    res = refcr("plugin-check", str(built["unprovided"]), cwd=tmp_path)
    assert res.returncode == 1
    status, detail = rows(res.stdout)["load"]
    assert status == "FAIL" and re.search(r"undefined symbol: refcr_does_not_provide__log_\w+", detail), detail
    nm = subprocess.run(["nm", "-D", "--undefined-only", str(built["unprovided"])], capture_output=True,
                        text=True, check=True).stdout
    for name in ("log_init", "log_fini", "log_init_by_pid", "log_closedir", "log_keep_err", "log_first_err",
                 "log_set_fd", "log_get_fd", "log_get_logstart", "write_pidfile", "flush_early_log_buffer"):
        assert f"refcr_does_not_provide__{name}" in nm


def _declared() -> tuple[set[str], set[str]]:
    """Functions the public headers declare: (provided by the host, not provided)."""
    provided, not_provided = set(), set()
    for header in ("criu-plugin.h", "criu-log.h"):
        text = (INCLUDE / header).read_text()
        for decl in re.findall(r"^extern\s[^;]*;", text, re.M | re.S):
            m = re.search(r"(\w+)\s*\(", decl)
            if m:
                (not_provided if "__REFCR_NOT_PROVIDED" in decl else provided).add(m.group(1))
    return provided, not_provided


def test_host_exports_what_the_headers_declare() -> None:
    import refcr._plugins as host

    provided, not_provided = _declared()
    assert {"criu_get_image_dir", "print_on_level", "vprint_on_level", "log_get_loglevel",
            "log_set_loglevel"} <= provided
    assert "log_init" in not_provided
    nm = subprocess.run(["nm", "-D", "--defined-only", host.__file__], capture_output=True, text=True,
                        check=True).stdout
    exported = {line.split()[-1] for line in nm.splitlines() if re.match(r"\S+ T ", line)}
    assert provided <= exported, f"declared but not exported: {sorted(provided - exported)}"
    assert not (not_provided & exported)


@pytest.mark.parametrize("name", ["kmsg_v2", "kmsg_old"])
def test_zdtm_static_dir(tmp_path: Path, built: dict[str, Path], name: str) -> None:
    """pytest zdtm --zdtm-static=DIR --zdtm-libdir=DIR, as README's plugin-author section shows."""
    res = subprocess.run([sys.executable, "-m", "pytest", "zdtm", f"--zdtm-static={TESTS}",
                          f"--zdtm-libdir={built[name].parent}", "-n", "0", "-q", "-p", "no:cacheprovider"],
                         cwd=REPO, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert re.search(r"\b2 passed\b", res.stdout), res.stdout[-2000:]


def test_desc_criu_format(tmp_path: Path) -> None:
    """CRIU's .desc: its keys understood; an unknown key a warning outside zdtm/static, an error inside."""
    src = tmp_path / "t.c"
    src.write_text("")
    src.with_suffix(".desc").write_text(
        "{'flavor': 'h ns', 'opts': '--tcp-established', 'flags': 'suid excl reqrst', 'arch': 'x86_64',\n"
        " 'deps': ['/bin/true'], 'feature': 'uffd-wp-async', 'sysfs': '/sys/x', 'flavour': 'h'}\n")
    sc = desc.load(src, strict=False)
    assert sc.flavors == ("h", "ns") and sc.opts == ("--tcp-established",) and sc.excl and "suid" in sc.flags
    assert sc.arch == ("x86_64",) and sc.deps == ("/bin/true",) and sc.features == ("uffd-wp-async",)
    assert len(sc.warnings) == 1 and "['flavour', 'sysfs']" in sc.warnings[0]
    with pytest.raises(desc.DescError, match="unknown key"):
        desc.load(src)
    src.with_suffix(".desc").write_text("{'flags': 'suid nosuchflag'}")
    assert "nosuchflag" in desc.load(src, strict=False).warnings[0]
    with pytest.raises(desc.DescError, match="unknown flag"):
        desc.load(src)
