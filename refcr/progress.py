"""Progress of a long dump or restore on the caller's terminal (tqdm).

One bar per run: pages copied of the total, processes done of the total,
rate and ETA, e.g. ``dump:  45%|####5     | 118k/262k [00:01<00:01, 98.1kpage/s, 0/1 processes]``.

When: only when stderr is a terminal and the level is not ``-v0``, and only
once the run has lasted DELAY seconds (``REFCR_PROGRESS_DELAY``, default
1 s), so a short run prints nothing.  The bar is erased when the run ends
(success or failure), leaving the terminal as a run without it would: the
one-line error, or nothing.  Log lines written to stderr meanwhile go
through tqdm (``logging_redirect_tqdm``) so they do not tear the bar.

The dump's total is an estimate taken before the copy (each process's
RssAnon); the bar's total grows if more pages come.  Only private memory
counts (shared memory objects are copied too, but not shown).  Pages an incremental dump leaves
in the parent count as done.  The restore's total is exact (the pagemaps).
Cost: one update per copied batch (8 MiB), nothing when the bar is off.
tqdm is imported only when a bar is shown.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, Iterator

from refcr.log import log

DELAY = 1.0     # seconds before a bar appears


class _Bar:
    """The active bar, or nothing."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.processes = 0
        self.done = 0

    def pages(self, n: int) -> None:
        if self.bar is None or n <= 0:
            return
        if self.bar.n + n > self.bar.total:
            self.bar.total = self.bar.n + n
        self.bar.update(n)

    def process_done(self) -> None:
        if self.bar is None:
            return
        self.done += 1
        self.bar.set_postfix_str(f"{self.done}/{self.processes} processes", refresh=False)


_current = _Bar()


def wanted() -> bool:
    """A bar is shown on a terminal, unless -v0."""
    return sys.stderr.isatty() and log.getEffectiveLevel() < logging.CRITICAL


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("REFCR_PROGRESS_DELAY", DELAY)))
    except ValueError:
        return DELAY


@contextlib.contextmanager
def shown(what: str, total_pages: int, processes: int) -> Iterator[None]:
    """Show a bar for the duration of the block (if wanted)."""
    if not wanted():
        yield
        return
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    bar = tqdm(total=max(total_pages, 1), desc=what, unit="page", unit_scale=True, delay=_delay(),
               leave=False, file=sys.stderr, dynamic_ncols=True, postfix=f"0/{processes} processes")
    _current.bar, _current.processes, _current.done = bar, processes, 0
    try:
        with logging_redirect_tqdm(loggers=[log]):
            yield
    finally:
        _current.bar = None
        bar.close()


def pages(n: int) -> None:
    """n more pages copied (or left in the parent image)."""
    _current.pages(n)


def process_done() -> None:
    _current.process_done()


def rss_pages(pid: int) -> int:
    """A process's anonymous resident pages (the dump's estimate)."""
    kb = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    kb += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return kb // 4
