"""The image fuzzer in the suite (tests/fuzz.py): mutations of real images, each
restored in a sandbox with the host read-only; no traceback, no exit 2, no
hang, no leftover process, nothing created or changed outside the image dir.

The default run is bounded and repeatable: a fixed Hypothesis seed and
REFCR_FUZZ_CASES cases (200: well under 2 minutes, about 2 under a heavy
load).  ``./dev.sh fuzz N`` runs a long campaign with
REFCR_FUZZ_CAMPAIGN=FILE set: every case is counted instead of stopping at
the first problem, and the counts, the time and every problem case go to FILE.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from fuzz import PROGRAMS, Lab, summary
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

CASES = int(os.environ.get("REFCR_FUZZ_CASES", "200"))
CAMPAIGN = os.environ.get("REFCR_FUZZ_CAMPAIGN")
SEED = 20261202


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab.make(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.xdist_group("fuzz")
def test_fuzz_images(lab: Lab) -> None:
    records: list[dict] = []
    t0 = time.monotonic()

    @seed(SEED)
    @settings(max_examples=CASES, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    @given(program=st.sampled_from(PROGRAMS), data=st.data())
    def one(program: str, data: st.DataObject) -> None:
        case, out = lab.case(program, data.draw, st)
        problem = out.problem()
        records.append({"program": program, "mutations": case.done, "rc": out.rc, "problem": problem,
                        "seconds": round(out.seconds, 3), "stderr": out.stderr[-2000:] if problem else ""})
        if not CAMPAIGN:
            assert problem is None, f"{problem}; mutations {case.done}; stderr: {out.stderr[-3000:]}"

    one()
    took = time.monotonic() - t0
    print(f"\nfuzz: {len(records)} cases in {took:.1f} s: {summary(records)}")
    if CAMPAIGN:
        Path(CAMPAIGN).write_text(json.dumps({
            "cases": len(records), "seconds": round(took, 1), "counts": json.loads(summary(records)),
            "problems": [r for r in records if r["problem"]]}, indent=1) + "\n")
        assert not [r for r in records if r["problem"]], f"problems: see {CAMPAIGN}"
