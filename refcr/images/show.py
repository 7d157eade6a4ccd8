"""``refcr show DIR|FILE``: decode images to JSON.

A file prints as ``{"type": ..., "magic": ..., ["head": {...},] "entries": [...]}``;
a raw page file as ``{"type": "pages", "raw": true, "size": N}``.  A directory
prints an object keyed by file name.  Strict: any file of a directory that is
not a known image (by name and magic) is an error, as is any corrupt image.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import Any

from refcr.errors import ImageError


def _to_dict(msg: Any) -> dict:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(msg, preserving_proto_field_name=True)


def show_file(path: str) -> dict:
    from refcr.images.imagedir import decode_file     # the image types: only for a show, not for --help
    t, head, entries = decode_file(path)
    if t.raw:
        return {"type": t.name, "raw": True, "size": os.stat(path, follow_symlinks=False).st_size}
    out: dict[str, Any] = {"type": t.name, "magic": f"{t.magic:#010x}"}
    if t.head is not None:
        out["head"] = _to_dict(head)
    out["entries"] = [_to_dict(e) for e in entries]
    return out


def show_dir(path: str) -> dict:
    from refcr.images.imagedir import INCOMPLETE_MARKER, ImageDir, type_by_filename
    with ImageDir(path, "r") as d:
        reason = d.is_incomplete()
        names = sorted(os.listdir(d.fileno()))
    out: dict[str, Any] = {}
    for name in names:
        full = os.path.join(path, name)
        if name == INCOMPLETE_MARKER:
            out[name] = {"incomplete": reason}
            continue
        if type_by_filename(name) is None:
            if name.endswith(".img"):
                raise ImageError(full, None, "not an image file refcr knows")
            # logs and plugins' own files (rtc.N, ...) live here too: listed, not decoded
            out[name] = {"other": True, "size": os.stat(full, follow_symlinks=False).st_size}
            continue
        out[name] = show_file(full)
    return out


def show(path: str) -> dict:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageError(path, None, "no such file or directory") from None
    return show_dir(path) if stat.S_ISDIR(st.st_mode) else show_file(path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``refcr show`` (for the CLI's sub-parser)."""
    p.add_argument("path", metavar="DIR|FILE", help="an image directory or one image file")
    p.add_argument("--compact", action="store_true", help="print the JSON on one line")


def main_show(args: argparse.Namespace | list[str] | None = None) -> int:
    """Print the JSON of ``args.path``; ImageError propagates to the caller."""
    if not isinstance(args, argparse.Namespace):
        p = argparse.ArgumentParser(prog="refcr show", description=__doc__.splitlines()[0])
        add_arguments(p)
        args = p.parse_args(args)
    import json
    data = show(args.path)
    indent = None if getattr(args, "compact", False) else 2
    json.dump(data, sys.stdout, indent=indent)
    sys.stdout.write("\n")
    return 0
