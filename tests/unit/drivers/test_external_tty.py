"""--external tty[RDEV:DEV] and --inherit-fd fd[N]:tty[RDEV:DEV]: CRIU's
spelling (hex st_rdev and st_dev), one canonical form, and the checks."""
from __future__ import annotations

import os

import pytest

from refcr.drivers.tty import ext_name
from refcr.errors import OptionError
from refcr.external import canonical, check_external, parse_inherit_fd


def test_name_is_criu_spelling() -> None:
    assert ext_name(os.makedev(136, 0), 0x1a) == "tty[8800:1a]"


@pytest.mark.parametrize("given", ["tty[8800:1a]", "tty[8800:1A]", "tty[08800:001a]"])
def test_canonical_tty(given: str) -> None:
    assert canonical(given) == "tty[8800:1a]"


@pytest.mark.parametrize("bad", ["tty[8800]", "tty[x:1]", "tty[1:2]:3", "tty[:1]"])
def test_external_tty_malformed(bad: str) -> None:
    with pytest.raises(OptionError, match=r"--external tty\["):
        check_external([bad])


def test_external_tty_accepted() -> None:
    assert check_external(["tty[8800:1a]"]) == []


def test_inherit_tty() -> None:
    master, slave = os.openpty()
    try:
        (item,) = parse_inherit_fd([f"fd[{slave}]:tty[8800:1A]"])
        assert (item.fd, item.resource) == (slave, "tty[8800:1a]")
        with pytest.raises(OptionError, match="unknown resource"):
            parse_inherit_fd([f"fd[{slave}]:tty[8800]"])
    finally:
        os.close(master)
        os.close(slave)
