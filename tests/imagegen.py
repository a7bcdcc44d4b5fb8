"""Small JPEG and PNG files built with the standard library, for tests and benchmarks.

`make_png` and `make_jpeg` (baseline or progressive) produce images that real decoders
open: solid mid-grey, any size. Other `sof` markers give a correct header over scan data
that only the header walk should look at.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["jpeg_segment", "make_jpeg", "make_png", "png_chunk"]

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
_MAX_SEGMENT_PAYLOAD = 0xFFFF - 2


def png_chunk(chunk_type: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + payload)
    return struct.pack(">I", len(payload)) + chunk_type + payload + struct.pack(">I", crc)


def make_png(width: int, height: int) -> bytes:
    """A solid grey 8-bit greyscale PNG."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = (b"\x00" + b"\x80" * width) * height  # filter type 0 on every row
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows, 1))
        + png_chunk(b"IEND", b"")
    )


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    """One marker segment: FF, the marker, a length that counts itself, the payload."""
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _huffman_table(table_class: int, symbol: int) -> bytes:
    # One code of length 1 ("0") for one symbol: DC difference 0, or AC end-of-block.
    return bytes((table_class << 4,)) + bytes((1,) + (0,) * 15) + bytes((symbol,))


def make_jpeg(
    width: int,
    height: int,
    pad_to: int | None = None,
    *,
    sof: int = 0xC0,
    before_sof: bytes = b"",
) -> bytes:
    """A greyscale JPEG, `pad_to` bytes long when given (COM segments after the frame header
    make up the difference, so the header walk stays short however big the file is).

    `before_sof` is inserted between the tables and the frame header, to test the walk over
    other segments, fill bytes and standalone markers.
    """
    progressive = sof == 0xC2
    app0 = jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    dqt = jpeg_segment(0xDB, b"\x00" + b"\x01" * 64)
    # Tables before the frame header are legal, and put a DHT (0xC4, inside the SOF
    # range) in the walk's way.
    dht = jpeg_segment(0xC4, _huffman_table(0, 0x00))
    if not progressive:
        dht += jpeg_segment(0xC4, _huffman_table(1, 0x00))
    frame = jpeg_segment(sof, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    # Progressive: a single DC-first scan (spectral selection 0..0); AC stays zero.
    spectral_end = b"\x00" if progressive else b"\x3f"
    scan_header = jpeg_segment(0xDA, b"\x01\x01\x00\x00" + spectral_end + b"\x00")
    blocks = -(-width // 8) * -(-height // 8)
    bits = blocks * (1 if progressive else 2)  # every code is "0"
    whole, rest = divmod(bits, 8)
    scan = b"\x00" * whole + (bytes(((1 << (8 - rest)) - 1,)) if rest else b"")  # pad with 1s

    head = SOI + app0 + dqt + dht + before_sof + frame
    tail = scan_header + scan + EOI
    missing = 0 if pad_to is None else pad_to - len(head) - len(tail)
    if missing < 0:
        raise ValueError(f"a {width}x{height} JPEG needs at least {len(head) + len(tail)} bytes")
    if not missing:
        return head + tail
    count = -(-missing // (_MAX_SEGMENT_PAYLOAD + 4))
    if missing < 4 * count:  # 1 to 3 bytes: too few for a segment, so fill bytes before SOS
        return head + b"\xff" * missing + tail
    text = bytes(range(32, 127)) * (_MAX_SEGMENT_PAYLOAD // 95 + 1)
    share, extra = divmod(missing - 4 * count, count)
    sizes = [share + (i < extra) for i in range(count)]
    return head + b"".join(jpeg_segment(0xFE, text[:n]) for n in sizes) + tail
