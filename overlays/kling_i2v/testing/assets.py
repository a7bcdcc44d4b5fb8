"""The sample files shipped with the fake gateway (made by scripts/make-assets.sh).

`sample.png` is a 640x360 picture, a valid `image` for a create call once base64-encoded;
`sample.mp4` is a 4 s, 320x180 H.264 video, the one the fake serves for every finished task.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

__all__ = ["sample_image_path", "sample_video_bytes", "sample_video_path"]


def _asset(name: str) -> Path:
    found = files("kling_i2v.testing") / "assets" / name
    if not isinstance(found, Path):
        raise TypeError(f"kling_i2v.testing is not installed as files: no path to {name}")
    return found


def sample_image_path() -> Path:
    """A 640x360 PNG image: a sunset."""
    return _asset("sample.png")


def sample_video_path() -> Path:
    """A 4 s, 320x180 H.264 MP4 video: the same sunset, the sun going down."""
    return _asset("sample.mp4")


@functools.cache
def sample_video_bytes() -> bytes:
    return sample_video_path().read_bytes()
