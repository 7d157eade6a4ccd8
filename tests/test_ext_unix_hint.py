"""A stream unix socket connected outside the tree: the refusal names the
option that allows it with the socket's own inode (``--ext-unix-sk INO``),
and that option, given as the message says, makes the dump succeed."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from support import Processes, assert_one_line_error
from test_cli_plain import refcr

CLIENT = r"""
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
fd = s.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
open(sys.argv[2], "w").close()
while True:
    time.sleep(1)
"""


def test_refusal_names_ext_unix_sk_with_the_inode(tmp_path: Path, processes: Processes) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "srv.sock"))
    server.listen()
    try:
        p = processes.spawn([sys.executable, "-c", CLIENT, str(tmp_path / "srv.sock"), str(tmp_path / "ready")],
                            tmp_path)
        conn, _ = server.accept()
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline and p.poll() is None, "client did not start"
            time.sleep(0.05)
        ino = os.readlink(f"/proc/{p.pid}/fd/3").strip("socket:[]")
        res = refcr("dump", "-t", str(p.pid), "-D", str(tmp_path / "img1"), cwd=tmp_path)
        assert_one_line_error(res)
        assert f"(--ext-unix-sk {ino} allows it)" in res.stderr, res.stderr
        res = refcr("dump", "-t", str(p.pid), "-D", str(tmp_path / "img2"), "-R", "--ext-unix-sk", ino,
                    cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        conn.close()
    finally:
        server.close()
