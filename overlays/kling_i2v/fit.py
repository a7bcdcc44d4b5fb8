"""Make an image people have acceptable to Kling, and say what changed.

    fit_image("IMG_0042.heic")            -> FitResult: .image (an Image to send), .changes
    fit_image("banner.webp", crop=True)   crop to the aspect-ratio limit instead of padding
    fit_mask("brush.png", (1280, 720))    a mask padded/cropped and scaled to an image's size
    fit_fields(fields)                    what create(..., fit=True) does to its image fields

Needs the optional extra `kling-i2v[images]` (Pillow, and pillow-heif for HEIC); without
it, fitting raises MissingExtraError naming the extra, and nothing else changes.

The rules are the spec's `x-image-rules` (`kling_i2v.images.rules()`: formats, size, smallest
side, aspect ratio), which restate the upstream Kling documentation (gateway-facts.md, "Rules
the upstream Kling documentation adds": jpg/jpeg/png, at most 10 MB, each side at least 300
px, aspect ratio between 1:2.5 and 2.5:1). What fitting does, in this order:

1. decode anything Pillow reads (the first frame of an animation) and turn it upright by its
   EXIF orientation, since the gateway sends the bytes on and nothing says Kling reads EXIF;
2. bring the aspect ratio inside the limit by padding the short side with black bars
   (letterboxing, as video players do) or, if asked, by cropping the long side, centred;
   pixels are never stretched;
3. scale up so the smallest side reaches the minimum (the only way to add pixels);
4. encode: PNG for lossless sources while it fits, else JPEG at the highest quality that
   fits the byte limit, scaling down only when even quality 75 does not fit.

An image that already meets every rule and needs no turning is sent byte for byte as it is.
The padding colour, the white under transparency and the quality ladder are our choices: no
source says what Kling prefers.
"""

from __future__ import annotations

import io
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from ._pillow import (
    EXTRA,
    FITTABLE,
    ImageSource,
    MissingExtraError,
    decode,
    first_frame,
    orientation,
    pillow,
    read_source,
    unreadable_file,
    upright,
)
from .errors import ImageError
from .images import Image, rules

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .requests import RequestBody

__all__ = [
    "EXTRA",
    "FitMode",
    "FitResult",
    "MissingExtraError",
    "fit_fields",
    "fitted_body",
    "fit_hint",
    "fit_image",
    "fit_mask",
    "precheck",
]

log = logging.getLogger("kling_i2v")

FitMode: TypeAlias = Literal["pad", "crop"]
_MIB = 1024 * 1024
_JPEG_QUALITIES = (95, 90, 85, 80, 75)
_MAX_SHRINKS = 6
# Sources whose pixels are exact: kept lossless (PNG) while the PNG fits the byte limit.
_LOSSLESS = frozenset({"PNG", "BMP", "GIF", "TIFF", "PPM", "TGA", "ICO", "QOI", "PCX"})
_PAD = (0, 0, 0)
_UNDER_ALPHA = (255, 255, 255)


@attrs.frozen(slots=True)
class FitResult:
    """A fitted image: `image` is ready to send, `changes` says what was done to it."""

    image: Image
    data: bytes = attrs.field(repr=False)
    """The file that is sent (JPEG or PNG), in memory."""
    format: Literal["jpeg", "png"]
    width: int
    height: int
    source: str
    source_format: str
    """Lowercase Pillow format name of the original: jpeg, png, webp, heif, gif, ..."""
    source_size: tuple[int, int]
    """The original's width and height as stored (before EXIF orientation)."""
    changes: tuple[str, ...]
    """One phrase per change, e.g. ("converted webp → jpeg", "scaled 200×200 → 300×300")."""
    placement: tuple[int, int, int, int] | None = None
    """Where the upright original lies after padding (+) or cropping (-): x and y offsets,
    then that canvas's width and height, which were scaled to (width, height)."""

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def map_point(self, x: float, y: float) -> tuple[float, float]:
        """A point of the original picture as shown (upright, top-left origin) on the
        fitted one: padding moves it, scaling scales it."""
        if self.placement is None:
            return x, y
        dx, dy, canvas_w, canvas_h = self.placement
        return (x + dx) * self.width / canvas_w, (y + dy) * self.height / canvas_h

    def summary(self) -> str:
        """`converted webp → jpeg; scaled 4032×3024 → 2560×1920; 9.1 MB`."""
        size = f"{len(self.data) / _MIB:.1f} MB"
        if not self.changes:
            return f"unchanged ({self.format} {self.width}×{self.height}, {size})"
        return "; ".join((*self.changes, size))

    def __str__(self) -> str:
        return f"{self.source}: {self.summary()}"


# ------------------------------------------------------------------------ public calls


def fit_image(source: ImageSource, *, crop: bool = False, name: str | None = None) -> FitResult:
    """`source` (a path or the file's bytes) as a JPEG or PNG meeting every image rule.

    Raises MissingExtraError without Pillow, ImageError for what cannot be read or fitted
    (naming the file), OSError when the file cannot be opened."""
    label, raw = read_source(source, name)
    pil = pillow()
    with decode(label, raw) as img:
        fmt = (img.format or "unknown").lower()
        stored = img.size
        turn = orientation(img)
        # CMYK JPEGs pass the header rules, but many decoders show them wrongly: a guess
        # that Kling's is one of them, so fit makes them RGB
        cmyk = img.mode == "CMYK"
        if fmt in rules().formats and turn == 1 and not cmyk:
            try:  # already acceptable: the original bytes, checked exactly as without fit
                ready = Image.from_bytes(raw, name=label)
            except ImageError:
                pass
            else:
                assert ready.width is not None and ready.height is not None
                return FitResult(ready, raw, ready.kind, ready.width, ready.height,  # type: ignore[arg-type]
                                 label, fmt, stored, ())
        changes: list[str] = ["CMYK colours made RGB"] if cmyk else []
        frame = first_frame(img, changes)
        turned = upright(pil, frame, turn, changes)
    limits = rules()
    ratio = _clamp(Fraction(turned.width, turned.height), limits.max_aspect_ratio)
    shaped = _to_ratio(pil, turned, ratio, crop=crop, fill=_PAD, changes=changes)
    # the same centring as _to_ratio's paste (padding) and crop box (cropping)
    placement = (_shift(turned.width, shaped.width), _shift(turned.height, shaped.height),
                 shaped.width, shaped.height)
    shaped = _scale_to_min_side(pil, shaped, limits.min_side, changes)
    lossless = fmt.upper() in _LOSSLESS
    data, out_fmt, final = _encode(pil, shaped, lossless, fmt, changes, label)
    return FitResult(Image.from_bytes(data, name=f"{label} (fitted)"), data, out_fmt,
                     final.width, final.height, label, fmt, stored, tuple(changes), placement)


def fit_mask(source: ImageSource, size: tuple[int, int], *, crop: bool = False,
             name: str | None = None) -> FitResult:
    """A brush mask with the aspect ratio and the size of the image it paints on.

    Padding adds unpainted (black) area; scaling uses nearest-neighbour so a black and white
    mask stays black and white. Always a greyscale PNG."""
    label, raw = read_source(source, name)
    pil = pillow()
    width, height = size
    with decode(label, raw) as img:
        fmt = (img.format or "unknown").lower()
        stored = img.size
        changes: list[str] = []
        frame = first_frame(img, changes)
        turned = upright(pil, frame, orientation(img), changes)
    grey = turned if turned.mode == "L" else turned.convert("L")
    shaped = _to_ratio(pil, grey, Fraction(width, height), crop=crop, fill=0, changes=changes)
    if shaped.size != (width, height):
        changes.append(f"scaled {_dims(shaped.size)} → {_dims(size)} (the image's size)")
        shaped = shaped.resize((width, height), pil.Image.Resampling.NEAREST)
    if fmt != "png":
        changes.append(f"converted {fmt} → png")
    data = _save(shaped, "PNG")
    return FitResult(Image.from_bytes(data, name=f"{label} (fitted mask)"), data, "png",
                     width, height, label, fmt, stored, tuple(changes))


@attrs.frozen
class FittedFields:
    fields: dict[str, Any]
    results: dict[str, FitResult]
    """By field path: "image", "image_tail", "static_mask", "dynamic_masks[0].mask"."""


def fit_fields(fields: Mapping[str, Any], *, mode: FitMode = "pad") -> FittedFields:
    """What `create(..., fit=True)` does: local images (paths, bytes) in `image` and
    `image_tail` are fitted; masks in `static_mask` and `dynamic_masks[].mask` are fitted
    to the image's size when that is known (a local image, not a URL). URLs and `Image`
    objects are left alone: they are sent as given."""
    crop = mode == "crop"
    out = dict(fields)
    results: dict[str, FitResult] = {}
    for name in ("image", "image_tail"):
        if _is_local(out.get(name)):
            results[name] = fit_image(out[name], crop=crop)
            out[name] = results[name].image
    size = _size_of(out.get("image")) or _size_of(out.get("image_tail"))
    if size is not None and _is_local(out.get("static_mask")):
        results["static_mask"] = fit_mask(out["static_mask"], size, crop=crop)
        out["static_mask"] = results["static_mask"].image
    masks = out.get("dynamic_masks")
    if size is not None and isinstance(masks, Sequence) and not isinstance(masks, str):
        fitted = []
        for index, item in enumerate(masks):
            if isinstance(item, Mapping) and _is_local(item.get("mask")):
                key = f"dynamic_masks[{index}].mask"
                results[key] = fit_mask(item["mask"], size, crop=crop)
                item = {**item, "mask": results[key].image}
            fitted.append(item)
        out["dynamic_masks"] = fitted
    for key, result in results.items():
        log.info("fit %s: %s", key, result)
    return FittedFields(out, results)


def fitted_body(fields: Mapping[str, Any], fit: bool | FitMode, *, allow_unknown_model: bool = False,
                report: dict[str, str] | None = None) -> RequestBody:
    """A batch row's request body: its local images fitted first when `fit` is set, and
    its `motion_brushes` file (kling_i2v.motion) made into `dynamic_masks`, with the
    brushes' coordinates moved as fitting moved the picture. `report` gets what fitting
    did, by field (FitResult.summary)."""
    from .motion import BRUSHES_COLUMN, load_brushes
    from .requests import build_request_body

    fields = dict(fields)
    brushes = fields.pop(BRUSHES_COLUMN, None)
    fitted = fit_fields(fields, mode="crop" if fit == "crop" else "pad") if fit else None
    if fitted is not None:
        fields = fitted.fields
        if report is not None:
            report.update((key, result.summary()) for key, result in fitted.results.items())
    if brushes:
        image = fields["image"] = Image.coerce(fields["image"])
        result = fitted.results.get("image") if fitted is not None else None
        size = (image.width or 0, image.height or 0)
        fields["dynamic_masks"] = load_brushes(
            brushes, image=image, place=result.map_point if result and result.changed else None,
            mask_fit=(lambda path: fit_mask(path, size).image) if result and result.changed
            else None)
    return build_request_body(None, fields, allow_unknown_model=allow_unknown_model)


def precheck(path: str) -> tuple[str, str] | None:
    """Why a local file cannot be fitted, as (rule, what was found), from its header only
    (the batch's check before anything is sent); None when Pillow can open it."""
    try:
        pil = pillow()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pil.Image.DecompressionBombWarning)
            with pil.Image.open(path) as img:
                img.size  # noqa: B018 - the header is read; the pixels are not
    except MissingExtraError as exc:
        return str(exc), os.path.basename(path)
    except (pil.UnidentifiedImageError, pil.Image.DecompressionBombError, OSError, ValueError,
            SyntaxError):
        return unreadable_file(path)
    return None


def fit_hint(error: ImageError, *, cli: bool = False) -> str | None:
    """A suggestion to fit, for an ImageError that fitting would cure (format, size,
    smallest side, aspect ratio); None for other errors (an unreadable file, a URL)."""
    limits = rules()
    fixable = (
        f"must be at most {limits.max_bytes / _MIB:g} MB",
        f"each side must be at least {limits.min_side} px",
        "aspect ratio must be between",
        f"must be a {' or '.join(f.upper() for f in limits.formats)} image",
    )
    if not error.rule.startswith(fixable) or "empty" in str(error.value):
        return None
    if error.rule.startswith(fixable[-1]) and error.value not in FITTABLE:
        return None  # not an image at all: converting cannot help
    if cli:
        return "--fit converts, pads and scales it to meet the rules (--crop to crop instead)"
    return f"fit=True converts, pads and scales it to meet the rules (needs {EXTRA})"


# ------------------------------------------------------------------------ helpers


def _shift(before: int, after: int) -> int:
    return (after - before) // 2 if after >= before else -((before - after) // 2)


def _clamp(ratio: Fraction, limit: Fraction) -> Fraction:
    return min(max(ratio, 1 / limit), limit)


def _to_ratio(pil: Any, img: PILImage, ratio: Fraction, *, crop: bool, fill: Any,
              changes: list[str]) -> PILImage:
    """`img` padded (centred) or cropped (centred) to width/height == ratio, to the pixel."""
    w, h = img.size
    if Fraction(w, h) == ratio:
        return img
    # The padded side rounds up and the cropped side rounds down, so that whole pixels
    # never leave the ratio outside the aspect-ratio limit.
    too_wide = Fraction(w, h) > ratio
    if too_wide and not crop:
        new = (w, math.ceil(w / ratio))
    elif too_wide:
        new = (max(1, math.floor(h * ratio)), h)
    elif not crop:
        new = (math.ceil(h * ratio), h)
    else:
        new = (w, max(1, math.floor(w / ratio)))
    if crop:
        left, top = (w - new[0]) // 2, (h - new[1]) // 2
        out: PILImage = img.crop((left, top, left + new[0], top + new[1]))
        changes.append(f"cropped {_dims((w, h))} → {_dims(new)}")
        return out
    mode = (img.mode if img.mode in ("L", "RGB", "RGBA", "LA")
            else "RGBA" if _has_alpha(img) else "RGB")
    base = img if img.mode == mode else img.convert(mode)
    canvas: PILImage = pil.Image.new(mode, new, _fill_for(mode, fill))
    canvas.paste(base, ((new[0] - w) // 2, (new[1] - h) // 2))
    changes.append(f"padded {_dims((w, h))} → {_dims(new)} (black bars)" if fill == _PAD
                   else f"padded {_dims((w, h))} → {_dims(new)}")
    return canvas


def _fill_for(mode: str, fill: Any) -> Any:
    if isinstance(fill, tuple) and mode in ("L", "LA"):
        grey = fill[0]
        return grey if mode == "L" else (grey, 255)
    if isinstance(fill, tuple) and mode == "RGBA":
        return (*fill, 255)
    return fill


def _scale_to_min_side(pil: Any, img: PILImage, min_side: int, changes: list[str]) -> PILImage:
    w, h = img.size
    if min(w, h) >= min_side:
        return img
    scale = Fraction(min_side, min(w, h))
    # The short side lands exactly on the minimum; the long side rounds down, which keeps the
    # ratio no wider than before (so still inside the limit) and still >= the short side.
    new = (min_side, math.floor(h * scale)) if w <= h else (math.floor(w * scale), min_side)
    changes.append(f"scaled {_dims((w, h))} → {_dims(new)}")
    out: PILImage = img.resize(new, pil.Image.Resampling.LANCZOS)
    return out


def _has_alpha(img: PILImage) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        img.mode == "P" and "transparency" in img.info)


def _encode(pil: Any, img: PILImage, lossless: bool, source_fmt: str, changes: list[str],
            label: str) -> tuple[bytes, Literal["jpeg", "png"], PILImage]:
    limit = rules().max_bytes
    min_side = rules().min_side
    converted = f"converted {source_fmt} → " if source_fmt not in ("jpeg", "png") else ""
    if lossless:
        png_ready = (img if img.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")
                     else img.convert("RGBA" if _has_alpha(img) else "RGB"))
        data = _save(png_ready, "PNG")
        if len(data) <= limit:
            if converted:
                changes.insert(0, f"{converted}png")
            return data, "png", png_ready
        converted = (f"converted {source_fmt} → jpeg (as PNG it would be "
                     f"{len(data) / _MIB:.1f} MB), ")
    rgb = _flatten(pil, img, changes)
    for _ in range(_MAX_SHRINKS):
        for quality in _JPEG_QUALITIES:
            data = _save(rgb, "JPEG", quality=quality)
            if len(data) <= limit:
                # First in the list: the format is what a reader looks for first.
                changes.insert(0, f"{converted}quality {quality}" if converted.endswith(", ")
                               else f"{converted or 're-encoded as '}jpeg, quality {quality}")
                return data, "jpeg", rgb
        # Even the lowest quality is too big: fewer pixels, by the area the bytes say. The
        # height follows the width's rounding so the ratio moves by under a pixel.
        w, h = rgb.size
        scale = max(math.sqrt(limit / len(data)) * 0.95, min_side / min(w, h))
        new_w = max(math.floor(w * scale), min_side if w <= h else 1)
        new = (new_w, max(min_side, round(new_w * h / w)))
        if new == (w, h):
            break
        changes.append(f"scaled {_dims((w, h))} → {_dims(new)}")
        rgb = rgb.resize(new, pil.Image.Resampling.LANCZOS)
    raise ImageError(label, f"must fit in {limit / _MIB:g} MB once fitted",
                     f"{len(data) / _MIB:.1f} MB at quality {_JPEG_QUALITIES[-1]}")


def _flatten(pil: Any, img: PILImage, changes: list[str]) -> PILImage:
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] == 255:  # an alpha channel, all opaque
            return rgba.convert("RGB")
        base = pil.Image.new("RGB", rgba.size, _UNDER_ALPHA)
        base.paste(rgba, mask=rgba.getchannel("A"))
        changes.append("put transparency on white")
        return base  # type: ignore[no-any-return]
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("RGB")


def _save(img: PILImage, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _dims(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def _is_local(value: Any) -> bool:
    if isinstance(value, bytes | bytearray | os.PathLike):
        return True
    from .images import _looks_like_url

    return isinstance(value, str) and not _looks_like_url(value)


def _size_of(value: Any) -> tuple[int, int] | None:
    if isinstance(value, Image) and value.width is not None and value.height is not None:
        return value.width, value.height
    return None
