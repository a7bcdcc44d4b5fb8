"""`batch --fit` on the images people have: a folder batch with --fit takes every format
Pillow reads, without it keeps to the formats the API takes and says what it left out and
why; a refusal fitting would cure suggests --fit; --json reports what fit did per row.

The files are made by Pillow here, in their real formats; what reached the gateway is
judged against the upstream rules written as literals (gateway-facts.md, "Rules the
upstream Kling documentation adds": JPEG or PNG, at most 10 MB, sides of 300 px or more,
aspect ratio within 2.5:1)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from kling_i2v.cli import ExitCode
from kling_i2v.testing import FakeGateway, sample_image_path

from tests.cli.conftest import Cli, write_manifest
from tests.imagegen import make_png

PIL = pytest.importorskip("PIL.Image")
FAST = ("--poll-interval", "0.05")
# what a phone, the web and old tools give: (file name, Pillow format, size)
OTHER_FORMATS = [("beach.webp", "WEBP", (1200, 900)), ("scan.bmp", "BMP", (640, 480)),
                 ("loop.gif", "GIF", (300, 1000)), ("print.tiff", "TIFF", (500, 400))]


def _folder(tmp_path: Path, *, heic: bool = False) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.png").write_bytes(sample_image_path().read_bytes())
    (folder / "tiny.png").write_bytes(make_png(200, 200))
    for name, fmt, size in OTHER_FORMATS:
        PIL.new("RGB", size, (30, 120, 200)).save(folder / name, fmt)
    if heic:
        pillow_heif = pytest.importorskip("pillow_heif")
        pillow_heif.register_heif_opener()
        PIL.new("RGB", (800, 600), (200, 120, 30)).save(folder / "phone.heic", "HEIF")
    (folder / "notes.txt").write_text("not a picture")
    return folder


def _sent_images(gateway: FakeGateway) -> list[bytes]:
    return [base64.b64decode(r.json["image"]) for r in gateway.requests if r.target == "create"]


def _meets_the_rules(data: bytes) -> None:
    with PIL.open(io.BytesIO(data)) as img:
        assert img.format in ("JPEG", "PNG")
        assert min(img.size) >= 300 and max(img.size) / min(img.size) <= 2.5
    assert len(data) <= 10 * 1024 * 1024


def test_without_fit_a_folder_keeps_to_jpeg_and_png_and_says_what_it_left_out(
        cli: Cli, fake_gateway: FakeGateway, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    run = cli("--json", "batch", str(folder), "--prompt", "waves", "--out", "videos", "--dry-run",
              "--skip-invalid")
    plan = run.json()
    assert run.code == ExitCode.OK and (plan["rows"], plan["valid"]) == (2, 1)  # cat.png, tiny.png
    assert (f"{folder}: 5 of 7 file(s) left out: 4 not .jpg/.jpeg/.png, the files the API takes "
            "(beach.webp, loop.gif, print.tiff, scan.bmp); --fit converts them; "
            "1 not an image (notes.txt)") in plan["warnings"]
    # the one that is there but too small: fitting cures it, and the refusal says so
    (problem,) = plan["problems"]
    assert problem.startswith("tiny.png: image: each side must be at least 300 px (tiny.png: 200x200)")
    assert problem.endswith("— --fit converts, pads and scales it to meet the rules (--crop to crop instead)")

    text = cli("batch", str(folder), "--prompt", "waves", "--out", "videos")
    assert text.code == ExitCode.INVALID_INPUT
    assert "warning: " + plan["warnings"][0] in text.err
    assert "--fit converts, pads and scales it" in text.err and fake_gateway.requests == []
    refused = cli("--json", "batch", str(folder), "--prompt", "waves", "--out", "videos").json()["error"]
    assert refused["warnings"] == plan["warnings"] and refused["problems"] == plan["problems"]


def test_with_fit_a_folder_takes_every_format_pillow_reads(cli: Cli, fake_gateway: FakeGateway,
                                                          tmp_path: Path) -> None:
    folder = _folder(tmp_path, heic=True)
    run = cli("--json", "batch", str(folder), "--prompt", "waves", "--out", "videos", "--fit", *FAST)
    assert run.code == ExitCode.OK, run.out + run.err
    rows = {row["image"]: row for row in run.json()["rows"]}
    assert set(rows) == {"beach.webp", "cat.png", "loop.gif", "phone.heic", "print.tiff",
                         "scan.bmp", "tiny.png"}
    assert all(row["state"] == "downloaded" for row in rows.values())
    sent = _sent_images(fake_gateway)
    assert len(sent) == 7
    for data in sent:
        _meets_the_rules(data)
    # the fit report of each row, as the CLI prints it for create
    fits = {image: row["fit"]["image"] for image, row in rows.items()}
    assert fits["beach.webp"].startswith("converted webp → jpeg, quality 95")
    assert fits["phone.heic"].startswith("converted heif → jpeg")
    assert fits["loop.gif"].startswith("converted gif → png; padded 300×1000 → 400×1000")
    assert fits["tiny.png"].startswith("scaled 200×200 → 300×300")
    assert fits["cat.png"].startswith("unchanged (png 640×360")
    assert run.json()["warnings"] == [
        f"{folder}: 1 of 8 file(s) left out: 1 not an image Pillow reads (notes.txt)"]


def test_with_fit_the_summary_prints_what_fit_changed(cli: Cli, fake_gateway: FakeGateway,
                                                      good_image: Path) -> None:
    PIL.new("RGB", (1500, 500), (9, 9, 9)).save(good_image.parent / "banner.webp", "WEBP")
    manifest = write_manifest(good_image.parent, "image,prompt\nbanner.webp,the sea\n")
    refused = cli("batch", str(manifest), "--out", "videos")
    assert refused.code == ExitCode.INVALID_INPUT and fake_gateway.requests == []
    assert "must be a JPEG or PNG image" in refused.err and "--fit converts" in refused.err

    run = cli("batch", str(manifest), "--out", "videos", "--fit", *FAST)
    assert run.code == ExitCode.OK, run.text
    assert ("line 2: fit image banner.webp: converted webp → jpeg, quality 95; "
            "padded 1500×500 → 1500×600 (black bars)") in run.text
