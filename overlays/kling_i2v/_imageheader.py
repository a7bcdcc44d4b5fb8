"""The upstream image rules, checked on an image's header: format by magic bytes, size,
sides and aspect ratio. No pixels are decoded and no imaging library is needed.

`inspect(source, head, size)` takes the first bytes of an image (`head`) and the size of
the whole image; when the header goes on past `head` it raises `NeedMore`, so a file is
read only as far as its header (a JPEG's frame header can sit after 64 KB of EXIF).
"""

from __future__ import annotations

import functools
import struct
import zlib
from fractions import Fraction
from typing import Literal, TypeAlias

import attrs

from .errors import ImageError

__all__ = ["ImageRules", "NeedMore", "check_size", "inspect", "rules"]

_Data: TypeAlias = bytes | bytearray | memoryview
_MIB = 1024 * 1024

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..RST7: no length field
# SOF0..SOF15 share C0..CF with three markers that are not frame headers.
_JPEG_NOT_FRAMES = frozenset({0xC4, 0xC8, 0xCC})  # DHT, JPG (reserved), DAC
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


@attrs.frozen
class ImageRules:
    """The upstream image rules, read from openapi.yaml (`x-image-rules` of the request
    schema), since JSON Schema cannot say them about a base64 string."""

    formats: tuple[str, ...]
    max_bytes: int
    """Of the raw file, not of its base64 text."""
    min_side: int
    """Pixels, for both width and height."""
    max_aspect_ratio: Fraction
    """Longer side / shorter side, inclusive. A Fraction, so 750x300 is exactly on the limit."""


@functools.cache
def rules() -> ImageRules:
    from .validation import request_schema  # noqa: PLC0415  (the spec loads on first use)

    spec = request_schema()["x-image-rules"]
    return ImageRules(
        formats=tuple(spec["formats"]),
        max_bytes=int(spec["max_bytes"]),
        min_side=int(spec["min_side"]),
        max_aspect_ratio=Fraction(str(spec["max_aspect_ratio"])),
    )


# The file-name endings each image format is written with: naming, not an API rule (which
# formats the API takes is `rules().formats`, from the spec).
_SUFFIXES = {"jpeg": (".jpg", ".jpeg"), "png": (".png",)}


@functools.cache
def image_suffixes() -> tuple[str, ...]:
    """The endings of the files whose format the API takes (the spec's x-image-rules
    formats), e.g. (".jpg", ".jpeg", ".png")."""
    return tuple(s for fmt in rules().formats for s in _SUFFIXES.get(fmt, (f".{fmt}",)))


class NeedMore(Exception):
    """The header goes on past the bytes given; read more and call again."""


def _format_size(size: int) -> str:
    text = f"{size / _MIB:.1f} MB"
    # 10485761 bytes would print as "10.0 MB" and look allowed.
    return text if size / _MIB >= rules().max_bytes / _MIB + 0.05 else f"{text}, {size} bytes"


def check_size(source: str, size: int) -> None:
    limit = rules().max_bytes
    if size > limit:
        raise ImageError(source, f"must be at most {limit / _MIB:g} MB", _format_size(size))


def _check_dimensions(source: str, width: int, height: int) -> None:
    limits = rules()
    if min(width, height) < limits.min_side:
        raise ImageError(
            source, f"each side must be at least {limits.min_side} px", f"{width}x{height}"
        )
    ratio = Fraction(max(width, height), min(width, height))
    if ratio > limits.max_aspect_ratio:
        limit = f"{float(limits.max_aspect_ratio):g}"
        shown = _format_ratio(ratio, limits.max_aspect_ratio)
        got = f"{shown}:1" if width >= height else f"1:{shown}"
        raise ImageError(
            source,
            f"aspect ratio must be between 1:{limit} and {limit}:1",
            f"{got}, {width}x{height}",
        )


def _format_ratio(ratio: Fraction, limit: Fraction) -> str:
    # Enough decimals that a ratio just over the limit does not print as the limit itself.
    for digits in range(2, 10):
        text = f"{float(ratio):.{digits}f}"
        if Fraction(text) > limit:
            return text
    return str(ratio)  # pragma: no cover - sides are at most 2**32, nine decimals suffice


def inspect(source: str, head: _Data, size: int) -> tuple[Literal["jpeg", "png"], int, int]:
    """Every upstream rule, checked on `head`, the first bytes of an image of `size` bytes.
    Raises NeedMore when the header continues past `head` (only if `head` is shorter than
    the image), ImageError when a rule is broken."""
    check_size(source, size)
    end = len(head)
    if bytes(head[:8]).startswith(_PNG_SIGNATURE):
        kind: Literal["jpeg", "png"] | None = "png"
        width, height = _png_dimensions(source, head, end, end < size)
    elif bytes(head[:3]) == _JPEG_SOI:
        kind = "jpeg"
        width, height = _jpeg_dimensions(source, head, end, end < size)
    else:
        kind = None
    allowed = rules().formats
    if kind not in allowed:
        found = _describe(bytes(head[:1024])) if kind is None else f"{kind.upper()} data"
        raise ImageError(source, f"must be a {' or '.join(f.upper() for f in allowed)} image", found)
    _check_dimensions(source, width, height)
    assert kind is not None
    return kind, width, height


def _png_dimensions(source: str, data: _Data, size: int, partial: bool) -> tuple[int, int]:
    rule = "must be a valid PNG image"
    # The PNG spec puts IHDR first: length 13, type, width, height, 5 more bytes, CRC.
    if size < 33:
        if partial:
            raise NeedMore
        raise ImageError(source, rule, f"data truncated in the header ({size} bytes)")
    length, chunk_type = struct.unpack_from(">I4s", data, 8)
    if chunk_type != b"IHDR" or length != 13:
        raise ImageError(source, rule, f"{chunk_type!r} where the IHDR header should be")
    if zlib.crc32(data[12:29]) != struct.unpack_from(">I", data, 29)[0]:
        raise ImageError(source, rule, "a corrupt IHDR header (CRC mismatch)")
    width, height = struct.unpack_from(">II", data, 16)
    if not width or not height:
        raise ImageError(source, rule, f"zero size in the header, {width}x{height}")
    return width, height


def _jpeg_dimensions(source: str, data: _Data, end: int, partial: bool) -> tuple[int, int]:
    rule = "must be a valid JPEG image"
    data = bytes(data) if isinstance(data, memoryview) else data  # .find() below

    def truncated(where: str) -> ImageError:
        if partial:
            raise NeedMore
        return ImageError(source, rule, f"data truncated {where}")

    pos = 2  # after SOI
    while True:
        # libjpeg's way of finding the next marker: skip junk up to 0xFF, then any number
        # of 0xFF fill bytes; FF00 is a stuffed data byte, not a marker.
        pos = data.find(b"\xff", pos, end)
        while pos != -1 and pos + 1 < end and data[pos + 1] in (0xFF, 0x00):
            pos = data.find(b"\xff", pos + 1, end)
        if pos == -1 or pos + 1 >= end:
            raise truncated("before the frame header (SOF)")
        marker = data[pos + 1]
        pos += 2
        if marker in _JPEG_STANDALONE:
            continue
        if marker == _JPEG_EOI:
            raise ImageError(source, rule, "no frame header (SOF) before the end of the image")
        if marker == _JPEG_SOS:
            raise ImageError(source, rule, "a scan (SOS) before the frame header (SOF)")
        if pos + 2 > end:
            raise truncated(f"in marker 0x{marker:02X} at byte {pos}")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise ImageError(source, rule, f"a bad length {length} for marker 0x{marker:02X}")
        if 0xC0 <= marker <= 0xCF and marker not in _JPEG_NOT_FRAMES:
            # Frame header: length, precision, height, width. EXIF orientation may swap the
            # sides on display; every rule here is symmetric, so that does not matter.
            if length < 8 or pos + 7 > end:
                raise truncated("in the frame header (SOF)")
            height, width = struct.unpack_from(">HH", data, pos + 3)
            if not width or not height:
                # Height 0 means "given later by a DNL marker", which upstream decoders
                # rarely accept; width 0 is never valid.
                raise ImageError(source, rule, f"zero size in the frame header, {width}x{height}")
            return width, height
        pos += length


_OTHER_FORMATS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (8, b"WEBP", "WebP"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\x00\x00\x01\x00", "ICO"),
    (0, b"%PDF", "PDF"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    # ISO base media brands of videos (a video picked by mistake is common): told as such
    (4, b"ftypisom", "MP4 video"),
    (4, b"ftypiso2", "MP4 video"),
    (4, b"ftypmp41", "MP4 video"),
    (4, b"ftypmp42", "MP4 video"),
    (4, b"ftypavc1", "MP4 video"),
    (4, b"ftypM4V ", "MP4 video"),
    (4, b"ftypqt  ", "QuickTime video"),
)


def _describe(data: bytes) -> str:
    """What the data seems to be, for a message about an unsupported format."""
    if not data:
        return "empty data"
    for offset, magic, name in _OTHER_FORMATS:
        if data.startswith(magic, offset):
            return f"{name} data"
    head = data[:256].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return "SVG data"
    if _looks_like_text(data[:512], complete=len(data) <= 512):
        return "text"
    return f"unknown data starting {data[:4].hex(' ')}"


def _looks_like_text(head: bytes, *, complete: bool) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut in two by the slice is still text.
        return not complete and exc.start >= len(head) - 3
    return True
