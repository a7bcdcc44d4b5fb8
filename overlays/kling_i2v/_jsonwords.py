"""Python's JSON errors in plain words, with where they are.

`json.JSONDecodeError` says "Expecting property name enclosed in double quotes: line 1
column 2 (char 1)": parser words a user typing a motion brush or a CSV cell should not
have to decode. The messages matched here are the ones CPython's json.decoder and
json.scanner raise (cpython Lib/json/decoder.py, `JSONDecodeError(...)` calls); one not
listed keeps its own words.
"""

from __future__ import annotations

import json

__all__ = ["json_line", "json_problem"]

_WORDS = (
    ("Expecting property name enclosed in double quotes",
     'a key in "double quotes" was expected'),
    ("Expecting value", 'a value was expected (a number, "text", true, false, null, [...] or {...})'),
    ("Expecting ':' delimiter", "a : was expected after the key"),
    ("Expecting ',' delimiter", "a , was expected between two items"),
    ("Unterminated string", "a text in quotes is not closed"),
    ("Extra data", "there is more after the end of the JSON value"),
    ("Invalid control character", "a text in quotes holds a tab or line break (write \\t or \\n)"),
    ("Invalid \\uXXXX escape", "a \\u escape needs 4 hex digits"),
    ("Invalid \\escape", "a backslash starts no valid escape (write \\\\ for a backslash)"),
    ("Illegal trailing comma", "a comma before a closing bracket is not allowed"),
)


def json_problem(error: ValueError) -> str:
    """"not valid JSON: <what> at line L, column C" for a JSONDecodeError; other errors
    (a UnicodeDecodeError, nesting too deep) as their own text."""
    if not isinstance(error, json.JSONDecodeError):
        return f"not valid JSON: {error}"
    words = next((plain for start, plain in _WORDS if error.msg.startswith(start)), error.msg)
    return f"not valid JSON: {words} at line {error.lineno}, column {error.colno}"


def json_line(error: ValueError, fallback: str) -> str:
    """The line a JSONDecodeError points at (to show as what was got), else `fallback`."""
    if isinstance(error, json.JSONDecodeError):
        lines = error.doc.splitlines() or [""]
        return lines[min(error.lineno, len(lines)) - 1].strip()
    return fallback
