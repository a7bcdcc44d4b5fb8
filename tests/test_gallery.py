"""The batch gallery, looked at as a person would: a real batch against the fake gateway,
then the page opened in a real headless Chromium (Debian's `chromium`, driven by
playwright with `executable_path`; no browser download) from file:// and from a static
web server on loopback.

`KLING_I2V_GALLERY_SCREENSHOT=docs/gallery.png` also copies the screenshot there (that is
how the README's picture is made).

Covers: cli/_media.py
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kling_i2v.cli import main
from kling_i2v.gallery import GalleryKeeper, rebuild_gallery
from kling_i2v.journal import JournalRow, RowState
from kling_i2v.testing import FakeGateway, sample_image_path

TOKEN = "sk-gallery-canary-77c1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags this machine needs (env/machines/python.md): without the networking ones
# Chromium keeps trying hosts it cannot reach.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed; .ci/run installs it and CI never skips")

ROWS = [
    ("cat.png", "the cat jumps onto the sofa", "pro", "5", "downloaded"),
    ("dog.jpg", "the dog <b>wags</b> its tail & runs", "std", "10", "downloaded"),
    ("owl.webp", "the owl turns its head [fake:fail=\x1b[31mred alert\x1b[0m <script>x</script>]",
     "std", "5", "failed"),
]


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished batch of three rows, one failed, run through the command line."""
    from PIL import Image as PILImage

    folder = tmp_path_factory.mktemp("shots")
    sample = PILImage.open(sample_image_path())
    sample.save(folder / "cat.png")
    sample.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT).save(folder / "dog.jpg", quality=90)
    sample.rotate(180).save(folder / "owl.webp")
    manifest = folder / "shots.jsonl"
    import json

    manifest.write_text("".join(json.dumps({"image": i, "prompt": p, "mode": m, "duration": d}) + "\n"
                                for i, p, m, d, _ in ROWS))
    out = folder / "videos"
    with FakeGateway(tokens=(TOKEN,), time_scale=1000) as gw:
        code = main(["batch", str(manifest), "--out", str(out), "--fit", "--poll-interval", "0.05",
                     "--base-url", gw.base_url, "--token", TOKEN])
    assert code == 4  # one row failed
    yield out


def test_the_page_has_a_card_per_row_with_what_the_row_asked_for(batch_out: Path) -> None:
    page = (batch_out / "index.html").read_text()
    assert page.count('<article class="card"') == 3
    states = re.findall(r'<article class="card"[^>]*data-state="([a-z]+)"', page)
    assert states == [row[4] for row in ROWS]
    assert "the dog &lt;b&gt;wags&lt;/b&gt; its tail &amp; runs" in page
    assert "pro · 5 s" in page and "std · 10 s" in page


def test_server_text_is_escaped_and_scrubbed(batch_out: Path) -> None:
    page = (batch_out / "index.html").read_text()
    assert "<script>" not in page and "\x1b" not in page and "<b>" not in page
    assert "red alert" in page  # the reason itself is kept, as text
    assert TOKEN not in page


def test_links_are_relative_and_nothing_is_loaded_from_outside(batch_out: Path) -> None:
    page = (batch_out / "index.html").read_text()
    links = [html.unescape(u) for u in re.findall(r'(?:src|href)="([^"]*)"', page)]
    links.remove("data:,")  # the empty favicon, which spares a request for /favicon.ico
    assert links, page
    for link in links:
        assert not re.match(r"^[a-z]+:|^/", link), link  # no scheme, no absolute path
        assert (batch_out / link).is_file(), link
    assert "<script" not in page and "stylesheet" not in page and "@import" not in page


def test_thumbnails_are_small_jpegs_beside_the_page(batch_out: Path) -> None:
    from PIL import Image as PILImage

    thumbs = sorted((batch_out / "thumbs").iterdir())
    assert len(thumbs) == 3
    for thumb in thumbs:
        with PILImage.open(thumb) as img:
            assert img.format == "JPEG" and max(img.size) <= 320


def test_no_temporary_files_are_left(batch_out: Path) -> None:
    leftovers = [p.name for p in batch_out.rglob(".*.tmp")]
    assert leftovers == []


def test_the_gallery_command_rebuilds_the_page_from_the_journal(
    batch_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(batch_out, moved)
    (moved / "index.html").unlink()
    shutil.rmtree(moved / "thumbs")
    assert main(["gallery", str(moved), "--images", str(batch_out.parent)]) == 0
    assert f"gallery: {moved / 'index.html'}" in capsys.readouterr().out
    rebuilt = (moved / "index.html").read_text()
    original = (batch_out / "index.html").read_text()
    cards = re.compile(r"<article.*?</article>", re.S)
    assert cards.findall(rebuilt) == cards.findall(original)


def test_the_gallery_command_on_a_folder_without_a_journal(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gallery", str(tmp_path)]) == 2
    assert "no batch journal" in capsys.readouterr().err


def test_during_a_run_the_page_reloads_itself_and_at_the_end_it_does_not(tmp_path: Path) -> None:
    keeper = GalleryKeeper(tmp_path, [], min_interval=0.01)
    row = JournalRow(key="k1", line=2, image="cat.png", output="0001-cat.mp4",
                     state=RowState.SUBMITTED, task_id="42")
    keeper.changed(row, {})
    for _ in range(200):
        if (tmp_path / "index.html").exists():
            break
        threading.Event().wait(0.01)
    assert 'http-equiv="refresh"' in (tmp_path / "index.html").read_text()
    keeper.finish([row])
    assert 'http-equiv="refresh"' not in (tmp_path / "index.html").read_text()


def test_without_pillow_a_card_shows_the_image_itself(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from kling_i2v.gallery import Card, write_gallery

    image = tmp_path / "in" / "cat.png"
    image.parent.mkdir()
    image.write_bytes(sample_image_path().read_bytes())
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    card = Card(key="k", line=2, state="pending", image="cat.png", image_path=str(image),
                output="0001-cat.mp4")
    page = write_gallery(tmp_path / "out", [card]).read_text()
    assert 'src="../in/cat.png"' in page


# ------------------------------------------------------------------- in a real browser


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_server(batch_out: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(batch_out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


@needs_chromium
@pytest.mark.parametrize("served", ["file", "http"])
def test_chromium_shows_every_card_and_plays_every_video(
    batch_out: Path, tmp_path: Path, served: str, request: pytest.FixtureRequest,
) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    url = (batch_out / "index.html").as_uri() if served == "file" else request.getfixturevalue(
        "static_server")
    origin = url.rsplit("/", 1)[0]
    problems: list[str] = []
    outside: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 390})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(origin) else outside.append(r.url))
            page.goto(url, timeout=30_000)
            cards = page.locator("article.card")
            assert cards.count() == len(ROWS)
            states = [cards.nth(i).get_attribute("data-state") for i in range(cards.count())]
            assert states == [row[4] for row in ROWS]
            assert [page.locator(f"article.card >> nth={i} >> .state").inner_text()
                    for i in range(len(ROWS))] == [row[4] for row in ROWS]
            assert "red alert" in cards.nth(2).inner_text()
            page.wait_for_function(
                "() => [...document.querySelectorAll('video')]"
                ".every(v => v.readyState >= 1 || v.error)", timeout=30_000)
            durations = page.evaluate(
                "() => [...document.querySelectorAll('video')].map(v => v.error ? -1 : v.duration)")
            assert len(durations) == 2 and all(d > 0 for d in durations), durations
            images = page.evaluate(
                "() => [...document.querySelectorAll('img')].map(i => i.complete && i.naturalWidth)")
            assert len(images) == 3 and all(images), images
            shot = tmp_path / f"gallery-{served}.png"
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert problems == []
    assert outside == []
    assert shot.stat().st_size > 10_000
    target = os.environ.get("KLING_I2V_GALLERY_SCREENSHOT")
    if target and served == "file":
        shutil.copyfile(shot, target)


def test_the_demo_prints_where_its_gallery_is(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from kling_i2v import demo

    assert demo.main(["--out", str(tmp_path), "--seconds", "0.3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the gallery, then the next commands to try
    assert f"gallery: {(tmp_path / 'index.html').resolve()} (open it in a browser)" in lines
    assert lines.index(next(line for line in lines if line.startswith("gallery: "))) < lines.index(
        next(line for line in lines if line.startswith("next, ")))
    page = (tmp_path / "index.html").read_text()
    assert page.count('<article class="card"') == 1 and "<video" in page
