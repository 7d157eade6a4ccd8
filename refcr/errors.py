"""The exceptions refcr raises on purpose.

Every one of them carries a message meant for a person; the CLI prints it as
one line (``refcr: error: ...``) and exits non-zero.  Anything else that
escapes is a bug and is reported the same way, with the traceback going only
to the log at debug level.
"""
from __future__ import annotations


class RefcrError(Exception):
    """Base class: a clear, one-line, user-facing failure."""


class OptionError(RefcrError):
    """An option is missing, malformed or makes no sense with the others."""


class NoSuchProcess(RefcrError):
    """The pid given does not exist (or vanished while we looked)."""

    def __init__(self, pid: int, what: str = "process") -> None:
        super().__init__(f"no such {what}: {pid}")
        self.pid = pid


class ProcessBusy(RefcrError):
    """The target cannot be seized: traced by someone else, a kernel thread, ..."""


class ImageError(RefcrError):
    """An image file is missing, truncated, of the wrong type or undecodable."""

    def __init__(self, path: str, offset: int | None, msg: str) -> None:
        where = path if offset is None else f"{path} at offset {offset}"
        super().__init__(f"{where}: {msg}")
        self.path = path
        self.offset = offset


class DumpError(RefcrError):
    """The dump could not be completed; the target has been resumed."""


class RestoreError(RefcrError):
    """The restore could not be completed; every puppet has been killed."""


class UnsupportedObject(DumpError):
    """The target holds a kernel object refcr cannot checkpoint."""


class InjectedFault(RefcrError):
    """A failure requested through REFCR_FAULT (used by the test suite)."""
