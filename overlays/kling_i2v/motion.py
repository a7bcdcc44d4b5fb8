"""Motion brushes (`dynamic_masks`) in the coordinates people think in.

    brush = MotionBrush.from_box((40, 60, 200, 220), path=[(120, 140), (400, 150)], image=img)
    kling.create(image=img, prompt="...", dynamic_masks=[brush])

Paths are given as every image tool gives them: pixels of the *image*, origin at the
top-left corner, y growing downwards. The API wants the origin at the image's bottom-left
(gateway-facts.md, "Rules the upstream Kling documentation adds": "each trajectory has 2 to
77 points with integer pixel coordinates, origin at the image's bottom-left. Masks must
match the image's aspect ratio"). The helpers

- convert each point: x stays, y becomes `height - 1 - y` (pixel rows counted from the
  bottom; sources say "bottom-left origin" and no more, so rows, not edges, is our reading);
- round to whole pixels and refuse points outside the image, naming the point;
- resample a path longer than the spec's maximum (77) along its length to that many
  points, its first and last points kept exactly; refuse one with fewer than 2;
- check the mask has the image's aspect ratio (to within one pixel of rounding) and say
  how to fix it (`fit_mask`) when it does not.

A mask may be an image file (white where the brush paints), or drawn here on a black
canvas of the image's size from a box or a polygon; drawing needs no imaging library.
The limits (2 and 77) are read from openapi.yaml's `DynamicMask`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeAlias

import attrs

from ._jsonwords import json_line, json_problem
from .errors import ImageError, RequestValidationError, Violation
from .images import Image

__all__ = ["BRUSHES_COLUMN", "MotionBrush", "Point", "check_brushes", "check_brushes_on",
           "load_brushes", "resample", "to_api_points"]

Point: TypeAlias = tuple[float, float]
"""(x, y) in pixels of the image, origin at its top-left corner."""
Size: TypeAlias = tuple[int, int]
ImageLike: TypeAlias = "Image | Size"


@functools.cache
def _limits() -> tuple[int, int]:
    from .validation import schema

    spec = schema("DynamicMask")["properties"]["trajectories"]
    return int(spec["minItems"]), int(spec["maxItems"])


@attrs.frozen(slots=True)
class MotionBrush(Mapping[str, Any]):
    """One entry of `dynamic_masks`: a mask and the path its area follows.

    `trajectory` is already in the API's coordinates (bottom-left origin, whole pixels, at
    most 77 points). A brush is a read-only mapping with the request's two keys, `mask` (an
    Image) and `trajectories`, so it goes straight into `dynamic_masks=[...]`; `to_dict()`
    is its JSON."""

    mask: Image
    trajectory: tuple[tuple[int, int], ...]
    image_size: Size

    @classmethod
    def from_mask(cls, mask: Image | str | os.PathLike[str] | bytes, path: Sequence[Point], *,
                  image: ImageLike) -> MotionBrush:
        """A brush from a mask image (JPEG/PNG, white where it paints) that has the image's
        aspect ratio; `kling_i2v.fit_mask` makes one that has."""
        size = _size(image)
        mask_image = Image.coerce(mask)
        if mask_image.width is not None and mask_image.height is not None:
            _check_ratio(mask_image.source, (mask_image.width, mask_image.height), size)
        return cls(mask_image, to_api_points(path, size), size)

    @classmethod
    def from_box(cls, box: tuple[float, float, float, float], path: Sequence[Point], *,
                 image: ImageLike) -> MotionBrush:
        """A brush painting the box (left, top, right, bottom), top-left coordinates."""
        left, top, right, bottom = box
        corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
        return cls.from_polygon(corners, path, image=image)

    @classmethod
    def from_polygon(cls, polygon: Sequence[Point], path: Sequence[Point], *,
                     image: ImageLike) -> MotionBrush:
        """A brush painting the inside of the polygon, top-left coordinates."""
        size = _size(image)
        if len(polygon) < 3:
            raise _invalid("polygon", "needs at least 3 corners", len(polygon))
        for index, point in enumerate(polygon):
            _check_inside(f"polygon[{index}]", point, size, edge=True)
        data = _mask_png(size, polygon)
        if not any(data.rows):
            raise _invalid("polygon", "must cover at least one pixel", list(polygon))
        mask = Image.from_bytes(data.png, name=f"<brush {len(polygon)}-gon>")
        return cls(mask, to_api_points(path, size), size)

    def to_dict(self) -> dict[str, Any]:
        return {"mask": self.mask.to_api(), "trajectories": self["trajectories"]}

    def __getitem__(self, key: str) -> Any:
        if key == "mask":
            return self.mask
        if key == "trajectories":
            return [{"x": x, "y": y} for x, y in self.trajectory]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("mask", "trajectories"))

    def __len__(self) -> int:
        return 2


def to_api_points(path: Sequence[Point], size: Size) -> tuple[tuple[int, int], ...]:
    """`path` (top-left origin) as the API's trajectory: bottom-left origin, whole pixels,
    resampled to the spec's maximum number of points if longer."""
    least, most = _limits()
    if len(path) < least:
        raise _invalid("path", f"needs at least {least} points", len(path))
    points = [_check_inside(f"path[{i}]", p, size, edge=False) for i, p in enumerate(path)]
    if len(points) > most:
        points = resample(points, most)
    _, height = size
    return tuple((round(x), height - 1 - round(y)) for x, y in points)


def resample(path: Sequence[Point], count: int) -> list[Point]:
    """`count` points spread evenly along the length of `path`; the first and the last
    are `path`'s own, so the motion starts and ends where it was drawn."""
    if count < 2 or len(path) < 2:
        raise ValueError("resampling needs at least 2 points in and out")
    lengths = [0.0]
    for (x0, y0), (x1, y1) in zip(path, path[1:], strict=False):
        lengths.append(lengths[-1] + math.hypot(x1 - x0, y1 - y0))
    total = lengths[-1]
    if total == 0:  # a path that never moves: keep its point
        return [path[0]] * count
    out: list[Point] = [path[0]]
    segment = 0
    for step in range(1, count - 1):
        target = total * step / (count - 1)
        while lengths[segment + 1] < target:
            segment += 1
        (x0, y0), (x1, y1) = path[segment], path[segment + 1]
        span = lengths[segment + 1] - lengths[segment]
        t = (target - lengths[segment]) / span if span else 0.0
        out.append((x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    out.append(path[-1])
    return out


# ------------------------------------------------------------------------ helpers


def _size(image: ImageLike) -> Size:
    if isinstance(image, Image):
        if image.width is None or image.height is None:
            raise TypeError("the image's size is not known (a URL): pass image=(width, height)")
        return image.width, image.height
    width, height = image
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise _invalid("image", "size must be two positive whole numbers", image)
    return width, height


def _check_inside(where: str, point: Point, size: Size, *, edge: bool) -> Point:
    """A path point must be a pixel of the image (0 to width-1); a polygon corner may lie
    on its far edge (0 to width), as a box's right and bottom do."""
    try:
        x, y = (float(point[0]), float(point[1]))
    except (TypeError, ValueError, IndexError):
        raise _invalid(where, "must be an (x, y) pair of numbers", point) from None
    width, height = size
    reach = 0 if edge else 1
    if not (math.isfinite(x) and math.isfinite(y)):
        raise _invalid(where, "must be finite numbers", point)
    if not (0 <= round(x) <= width - reach and 0 <= round(y) <= height - reach):
        raise _invalid(where, f"must lie on the {width}×{height} image, top-left origin "
                       f"(x 0 to {width - reach}, y 0 to {height - reach})", point)
    return x, y


def _check_ratio(source: str, mask: Size, image: Size) -> None:
    # "Masks must match the image's aspect ratio": one pixel of rounding on the mask's
    # height is allowed (a 1280×720 image and a 427×240 mask are the same picture).
    expected = Fraction(mask[0] * image[1], image[0])
    if abs(expected - mask[1]) >= 1:
        raise ImageError(
            source,
            f"a mask must have the image's aspect ratio ({image[0]}×{image[1]}; fit_mask() "
            "or create(..., fit=True) pads it to that)",
            f"{mask[0]}×{mask[1]}",
        )


def _invalid(where: str, rule: str, value: Any) -> RequestValidationError:
    return RequestValidationError([Violation(f"dynamic_masks: {where}", rule, value)])


@attrs.frozen
class _Drawn:
    png: bytes
    rows: tuple[bool, ...]
    """Whether each row has a painted pixel."""


def _mask_png(size: Size, polygon: Sequence[Point]) -> _Drawn:
    """A greyscale PNG of `size`: 255 inside `polygon` (even-odd rule, pixel centres),
    0 outside. One scanline at a time, so memory stays one row plus the compressor."""
    width, height = size
    edges = list(zip(polygon, [*polygon[1:], polygon[0]], strict=True))
    compressor = zlib.compressobj(9)
    chunks: list[bytes] = []
    painted: list[bool] = []
    for row in range(height):
        cy = row + 0.5
        xs = sorted(
            x0 + (cy - y0) * (x1 - x0) / (y1 - y0)
            for (x0, y0), (x1, y1) in edges
            if (y0 <= cy < y1) or (y1 <= cy < y0)
        )
        line = bytearray(width + 1)  # filter byte 0, then the pixels
        for start, end in zip(xs[::2], xs[1::2], strict=False):
            first = max(0, math.ceil(start - 0.5))
            last = min(width, math.ceil(end - 0.5))
            if last > first:
                line[1 + first:1 + last] = b"\xff" * (last - first)
        painted.append(any(line[1:]))
        chunks.append(compressor.compress(bytes(line)))
    chunks.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"".join((b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header),
                    _chunk(b"IDAT", b"".join(chunks)), _chunk(b"IEND", b"")))
    return _Drawn(png, tuple(painted))


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(
        ">I", zlib.crc32(kind + payload))


# ------------------------------------------------------------------------ from a file

BRUSHES_COLUMN = "motion_brushes"
"""The batch manifest column that names a JSON file of brushes for the row (see
`load_brushes`); the row's `dynamic_masks` are made from it."""
_MAX_BRUSH_FILE = 1024 * 1024
_SHAPES = ("box", "polygon", "mask")
Place: TypeAlias = Callable[[float, float], tuple[float, float]]


@attrs.frozen
class _Spec:
    where: str
    shape: str
    value: Any
    path: list[Point]


def load_brushes(file: str | os.PathLike[str], *, image: ImageLike,
                 place: Place | None = None, mask_fit: Callable[[Path], Image] | None = None,
                 ) -> list[MotionBrush]:
    """The brushes in a small JSON file, as a batch manifest's `motion_brushes` column
    names: one brush or a list of them, each `{"path": [[x, y], ...]}` with one of
    `"box": [left, top, right, bottom]`, `"polygon": [[x, y], ...]` or `"mask": "file.png"`
    (relative to the JSON file). Coordinates are top-left, in pixels of the image as the
    file shows it; `place` maps them onto the image as sent (when fit padded or scaled it),
    and `mask_fit` fits a mask file to it the same way."""
    brushes = []
    for spec in _parse(Path(file)):
        try:
            brushes.append(_build(spec, Path(file).parent, image, place, mask_fit))
        except RequestValidationError as exc:
            raise RequestValidationError(
                [Violation(f"{spec.where}: {v.path}", v.rule, v.value) for v in exc.violations]
            ) from None
    return brushes


def check_brushes(file: str | os.PathLike[str]) -> list[str]:
    """What is wrong with a brushes file that can be known without its image (the batch's
    check before anything is sent): JSON, shapes, numbers, at least 2 points per path."""
    least = _limits()[0]
    try:
        specs = _parse(Path(file))
    except RequestValidationError as exc:
        return [" ".join(str(exc).split())]
    except OSError as exc:  # plain words, not "[Errno 2] No such file or directory: 'x'"
        return [f"cannot read {os.fspath(file)}: {(exc.strerror or str(exc)).lower()}"]
    problems = []
    for spec in specs:
        if len(spec.path) < least:
            problems.append(f"{spec.where}: path: needs at least {least} points")
        if spec.shape == "mask" and not (Path(file).parent / str(spec.value)).is_file():
            problems.append(f"{spec.where}: mask: no such file: {spec.value}")
    return problems


def check_brushes_on(file: str | os.PathLike[str], size: Size) -> list[str]:
    """What is wrong with a brushes file's coordinates on an image of `size` (as the file
    shows it): the rules load_brushes applies when the row is sent, checked from the
    image's header before anything is. A file check_brushes refuses gives nothing here."""
    try:
        specs = _parse(Path(file))
    except (RequestValidationError, OSError):
        return []  # told by check_brushes
    problems = []
    for spec in specs:
        corners: list[tuple[str, Any]] = []
        if spec.shape == "box" and len(spec.value) == 4:
            left, top, right, bottom = spec.value
            corners = [(f"box[{i}]", p) for i, p in
                       enumerate([(left, top), (right, top), (right, bottom), (left, bottom)])]
        elif spec.shape == "polygon":
            corners = [(f"polygon[{i}]", p) for i, p in enumerate(spec.value)]
        checks = [(where, p, True) for where, p in corners]
        checks += [(f"path[{i}]", p, False) for i, p in enumerate(spec.path)]
        for where, point, edge in checks:
            try:
                _check_inside(where, point, size, edge=edge)
            except RequestValidationError as exc:
                problems += [f"{spec.where}: {v.path.removeprefix('dynamic_masks: ')}: {v.rule} "
                             f"(got {list(point)})" for v in exc.violations]
                break  # one per brush, as the run would say: a box's corners share sides
    return problems


def _parse(file: Path) -> list[_Spec]:
    with open(file, "rb") as f:
        raw = f.read(_MAX_BRUSH_FILE + 1)
    if len(raw) > _MAX_BRUSH_FILE:
        raise _invalid(file.name, f"must be at most {_MAX_BRUSH_FILE // 1024} KB", "a larger file")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid(file.name, json_problem(exc), json_line(exc, file.name)) from None
    items = data if isinstance(data, list) else [data]
    rule = 'must be {"path": [[x, y], ...]} and one of "box", "polygon", "mask"'
    specs = []
    for index, item in enumerate(items):
        where = f"{file.name}[{index}]" if isinstance(data, list) else file.name
        shapes = [key for key in _SHAPES if isinstance(item, dict) and key in item]
        if (not isinstance(item, dict) or len(shapes) != 1 or set(item) - {"path", *_SHAPES}
                or not _points(item.get("path"))):
            raise _invalid(where, rule, item)
        shape, value = shapes[0], item[shapes[0]]
        if not (shape == "mask" and isinstance(value, str)
                or shape == "box" and isinstance(value, list) and len(value) == 4
                and all(_number(v) for v in value)
                or shape == "polygon" and _points(value)):
            raise _invalid(f"{where}: {shape}", "must be a file name, [left, top, right, bottom] "
                           "or [[x, y], ...] (mask, box, polygon)", value)
        specs.append(_Spec(where, shape, value, [(p[0], p[1]) for p in item["path"]]))
    return specs


def _build(spec: _Spec, base: Path, image: ImageLike, place: Place | None,
           mask_fit: Callable[[Path], Image] | None) -> MotionBrush:
    move = place or (lambda x, y: (x, y))
    path = [move(x, y) for x, y in spec.path]
    if spec.shape == "mask":
        mask = base / spec.value
        return MotionBrush.from_mask(mask_fit(mask) if mask_fit else mask, path, image=image)
    if spec.shape == "box":
        left, top, right, bottom = spec.value
        corners = [move(left, top), move(right, top), move(right, bottom), move(left, bottom)]
    else:
        corners = [move(p[0], p[1]) for p in spec.value]
    return MotionBrush.from_polygon(corners, path, image=image)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _points(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(p, list) and len(p) == 2 and _number(p[0]) and _number(p[1]) for p in value)
