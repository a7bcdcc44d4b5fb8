"""Turning keyword arguments into a validated request for the generated client."""

from __future__ import annotations

import enum
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from .capabilities import default_model
from .errors import ImageError
from .images import Image, _looks_like_url
from .validation import validate_request

if TYPE_CHECKING:
    from kling_i2v_api.models import (
        CameraControl,
        Duration,
        DynamicMask,
        Element,
        ImageToVideoRequest,
        Mode,
        ModelName,
        MultiPromptShot,
        ShotType,
        Sound,
        WatermarkInfo,
    )

__all__ = ["IMAGE_FIELDS", "CreateFields", "ImageLike", "build_request_body"]

ImageLike: TypeAlias = Image | str | os.PathLike[str] | bytes
"""An `Image`, an http(s) URL, a path to a local JPEG/PNG, or its bytes."""


class CreateFields(TypedDict, total=False):
    """The keyword arguments of `create()`: the request fields of openapi.yaml, typed
    with the generated enums and models (plain strings and dicts are accepted too and
    checked against the spec). A test keeps this in step with the spec's field list."""

    model_name: ModelName | str
    image: ImageLike
    image_tail: ImageLike
    prompt: str
    negative_prompt: str
    mode: Mode | str
    duration: Duration | str | int
    cfg_scale: float
    multi_shot: bool
    shot_type: ShotType | str
    multi_prompt: Sequence[MultiPromptShot | Mapping[str, Any]]
    element_list: Sequence[Element | Mapping[str, Any]]
    sound: Sound | str
    camera_control: CameraControl | Mapping[str, Any]
    static_mask: ImageLike
    dynamic_masks: Sequence[DynamicMask | Mapping[str, Any]]
    watermark_info: WatermarkInfo | Mapping[str, Any]
    callback_url: str
    external_task_id: str


IMAGE_FIELDS = ("image", "image_tail", "static_mask")
"""Fields that take an image: an `Image`, a local path, an http(s) URL or bytes."""


def new_external_task_id() -> str:
    return f"kling-i2v-{uuid.uuid4().hex}"


def build_request_body(
    request: ImageToVideoRequest | Mapping[str, Any] | None,
    fields: Mapping[str, Any],
    *,
    validate: bool = True,
    allow_unknown_model: bool = False,
) -> dict[str, Any]:
    """The JSON body for a create call: `request` (a generated model or a dict) updated
    with `fields`, images encoded, `external_task_id` filled in when absent, then checked
    against openapi.yaml (RequestValidationError lists every problem)."""
    body: dict[str, Any] = {}
    if isinstance(request, Mapping):
        body.update(request)
    elif request is not None and hasattr(request, "to_dict"):
        body.update(request.to_dict())
    elif request is not None:
        raise TypeError(
            "the request must be an ImageToVideoRequest or a mapping of its fields, "
            f"not {type(request).__name__}"
        )
    given = {k: v for k, v in fields.items() if v is not None}
    # Keyword arguments name images (paths, URLs, bytes); a request object already
    # carries what goes on the wire.
    for name in IMAGE_FIELDS:
        if name in given:
            given[name] = _encoded(name, given[name])
    if isinstance(given.get("dynamic_masks"), Sequence):
        given["dynamic_masks"] = [_with_mask(m, i) for i, m in enumerate(given["dynamic_masks"])]
    if isinstance(given.get("duration"), int) and not isinstance(given["duration"], bool):
        given["duration"] = str(given["duration"])  # the gateway wants a JSON string
    # a request object carries images as sent, but a URL in it must still be http(s)
    # (keyword arguments were checked when they were encoded above)
    for name in IMAGE_FIELDS:
        if name not in given and isinstance(body.get(name), str) and _looks_like_url(body[name]):
            _encoded(name, body[name])
    masks = body.get("dynamic_masks") if "dynamic_masks" not in given else None
    for index, mask in enumerate(masks if isinstance(masks, list) else ()):
        value = mask.get("mask") if isinstance(mask, Mapping) else None
        if isinstance(value, str) and _looks_like_url(value):
            _encoded(f"dynamic_masks[{index}].mask", value)
    body.update(given)
    body = {k: _jsonable(v) for k, v in body.items()}
    body.setdefault("external_task_id", new_external_task_id())
    # The only default the client fills in: new-api's Distribute answers 400 "Model name
    # not specified" without it (middleware/distributor.go@U, gateway-facts.md "Create").
    body.setdefault("model_name", default_model())
    if validate:
        validate_request(body, allow_unknown_model=allow_unknown_model)
    return body


def _encoded(field: str, value: Any) -> str:
    """The image for `field`, as sent; an ImageError names the field as well as the file."""
    try:
        return Image.coerce(value).to_api()
    except ImageError as exc:
        raise ImageError(f"{field} ({exc.source})", exc.rule, exc.value) from None


def _with_mask(item: Any, index: int) -> Any:
    if isinstance(item, Mapping) and "mask" in item:
        return {**item, "mask": _encoded(f"dynamic_masks[{index}].mask", item["mask"])}
    return item


def _jsonable(value: Any) -> Any:
    if isinstance(value, Image):
        return value.to_api()
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
