"""Images for the request fields `image`, `image_tail`, `static_mask` and a dynamic mask's `mask`.

    Image.from_path("cat.png")            a local JPEG or PNG, checked and base64-encoded
    Image.from_bytes(data, name="cat")    the same, from bytes in memory
    Image.from_file(fileobj)              the same, from a binary file object
    Image.from_url("https://...")         passed through; the gateway fetches it
    Image.coerce(value)                   any of the above, as the client's keyword arguments take

A local image is checked against the upstream Kling rules before anything is sent, so a bad
file fails at once with an `ImageError` naming the file, the rule and the measured value,
instead of as a 400 after a 13 MB upload:

- JPEG or PNG, judged by the content (magic bytes), not the file name;
- at most 10 MB;
- each side at least 300 px;
- aspect ratio (width / height) between 1:2.5 and 2.5:1, both ends included.

Dimensions come from the file header (PNG IHDR, JPEG frame header); pixels are never decoded
and no imaging library is needed. Memory: a file is read once, into a buffer as long as its
base64 text, and encoded there in place, so the peak is that buffer plus the str made from
it (about 2.7 times the file size; `open().read()` + `b64encode()` alone peaks at 3 times,
because b64encode over-allocates its output).
"""

from __future__ import annotations

import binascii
import functools
import io
import os
import re
import stat
import struct
import urllib.parse
import zlib
from fractions import Fraction
from typing import IO, Any, Literal, TypeAlias

import attrs

from .errors import ImageError

__all__ = ["Image", "ImageKind", "ImageRules", "rules"]



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


ImageKind: TypeAlias = Literal["url", "jpeg", "png"]

_Data: TypeAlias = bytes | bytearray
_MIB = 1024 * 1024
# Raw bytes per base64 step: a multiple of 3 (no padding mid-stream), small enough for its
# temporary output to come from the allocator's free lists rather than fresh pages.
_CHUNK = 3 * 16 * 1024
_MAX_SOURCE_CHARS = 80
# Longer than any real path (PATH_MAX is 4096 on Linux): such a str is almost surely base64
# or a data: URL, and open() would put all of it into the error message.
_MAX_PATH_CHARS = 4096

# "scheme://" (RFC 3986 scheme characters; two or more, as "C://" is a Windows drive), or
# "data:", which has no slashes.
_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://|data:", re.IGNORECASE)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..RST7: no length field
# SOF0..SOF15 share C0..CF with three markers that are not frame headers.
_JPEG_NOT_FRAMES = frozenset({0xC4, 0xC8, 0xCC})  # DHT, JPG (reserved), DAC
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


def _short(text: str, limit: int = _MAX_SOURCE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]}… ({len(text)} chars)"


@attrs.frozen(slots=True)
class Image:
    """One image for the request: an http(s) URL, or a checked local JPEG/PNG as base64.

    Build it with a `from_*` constructor (or `coerce`), not by calling the class.
    `to_api()` is what goes into the JSON body. The repr shows where the image came from
    and what it is, never the base64 text.
    """

    source: str = attrs.field(repr=lambda s: repr(_short(s)))
    """The path, the name given for bytes or a file object, or the URL; used in messages."""
    kind: ImageKind
    width: int | None = None
    """Pixels, from the file header; None for URLs (the gateway fetches and checks them)."""
    height: int | None = None
    size_bytes: int | None = None
    """Size of the image file (not of its base64 text); None for URLs."""
    _payload: str = attrs.field(default="", repr=False)

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Image:
        """A local JPEG or PNG file. Raises ImageError if it breaks an upstream rule, and
        OSError (FileNotFoundError, IsADirectoryError, ...) if it cannot be read."""
        source = os.fspath(path)
        with open(source, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):  # a pipe or a device: no size to trust
                return cls._from_data(source, f.read(rules().max_bytes + 1))
            _check_size(source, info.st_size)  # before reading a byte of it
            # Read straight into a buffer as long as the base64 text, which is then
            # encoded in place: the raw bytes never get a buffer of their own.
            buf = bytearray(_base64_length(info.st_size))
            with memoryview(buf) as view:
                size = _read_into(f, view[: info.st_size])
            if size != info.st_size or f.read(1):
                raise ImageError(
                    source,
                    "must not change while it is read",
                    f"{info.st_size} bytes when opened, then a different size",
                )
        kind, width, height = _inspect(source, buf, size)
        return cls(
            source=source, kind=kind, width=width, height=height, size_bytes=size,
            payload=_base64_in_place(buf, size),
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, *, name: str = "<bytes>") -> Image:
        """A JPEG or PNG image held in memory; `name` is used in messages and the repr."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"Image.from_bytes() needs bytes, not {type(data).__name__}; "
                "for a path use Image.from_path(), for a URL Image.from_url()"
            )
        return cls._from_data(name, data if isinstance(data, bytes) else bytes(data))

    @classmethod
    def from_file(cls, fileobj: IO[bytes], *, name: str | None = None) -> Image:
        """A JPEG or PNG read from a binary file object, from its current position to the
        end. `name` defaults to the file object's `name` when it has one."""
        if name is None:
            name = _file_name(fileobj)
        # Not bound to a name here, so that _from_data holds the only reference.
        return cls._from_data(name, _read_stream(fileobj))

    @classmethod
    def from_url(cls, url: str) -> Image:
        """An http:// or https:// URL with a host, sent as is for the gateway to fetch.

        Nothing is downloaded, so the upstream image rules are not checked here. Other
        schemes (file:, ftp:, data:, javascript:, ...), URLs without a host and URLs with
        whitespace raise ImageError. A data: URL is refused because the API wants raw
        base64; use `from_bytes` for inline images.
        """
        if not isinstance(url, str):
            raise TypeError(f"Image.from_url() needs a str, not {type(url).__name__}")
        source = _short(url)
        rule = "must be an http:// or https:// URL with a host"
        if not url:
            raise ImageError("<empty URL>", rule, "an empty string")
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            raise ImageError(source, rule, "whitespace or control characters")
        try:
            parts = urllib.parse.urlsplit(url)
            _ = parts.port  # parsing the port is what finds "host:abc"
        except ValueError as exc:
            raise ImageError(source, rule, f"an unparsable URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
            raise ImageError(source, rule, got)
        if not parts.hostname:
            raise ImageError(source, rule, "no host")
        return cls(source=url, kind="url", payload=url)

    @classmethod
    def coerce(cls, value: Image | str | os.PathLike[str] | bytes) -> Image:
        """What the client does with an image keyword argument.

        - an `Image` is returned as is;
        - a path object (`pathlib.Path`, any `os.PathLike`) is read with `from_path`;
        - a str starting with `http://` or `https://` (any case) goes to `from_url`;
        - a str with another URL scheme (`ftp://`, `s3://`, `data:`, ...) also goes to
          `from_url`, which refuses it with an ImageError rather than looking for a file
          of that name;
        - any other str is a path, read with `from_path`;
        - bytes (or a bytearray) are image data, read with `from_bytes`.
        """
        if isinstance(value, Image):
            return value
        if isinstance(value, str):
            if _looks_like_url(value):
                return cls.from_url(value)
            if len(value) > _MAX_PATH_CHARS:
                raise ImageError(
                    _short(value),
                    "must be an http(s) URL or a path to a JPEG/PNG file "
                    "(pass image data as bytes)",
                    f"a str of {len(value)} characters",
                )
            return cls.from_path(value)
        if isinstance(value, os.PathLike):
            return cls.from_path(value)
        if isinstance(value, bytes | bytearray):
            return cls.from_bytes(value)
        raise TypeError(
            "an image must be an Image, an http(s) URL, a path or bytes, "
            f"not {type(value).__name__}"
        )

    @classmethod
    def _from_data(cls, source: str, data: bytes) -> Image:
        size = len(data)
        kind, width, height = _inspect(source, data, size)
        buf = bytearray(_base64_length(size))
        with memoryview(buf) as view:
            view[:size] = data  # buf[:size] = data would copy data into a temporary first
        # The caller passed its only reference (from_file, from_path on a pipe): the raw
        # bytes go now, before the base64 text needs a second buffer.
        del data
        return cls(
            source=source, kind=kind, width=width, height=height, size_bytes=size,
            payload=_base64_in_place(buf, size),
        )

    # ---------------------------------------------------------------- use

    def to_api(self) -> str:
        """The value for the JSON body: the URL, or raw base64 (no `data:...;base64,`)."""
        return self._payload


# ------------------------------------------------------------------------ helpers


def _read_stream(fileobj: IO[bytes]) -> bytes:
    # One byte more than allowed is enough to tell the image is too big, without reading
    # all of an arbitrarily large stream.
    data: Any = fileobj.read(rules().max_bytes + 1)
    if not isinstance(data, bytes):
        raise TypeError(
            "Image.from_file() needs a binary file object (open(path, 'rb')); "
            f"read() returned {type(data).__name__}"
        )
    return data


def _base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _read_into(f: io.BufferedReader, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _base64_in_place(buf: bytearray, size: int) -> str:
    """The base64 text of the `size` raw bytes at the start of `buf`, which is exactly as
    long as that text and is overwritten with it.

    b64encode() of the whole image would allocate twice the image size for its output, and
    the raw bytes, the base64 bytes and the str would all be alive at once; here the peak is
    this one buffer plus the str made from it.
    """
    with memoryview(buf) as view:
        # From the end backwards: a chunk's text starts at 4/3 of the chunk's offset, so
        # it only ever overwrites raw bytes that are already encoded.
        for start in range((size - 1) // _CHUNK * _CHUNK, -1, -_CHUNK):
            text = binascii.b2a_base64(view[start : min(start + _CHUNK, size)], newline=False)
            view[start // 3 * 4 : start // 3 * 4 + len(text)] = text
    return buf.decode("ascii")


def _looks_like_url(text: str) -> bool:
    return _URL_PREFIX.match(text) is not None


def _file_name(fileobj: object) -> str:
    name = getattr(fileobj, "name", None)
    if isinstance(name, str | os.PathLike):
        return os.fspath(name)
    if isinstance(name, int):  # open() on a file descriptor
        return f"<fd {name}>"
    return "<file>"


def _format_size(size: int) -> str:
    text = f"{size / _MIB:.1f} MB"
    # 10485761 bytes would print as "10.0 MB" and look allowed.
    return text if size / _MIB >= rules().max_bytes / _MIB + 0.05 else f"{text}, {size} bytes"


def _check_size(source: str, size: int) -> None:
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


def _inspect(source: str, data: _Data, size: int) -> tuple[Literal["jpeg", "png"], int, int]:
    """Every upstream rule, checked on the first `size` bytes of `data` (the rest of a
    buffer that is to receive the base64 text is not the image)."""
    _check_size(source, size)
    if data.startswith(_PNG_SIGNATURE, 0, size):
        kind: Literal["jpeg", "png"] | None = "png"
        width, height = _png_dimensions(source, data, size)
    elif data.startswith(_JPEG_SOI, 0, size):
        kind = "jpeg"
        width, height = _jpeg_dimensions(source, data, size)
    else:
        kind = None
    allowed = rules().formats
    if kind not in allowed:
        found = _describe(bytes(data[: min(size, 1024)])) if kind is None else f"{kind.upper()} data"
        raise ImageError(source, f"must be a {' or '.join(f.upper() for f in allowed)} image", found)
    _check_dimensions(source, width, height)
    assert kind is not None
    return kind, width, height


def _png_dimensions(source: str, data: _Data, size: int) -> tuple[int, int]:
    rule = "must be a valid PNG image"
    # The PNG spec puts IHDR first: length 13, type, width, height, 5 more bytes, CRC.
    if size < 33:
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


def _jpeg_dimensions(source: str, data: _Data, end: int) -> tuple[int, int]:
    rule = "must be a valid JPEG image"
    pos = 2  # after SOI
    while True:
        # libjpeg's way of finding the next marker: skip junk up to 0xFF, then any number
        # of 0xFF fill bytes; FF00 is a stuffed data byte, not a marker.
        pos = data.find(b"\xff", pos, end)
        while pos != -1 and pos + 1 < end and data[pos + 1] in (0xFF, 0x00):
            pos = data.find(b"\xff", pos + 1, end)
        if pos == -1 or pos + 1 >= end:
            raise ImageError(source, rule, "data truncated before the frame header (SOF)")
        marker = data[pos + 1]
        pos += 2
        if marker in _JPEG_STANDALONE:
            continue
        if marker == _JPEG_EOI:
            raise ImageError(source, rule, "no frame header (SOF) before the end of the image")
        if marker == _JPEG_SOS:
            raise ImageError(source, rule, "a scan (SOS) before the frame header (SOF)")
        if pos + 2 > end:
            raise ImageError(source, rule, f"data truncated in marker 0x{marker:02X} at byte {pos}")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise ImageError(source, rule, f"a bad length {length} for marker 0x{marker:02X}")
        if 0xC0 <= marker <= 0xCF and marker not in _JPEG_NOT_FRAMES:
            # Frame header: length, precision, height, width. EXIF orientation may swap the
            # sides on display; every rule here is symmetric, so that does not matter.
            if length < 8 or pos + 7 > end:
                raise ImageError(source, rule, "data truncated in the frame header (SOF)")
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
