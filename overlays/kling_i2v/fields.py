"""The request fields as text: what the CLI's options and a batch manifest's cells share.

Everything here is read from openapi.yaml's `ImageToVideoRequest` (through
`validation.request_schema`): the field list, each field's type, enum values, default,
range and description. Nothing is declared twice: a new field, enum value or range in
the spec shows up as a new option, choice or help text without a change here.

Text becomes a value by the field's JSON type: strings stay strings, numbers and
integers are parsed, booleans read `true/false/yes/no/1/0/on/off`, and objects and
arrays are JSON. Whether a value is *allowed* (choices, ranges, cross-field rules) is
left to the spec validation the client runs, so the messages are the same everywhere.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._jsonwords import json_problem
from .requests import IMAGE_FIELDS
from .validation import enum_values, request_schema, schema

__all__ = ["IMAGE_FIELDS", "Field", "FieldKind", "request_fields"]

FieldKind = Literal["text", "image", "choice", "number", "integer", "boolean", "json"]


_TRUE = frozenset({"true", "yes", "1", "on", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "off", "n", "f"})


@attrs.frozen
class Field:
    """One request field of the spec, as the CLI and manifests see it."""

    name: str
    kind: FieldKind
    description: str = ""
    choices: tuple[str, ...] = ()
    default: Any = None
    client_default: bool = False
    """The client sends `default` when the field is not given (model_name); other
    defaults are the gateway's, applied when the field is not sent."""
    minimum: float | None = None
    maximum: float | None = None

    @property
    def option(self) -> str:
        """The command-line option: `cfg_scale` -> `--cfg-scale`."""
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """The value `text` stands for; ValueError with a readable message if none."""
        if self.kind in ("text", "image", "choice"):
            return text
        stripped = text.strip()
        if self.kind == "number":
            try:
                number = float(stripped)
            except ValueError:
                raise ValueError(f"{self.name}: expected a number, got {text!r}") from None
            return int(number) if number.is_integer() and "." not in stripped else number
        if self.kind == "integer":
            try:
                return int(stripped)
            except ValueError:
                raise ValueError(f"{self.name}: expected an integer, got {text!r}") from None
        if self.kind == "boolean":
            word = stripped.lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValueError(f"{self.name}: expected true or false, got {text!r}")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {json_problem(exc)}, got {_clip(text)}") from None

    def help(self) -> str:
        """Help text: the spec's description, then its range and default."""
        parts = ["A file path or an http(s) URL." if self.kind == "image" else ""]
        description = self.description
        if self.kind == "image":
            # the spec describes the wire (base64 or URL); the CLI reads and encodes files
            description = " ".join(
                sentence for sentence in re.split(r"(?<=\.)\s+", description)
                if "base64" not in sentence.lower()
            )
        parts.append(description.rstrip(".") + "." if description else "")
        if self.kind == "json":
            parts.append("JSON text, or @FILE to read it from a file.")
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"From {self.minimum:g} to {self.maximum:g}.")
        elif self.minimum is not None:
            parts.append(f"At least {self.minimum:g}.")
        elif self.maximum is not None:
            parts.append(f"At most {self.maximum:g}.")
        if self.default is not None:
            default = json.dumps(self.default) if isinstance(self.default, bool) else self.default
            who = "Client" if self.client_default else "Gateway"
            parts.append(f"{who} default: {default}.")
        return " ".join(p for p in parts if p)


@functools.cache
def request_fields() -> dict[str, Field]:
    """Every field of the create request, in spec order, by name."""
    properties: Mapping[str, Any] = request_schema().get("properties", {})
    return {name: _field(name, node) for name, node in properties.items()}


def _field(name: str, node: Mapping[str, Any]) -> Field:
    resolved: Mapping[str, Any] = node
    ref = node.get("$ref")
    component = ref.rsplit("/", 1)[1] if isinstance(ref, str) else None
    if component is not None:
        resolved = {**schema(component), **{k: v for k, v in node.items() if k != "$ref"}}
    kind: FieldKind
    choices: tuple[str, ...] = ()
    json_type = resolved.get("type")
    if "enum" in resolved:
        kind = "choice"
        values = enum_values(component) if component else resolved["enum"]
        choices = tuple(str(v) for v in values)
    elif name in IMAGE_FIELDS:
        kind = "image"
    elif json_type == "number":
        kind = "number"
    elif json_type == "integer":
        kind = "integer"
    elif json_type == "boolean":
        kind = "boolean"
    elif json_type in ("object", "array"):
        kind = "json"
    else:
        kind = "text"
    return Field(
        name=name,
        kind=kind,
        description=" ".join(str(resolved.get("description", "")).split()),
        choices=choices,
        default=resolved.get("default"),
        # a default beside a $ref (model_name's) is one the client fills in (openapi.yaml)
        client_default=component is not None and "default" in node,
        minimum=resolved.get("minimum"),
        maximum=resolved.get("maximum"),
    )


def _clip(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 1] + "…")
