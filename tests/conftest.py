"""Shared setup for tests/: make the repository importable (refcr, zdtm.harness)."""
import sys
from pathlib import Path

_repo = str(Path(__file__).resolve().parent.parent)
if _repo not in sys.path:
    sys.path.insert(0, _repo)
