"""Shared setup for tests/: make the repository importable (refcr, zdtm.harness)."""
import sys
from pathlib import Path

_repo = str(Path(__file__).resolve().parent.parent)
if _repo not in sys.path:
    sys.path.insert(0, _repo)

from support import processes, subreaper  # noqa: E402,F401  (fixtures for every test here)
