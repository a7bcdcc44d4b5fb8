"""A create request's JSON body, with its local images streamed from their files.

A 10 MB image is 13.3 MB of base64 in the JSON body. Built as one str and handed to
httpx's `json=`, the body costs five times the file in memory and four times the time
of writing it to the socket (issue 12). Here the body is kept as the JSON text around
each image plus the images themselves:

    {"image":"  <base64 of image 1, encoded chunk by chunk>  ","prompt":"..."}
    -----------                                              ----------------
    bytes                                                    bytes

`RequestBody.fields` is the body with every local image stood in by a placeholder (a
short base64 text, unique to this body), which is what validation and the generated
model see. `RequestBody.encode()` serialises those fields exactly as httpx's `json=`
would (compact, UTF-8, no NaN) and splits the text at the placeholders. The result,
`StreamedJSON`, knows its exact length, so httpx sends a `Content-Length` and no chunked
encoding; every iteration starts again from the start (files are reopened), so a retried
request is sent whole. A file that changed since it was checked stops the body before
its end (see `Image.base64_chunks`): what was sent is a strict prefix of a JSON object,
which no server can take for a request. The connection is closed under it (httpcore drops
a connection whose request failed mid-body), so the gateway reads a short body, which is
"invalid JSON body", refused in its own shape before any task exists (gateway-facts.md,
Errors). The ImageError is raised as is: a local input error, nothing to retry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import attrs

from .images import Image

__all__ = ["RequestBody", "StreamedJSON", "for_async", "streamed"]

# httpx's own encoder for `json=` (httpx/_content.py, encode_json, 0.28): the same bytes
# whether or not a body carries local images, so a benchmark's raw-httpx baseline and
# our client post identical requests.
_DUMPS_OPTIONS: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":"), "allow_nan": False}
# What each kind of local image's base64 text starts with (FF D8 FF, the PNG signature):
# a placeholder of the right kind for any check that looks at the text.
_PLACEHOLDER_HEADS = {"jpeg": "/9j/", "png": "iVBORw0KGgo"}


@attrs.frozen
class RequestBody:
    """The fields of a create request, local images stood in by placeholders."""

    fields: dict[str, Any]
    """JSON-ready fields; each local image is a placeholder string from `images`."""
    images: Mapping[str, Image] = attrs.field(factory=dict)
    """Placeholder text -> the local image it stands for."""

    def __getitem__(self, name: str) -> Any:
        """Read a field, as from the dict build_request_body returned before images were
        streamed (`body["external_task_id"]`). Deliberately not a Mapping: `dict(body)`
        would carry the placeholders, not the images."""
        if not isinstance(name, str):  # dict(body) falls back to body[0], body[1], ...
            raise TypeError("a RequestBody is not a mapping: read body.fields, or pass it to create()")
        return self.fields[name]

    @property
    def external_task_id(self) -> str | None:
        value = self.fields.get("external_task_id")
        return value if isinstance(value, str) else None

    def encode(self, wire: Mapping[str, Any] | None = None) -> StreamedJSON:
        """The body for the socket: `wire` (default: `fields`; the generated model's
        `to_dict()` of them, in its field order) as JSON, each placeholder in it
        replaced by its image's base64 text as the body is written."""
        text = json.dumps(self.fields if wire is None else wire, **_DUMPS_OPTIONS)
        found: list[tuple[int, str]] = []
        for stand_in in self.images:
            quoted = f'"{stand_in}"'
            at = text.find(quoted)
            if at == -1 or text.find(quoted, at + 1) != -1:
                raise ValueError("an image placeholder went missing or was copied on the way")
            found.append((at + 1, stand_in))
        parts: list[bytes | Image] = []
        start = 0
        for at, stand_in in sorted(found):
            parts += [text[start:at].encode("utf-8"), self.images[stand_in]]
            start = at + len(stand_in)
        parts.append(text[start:].encode("utf-8"))
        return StreamedJSON(tuple(parts))

    def to_dict(self) -> dict[str, Any]:
        """The fields with the images' base64 text in place (the whole body in memory)."""
        return json.loads(b"".join(self.encode()))  # type: ignore[no-any-return]


def placeholder(image: Image) -> str:
    """A stand-in for a local image's base64 text: valid base64 of the same kind, unique."""
    text = _PLACEHOLDER_HEADS.get(image.kind, "") + uuid.uuid4().hex
    return text + "=" * (-len(text) % 4)


class StreamedJSON:
    """A JSON body of known length, produced anew by every iteration.

    Iterable (for httpx.Client) and, through `aiter()`, async iterable (for
    httpx.AsyncClient). A body without local images is one bytes object: `content`
    then is plain bytes and httpx sends it as it would any other."""

    __slots__ = ("_parts", "content_length")

    def __init__(self, parts: tuple[bytes | Image, ...]) -> None:
        self._parts = parts
        self.content_length = sum(
            len(p) if isinstance(p, bytes) else p.wire_length for p in parts
        )

    @property
    def headers(self) -> dict[str, str]:
        # An explicit Content-Length makes httpx skip Transfer-Encoding: chunked
        # (httpx/_models.py, Request._prepare, 0.28), and h11 then refuses to send more
        # or fewer bytes than it says.
        return {"Content-Type": "application/json", "Content-Length": str(self.content_length)}

    @property
    def content(self) -> bytes | StreamedJSON:
        if len(self._parts) == 1 and isinstance(self._parts[0], bytes):
            return self._parts[0]
        return self

    def __iter__(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
            else:
                yield from part.base64_chunks()

    def aiter(self) -> _AsyncView:
        return _AsyncView(self)

    def __repr__(self) -> str:
        images = sum(1 for p in self._parts if isinstance(p, Image))
        return f"StreamedJSON(content_length={self.content_length}, images={images})"


class _AsyncView:
    """The same body for httpx.AsyncClient, which wants an async iterable. The files are
    read on the event loop, one chunk at a time: a page-cache read of 192 KiB takes tens
    of microseconds, less than a hop to a thread would."""

    __slots__ = ("_body",)

    def __init__(self, body: StreamedJSON) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._body:
            yield chunk


def streamed(kwargs: Mapping[str, Any], body: RequestBody) -> dict[str, Any]:
    """httpx request arguments (from a generated `build_request`, with `json=`) with the
    JSON body replaced by `body`'s streamed form; for the sync client as they are, for
    the async client through `for_async`."""
    out = dict(kwargs)
    encoded = body.encode(out.pop("json", None))
    out["content"] = encoded.content
    out["headers"] = {**out.get("headers", {}), **encoded.headers}
    return out


def for_async(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` for httpx.AsyncClient: a streamed body as an async iterable."""
    content = kwargs.get("content")
    if isinstance(content, StreamedJSON):
        return {**kwargs, "content": content.aiter()}
    return kwargs
