"""One logger for the whole tool, with CRIU's verbosity levels.

CRIU (and its plugin API, see criu-log.h) numbers levels 0..4:
LOG_MSG=0 (always shown), LOG_ERROR=1, LOG_WARN=2, LOG_INFO=3, LOG_DEBUG=4.
``-vN`` shows every message whose level is <= N.  Python's levels are mapped
onto those so that plugins' pr_* calls and our own calls share one scale.

`progress`: the bar of a long dump or restore on the caller's terminal
(tqdm).  One bar per run: pages copied of the total, processes done of the
total, rate and ETA, e.g. ``dump:  45%|####5     | 118k/262k [00:01<00:01,
98.1kpage/s, 0/1 processes]``.  Only when stderr is a terminal and the level
is not ``-v0``, and only once the run has lasted PROGRESS_DELAY seconds
(``REFCR_PROGRESS_DELAY``, default 1 s), so a short run prints nothing.  The
bar is erased when the run ends (success or failure), leaving the terminal as
a run without it would: the one-line error, or nothing.  Log lines written
to stderr meanwhile go through tqdm (``logging_redirect_tqdm``) so they do
not tear the bar.  The dump's total is an estimate taken before the copy
(each process's RssAnon); the bar's total grows if more pages come.  Only
private memory counts (shared memory objects are copied too, but not
shown); pages an incremental dump leaves in the parent count as done.  The
restore's total is exact (the pagemaps).  Cost: one update per copied batch
(8 MiB), nothing when the bar is off; tqdm is imported only for a bar.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from typing import Any, Iterator

from refcr.errors import OptionError

LOG_MSG, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = range(5)

_PY_LEVEL = {
    LOG_MSG: logging.CRITICAL,
    LOG_ERROR: logging.ERROR,
    LOG_WARN: logging.WARNING,
    LOG_INFO: logging.INFO,
    LOG_DEBUG: logging.DEBUG,
}

logging.raiseExceptions = False          # a full disk under -o: no traceback on stderr, the error says it
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """*text* with every control character (C0, DEL, C1) written as ``\\xNN``:
    image strings reach the terminal and the log only this way."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _Escaping(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        head, sep, tail = text.partition("\nTraceback")      # a traceback keeps its lines
        return escape(head) + (sep + tail if sep else "")


log = logging.getLogger("refcr")
log.addHandler(logging.NullHandler())   # nothing on stderr before setup(): the CLI says errors itself
log.propagate = False


def py_level(criu_level: int) -> int:
    """Python logging level for a CRIU log level (clamped to 0..4)."""
    return _PY_LEVEL[max(LOG_MSG, min(LOG_DEBUG, criu_level))]


def setup(verbosity: int = LOG_WARN, logfile: str | None = None) -> None:
    """Send the log to ``logfile`` (or stderr) showing levels <= verbosity.

    With a log file, errors are still echoed to stderr by the CLI itself, so
    the file gets the full story and the terminal gets one line.
    """
    log.handlers.clear()
    log.propagate = False
    handler: logging.Handler
    if logfile and logfile != "-":
        try:
            handler = logging.FileHandler(logfile, mode="w")
        except OSError as exc:
            raise OptionError(f"-o {logfile}: cannot open the log file: {exc.strerror}") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Escaping("(%(relativeCreated)9.3f) %(levelname).1s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(py_level(verbosity))


def logs_to_file() -> bool:
    """True when the log goes to a file (so errors are not on stderr twice)."""
    return any(isinstance(h, logging.FileHandler) for h in log.handlers)


def print_on_level(criu_level: int, msg: str) -> None:
    """Entry point for messages that arrive with a CRIU level (plugins)."""
    log.log(py_level(criu_level), msg.rstrip("\n"))


# ------------------------------------------------------------- progress ---

PROGRESS_DELAY = 1.0     # seconds before a bar appears


class Progress:
    """The bar of the running dump or restore, or nothing."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.processes = 0
        self.done = 0

    @staticmethod
    def wanted() -> bool:
        """A bar is shown on a terminal, unless -v0."""
        return sys.stderr.isatty() and log.getEffectiveLevel() < logging.CRITICAL

    @contextlib.contextmanager
    def shown(self, what: str, total_pages: int, processes: int) -> Iterator[None]:
        """Show a bar for the duration of the block (if wanted)."""
        if not self.wanted():
            yield
            return
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
        bar = tqdm(total=max(total_pages, 1), desc=what, unit="page", unit_scale=True, delay=_delay(),
                   leave=False, file=sys.stderr, dynamic_ncols=True, postfix=f"0/{processes} processes")
        self.bar, self.processes, self.done = bar, processes, 0
        try:
            with logging_redirect_tqdm(loggers=[log]):
                yield
        finally:
            self.bar = None
            bar.close()

    def pages(self, n: int) -> None:
        """n more pages copied (or left in the parent image)."""
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


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("REFCR_PROGRESS_DELAY", PROGRESS_DELAY)))
    except ValueError:
        return PROGRESS_DELAY


progress = Progress()
