"""What the fake gateway knows about the API: only what the shipped openapi.yaml says.

The fake declares no field, enum, default or range of its own. Request bodies are checked
with the fake's own jsonschema (Draft 2020-12) validator and format checks against the
spec's `ImageToVideoRequest`, independent of the client's fast path and checks, so that
a bug there cannot hide behind the same bug here; the messages (field path, and for a
cross-field rule its `x-rule` sentence) are worded as the client words them.

`format` is asserted, not just annotated: the spec's `uri` (RFC 3986) and OpenAPI's
`int32`/`int64` are checked here, with jsonschema's own checkers for the other formats it
knows without extra packages. A spec that says `format: uri` means a non-URI is invalid,
and schemathesis holds the fake to exactly that.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

# The spec, field paths and x-rule sentences are shared with the client; the validator
# and its format checks below are the fake's own.
from ..validation import format_path, load_spec, rule_of

__all__ = ["REQUEST_SCHEMA", "component", "default_of", "load_spec", "violations"]

REQUEST_SCHEMA = "ImageToVideoRequest"


def component(name: str) -> dict[str, Any]:
    """A schema of `components.schemas`, by name."""
    found: dict[str, Any] = load_spec()["components"]["schemas"][name]
    return found


def default_of(field: str) -> Any:
    """The spec's default of a request field (on the property, else on the schema it refers
    to), or None."""
    node = component(REQUEST_SCHEMA)["properties"][field]
    if "default" in node:
        return node["default"]
    ref = node.get("$ref", "")
    return component(ref.rsplit("/", 1)[-1]).get("default") if ref else None


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": load_spec()["components"]}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root, format_checker=_FORMATS)


def violations(instance: Any, name: str = REQUEST_SCHEMA) -> list[str]:
    """Every way `instance` breaks schema `name`, as "path: what is wrong", in path order."""
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: format_path(e.absolute_path))
    found: list[str] = []
    for error in errors:
        line = f"{format_path(error.absolute_path)}: {rule_of(error, name) or error.message}"
        if line not in found:
            found.append(line)
    return found


# ------------------------------------------------------------------ formats

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
# RFC 3986 section 3: URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
_URI = re.compile(
    rf"[A-Za-z][A-Za-z0-9+.\-]*:"
    rf"(?://(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?"  # authority: userinfo@
    rf"(?P<host>\[[^\]]*\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*)(?::[0-9]*)?"
    rf"(?:/{_PCHAR}*)*"  # path-abempty
    rf"|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?"  # path-absolute
    rf"|{_PCHAR}+(?:/{_PCHAR}*)*"  # path-rootless
    rf"|)"  # path-empty
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"
    rf"(?:#(?:{_PCHAR}|[/?])*)?"
)
_IP_FUTURE = re.compile(rf"v[0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")

_FORMATS = FormatChecker()


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _URI.fullmatch(value)
    if match is None:
        return False
    host = match.group("host") or ""
    if host.startswith("["):
        literal = host[1:-1]
        if _IP_FUTURE.fullmatch(literal):
            return True
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return False
    return True


def _integer_format(bits: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return True
        limit = 1 << (bits - 1)
        return -limit <= value < limit

    return check


_FORMATS.checks("uri")(_is_uri)
_FORMATS.checks("int32")(_integer_format(32))
_FORMATS.checks("int64")(_integer_format(64))
