"""The fd registry's per-description bookkeeping and CRIU's file options."""
from __future__ import annotations

import pytest

from refcr.cli import REFUSED_FILE_OPTIONS, build_parser, to_options
from refcr.errors import OptionError
from refcr.fs.fd import RestoreFiles
from refcr.options import Options


def test_once_is_per_description_not_per_message_object() -> None:
    ctx = RestoreFiles(images=None, opts=Options())     # type: ignore[arg-type]
    ctx.installing = 1
    assert ctx.once("epoll") and not ctx.once("epoll")
    ctx.installing = 2                                  # another description: its own first time
    assert ctx.once("epoll") and ctx.once("locks")


def _opts(*argv: str) -> Options:
    return to_options(build_parser().parse_args(list(argv)))


def test_file_options_meaning() -> None:
    o = _opts("dump", "-t", "1", "-D", "d", "--link-remap", "--no-ghost-fiemap")
    assert o.link_remap and not o.ghost_fiemap
    assert _opts("dump", "-t", "1", "-D", "d").ghost_fiemap
    assert _opts("restore", "-D", "d", "--file-validation", "filesize").file_validation == "filesize"
    _opts("restore", "-D", "d", "--skip-file-rwx-check")


@pytest.mark.parametrize("option", sorted(REFUSED_FILE_OPTIONS))
def test_refused_file_options_name_themselves(option: str) -> None:
    argv = ["dump", "-t", "1", "-D", "d", option] + (["/x"] if REFUSED_FILE_OPTIONS[option][1] else [])
    with pytest.raises(OptionError, match=f"^{option}: not supported by refcr"):
        _opts(*argv)


def test_file_validation_buildid_refused() -> None:
    with pytest.raises(OptionError, match="buildid"):
        _opts("restore", "-D", "d", "--file-validation", "buildid")
