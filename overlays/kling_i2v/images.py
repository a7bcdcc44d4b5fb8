"""Images for the request fields `image`, `image_tail`, `static_mask` and a dynamic mask's `mask`.

    Image.from_path("cat.png")            a local JPEG or PNG, checked now, streamed when sent
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

Dimensions come from the file header (PNG IHDR, JPEG frame header); pixels are never decoded.
Memory: `from_path` reads only the header (64 KB, more only if a JPEG's frame header sits
further in). The base64 text is never held whole: `base64_chunks()` encodes the image
chunk by chunk as the request body is written to the socket, reopening the file for each
attempt, and refuses to go on if the file changed since it was checked.
"""

from __future__ import annotations

import binascii
import errno
import io
import os
import re
import stat
import urllib.parse
from collections.abc import Iterator
from typing import IO, Any, Literal, TypeAlias

import attrs

from ._imageheader import ImageRules, NeedMore, check_size, inspect, rules
from .errors import ImageError

__all__ = ["Image", "ImageKind", "ImageRules", "rules"]

ImageKind: TypeAlias = Literal["url", "jpeg", "png"]

# Raw bytes per base64 step: a multiple of 3, so no padding mid-stream. 192 KiB raw is
# 256 KiB of text: few enough steps that a 10 MB image costs ~55 socket writes, small
# enough that the body never holds more than a quarter MiB (benchmarks/ measured 48 KiB
# to 1 MiB; the time stops improving past this).
_CHUNK = 3 * 64 * 1024
_HEAD = 64 * 1024  # the first read of a file: its header, nearly always
_MAX_SOURCE_CHARS = 80
# Longer than any real path (PATH_MAX is 4096 on Linux): such a str is almost surely base64
# or a data: URL, and open() would put all of it into the error message.
_MAX_PATH_CHARS = 4096
# O_NONBLOCK: opening a FIFO that was swapped in after the stat() must not wait for a
# writer; O_NOCTTY: a terminal device never becomes our controlling terminal.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))

# "scheme://" (RFC 3986 scheme characters; two or more, as "C://" is a Windows drive), or
# "data:", which has no slashes.
_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://|data:", re.IGNORECASE)
# Whitespace (str.isspace's set: re's \s on str patterns is the same Unicode property),
# C0 controls and DEL. One regex search, not a Python loop per character: this runs on
# every create with a URL image.
_URL_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def _short(text: str, limit: int = _MAX_SOURCE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]}… ({len(text)} chars)"


@attrs.frozen(slots=True)
class _LocalFile:
    """A checked file, and what it was when checked: any write changes its ctime."""

    path: str
    identity: tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


def _identity(info: os.stat_result) -> tuple[int, int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@attrs.frozen(slots=True)
class Image:
    """One image for the request: an http(s) URL, or a checked local JPEG/PNG sent as base64.

    Build it with a `from_*` constructor (or `coerce`), not by calling the class.
    A local image holds its file's name (or the bytes given), never its base64 text: the
    client streams that into the request body. The repr shows where the image came from
    and what it is.
    """

    source: str = attrs.field(repr=lambda s: repr(_short(s)))
    """The path, the name given for bytes or a file object, or the URL; used in messages."""
    kind: ImageKind
    width: int | None = None
    """Pixels, from the file header; None for URLs (the gateway fetches and checks them)."""
    height: int | None = None
    size_bytes: int | None = None
    """Size of the image file (not of its base64 text); None for URLs."""
    _url: str = attrs.field(default="", repr=False)
    _data: bytes | None = attrs.field(default=None, repr=False)
    _file: _LocalFile | None = attrs.field(default=None, repr=False)

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *,
                  fit: bool | Literal["pad", "crop"] = False) -> Image:
        """A local JPEG or PNG file, checked from its header. Raises ImageError if it breaks
        an upstream rule or is not a regular file (a FIFO, a device, a socket: refused
        before opening, as reading one may never end; read those with `from_file`), and
        OSError (FileNotFoundError, IsADirectoryError, ...) if it cannot be read.

        The file is read again, in chunks, each time a request carrying it is sent; if it
        has changed by then, the send stops with an ImageError (see `base64_chunks`).

        `fit=True` (or "crop") accepts any image and makes it meet the rules instead;
        see `kling_i2v.fit` (needs the `kling-i2v[images]` extra)."""
        if fit:
            from .fit import fit_image  # Pillow only when asked for
            return fit_image(path, crop=fit == "crop").image
        source = os.fspath(path)
        _check_regular(source, os.stat(source))
        fd = os.open(source, _OPEN_FLAGS)
        try:
            info = os.fstat(fd)
            _check_regular(source, info)  # replaced between the stat and the open
            check_size(source, info.st_size)  # before reading a byte of it
            kind, width, height = _inspect_file(source, fd, info.st_size)
            if _identity(os.fstat(fd)) != _identity(info):
                raise _changed(source, "while its header was read")
        finally:
            os.close(fd)
        return cls(
            source=source, kind=kind, width=width, height=height, size_bytes=info.st_size,
            # absolute: a chdir() before the send must not make it open another file
            file=_LocalFile(os.path.abspath(source), _identity(info)),
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, *, name: str = "<bytes>") -> Image:
        """A JPEG or PNG image held in memory; `name` is used in messages and the repr.
        `bytes` are kept as they are, not copied; a bytearray or memoryview is copied once,
        since it could change before the request is sent."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"Image.from_bytes() needs bytes, not {type(data).__name__}; "
                "for a path use Image.from_path(), for a URL Image.from_url()"
            )
        return cls._from_data(name, data if isinstance(data, bytes) else bytes(data))

    @classmethod
    def from_file(cls, fileobj: IO[bytes], *, name: str | None = None) -> Image:
        """A JPEG or PNG read from a binary file object, from its current position to the
        end (at most one byte past the size limit is read). `name` defaults to the file
        object's `name` when it has one."""
        if name is None:
            name = _file_name(fileobj)
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
        if _URL_BAD_CHARS.search(url):
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
        return cls(source=url, kind="url", url=url)

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
        kind, width, height = inspect(source, data, len(data))
        return cls(source=source, kind=kind, width=width, height=height,
                   size_bytes=len(data), data=data)

    # ---------------------------------------------------------------- use

    @property
    def is_url(self) -> bool:
        return self.kind == "url"

    @property
    def wire_length(self) -> int:
        """Characters this image takes in the JSON body, quotes not counted."""
        if self.size_bytes is None:
            return len(self._url)
        return _base64_length(self.size_bytes)

    def base64_chunks(self) -> Iterator[bytes]:
        """The image's base64 text (no `data:` prefix, no newlines), in chunks of at most
        256 KiB. Each call starts again from the start (a file is reopened), so a request
        can be sent again. For a file, a change since it was checked (size, modification
        or inode change time, a different file under the name, not a regular file any
        more) raises ImageError before the last chunk is given, so a body built from it is
        never completed. A URL gives its text."""
        if self._file is not None:
            return _file_chunks(self.source, self._file)
        if self._data is not None:
            return _memory_chunks(self._data)
        return iter((self._url.encode("utf-8"),))

    def to_api(self) -> str:
        """The value for the JSON body: the URL, or raw base64 (no `data:...;base64,`).
        This holds the whole text in memory; the client streams it instead."""
        if self.kind == "url":
            return self._url
        buf = bytearray(self.wire_length)
        at = 0
        for chunk in self.base64_chunks():
            buf[at : at + len(chunk)] = chunk
            at += len(chunk)
        return buf.decode("ascii")


# ------------------------------------------------------------------------ helpers


def _check_regular(source: str, info: os.stat_result) -> None:
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), source)
    what = (
        "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "a character device" if stat.S_ISCHR(mode)
        else "a block device" if stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise ImageError(
        source, "must be a regular file (read a pipe or device yourself: Image.from_file)", what
    )


def _changed(source: str, when: str) -> ImageError:
    return ImageError(source, "must not change after it was checked", f"a change {when}")


def _read_into(fd: int, view: memoryview) -> int:
    """Fill `view` from `fd` (short only at the end of the file)."""
    got = 0
    with io.FileIO(fd, "rb", closefd=False) as f:
        while got < len(view):
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
    return got


def _inspect_file(source: str, fd: int, size: int) -> tuple[Literal["jpeg", "png"], int, int]:
    """The header checks, reading only as much of the file as the header takes."""
    want = min(size, _HEAD)
    head = bytearray(want)
    got = _read_into(fd, memoryview(head))
    while True:
        if got < len(head):
            raise _changed(source, f"while its header was read ({size} bytes, then fewer)")
        try:
            return inspect(source, head, size)
        except NeedMore:
            more = min(size, len(head) * 4) - len(head)
            head.extend(bytes(more))
            with memoryview(head) as view:
                got += _read_into(fd, view[got:])


def _file_chunks(source: str, checked: _LocalFile) -> Iterator[bytes]:
    fd = os.open(checked.path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or _identity(info) != checked.identity:
            raise _changed(source, "before it was sent")
        size = info.st_size
        buf = bytearray(min(_CHUNK, size))
        with memoryview(buf) as view:
            done = 0
            while done < size:
                n = _read_into(fd, view[: min(_CHUNK, size - done)])
                if n == 0:
                    raise _changed(source, f"while it was sent (ended after {done} of {size} bytes)")
                done += n
                if done == size and (os.read(fd, 1) or _identity(os.fstat(fd)) != checked.identity):
                    # Before the last chunk goes out: the body stays incomplete, so
                    # it can never be read as a request.
                    raise _changed(source, "while it was sent")
                yield binascii.b2a_base64(view[:n], newline=False)
    finally:
        os.close(fd)


def _memory_chunks(data: bytes) -> Iterator[bytes]:
    with memoryview(data) as view:
        for start in range(0, len(data), _CHUNK):
            yield binascii.b2a_base64(view[start : start + _CHUNK], newline=False)


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


def _looks_like_url(text: str) -> bool:
    return _URL_PREFIX.match(text) is not None


def _file_name(fileobj: object) -> str:
    name = getattr(fileobj, "name", None)
    if isinstance(name, str | os.PathLike):
        return os.fspath(name)
    if isinstance(name, int):  # open() on a file descriptor
        return f"<fd {name}>"
    return "<file>"


