"""Pillow, loaded only when asked for, and the decoding that fit and the gallery share:
bounded reads, decompression-bomb limits, HEIC through pillow-heif, EXIF orientation."""

from __future__ import annotations

import io
import os
import warnings
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import ImageError, MissingExtraError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["EXTRA", "ImageSource", "MissingExtraError", "decode", "first_frame", "orientation",
           "pillow", "read_source", "readable_suffixes", "upright"]

EXTRA = MissingExtraError.extra
ImageSource: TypeAlias = str | os.PathLike[str] | bytes

# A bound on what is read before decoding: far above any camera file, far below memory.
_MAX_INPUT_BYTES = 256 * 1024 * 1024
_MIB = 1024 * 1024


def pillow() -> Any:
    try:
        import PIL.Image  # an optional extra: imported on first use
        import PIL.ImageOps
    except ImportError:
        raise MissingExtraError() from None
    _register_heif()
    return PIL


_heif_registered = False


def _register_heif() -> None:
    global _heif_registered  # a one-time plugin registration
    if not _heif_registered:
        try:
            import pillow_heif
        except ImportError:  # Pillow alone still reads everything else
            return
        pillow_heif.register_heif_opener()
        _heif_registered = True


# Formats Pillow only identifies (pillow.readthedocs.io, "Image file formats", "Identify-only
# formats": BUFR, GRIB and HDF5 are stub drivers, and "Pillow identifies MPEG files"; WMF/EMF
# is a stub off Windows): it opens their headers but cannot give their pixels.
_IDENTIFY_ONLY = frozenset({"MPEG"})


def readable_suffixes() -> frozenset[str]:
    """Lowercase file name suffixes (".webp", ".heic", ...) of the formats Pillow decodes
    here, HEIC/HEIF/AVIF included when pillow-heif is installed; empty without Pillow."""
    try:
        pil = pillow()
    except MissingExtraError:
        return frozenset()
    from PIL import ImageFile

    def decodes(fmt: str) -> bool:
        opener = pil.Image.OPEN.get(fmt, (None,))[0]
        return (fmt not in _IDENTIFY_ONLY and isinstance(opener, type)
                and not issubclass(opener, ImageFile.StubImageFile))

    return frozenset(ext.lower() for ext, fmt in pil.Image.registered_extensions().items()
                     if decodes(fmt))


def read_source(source: ImageSource, name: str | None) -> tuple[str, bytes]:
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        label = name or "<bytes>"
    elif isinstance(source, str | os.PathLike):
        label = name or os.fspath(source)
        with open(source, "rb") as f:
            data = f.read(_MAX_INPUT_BYTES + 1)
    else:
        raise TypeError(f"an image to fit must be a path or bytes, not {type(source).__name__}")
    if len(data) > _MAX_INPUT_BYTES:
        raise ImageError(label, f"must be at most {_MAX_INPUT_BYTES // _MIB} MB to be fitted",
                         "a larger file")
    if not data:
        raise ImageError(label, "must be an image", "an empty file")
    return label, data


def decode(label: str, data: bytes, draft: tuple[int, int] | None = None) -> PILImage:
    """Decoded; `draft` lets a JPEG decode at a fraction of its size (for thumbnails)."""
    pil = pillow()
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that: the bound we keep
            warnings.simplefilter("ignore", pil.Image.DecompressionBombWarning)
            img: PILImage = pil.Image.open(io.BytesIO(data))
            if draft is not None:
                img.draft("RGB", draft)
            img.load()
    except pil.Image.DecompressionBombError as exc:
        raise ImageError(label, "must be small enough to decode safely", str(exc)) from None
    except (pil.UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError(label, UNREADABLE, what_it_is(data[:1024])) from None
    return img


UNREADABLE = "is not an image Pillow can read"
# What Pillow 13 with pillow-heif (the `images` extra) decodes, in the words
# _imageheader uses for a format: the files fitting can convert. A text file or a video is
# not among them, so it gets no --fit hint.
FITTABLE = frozenset(f"{kind} data" for kind in (
    "PNG", "JPEG", "GIF", "WebP", "BMP", "TIFF", "HEIC", "HEIF", "AVIF", "ICO"))


def unreadable_file(path: str) -> tuple[str, str]:
    """(rule, what was found) for a local file Pillow cannot open, in plain words."""
    name = os.path.basename(path)
    try:
        with open(path, "rb") as file:
            head = file.read(1024)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}", name
    return UNREADABLE, f"{name}: {what_it_is(head)}"


def what_it_is(head: bytes) -> str:
    """What a file Pillow cannot open seems to be, from its first bytes, in plain words
    ("text", "MP4 video data", "damaged PNG data"): no exception class names."""
    from ._imageheader import _describe

    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1") and not _heif_registered:
        return "HEIC/HEIF data, which needs pillow-heif"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "damaged PNG data"
    if head.startswith(b"\xff\xd8\xff"):
        return "damaged JPEG data"
    return _describe(head)


def orientation(img: PILImage) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001  (broken EXIF is common; it only loses the turn)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def first_frame(img: PILImage, changes: list[str]) -> PILImage:
    frames = getattr(img, "n_frames", 1)
    if isinstance(frames, int) and frames > 1:
        changes.append(f"took the first of {frames} frames")
        img.seek(0)
    return img.copy()


def upright(pil: Any, img: PILImage, turn: int, changes: list[str]) -> PILImage:
    if turn == 1:
        return img
    turned: PILImage = pil.ImageOps.exif_transpose(img)
    (w, h), (tw, th) = img.size, turned.size
    changes.append(f"turned upright (EXIF orientation {turn}, {w}×{h} → {tw}×{th})")
    return turned
