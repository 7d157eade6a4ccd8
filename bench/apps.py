"""Dump and restore times of the real programs of zdtm/apps, refcr beside CRIU.

    .venv/bin/python bench/apps.py [--criu PATH] [--flavor h,ns] [--runs N] [--only NAME,...]

Runs the app items of the zdtm harness (the same start, state and checks)
once per tool and run, with the tool behind bench/timed.py, which notes the
wall time of every dump and restore; prints the median per app and flavor,
and the step where an item failed (CRIU cannot dump some of them here, see
/work/shared/peers/README.md).  The verdict of CRIU's items is the same
harness's: state compared, program checked through its client.
Not part of the test run: a benchmark wants a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMED = Path(__file__).with_name("timed.py")


def run_items(tool: list[str], flavors: str, only: list[str], log: Path) -> dict[str, str]:
    """pytest over zdtm/apps with the tool; item id -> outcome line."""
    wrapper = " ".join([sys.executable, str(TIMED), str(log), *tool])
    paths = [str(REPO / "zdtm/apps" / f"{n}.py") for n in only] or [str(REPO / "zdtm/apps")]
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                        f"--zdtm-flavor={flavors}", f"--zdtm-refcr={wrapper}", *paths],
                       cwd=REPO, capture_output=True, text=True)
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^(PASSED|FAILED|ERROR) zdtm/apps/(\w+)\.py::(\w+)(?: - (.*))?$", line)
        if m:
            out[f"{m.group(2)}::{m.group(3)}"] = m.group(1) + (f": {m.group(4)}" if m.group(4) else "")
    return out


def times(log: Path) -> dict[tuple[str, str], list[float]]:
    got: dict[tuple[str, str], list[float]] = defaultdict(list)
    if log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            parts = Path(r["cwd"]).parts
            if r["rc"] == 0 and r["action"] in ("dump", "restore"):
                got[(f"{parts[-1]}::{parts[-2]}", r["action"])].append(r["seconds"])
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--criu", default="/work/shared/peers/criu")
    ap.add_argument("--flavor", default="h,ns")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = [n for n in args.only.split(",") if n]
    tools = {"refcr": [sys.executable, "-m", "refcr"]}
    if os.access(args.criu, os.X_OK):
        tools["criu"] = [args.criu]
    results: dict[str, dict] = {}
    for name, tool in tools.items():
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "times.jsonl"
            outcomes = {}
            for _ in range(args.runs):
                outcomes.update(run_items(tool, args.flavor, only, log))
            results[name] = {"outcomes": outcomes, "times": times(log)}
    items = sorted({i for r in results.values() for i in r["outcomes"]})
    print(f"{'item':16} " + " ".join(f"{t + ' ' + a:>14}" for t in tools for a in ("dump", "restore")))
    for item in items:
        cells = []
        for t in tools:
            for a in ("dump", "restore"):
                xs = results[t]["times"].get((item, a))
                cells.append(f"{statistics.median(xs):13.2f}s" if xs else f"{'-':>14}")
        print(f"{item:16} " + " ".join(cells))
    for t in tools:
        for item in items:
            o = results[t]["outcomes"].get(item, "not run")
            if not o.startswith("PASSED"):
                print(f"{t} {item}: {o}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
