"""The run's options: the only mutable state shared across the pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field

from refcr.log import LOG_WARN


@dataclass
class Options:
    """Everything the command line (or the test suite) chose for one run."""

    command: str = ""
    images_dir: str = ""
    pid: int = 0
    log_file: str | None = None
    verbosity: int = LOG_WARN
    leave_running: bool = False
    leave_stopped: bool = False
    shell_job: bool = False
    restore_detached: bool = False
    pidfile: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
