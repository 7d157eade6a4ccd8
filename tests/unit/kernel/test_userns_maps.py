"""IdMap (refcr/ptrace/proc.py): the uid_map / gid_map arithmetic that turns
the host's view of credentials into ids inside a user namespace and back."""
from __future__ import annotations

import os

from refcr.ptrace.proc import IdMap

UNS = IdMap.parse("         0          0          1\n         1     100000      65535\n")


def test_parse_and_translate() -> None:
    assert UNS.extents == ((0, 0, 1), (1, 100000, 65535))
    assert UNS.inner(0) == 0 and UNS.inner(100000) == 1 and UNS.inner(100999) == 1000
    assert UNS.inner(1000) is None and UNS.inner(165535) is None      # not mapped
    assert UNS.outer(1000) == 100999 and UNS.outer(65536) is None
    assert IdMap.parse(UNS.text()) == UNS


def test_own_namespace_is_the_identity() -> None:
    mine = IdMap.of(os.getpid(), "uid")
    assert mine.inner(12345) == 12345 and mine.outer(12345) == 12345
