"""What each model is reported to support, as warnings before a request is sent.

The table is data in openapi.yaml (`ModelName`'s `x-model-capabilities`), written from
third-party docs of the same upstream Kling API (gateway-facts.md, "Models on this
route"). The gateway has the last word, so a mismatch is a warning: the request is
still sent. A model the spec does not list is an error in `validate_request` unless the
caller opts in; then it is sent with a warning from here.

The spec also marks the fields that upstream new-api leaves out of what it forwards to
Kling (`x-dropped-by-new-api`); `dropped_fields` lists them for the CLI and the docs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .validation import enum_values, request_schema, schema

__all__ = [
    "capability_warnings", "default_model", "dropped_fields", "model_capabilities", "model_names",
]

# One sentence closes every warning, so that nobody reads one as the gateway's refusal.
_HEDGE = "this comes from third-party docs and the gateway decides, so the request is sent anyway"


def model_names() -> tuple[str, ...]:
    """The models the spec lists, the reference page's own value first."""
    return tuple(enum_values("ModelName"))


def model_listed(model: object) -> bool:
    """Whether a request's model_name is one the spec lists (None: the default, listed)."""
    return model is None or str(model) in model_names()


def default_model() -> str:
    """The `model_name` the client sends when none is given (the spec's default)."""
    return str(request_schema()["properties"]["model_name"]["default"])


@functools.cache
def model_capabilities() -> dict[str, dict[str, Any]]:
    """`x-model-capabilities.models` of the spec: model -> capability -> value."""
    models: dict[str, dict[str, Any]] = schema("ModelName")["x-model-capabilities"]["models"]
    return models


@functools.cache
def dropped_fields() -> tuple[str, ...]:
    """Request fields a stock new-api does not forward to Kling, in spec order."""
    properties: Mapping[str, Any] = request_schema()["properties"]
    return tuple(name for name, node in properties.items() if node.get("x-dropped-by-new-api"))


def capability_warnings(body: Mapping[str, Any]) -> list[str]:
    """Plain-words warnings for what `body` asks of its model that the sources say the
    model does not do; empty when nothing is known against it."""
    model = body.get("model_name", default_model())
    model = getattr(model, "value", model)  # a generated ModelName member
    table = model_capabilities()
    if not isinstance(model, str) or model not in table:
        return [
            f"model_name {model!r} is not one of the models the spec lists "
            f"({', '.join(model_names())}); it is sent as given, and what it supports is unknown"
        ]
    capabilities = table[model]
    mode = _plain(body.get("mode", schema("Mode").get("default")))
    warnings: list[str] = []
    duration = _plain(body.get("duration", schema("Duration").get("default")))
    durations = capabilities.get("durations")
    if duration is not None and durations is not None and str(duration) not in durations:
        warnings.append(
            f"duration {duration} is not one of the durations of {model} "
            f"({', '.join(durations)}){_others('durations', str(duration))}; {_HEDGE}"
        )
    for field in _used_features(body):
        supported = capabilities.get(field)
        value = _plain(body[field])
        shown = f"{field} {value!r}" if field in ("sound", "cfg_scale") else field
        if supported is False:
            warnings.append(
                f"{shown}: {model} does not support {field}{_others(field, None)}; {_HEDGE}"
            )
        elif isinstance(supported, Mapping) and mode not in supported.get("modes", ()):
            modes = " or ".join(supported["modes"])
            warnings.append(
                f"{shown}: {model} supports {field} only in mode {modes}, "
                f"and mode is {mode}; {_HEDGE}"
            )
    return warnings


def _used_features(body: Mapping[str, Any]) -> list[str]:
    """The capability-bound fields `body` actually asks for, in table order."""
    used: list[str] = []
    if _plain(body.get("sound")) == "on":
        used.append("sound")
    if body.get("multi_shot") is True:
        used.append("multi_shot")
    if body.get("element_list"):
        used.append("element_list")
    # The spec's default cfg_scale (0.5, the reference page's) is what a generated
    # ImageToVideoRequest carries unless told otherwise: only another value is the user's
    # choice. A guess about intent, not a source: sending 0.5 to a v2 model is harmless.
    cfg_default = request_schema()["properties"]["cfg_scale"].get("default")
    if "cfg_scale" in body and body["cfg_scale"] is not None and body["cfg_scale"] != cfg_default:
        used.append("cfg_scale")
    for field in ("image_tail", "camera_control"):
        if body.get(field) is not None:
            used.append(field)
    return used


def _others(capability: str, duration: str | None) -> str:
    """` (supported by: kling-v2-6 in mode pro, kling-v3 in mode pro)`: where to go instead."""
    found: list[str] = []
    for model, capabilities in model_capabilities().items():
        value = capabilities.get(capability)
        if duration is not None:
            if value is not None and duration in value:
                found.append(model)
        elif value is True:
            found.append(model)
        elif isinstance(value, Mapping):
            found.append(f"{model} in mode {' or '.join(value.get('modes', ()))}")
    return f" (supported by: {', '.join(found)})" if found else ""


def _plain(value: Any) -> Any:
    """A generated enum member's wire value; anything else unchanged."""
    return getattr(value, "value", value)
