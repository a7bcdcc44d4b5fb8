"""fit: images people have (WebP, HEIC, GIF, huge, tiny, banners) made acceptable.

Every source file is made by Pillow in the test, in its real format. What would be sent is
judged twice: by the client's own header check (`Image.from_bytes`, the check that runs
without fit) and independently by Pillow against the rules written here as literals (10 MiB,
300 px, 2.5:1, JPEG or PNG), so a wrong `x-image-rules` in the spec cannot pass unseen.

Covers: _pillow.py
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import pytest
from kling_i2v import Image, ImageError, KlingClient
from kling_i2v.fit import MissingExtraError, fit_hint, fit_image, fit_mask, precheck
from kling_i2v.images import rules
from kling_i2v.testing import FakeGateway, sample_image_path
from PIL import Image as PILImage

pillow_heif = pytest.importorskip("pillow_heif")
pillow_heif.register_heif_opener()

# The upstream rules (gateway-facts.md, "Rules the upstream Kling documentation adds"),
# restated here rather than read from the spec.
MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 300
MAX_RATIO = 2.5
TOKEN = "sk-fit-test"


def picture(size: tuple[int, int], mode: str = "RGB", *, noise: bool = False) -> PILImage.Image:
    """A test card: a red square at the top-left, blue at the bottom-right, grey between;
    so turning, padding and stretching all show in the pixels."""
    w, h = size
    if noise:  # incompressible: the worst case for the byte limit
        img = PILImage.merge("RGB", [PILImage.effect_noise(size, 80 + 10 * i) for i in range(3)])
    else:
        img = PILImage.new("RGB", size, (128, 128, 128))
        s = max(1, min(w, h) // 5)
        img.paste((255, 0, 0), (0, 0, s, s))
        img.paste((0, 0, 255), (w - s, h - s, w, h))
    if mode == "RGBA":  # a see-through corner
        alpha = PILImage.new("L", size, 255)
        alpha.paste(0, (w // 2, 0, w, h // 2))
        img.putalpha(alpha)
        return img
    return img.convert(mode) if mode != "RGB" else img


def encode(img: PILImage.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def assert_meets_every_rule(data: bytes) -> PILImage.Image:
    Image.from_bytes(data)  # the client's own header check: raises on any broken rule
    assert len(data) <= MAX_BYTES
    img = PILImage.open(io.BytesIO(data))
    assert img.format in ("JPEG", "PNG")
    w, h = img.size
    assert min(w, h) >= MIN_SIDE
    assert max(w, h) / min(w, h) <= MAX_RATIO
    img.load()
    return img


def test_the_literal_rules_are_the_specs() -> None:
    limits = rules()
    assert (limits.max_bytes, limits.min_side, float(limits.max_aspect_ratio)) == (
        MAX_BYTES, MIN_SIDE, MAX_RATIO)
    assert set(limits.formats) == {"jpeg", "png"}


# --------------------------------------------------------------------------- formats

FORMATS = [
    # (name, Pillow format, mode, save options, expected output format, expected change)
    ("webp", "WEBP", "RGB", {}, "jpeg", "converted webp → jpeg"),
    ("heic", "HEIF", "RGB", {}, "jpeg", "converted heif → jpeg"),
    ("gif", "GIF", "P", {}, "png", "converted gif → png"),
    ("bmp", "BMP", "RGB", {}, "png", "converted bmp → png"),
    ("tiff", "TIFF", "RGB", {}, "png", "converted tiff → png"),
    ("webp with alpha", "WEBP", "RGBA", {"lossless": True}, "jpeg", "put transparency on white"),
    ("cmyk jpeg", "JPEG", "CMYK", {}, "jpeg", "CMYK colours made RGB"),
    ("16-bit png", "PNG", "I;16", {}, "png", None),
]


@pytest.mark.parametrize(("name", "fmt", "mode", "options", "out", "change"), FORMATS,
                         ids=[f[0] for f in FORMATS])
def test_each_format_becomes_an_acceptable_jpeg_or_png(
    tmp_path: Path, name: str, fmt: str, mode: str, options: dict[str, object], out: str,
    change: str | None,
) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(encode(picture((800, 600), mode), fmt, **options))
    result = fit_image(path)
    sent = assert_meets_every_rule(result.data)
    assert result.format == out and sent.format == out.upper()
    assert sent.size == (800, 600)  # nothing else needed changing
    if change:
        assert any(c.startswith(change) for c in result.changes), result.changes
    assert result.image.to_api() == base64.b64encode(result.data).decode()


def test_without_fit_those_formats_are_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "photo.webp"
    path.write_bytes(encode(picture((800, 600)), "WEBP"))
    with pytest.raises(ImageError, match="must be a JPEG or PNG image") as caught:
        Image.from_path(path)
    assert "fit=True" in (fit_hint(caught.value) or "")
    assert "--fit" in (fit_hint(caught.value, cli=True) or "")


def test_an_image_that_already_meets_the_rules_is_sent_byte_for_byte(tmp_path: Path) -> None:
    data = encode(picture((640, 480)), "JPEG", quality=90)
    result = fit_image(data)
    assert result.data == data and not result.changed
    assert result.summary().startswith("unchanged (jpeg 640×480")


# --------------------------------------------------------------------------- each rule


def test_a_banner_is_padded_to_the_ratio_limit_with_black_bars_never_stretched() -> None:
    result = fit_image(encode(picture((1500, 500)), "PNG"))
    img = assert_meets_every_rule(result.data).convert("RGB")
    assert img.size == (1500, 600)  # 1500 / 2.5
    assert result.changes == ("padded 1500×500 → 1500×600 (black bars)",)
    assert img.getpixel((750, 10)) == (0, 0, 0)  # the bar above
    assert img.getpixel((750, 590)) == (0, 0, 0)  # the bar below
    # the red square (100×100) sits where it was, 50 px down, still square
    assert img.getpixel((0, 50)) == (255, 0, 0) and img.getpixel((99, 149)) == (255, 0, 0)
    assert img.getpixel((100, 50)) == (128, 128, 128) and img.getpixel((0, 150)) == (128, 128, 128)


def test_a_tall_image_is_padded_at_the_sides() -> None:
    result = fit_image(encode(picture((300, 1000)), "PNG"))
    assert assert_meets_every_rule(result.data).size == (400, 1000)


def test_crop_keeps_the_middle_instead_of_padding() -> None:
    result = fit_image(encode(picture((1500, 500)), "PNG"), crop=True)
    img = assert_meets_every_rule(result.data).convert("RGB")
    assert img.size == (1250, 500) and result.changes == ("cropped 1500×500 → 1250×500",)
    assert img.getpixel((0, 0)) == (128, 128, 128)  # 125 px cut from each side: red was 100 wide


@pytest.mark.parametrize(("size", "expected"), [
    ((200, 200), (300, 300)),
    ((100, 250), (300, 750)),     # exactly 1:2.5: scaled, not padded
    ((250, 60), (750, 300)),      # 4.17:1: padded to 250×100 first, then scaled
])
def test_a_small_image_is_scaled_up_to_the_smallest_side(
    size: tuple[int, int], expected: tuple[int, int],
) -> None:
    result = fit_image(encode(picture(size), "PNG"))
    assert assert_meets_every_rule(result.data).size == expected
    assert f"scaled {size[0]}×{size[1]}" in "; ".join(result.changes) or "padded" in result.changes[0]


def test_a_jpeg_over_the_byte_limit_is_recompressed_then_scaled_down() -> None:
    data = encode(picture((3200, 2400), noise=True), "JPEG", quality=100)
    assert len(data) > MAX_BYTES
    result = fit_image(data, name="IMG_0001.jpg")
    img = assert_meets_every_rule(result.data)
    assert img.format == "JPEG"
    w, h = img.size
    assert abs(w / h - 4 / 3) < 0.001  # scaled, not stretched
    assert result.summary().endswith(f"{len(result.data) / 2**20:.1f} MB")
    assert result.changes[0].startswith("re-encoded as jpeg, quality ")


def test_a_png_too_big_as_png_becomes_jpeg_and_says_why() -> None:
    result = fit_image(encode(picture((2200, 1700), noise=True), "PNG"))
    assert assert_meets_every_rule(result.data).format == "JPEG"
    assert result.changes[0].startswith("converted png → jpeg (as PNG it would be ")


def test_exif_orientation_is_applied() -> None:
    # stored 800×400 with orientation 6 ("turn 90° clockwise to view"): shown 400×800
    exif = PILImage.Exif()
    exif[0x0112] = 6
    data = encode(picture((800, 400)), "JPEG", exif=exif.tobytes(), quality=95)
    assert Image.from_bytes(data).width == 800  # acceptable as is, but sideways
    result = fit_image(data)
    img = assert_meets_every_rule(result.data).convert("RGB")
    assert img.size == (400, 800)
    assert result.changes[1].startswith("turned upright (EXIF orientation 6, 800×400 → 400×800")
    # the red corner (top-left as stored) is top-right once turned clockwise
    r, g, b = img.getpixel((390, 10))
    assert r > 200 and g < 60 and b < 60


def test_the_first_frame_of_an_animation() -> None:
    frames = [picture((600, 400)), PILImage.new("RGB", (600, 400), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    result = fit_image(buf.getvalue())
    assert "took the first of 2 frames" in result.changes
    assert_meets_every_rule(result.data)


def test_what_is_not_an_image_is_an_image_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not a picture at all")
    with pytest.raises(ImageError, match=r"notes\.txt: is not an image Pillow can read \(got text\)$"):
        fit_image(path)
    with pytest.raises(ImageError, match="an empty file"):
        fit_image(b"")
    with pytest.raises(FileNotFoundError):
        fit_image(tmp_path / "missing.webp")


# --------------------------------------------------------------------------- masks


def test_a_mask_is_fitted_to_the_images_aspect_ratio_and_size() -> None:
    mask = PILImage.new("L", (500, 500), 0)
    mask.paste(255, (200, 200, 300, 300))
    result = fit_mask(encode(mask, "PNG"), (1280, 720))
    img = PILImage.open(io.BytesIO(result.data))
    assert (img.format, img.mode, img.size) == ("PNG", "L", (1280, 720))
    assert set(img.tobytes()) == {0, 255}  # still a two-tone mask
    assert img.getpixel((640, 360)) == 255 and img.getpixel((10, 360)) == 0
    assert result.changes[0] == "padded 500×500 → 889×500"


# --------------------------------------------------------------------------- hints


@pytest.mark.parametrize(("what", "data"), [
    ("format", lambda: encode(picture((800, 600)), "WEBP")),
    ("smallest side", lambda: encode(picture((200, 640)), "PNG")),
    ("aspect ratio", lambda: encode(picture((1500, 500)), "PNG")),
])
def test_every_fixable_refusal_suggests_fit(what: str, data: object) -> None:
    with pytest.raises(ImageError) as caught:
        Image.from_bytes(data())  # type: ignore[operator]
    assert fit_hint(caught.value, cli=True), what


def test_a_refusal_fit_cannot_cure_gets_no_hint() -> None:
    with pytest.raises(ImageError) as caught:
        Image.from_url("ftp://example.invalid/cat.png")
    assert fit_hint(caught.value) is None


def test_without_the_extra_fit_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(sample_image_path().read_bytes())
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'kling-i2v\[images\]'"):
        Image.from_path(path, fit=True)
    assert Image.from_path(path).kind == "png"  # without fit nothing needs Pillow


# --------------------------------------------------------------------------- sent


def test_create_with_fit_sends_an_image_that_meets_every_rule(tmp_path: Path) -> None:
    path = tmp_path / "phone.heic"
    path.write_bytes(encode(picture((2016, 756)), "HEIF"))  # 2.67:1, a panorama
    with FakeGateway(tokens=(TOKEN,), time_scale=1000) as gw, \
            KlingClient(TOKEN, base_url=gw.base_url) as kling:
        with pytest.raises(ImageError):
            kling.create(image=path, prompt="the sea")
        assert gw.count(on="create") == 0
        kling.create(image=path, prompt="the sea", fit=True)
        (sent,) = [r for r in gw.requests if r.target == "create"]
    img = assert_meets_every_rule(base64.b64decode(sent.json["image"], validate=True))
    assert img.size == (2016, 807)  # 2016 / 2.5 = 806.4, rounded up


def test_image_from_path_with_fit(tmp_path: Path) -> None:
    path = tmp_path / "thumb.webp"
    path.write_bytes(encode(picture((250, 250)), "WEBP"))
    image = Image.from_path(path, fit="crop")
    assert (image.kind, image.width, image.height) == ("jpeg", 300, 300)


# --------------------------------------------------------------------------- command line


def test_cli_create_fit_wait_out_prints_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kling_i2v.cli import main

    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    photo = tmp_path / "photo.heic"
    photo.write_bytes(encode(picture((640, 200)), "HEIF"))  # 3.2:1 and HEIC
    out = tmp_path / "v.mp4"
    with FakeGateway(tokens=(TOKEN,), time_scale=1000) as gw:
        connect = ["--base-url", gw.base_url, "--token", TOKEN]
        code = main(["create", str(photo), "--prompt", "x", *connect])
        err = capsys.readouterr().err
        assert code == 2 and gw.count(on="create") == 0  # refused before sending...
        assert "must be a JPEG or PNG image" in err and "--fit" in err  # ...suggesting --fit

        code = main(["create", str(photo), "--prompt", "x", "--fit", "--wait", "--out", str(out),
                     "--poll-interval", "0.05", *connect])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 0, err
        (sent,) = [r for r in gw.requests if r.target == "create"]
    assert (f"fit image {photo}: converted heif → jpeg, quality 95; "
            "padded 640×200 → 640×256 (black bars); scaled 640×256 → 750×300;") in err
    assert out.stat().st_size > 0
    assert assert_meets_every_rule(base64.b64decode(sent.json["image"])).size == (750, 300)


def test_cli_create_fit_json_reports_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kling_i2v.cli import main

    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    photo = tmp_path / "photo.webp"
    photo.write_bytes(encode(picture((1200, 900)), "WEBP"))
    with FakeGateway(tokens=(TOKEN,), time_scale=1000) as gw:
        connect = ["--base-url", gw.base_url, "--token", TOKEN]
        for wait in ([], ["--wait", "--poll-interval", "0.05"]):
            assert main(["--json", "create", str(photo), "--prompt", "x", "--fit", *wait, *connect]) == 0
            document = json.loads(capsys.readouterr().out)
            assert document["fit"]["image"].startswith("converted webp → jpeg, quality 95;")
            assert document["warnings"] == []


# an MP4's first bytes: a 24-byte `ftyp` box with the brand mp42
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free"


@pytest.mark.parametrize(("name", "data", "found"), [
    ("notes.txt", b"hello world\n", "text"),
    ("clip.mp4", MP4_HEAD + bytes(200), "MP4 video data"),
    ("doc.pdf", b"%PDF-1.7\n" + bytes(100), "PDF data"),
])
def test_a_file_that_is_not_an_image_gets_no_fit_hint(name: str, data: bytes, found: str,
                                                      tmp_path: Path) -> None:
    with pytest.raises(ImageError) as caught:
        Image.from_bytes(data, name=name)
    assert caught.value.value == found
    assert fit_hint(caught.value, cli=True) is None and fit_hint(caught.value) is None
    # and --fit says what it is in plain words, no exception class
    path = tmp_path / name
    path.write_bytes(data)
    assert precheck(str(path)) == ("is not an image Pillow can read", f"{name}: {found}")
    with pytest.raises(ImageError) as fitting:
        fit_image(path)
    assert str(fitting.value) == f"{path}: is not an image Pillow can read (got {found})"
    assert "Error" not in str(fitting.value)


def test_a_damaged_png_is_called_that(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(encode(picture((800, 600)), "PNG")[:40])
    assert precheck(str(path)) == ("is not an image Pillow can read", "cut.png: damaged PNG data")
