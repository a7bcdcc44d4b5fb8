"""Turning keyword arguments into a validated request for the generated client."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._fields_doc import IMAGE_FIELDS
from .body import RequestBody, placeholder
from .capabilities import default_model
from .errors import ImageError
from .images import Image, _looks_like_url
from .validation import validate_request

if TYPE_CHECKING:
    from kling_i2v_api.models import ImageToVideoRequest

    from ._create_fields import CreateFields, ImageLike

__all__ = [
    "IMAGE_FIELDS", "CreateFields", "ImageLike", "RequestBody", "build_request_body",
]

# Only at run time: mypy would take any unknown name of this module for Any if it saw
# a module __getattr__ (the names are in the TYPE_CHECKING imports above).
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        # CreateFields and ImageLike are generated from the spec (_create_fields.py) and
        # import the generated models: loaded on first use, not with `import kling_i2v`
        if name in ("CreateFields", "ImageLike"):
            from . import _create_fields

            return getattr(_create_fields, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def new_external_task_id() -> str:
    return f"kling-i2v-{uuid.uuid4().hex}"


def build_request_body(
    request: RequestBody | ImageToVideoRequest | Mapping[str, Any] | None,
    fields: Mapping[str, Any],
    *,
    validate: bool = True,
    allow_unknown_model: bool = False,
) -> RequestBody:
    """The body for a create call: `request` (a generated model, a dict, or a body built
    before) updated with `fields`, images checked, `external_task_id` filled in when
    absent, then checked against openapi.yaml (RequestValidationError lists every
    problem).

    Local images are not encoded here: each stands in the fields as a placeholder of its
    kind and is streamed from its file (or bytes) when the request is sent (body.py)."""
    images: dict[str, Image] = {}
    body: dict[str, Any] = {}
    if isinstance(request, RequestBody):
        body.update(request.fields)
        images.update(request.images)
    elif isinstance(request, Mapping):
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
            given[name] = _image(name, given[name], images)
    if isinstance(given.get("dynamic_masks"), Sequence):
        given["dynamic_masks"] = [
            _with_mask(m, i, images) for i, m in enumerate(given["dynamic_masks"])
        ]
    if isinstance(given.get("duration"), int) and not isinstance(given["duration"], bool):
        given["duration"] = str(given["duration"])  # the gateway wants a JSON string
    # a request object carries images as sent, but a URL in it must still be http(s)
    # (keyword arguments were checked when they were taken above)
    for name in IMAGE_FIELDS:
        if name not in given and isinstance(body.get(name), str) and _looks_like_url(body[name]):
            _image(name, body[name], images)
    masks = body.get("dynamic_masks") if "dynamic_masks" not in given else None
    for index, mask in enumerate(masks if isinstance(masks, list) else ()):
        value = mask.get("mask") if isinstance(mask, Mapping) else None
        if isinstance(value, str) and _looks_like_url(value):
            _image(f"dynamic_masks[{index}].mask", value, images)
    body.update(given)
    body = {k: _jsonable(v, images) for k, v in body.items()}
    body.setdefault("external_task_id", new_external_task_id())
    # The only default the client fills in: new-api's Distribute answers 400 "Model name
    # not specified" without it (middleware/distributor.go@U, gateway-facts.md "Create").
    body.setdefault("model_name", default_model())
    if validate:
        validate_request(body, allow_unknown_model=allow_unknown_model)
    # Only the images still in the body: a request's image can be replaced by a field.
    used = set(_strings(body))
    return RequestBody(body, {k: v for k, v in images.items() if k in used})


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _image(field: str, value: Any, images: dict[str, Image]) -> str:
    """What stands in the fields for the image in `field`: its URL, or a placeholder for
    a local image. An ImageError names the field as well as the file."""
    try:
        image = Image.coerce(value)
    except ImageError as exc:
        raise ImageError(f"{field} ({exc.source})", exc.rule, exc.value) from None
    return _stand_in(image, images)


def _stand_in(image: Image, images: dict[str, Image]) -> str:
    if image.is_url:
        return image.to_api()
    stand_in = placeholder(image)
    images[stand_in] = image
    return stand_in


def _with_mask(item: Any, index: int, images: dict[str, Image]) -> Any:
    if isinstance(item, Mapping) and "mask" in item:
        return {**item, "mask": _image(f"dynamic_masks[{index}].mask", item["mask"], images)}
    return item


def _jsonable(value: Any, images: dict[str, Image]) -> Any:
    if isinstance(value, Image):
        return _stand_in(value, images)
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _jsonable(v, images) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, images) for v in value]
    return value
