"""--action-script and --external veth[...] on plain processes (no namespaces):
the actions a dump of a tree without its own net namespace runs, a failing
script failing the dump with the process left running, and bad options
refused with one line.  (The namespace cases are zdtm scenarios:
action_script00, action_script_fails00, netns_ext_veth_option00.)"""
from __future__ import annotations

import time
from pathlib import Path

from support import Processes, assert_one_line_error
from test_cli_plain import refcr

from zdtm.harness import procs

RECORDER = """#!/bin/sh
echo "$CRTOOLS_SCRIPT_ACTION ${CRTOOLS_INIT_PID:--} $#" >> "$(dirname "$0")/actions.log"
[ "$CRTOOLS_SCRIPT_ACTION" != "${FAIL_AT:-none}" ]
"""


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "record"
    path.write_text(RECORDER)
    path.chmod(0o755)
    return path


def _sleeper(tmp_path: Path, processes: Processes) -> int:
    p = processes.spawn(["sleep", "1000"], tmp_path)
    time.sleep(0.1)
    return p.pid


def test_dump_actions_without_netns(tmp_path: Path, processes: Processes) -> None:
    pid = _sleeper(tmp_path, processes)
    script = _script(tmp_path)
    res = refcr("dump", "-t", str(pid), "-D", str(tmp_path / "img"), "-R", "--action-script", str(script),
                cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "actions.log").read_text().splitlines()
    assert lines == ["pre-dump - 0", f"post-dump {pid} 0"], lines      # no lock: no net namespace of its own
    assert procs.read_stat(pid) is not None


def test_failing_script_fails_dump(tmp_path: Path, processes: Processes, monkeypatch) -> None:  # noqa: ANN001
    pid = _sleeper(tmp_path, processes)
    script = _script(tmp_path)
    monkeypatch.setenv("FAIL_AT", "post-dump")
    res = refcr("dump", "-t", str(pid), "-D", str(tmp_path / "img"), "--action-script", str(script), cwd=tmp_path)
    assert_one_line_error(res)
    assert "post-dump" in res.stderr and str(script) in res.stderr
    st = procs.read_stat(pid)
    assert st is not None and st.state == "S", "a failed dump must leave the process running"


def test_bad_options(tmp_path: Path, processes: Processes) -> None:
    pid = str(_sleeper(tmp_path, processes))
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\n")
    for i, opts in enumerate([["--action-script", str(plain)], ["--action-script", str(tmp_path / "missing")],
                              ["--external", "veth[bad/name]"], ["--external", "veth[eth0]:toolongname0123456"]]):
        res = refcr("dump", "-t", pid, "-D", str(tmp_path / f"img{i}"), *opts, cwd=tmp_path)
        assert_one_line_error(res)
        assert opts[1] in res.stderr, res.stderr
    assert procs.read_stat(int(pid)) is not None


def test_restore_veth_option_matching_nothing(tmp_path: Path, processes: Processes) -> None:
    pid = _sleeper(tmp_path, processes)
    img = tmp_path / "img"
    assert refcr("dump", "-t", str(pid), "-D", str(img), "-R", cwd=tmp_path).returncode == 0
    for opt in ["veth[eth0]", "veth[eth0]:vout0@br0"]:
        res = refcr("restore", "-D", str(img), "-d", "--external", opt, cwd=tmp_path)
        assert_one_line_error(res)
        assert "veth[eth0]" in res.stderr, res.stderr
