"""One logger for the whole tool, with CRIU's verbosity levels.

CRIU (and its plugin API, see criu-log.h) numbers levels 0..4:
LOG_MSG=0 (always shown), LOG_ERROR=1, LOG_WARN=2, LOG_INFO=3, LOG_DEBUG=4.
``-vN`` shows every message whose level is <= N.  Python's levels are mapped
onto those so that plugins' pr_* calls and our own calls share one scale.
"""
from __future__ import annotations

import logging
import re
import sys

LOG_MSG, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = range(5)

_PY_LEVEL = {
    LOG_MSG: logging.CRITICAL,
    LOG_ERROR: logging.ERROR,
    LOG_WARN: logging.WARNING,
    LOG_INFO: logging.INFO,
    LOG_DEBUG: logging.DEBUG,
}

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
        handler = logging.FileHandler(logfile, mode="w")
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
