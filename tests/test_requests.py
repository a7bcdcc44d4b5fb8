"""build_request_body: keyword arguments and request objects into one validated body, local
images stood in by placeholders (streamed later, see test_body.py), literal examples."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from kling_i2v import Image, ImageError, RequestValidationError
from kling_i2v.requests import build_request_body

from tests.imagegen import make_jpeg, make_png


def test_a_path_becomes_a_jpeg_placeholder_and_its_image(tmp_path: Path) -> None:
    path = tmp_path / "cat.jpg"
    path.write_bytes(make_jpeg(1280, 720))
    body = build_request_body(None, {"image": path, "prompt": "the cat jumps", "duration": 10})
    stand_in = body.fields["image"]
    assert stand_in.startswith("/9j/") and len(stand_in) % 4 == 0
    (image,) = body.images.values()
    assert (image.source, image.kind, image.width, image.height) == (str(path), "jpeg", 1280, 720)
    assert body.fields["duration"] == "10"  # the gateway wants a JSON string
    assert body.fields["external_task_id"].startswith("kling-i2v-")
    assert body.external_task_id == body.fields["external_task_id"]


def test_urls_stay_as_they_are() -> None:
    body = build_request_body(None, {"image": "https://example.com/a.jpg", "prompt": "p"})
    assert body.fields["image"] == "https://example.com/a.jpg"
    assert body.images == {}


def test_an_image_inside_a_request_mapping_is_streamed_too() -> None:
    png = make_png(600, 600)
    body = build_request_body({"image": Image.from_bytes(png), "prompt": "p"}, {})
    assert set(body.images) == {body.fields["image"]}
    assert base64.b64decode(body.to_dict()["image"]) == png


def test_a_bad_field_is_refused_with_a_local_image_in_the_body(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(make_png(640, 480))
    with pytest.raises(RequestValidationError) as info:
        build_request_body(None, {"image": path, "prompt": "p", "duration": "99"})
    assert "duration" in str(info.value)
    assert "99" in str(info.value)


def test_a_request_objects_url_must_still_be_http() -> None:
    with pytest.raises(ImageError) as info:
        build_request_body({"image": "ftp://example.com/a.jpg", "prompt": "p"}, {})
    assert str(info.value).startswith("image (ftp://example.com/a.jpg): must be an http:// or https:// URL")


def test_an_image_error_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "small.jpg"
    path.write_bytes(make_jpeg(200, 640))
    with pytest.raises(ImageError) as info:
        build_request_body(None, {"image_tail": path, "prompt": "p"})
    assert str(info.value) == f"image_tail ({path}): each side must be at least 300 px (got 200x640)"
