"""pytest plugin for the zdtm suite: the hooks live in zdtm/harness/plugin.py.

    pytest zdtm                      every scenario, flavors h and ns, dump + restore
    pytest -n auto zdtm              in parallel (pytest-xdist)
    pytest zdtm/static/pipe00.c::ns  one scenario in one flavor
    pytest zdtm --zdtm-flavor=all    also the uns flavor (h,ns,uns)
    pytest zdtm --zdtm-no-cr         start -> SIGTERM -> PASS only
    pytest zdtm --zdtm-stress        with CPU and memory hogs for the whole session
"""
import sys
from pathlib import Path

_repo = str(Path(__file__).resolve().parent.parent)
if _repo not in sys.path:
    sys.path.insert(0, _repo)

from zdtm.harness.plugin import (  # noqa: E402,F401
    pytest_addoption,
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_report_header,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_unconfigure,
)

collect_ignore = ["work", "harness", "lib"]
