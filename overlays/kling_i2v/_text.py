"""Server text made safe to show, store or raise.

Everything the gateway, the upstream or a stranger on the path sends back (error
messages, `fail_reason`, HTML pages) may quote the API token (some gateways echo the key
they refuse: "Incorrect API key provided: sk-...") and may carry terminal escape
sequences (an OSC 8 hyperlink, a CSI that clears the screen, a title change). `clean()`
removes both before the text reaches an exception, a log line, the journal or a terminal.
`shorten()` is how a value (the user's or the server's) is quoted in a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["MISSING", "REDACTED", "clean", "glimpse", "shorten"]

REDACTED = "***"
_MAX_VALUE_CHARS = 60


class _Missing:
    """The value of a field that is required but absent."""

    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


def shorten(value: Any, limit: int = _MAX_VALUE_CHARS) -> str:
    """A value as it appears in messages: JSON-ish, and never longer than `limit` chars."""
    if value is MISSING:
        return "missing"
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):  # pragma: no cover - default=repr makes this rare
        text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes | list | dict) else len(text)
    unit = "items" if isinstance(value, list | dict) else "chars"
    return f"{text[: limit - 20]}… ({size} {unit})"

# ECMA-48: CSI (ESC [ ... final byte), OSC/DCS/SOS/PM/APC strings (ESC ] ... BEL or ST),
# two-byte escapes (ESC + one char), and their 8-bit C1 forms (0x9b CSI, 0x9d OSC, ...).
# A string that never terminates runs to the end of the text: it is removed whole, so a
# cut-off escape cannot leak its opening half to the terminal either.
_ESCAPES = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?      # CSI
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) .*? (?:\x07|\x1b\\|\x9c|$)  # OSC, DCS, ...
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                              # other escapes
    """,
    re.VERBOSE | re.DOTALL,
)
# What is left after the sequences: every C0 control but tab and newline, DEL, the C1
# block, and the bidirectional overrides that make text read differently than it is
# ("Trojan Source", CVE-2021-42574).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str, *, secrets: Iterable[str] = ()) -> str:
    """`text` without any of `secrets` (replaced by ***), escape sequences or control
    characters other than tab and newline. Lone surrogates become `\\udxxx` escapes, so
    the result can always be printed and encoded."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _CONTROLS.sub("", _ESCAPES.sub("", text))
    # Removing an escape can join the two halves of a token cut by it: check again.
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


_TITLE = re.compile(r"<title[^>]*>([^<]*)", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>?")


def glimpse(page: str) -> str:
    """A web page in a few words: `titled "New API"`, or its first words without markup.
    `page` is already cleaned text (the client's snippet)."""
    title = _TITLE.search(page)
    if title and title.group(1).strip():
        return f"titled {shorten(' '.join(title.group(1).split()), 40)}"
    words = " ".join(_TAG.sub(" ", page).split())
    return f"starting {shorten(words, 40)}" if words else "empty"
