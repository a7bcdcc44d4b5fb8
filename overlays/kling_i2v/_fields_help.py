"""create()'s docstring with every field of the spec. Apart from requests.py so that
defining the clients loads none of what builds a request (body, images, validation,
capabilities): `kling-i2v status ID --json` and a first get() never use it (issue 12:
start-up; tests/test_startup_imports.py)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

from ._fields_doc import FIELDS_DOC

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = ["document_fields"]


def document_fields(function: _F) -> _F:
    """`function` with every create() field, its type, default and description (from
    the spec, through _fields_doc.py) added to its docstring, for help()."""
    function.__doc__ = (
        f"{function.__doc__ or ''}\n\nFields (keyword arguments; from openapi.yaml):\n\n"
        + textwrap.indent(FIELDS_DOC, "    ")
    )
    return function
