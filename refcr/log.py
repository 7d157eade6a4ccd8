"""One logger for the whole tool, with CRIU's verbosity levels.

CRIU (and its plugin API, see criu-log.h) numbers levels 0..4:
LOG_MSG=0 (always shown), LOG_ERROR=1, LOG_WARN=2, LOG_INFO=3, LOG_DEBUG=4.
``-vN`` shows every message whose level is <= N.  Python's levels are mapped
onto those so that plugins' pr_* calls and our own calls share one scale.
"""
from __future__ import annotations

import logging
import sys

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
    handler.setFormatter(logging.Formatter("(%(relativeCreated)9.3f) %(levelname).1s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(py_level(verbosity))


def logs_to_file() -> bool:
    """True when the log goes to a file (so errors are not on stderr twice)."""
    return any(isinstance(h, logging.FileHandler) for h in log.handlers)


def print_on_level(criu_level: int, msg: str) -> None:
    """Entry point for messages that arrive with a CRIU level (plugins)."""
    log.log(py_level(criu_level), msg.rstrip("\n"))
