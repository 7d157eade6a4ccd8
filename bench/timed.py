#!/usr/bin/env python3
"""Run a checkpoint tool and note its wall time (bench/apps.py's --zdtm-refcr wrapper).

    timed.py LOG TOOL... ACTION ARGS...

Appends one JSON line to LOG: the action (dump/restore/...), the work dir
(the harness runs the tool there), the exit status and the seconds; exits
with the tool's status.
"""
import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    log, cmd = argv[0], argv[1:]
    action = next((a for a in cmd if a in ("dump", "restore", "pre-dump", "check")), "?")
    t0 = time.monotonic()
    rc = subprocess.call(cmd)
    with open(log, "a") as f:
        f.write(json.dumps({"action": action, "cwd": os.getcwd(), "rc": rc,
                            "seconds": round(time.monotonic() - t0, 3)}) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
