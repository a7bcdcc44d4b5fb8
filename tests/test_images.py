"""Image: local JPEG/PNG checks against the upstream rules, base64 encoding, URLs.

Covers: _imageheader.py
"""

from __future__ import annotations

import base64
import io
import os
import socket
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from kling_i2v import Image, ImageError
from kling_i2v.images import _CHUNK as CHUNK
from kling_i2v.images import rules

MAX_BYTES = rules().max_bytes

from tests.imagegen import jpeg_segment, make_jpeg, make_png, png_chunk

MIB = 1024 * 1024


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rejected(data: bytes, name: str = "x.jpg") -> ImageError:
    with pytest.raises(ImageError) as info:
        Image.from_bytes(data, name=name)
    return info.value


# ------------------------------------------------------------------ dimensions


def test_png_dimensions_from_path(tmp_path: Path) -> None:
    data = make_png(640, 480)
    img = Image.from_path(write(tmp_path, "cat.png", data))
    assert (img.kind, img.width, img.height) == ("png", 640, 480)
    assert img.size_bytes == len(data)
    assert img.source == str(tmp_path / "cat.png")


def test_jpeg_dimensions_from_path(tmp_path: Path) -> None:
    data = make_jpeg(1280, 720)
    img = Image.from_path(str(write(tmp_path, "cat.jpg", data)))
    assert (img.kind, img.width, img.height, img.size_bytes) == ("jpeg", 1280, 720, len(data))


def test_jpeg_walk_skips_segments_fill_bytes_and_standalone_markers() -> None:
    # A decoy frame header inside an APP1 payload must be skipped with its segment.
    decoy = b"\xff\xc0\x00\x11\x08\x00\x10\x00\x10"
    before_sof = (
        jpeg_segment(0xE1, b"Exif\x00\x00" + decoy + b"\x00" * 300)
        + jpeg_segment(0xFE, b"a comment")
        + b"\xff\xff\xff"  # fill bytes before the next marker
        + jpeg_segment(0xCC, b"\x00\x11")  # DAC: in the SOF range, not a frame
        + jpeg_segment(0xC8, b"\x00")  # JPG: reserved, not a frame
        + b"\xff\xd0\xff\x01"  # RST0 and TEM: no length field
        + b"\xff\xff"
    )
    img = Image.from_bytes(make_jpeg(800, 600, before_sof=before_sof))
    assert (img.width, img.height) == (800, 600)


def test_progressive_jpeg() -> None:
    img = Image.from_bytes(make_jpeg(1024, 768, sof=0xC2))
    assert (img.kind, img.width, img.height) == ("jpeg", 1024, 768)


@pytest.mark.parametrize("sof", [0xC1, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCF])
def test_every_frame_type(sof: int) -> None:
    img = Image.from_bytes(make_jpeg(500, 400, sof=sof))
    assert (img.width, img.height) == (500, 400)


def test_format_is_judged_by_content_not_name(tmp_path: Path) -> None:
    img = Image.from_path(write(tmp_path, "photo.png", make_jpeg(400, 400)))
    assert img.kind == "jpeg"
    assert Image.from_path(write(tmp_path, "noext", make_png(400, 400))).kind == "png"


# ------------------------------------------------------------------ formats and corrupt files


@pytest.mark.parametrize(
    ("data", "got"),
    [
        (b"GIF89a" + b"\x00" * 100, "GIF data"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 100, "WebP data"),
        (b"BM" + b"\x00" * 100, "BMP data"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100, "HEIC data"),
        (b"hello, this is not an image\n", "text"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG data"),
        (b"", "empty data"),
        (b"\x00\x01\x02\x03" * 10, "unknown data starting 00 01 02 03"),
    ],
    ids=["gif", "webp", "bmp", "heic", "text", "svg", "empty", "binary"],
)
def test_other_formats_rejected(data: bytes, got: str) -> None:
    err = rejected(data, name="x.gif")
    assert str(err) == f"x.gif: must be a JPEG or PNG image (got {got})"
    assert (err.source, err.rule, err.value) == ("x.gif", "must be a JPEG or PNG image", got)
    assert isinstance(err, ValueError)


def test_gif_path_message(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"x\.gif: must be a JPEG or PNG image \(got GIF data\)"):
        Image.from_path(write(tmp_path, "x.gif", b"GIF87a" + b"\x00" * 50))


def test_every_truncation_of_a_jpeg_header_is_a_clear_error() -> None:
    data = make_jpeg(
        640, 480, before_sof=jpeg_segment(0xE1, b"Exif" + b"\x00" * 40) + b"\xff\xff\xd0"
    )
    # From just after the JPEG magic to the last byte before the width is complete.
    width_end = data.index(b"\xff\xc0") + 9
    for cut in range(3, width_end):
        err = rejected(data[:cut])
        assert err.rule == "must be a valid JPEG image", cut
        assert "truncated" in err.value, (cut, err.value)


def test_every_truncation_of_a_png_header_is_a_clear_error() -> None:
    data = make_png(640, 480)
    for cut in range(8, 33):
        err = rejected(data[:cut], name="x.png")
        assert str(err).startswith("x.png: must be a valid PNG image (got data truncated"), cut


@pytest.mark.parametrize(
    ("data", "got"),
    [
        (b"\xff\xd8\xff\xd9", "no frame header (SOF) before the end of the image"),
        (b"\xff\xd8" + jpeg_segment(0xDA, b"\x00" * 6) + b"\xff\xd9",
         "a scan (SOS) before the frame header (SOF)"),
        (b"\xff\xd8\xff\xe0\x00\x01", "a bad length 1 for marker 0xE0"),
        (b"\xff\xd8" + jpeg_segment(0xC0, struct.pack(">BHHB", 8, 0, 640, 1) + b"\x01\x11\x00"),
         "zero size in the frame header, 640x0"),
    ],
    ids=["no-sof", "sos-first", "bad-length", "dnl-height"],
)
def test_broken_jpeg_structure(data: bytes, got: str) -> None:
    assert str(rejected(data)) == f"x.jpg: must be a valid JPEG image (got {got})"


def test_png_with_corrupt_or_misplaced_header() -> None:
    good = make_png(640, 480)
    corrupt = good[:23] + b"\x01" + good[24:]  # height 480 -> 257, CRC not updated
    assert "CRC mismatch" in rejected(corrupt, "x.png").value
    misplaced = good[:8] + png_chunk(b"tEXt", b"k\x00" + b"v" * 20) + good[8:]
    assert "where the IHDR header should be" in rejected(misplaced, "x.png").value


# ------------------------------------------------------------------ upstream rules


@pytest.mark.parametrize("size", [(299, 640), (640, 299), (299, 299)])
def test_side_below_300_rejected(size: tuple[int, int]) -> None:
    w, h = size
    err = rejected(make_png(w, h), name="cat.png")
    assert str(err) == f"cat.png: each side must be at least 300 px (got {w}x{h})"


def test_side_of_300_accepted() -> None:
    assert Image.from_bytes(make_jpeg(300, 300)).width == 300
    assert Image.from_bytes(make_png(300, 700)).height == 700


@pytest.mark.parametrize("size", [(750, 300), (300, 750)])
def test_aspect_ratio_of_2_5_accepted(size: tuple[int, int]) -> None:
    assert Image.from_bytes(make_jpeg(*size)).width == size[0]


def test_aspect_ratio_over_2_5_rejected() -> None:
    assert str(rejected(make_png(1500, 500), name="wide.png")) == (
        "wide.png: aspect ratio must be between 1:2.5 and 2.5:1 (got 3.00:1, 1500x500)"
    )
    assert str(rejected(make_jpeg(300, 753), name="tall.jpg")) == (
        "tall.jpg: aspect ratio must be between 1:2.5 and 2.5:1 (got 1:2.51, 300x753)"
    )
    # Just over the limit never prints as the limit itself.
    assert rejected(make_jpeg(2501, 1000)).value == "2.501:1, 2501x1000"


def test_over_10_mb_rejected_without_reading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    with path.open("wb") as f:  # sparse: a JPEG header, then a hole
        f.write(make_jpeg(1000, 1000))
        f.truncate(11_744_052)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError) as info:
            Image.from_path(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value) == f"{path}: must be at most 10 MB (got 11.2 MB)"
    assert peak < MIB


def test_size_limit_is_10_mib_inclusive() -> None:
    assert Image.from_bytes(make_jpeg(1000, 1000, pad_to=MAX_BYTES)).size_bytes == 10 * MIB
    err = rejected(make_jpeg(1000, 1000, pad_to=MAX_BYTES + 1), name="big.jpg")
    assert str(err) == "big.jpg: must be at most 10 MB (got 10.0 MB, 10485761 bytes)"


def test_oversized_stream_rejected() -> None:
    with pytest.raises(ImageError, match=r"^s\.jpg: must be at most 10 MB"):
        Image.from_file(io.BytesIO(make_jpeg(600, 600, pad_to=MAX_BYTES + 2)), name="s.jpg")


# ------------------------------------------------------------------ encoding


def test_base64_round_trips_exactly_without_a_data_prefix(tmp_path: Path) -> None:
    data = make_jpeg(640, 480, pad_to=100_001)
    encoded = Image.from_path(write(tmp_path, "cat.jpg", data)).to_api()
    assert isinstance(encoded, str)
    assert not encoded.startswith("data:")
    assert base64.b64decode(encoded, validate=True) == data


def test_from_bytes_and_from_file_match_from_path(tmp_path: Path) -> None:
    data = make_png(512, 512)
    path = write(tmp_path, "cat.png", data)
    expected = Image.from_path(path).to_api()
    assert Image.from_bytes(data).to_api() == expected
    assert Image.from_bytes(bytearray(data)).to_api() == expected
    with path.open("rb") as f:
        from_file = Image.from_file(f)
    assert from_file.to_api() == expected
    assert from_file.source == str(path)
    from_path, from_memory = Image.from_path(path), Image.from_file(io.BytesIO(data), name=str(path))
    assert repr(from_path) == repr(from_memory)
    assert b"".join(from_path.base64_chunks()) == b"".join(from_memory.base64_chunks())


def test_names_for_messages() -> None:
    data = make_png(400, 400)
    assert Image.from_bytes(data).source == "<bytes>"
    assert Image.from_file(io.BytesIO(data)).source == "<file>"
    assert Image.from_file(io.BytesIO(data), name="upload.png").source == "upload.png"


def test_text_file_object_is_a_type_error(tmp_path: Path) -> None:
    path = write(tmp_path, "cat.png", make_png(400, 400))
    with path.open("r", encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        Image.from_file(f)  # type: ignore[arg-type]


def test_from_bytes_refuses_a_str() -> None:
    with pytest.raises(TypeError, match="from_path"):
        Image.from_bytes("cat.png")  # type: ignore[arg-type]


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Image.from_path(tmp_path / "nope.png")


def test_repr_shows_what_the_image_is_not_its_base64() -> None:
    img = Image.from_bytes(make_jpeg(640, 480, pad_to=5000), name="cat.jpg")
    text = repr(img)
    assert text == (
        "Image(source='cat.jpg', kind='jpeg', width=640, height=480, size_bytes=5000)"
    )
    assert img.to_api()[:40] not in text


@pytest.mark.parametrize("size", [1, 2, 3, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 2])
def test_base64_is_exact_at_every_chunk_boundary(size: int) -> None:
    data = make_jpeg(400, 400, pad_to=len(make_jpeg(400, 400)) + size)
    assert Image.from_bytes(data).to_api() == base64.b64encode(data).decode()


def test_from_path_reads_only_the_header(tmp_path: Path) -> None:
    # A 4 MB file: checking it must cost its header, not its size (the base64 text is
    # made while the request is sent, chunk by chunk).
    size = 4 * MIB
    path = write(tmp_path, "big.jpg", make_jpeg(2000, 1500, pad_to=size))
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        img = Image.from_path(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (img.width, img.height, img.size_bytes) == (2000, 1500, size)
    assert peak - start < 200 * 1024


def test_a_frame_header_after_a_long_exif_is_still_found(tmp_path: Path) -> None:
    # Three 60 KB APP1 segments push the SOF past the first 64 KB read.
    before_sof = b"".join(jpeg_segment(0xE1, b"Exif\x00\x00" + b"\x01" * 60_000) for _ in range(3))
    data = make_jpeg(900, 700, before_sof=before_sof)
    assert data.find(b"\xff\xc0") > 180_000
    img = Image.from_path(write(tmp_path, "exif.jpg", data))
    assert (img.width, img.height) == (900, 700)
    truncated = write(tmp_path, "cut.jpg", data[:150_000])
    with pytest.raises(ImageError, match="data truncated"):
        Image.from_path(truncated)


@pytest.mark.parametrize("how", ["from_path", "from_bytes"])
def test_streaming_the_base64_holds_one_chunk_at_a_time(tmp_path: Path, how: str) -> None:
    size = 4 * MIB
    data = make_jpeg(2000, 1500, pad_to=size)
    path = write(tmp_path, "big.jpg", data)
    img = Image.from_path(path) if how == "from_path" else Image.from_bytes(data)
    digest, length = 0, 0
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for chunk in img.base64_chunks():
            digest = zlib.crc32(chunk, digest)
            length += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = base64.b64encode(data)
    assert (length, digest) == (len(expected), zlib.crc32(expected)) == (img.wire_length, digest)
    # a read buffer and a chunk or two of text (the caller holds the last one), not the
    # 5.3 MB of text
    assert peak - start < 5 * CHUNK


def test_every_iteration_starts_again(tmp_path: Path) -> None:
    data = make_png(500, 400)
    img = Image.from_path(write(tmp_path, "cat.png", data))
    first, second = b"".join(img.base64_chunks()), b"".join(img.base64_chunks())
    assert first == second == base64.b64encode(data)


@pytest.mark.parametrize(
    "change",
    ["grow", "shrink", "same_size_rewrite", "replaced_by_another_file"],
)
def test_a_file_changed_after_the_check_is_never_sent_whole(tmp_path: Path, change: str) -> None:
    data = make_jpeg(800, 600, pad_to=3 * CHUNK + 100)
    path = write(tmp_path, "cat.jpg", data)
    img = Image.from_path(path)
    if change == "grow":
        path.write_bytes(data + b"\x00" * 10)
    elif change == "shrink":
        path.write_bytes(data[:-10])
    elif change == "same_size_rewrite":
        path.write_bytes(data[:-1] + b"\x01")
    else:
        other = write(tmp_path, "other.jpg", data)
        os.replace(other, path)
    with pytest.raises(ImageError, match=r"cat\.jpg: must not change after it was checked"):
        b"".join(img.base64_chunks())


def test_a_file_changed_while_it_is_sent_stops_before_its_last_chunk(tmp_path: Path) -> None:
    data = make_jpeg(800, 600, pad_to=3 * CHUNK + 100)
    path = write(tmp_path, "cat.jpg", data)
    img = Image.from_path(path)
    chunks = img.base64_chunks()
    got = [next(chunks)]
    with path.open("r+b") as f:  # same size, same inode: only the times tell
        f.seek(len(data) - 1)
        f.write(b"\x02")
    with pytest.raises(ImageError, match="while it was sent"):
        got.extend(chunks)
    assert sum(map(len, got)) < img.wire_length  # the end never went out


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_non_regular_files_are_refused_before_opening(tmp_path: Path, kind: str) -> None:
    # Opening a FIFO with no writer blocks forever: the refusal must come from stat().
    if kind == "fifo":
        path = tmp_path / "pipe.png"
        os.mkfifo(path)
        what = "a named pipe (FIFO)"
    elif kind == "socket":
        path = tmp_path / "s.png"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        what = "a socket"
    else:
        path = Path("/dev/zero")
        what = "a character device"
    result: list[BaseException] = []
    thread = threading.Thread(target=lambda: result.append(_raises(Image.from_path, path)), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "from_path blocked"
    assert isinstance(result[0], ImageError)
    assert str(result[0]) == (
        f"{path}: must be a regular file (read a pipe or device yourself: Image.from_file) "
        f"(got {what})"
    )


def test_a_fifo_swapped_in_after_the_check_is_refused_without_blocking(tmp_path: Path) -> None:
    data = make_png(400, 300)
    path = write(tmp_path, "cat.png", data)
    img = Image.from_path(path)
    path.unlink()
    os.mkfifo(path)
    result: list[BaseException] = []
    thread = threading.Thread(
        target=lambda: result.append(_raises(lambda: b"".join(img.base64_chunks()))), daemon=True
    )
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "sending blocked on a FIFO"
    assert isinstance(result[0], ImageError)


def test_a_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        Image.from_path(tmp_path)


def test_a_pipe_can_still_be_read_as_a_file_object(tmp_path: Path) -> None:
    data = make_png(400, 300)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(data,))
    writer.start()
    try:
        with fifo.open("rb") as f:
            img = Image.from_file(f)
    finally:
        writer.join()
    assert (img.width, img.height, img.size_bytes) == (400, 300, len(data))
    assert base64.b64decode(img.to_api()) == data


def _raises(fn: Callable[..., object], *args: object) -> BaseException:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - handed to the test to look at
        return exc
    raise AssertionError("no error")


# ------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/cat.png",
        "https://cdn.example.com/a/b/cat.jpg?X-Amz-Signature=abc&X-Amz-Expires=60",
        "HTTPS://EXAMPLE.COM/CAT.PNG",
        "https://example.com:8443/cat",
        "http://127.0.0.1/cat.png",
        "http://[::1]:8080/cat.png",
    ],
)
def test_urls_accepted_and_passed_through(url: str) -> None:
    img = Image.from_url(url)
    assert (img.kind, img.to_api(), img.source) == ("url", url, url)
    assert (img.width, img.height, img.size_bytes) == (None, None, None)


@pytest.mark.parametrize(
    ("url", "got"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://example.com/cat.png", "scheme 'ftp'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("data:image/png;base64,iVBORw0KGgo=", "scheme 'data'"),
        ("example.com/cat.png", "no scheme"),
        ("http://", "no host"),
        ("https:///cat.png", "no host"),
        ("http://:80/cat.png", "no host"),
        (" https://example.com/cat.png", "whitespace or control characters"),
        ("https://example.com/cat.png\n", "whitespace or control characters"),
        ("https://exa mple.com/cat.png", "whitespace or control characters"),
        ("http://example.com:port/", "an unparsable URL: Port could not be cast"),
    ],
)
def test_urls_rejected(url: str, got: str) -> None:
    with pytest.raises(ImageError) as info:
        Image.from_url(url)
    assert info.value.rule == "must be an http:// or https:// URL with a host"
    assert info.value.value.startswith(got)


# ------------------------------------------------------------------ coerce


def test_coerce(tmp_path: Path) -> None:
    path = write(tmp_path, "cat.png", make_png(400, 400))
    img = Image.from_path(path)
    assert Image.coerce(img) is img
    assert Image.coerce(path) == img
    assert Image.coerce(str(path)) == img
    assert Image.coerce(path.read_bytes()).to_api() == img.to_api()
    assert Image.coerce("https://example.com/cat.png").kind == "url"
    assert Image.coerce("Http://example.com/cat.png").kind == "url"


@pytest.mark.parametrize(
    "value", ["ftp://example.com/cat.png", "s3://bucket/cat.png", "data:image/png;base64,AAAA"]
)
def test_coerce_sends_other_urls_to_a_clear_error(value: str) -> None:
    with pytest.raises(ImageError, match="must be an http:// or https:// URL"):
        Image.coerce(value)


def test_coerce_refuses_a_base64_str_without_echoing_it() -> None:
    text = base64.b64encode(make_png(400, 400) * 5).decode()
    with pytest.raises(ImageError) as info:
        Image.coerce(text)
    assert len(str(info.value)) < 250


def test_coerce_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="an Image, an http"):
        Image.coerce(42)  # type: ignore[arg-type]


def test_a_relative_path_is_sent_from_where_it_was_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_png(400, 400)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a", "cat.png", data)
    write(tmp_path / "b", "cat.png", make_png(500, 500))
    monkeypatch.chdir(tmp_path / "a")
    img = Image.from_path("cat.png")
    monkeypatch.chdir(tmp_path / "b")
    assert b"".join(img.base64_chunks()) == base64.b64encode(data)
    assert img.source == "cat.png"


def test_the_file_endings_a_folder_batch_takes_follow_the_spec_formats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kling_i2v import _imageheader

    # literal: the spec's x-image-rules formats today are jpeg and png
    assert _imageheader.image_suffixes() == (".jpg", ".jpeg", ".png")
    # and they are read from the spec, not written again: a spec with png only
    _imageheader.image_suffixes.cache_clear()
    monkeypatch.setattr(_imageheader, "rules", lambda: attrs.evolve(rules(), formats=("png",)))
    try:
        assert _imageheader.image_suffixes() == (".png",)
    finally:
        _imageheader.image_suffixes.cache_clear()
