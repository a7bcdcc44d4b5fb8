"""Reading what a user hands us (a manifest, an `@file` option value, an image path): every
read is bounded and refused early, and every problem is a ValueError in plain words that
the caller turns into its own input error (exit 2 on the command line).

- Only regular files are opened: a FIFO would block the open itself, `/dev/zero` never
  ends, a socket cannot be read. `os.stat` says which before anything is opened.
- Text is read up to a limit plus one byte, so a huge file costs the limit, not its size.
- Text must be UTF-8 (a byte order mark is allowed: spreadsheets write one); a decoding
  error names the line and the byte.
- JSON is refused past a nesting depth: the request's deepest value
  (`dynamic_masks[].trajectories[].x`, openapi.yaml) is four levels down, and a deeply
  nested document would otherwise reach Python's recursion limit (or the validator's).
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "MAX_MANIFEST_BYTES", "MAX_OPTION_FILE_BYTES", "check_depth",
           "parse_json", "read_text", "regular_file"]

MAX_JSON_DEPTH = 32
"""Eight times the request's own depth: room for any honest value, none for a bomb."""
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
"""About 500,000 rows of a typical manifest. A guess at "more than anyone runs at once",
not a rule of the service."""
MAX_OPTION_FILE_BYTES = 1024 * 1024
"""For `--camera-control @file` and the like: the longest honest value (77-point
trajectories for six masks) is a few tens of kilobytes."""

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def regular_file(path: str | os.PathLike[str], what: str) -> os.stat_result:
    """`path`'s status if it is a regular file (after symbolic links); ValueError naming
    what it is otherwise. FileNotFoundError (an OSError) when there is nothing there."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise ValueError(f"{what} {os.fspath(path)} must be a regular file, got {kind}")
    return info


def read_text(path: str | os.PathLike[str], what: str, limit: int) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes."""
    regular_file(path, what)
    with open(path, "rb") as f:
        # the file may have grown since the stat: read no more than the limit allows
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{what} {os.fspath(path)} is larger than {_size(limit)}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"{what} {os.fspath(path)} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line "
            f"{line}); save it as UTF-8"
        ) from None


def parse_json(text: str) -> Any:
    """`json.loads`, with a document nested too deeply refused as a ValueError."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    check_depth(value)
    return value


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """ValueError if lists and objects in `value` nest more than `limit` levels."""
    level: list[Any] = [value]
    for _ in range(limit + 1):  # a value at depth d empties the level on pass d + 1
        containers = [item for item in level if isinstance(item, list | dict)]
        if not containers:
            return
        level = [child for item in containers
                 for child in (item.values() if isinstance(item, dict) else item)]
    raise ValueError(f"JSON nested more than {limit} levels deep")


def _size(limit: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit:,} bytes"
