"""A gallery for every batch: `OUT/index.html`, one card per row, kept up to date.

    kling-i2v batch shots.csv --out videos      writes videos/index.html as rows finish
    kling-i2v gallery videos                    rebuilds it from the journal

Each card shows a thumbnail of the input image (a small JPEG in `OUT/thumbs/`), the prompt,
model, mode and duration, the row's state or failure reason, and the video in a `<video>`
element once it is downloaded. Links are relative and percent-encoded, and the page has no
external assets or scripts, so it works from file:// and from any static web server, and
the folder can be moved as a whole. While a batch runs the page reloads itself every 15 s.

The page and each thumbnail are written to a temporary file beside the target and renamed
into place, so a browser (or a crash) never sees half a page. Writing happens on a thread
of its own at most every two seconds, so the batch's event loop never waits for it.
Thumbnails need Pillow (the `kling-i2v[images]` extra); without it a card shows the input
image itself when it is a local JPEG or PNG.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._html import badge, href, text
from .journal import JOURNAL_NAME, Journal, JournalRow, RowState

if TYPE_CHECKING:
    from .batch import BatchObserver
    from .manifest import ManifestRow
    from .tasks import Task

__all__ = ["INDEX_NAME", "THUMBS_DIR", "Card", "GalleryKeeper", "gallery_for_task",
           "rebuild_gallery", "write_gallery"]

log = logging.getLogger("kling_i2v")

INDEX_NAME = "index.html"
THUMBS_DIR = "thumbs"
THUMB_SIDE = 320
_REFRESH_SECONDS = 15
_MIN_INTERVAL = 2.0


@attrs.frozen
class Card:
    """What one card shows."""

    key: str
    line: int
    state: str
    image: str
    """The image as the manifest wrote it."""
    image_path: str | None
    """The local file it was read from, when there is one."""
    output: str
    """The video's path relative to the output folder."""
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    task_id: str | None = None
    reason: str | None = None


def cards_for(rows: Iterable[JournalRow], fields: Mapping[str, Mapping[str, Any]],
              images: Mapping[str, str | None] | None = None) -> list[Card]:
    """Cards for journal rows; `fields` and `images` (local paths) by row key."""
    images = images or {}
    return [Card(key=r.key, line=r.line, state=r.state.value, image=r.image,
                 image_path=images.get(r.key), output=r.output, fields=fields.get(r.key, {}),
                 task_id=r.task_id, reason=r.reason)
            for r in sorted(rows, key=lambda r: (r.line, r.key))]


def write_gallery(out_dir: str | os.PathLike[str], cards: Sequence[Card], *,
                  title: str = "kling-i2v batch", running: bool = False) -> Path:
    """Write `OUT/index.html` (and the missing thumbnails) atomically; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    thumbs = {card.key: _thumbnail(out, card) for card in cards}
    page = _page(out, cards, thumbs, title=title, running=running)
    target = out / INDEX_NAME
    _atomic_write(target, page.encode("utf-8"))
    return target


def rebuild_gallery(out_dir: str | os.PathLike[str], *,
                    images_dir: str | os.PathLike[str] | None = None) -> Path:
    """`kling-i2v gallery OUT`: the page from the journal alone. Image paths in the journal
    are as the manifest wrote them, so thumbnails that do not exist yet are made from
    `images_dir` (the manifest's folder; default: the current one)."""
    out = Path(out_dir)
    if not out.is_dir():
        what = "this is not a folder" if out.exists() else "this folder does not exist"
        raise FileNotFoundError(2, f"{what} (give the batch's --out folder)", str(out))
    if not (out / JOURNAL_NAME).is_file():
        raise FileNotFoundError(2, f"no batch journal ({JOURNAL_NAME}) in this folder", str(out))
    with Journal(out / JOURNAL_NAME) as journal:
        rows = journal.rows()
        fields = {row.key: journal.fields(row.key) for row in rows}
    base = Path(images_dir) if images_dir is not None else Path.cwd()
    images = {r.key: str(base / r.image) for r in rows if "://" not in r.image}
    return write_gallery(out, cards_for(rows, fields, images), title=f"batch in {out.name}")


def gallery_for_task(out_dir: str | os.PathLike[str], task: Task, video: Path, *,
                     image: str, fields: Mapping[str, Any]) -> Path:
    """A one-card gallery for a single downloaded task (what `make demo` shows)."""
    out = Path(out_dir)
    card = Card(key=f"task-{task.task_id}", line=1, state=RowState.DOWNLOADED.value,
                image=Path(image).name, image_path=image,
                output=os.path.relpath(video, out), fields=fields, task_id=task.task_id)
    return write_gallery(out, [card], title=f"kling-i2v task {task.task_id}")


class GalleryKeeper:
    """Keeps `OUT/index.html` up to date during a batch: give it to `run_batch` as the
    observer (it passes everything on to `inner`, the progress display), then call
    `finish()` with the result's rows."""

    def __init__(self, out_dir: str | os.PathLike[str], rows: Sequence[ManifestRow], *,
                 inner: BatchObserver | None = None, title: str = "kling-i2v batch",
                 min_interval: float = _MIN_INTERVAL) -> None:
        self.path = Path(out_dir) / INDEX_NAME
        self._out = Path(out_dir)
        self.inner = inner
        """Told everything this keeper is told (the progress display); settable later."""
        self._title = title
        self._interval = min_interval
        self._fields = {r.key: dict(r.written) for r in rows}
        self._images = {r.key: _local_image(r.fields) for r in rows}
        self._rows: dict[str, JournalRow] = {}
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    # BatchObserver
    def changed(self, row: JournalRow, counts: Mapping[RowState, int]) -> None:
        if self.inner is not None:
            self.inner.changed(row, counts)
        with self._lock:
            self._rows[row.key] = row
        if row.state.final or row.state is RowState.SUBMITTED:
            self._dirty.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._writer, name="kling-i2v-gallery",
                                                daemon=True)
                self._thread.start()

    def note(self, message: str) -> None:
        if self.inner is not None:
            self.inner.note(message)

    def finish(self, rows: Iterable[JournalRow]) -> Path:
        """The final page, from the batch's rows as they ended (no self-reload)."""
        self._closing = True
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._rows.update({r.key: r for r in rows})
            snapshot = list(self._rows.values())
        return write_gallery(self._out, cards_for(snapshot, self._fields, self._images),
                             title=self._title)

    def _writer(self) -> None:
        # Waits first, then writes what changed meanwhile: the page costs at most one write
        # per interval, and none in a batch's first moments, when the event loop (which
        # shares the interpreter with this thread) is busiest sending creates.
        while not self._closing:
            self._dirty.wait()
            self._stop.wait(self._interval)
            if self._closing:
                return
            self._dirty.clear()
            with self._lock:
                snapshot = list(self._rows.values())
            try:
                write_gallery(self._out, cards_for(snapshot, self._fields, self._images),
                              title=self._title, running=True)
            except Exception as exc:  # noqa: BLE001 - a gallery problem must not stop a batch
                log.warning("gallery %s not updated: %s", self.path, exc)


# ---------------------------------------------------------------------------- the page

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#f6f8fa;color:#1f2328}
h1{font-size:1.3em;margin:0 0 .3em}
.summary{margin-bottom:1em;color:#57606a}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1em}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;overflow:hidden}
.media{display:flex;gap:4px;background:#24292f;align-items:center;justify-content:center;min-height:120px}
.media img{max-width:40%;max-height:180px;object-fit:contain}
.media video{max-width:60%;max-height:180px}
.media .none{color:#8c959f;font-size:.85em;padding:1em}
.body{padding:.6em .8em}
.prompt{margin:.4em 0;white-space:pre-wrap;overflow-wrap:anywhere}
.params,.ids{color:#57606a;font-size:.85em}
.reason{color:#cf222e;font-size:.9em;overflow-wrap:anywhere}
"""


def _page(out: Path, cards: Sequence[Card], thumbs: Mapping[str, str | None], *,
          title: str, running: bool) -> str:
    counts: dict[str, int] = {}
    for card in cards:
        counts[card.state] = counts.get(card.state, 0) + 1
    summary = " ".join(f"{badge(state)} {n}" for state, n in sorted(counts.items()))
    refresh = (f'<meta http-equiv="refresh" content="{_REFRESH_SECONDS}">' if running else "")
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    status = "running: this page reloads itself" if running else "finished"
    body = "\n".join(_card(out, card, thumbs.get(card.key)) for card in cards)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{refresh}'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        # an empty icon: otherwise browsers ask the server for /favicon.ico (a 404)
        '<link rel="icon" href="data:,">'
        f"<title>{text(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{text(title)}</h1>"
        f'<div class="summary">{len(cards)} rows · {summary} · {text(status)} · updated '
        f"{text(when)}</div>"
        f'<main class="grid">\n{body}\n</main></body></html>\n'
    )


def _card(out: Path, card: Card, thumb: str | None) -> str:
    fields = card.fields
    image = (f'<img class="thumb" src="{href(thumb)}" alt="input image {text(card.image, 200)}">'
             if thumb else f'<div class="none">{text(card.image, 200)}</div>')
    video_file = out / card.output
    if card.state == RowState.DOWNLOADED.value and video_file.is_file():
        video = (f'<video controls muted preload="metadata" src="{href(card.output)}"></video>')
    else:
        video = '<div class="none">no video yet</div>' if card.state != "failed" else ""
    params = " · ".join(text(v) for v in (
        fields.get("model_name"), fields.get("mode"),
        f"{fields['duration']} s" if fields.get("duration") not in (None, "") else None,
    ) if v)
    reason = (f'<div class="reason">{text(card.reason)}</div>'
              if card.reason and card.state in ("failed", "ambiguous") else "")
    task = f"task {text(card.task_id)} · " if card.task_id else ""
    return (
        f'<article class="card" id="row-{text(card.key)}" data-key="{text(card.key)}" '
        f'data-state="{text(card.state)}"><div class="media">{image}{video}</div>'
        f'<div class="body"><div>{badge(card.state)} line {int(card.line)}</div>'
        f'<p class="prompt">{text(fields.get("prompt") or "")}</p>'
        f'<div class="params">{params}</div>{reason}'
        f'<div class="ids">{task}{text(card.output, 200)}</div></div></article>'
    )


# ---------------------------------------------------------------------------- files


def _thumbnail(out: Path, card: Card) -> str | None:
    """The thumbnail's path relative to `out`, made if missing; without Pillow, the input
    image itself when it is a local JPEG or PNG; None when there is nothing to show."""
    relative = f"{THUMBS_DIR}/{card.key}.jpg"
    target = out / relative
    if target.is_file():
        return relative
    source = card.image_path
    if not source or not Path(source).is_file():
        return None
    from ._pillow import MissingExtraError

    try:
        data = _thumbnail_bytes(source)
    except MissingExtraError:
        from ._imageheader import image_suffixes

        if Path(source).suffix.lower() in image_suffixes():
            return os.path.relpath(source, out)
        return None
    except (OSError, ValueError):  # an unreadable image: the card says so by having none
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(target, data)
    return relative


def _thumbnail_bytes(source: str) -> bytes:
    import io

    from ._pillow import decode, orientation, pillow, read_source

    pil = pillow()
    label, raw = read_source(source, None)
    img = decode(label, raw, draft=(THUMB_SIDE, THUMB_SIDE))
    turned = pil.ImageOps.exif_transpose(img) if orientation(img) != 1 else img
    small = turned.convert("RGB")
    small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _local_image(fields: Mapping[str, Any]) -> str | None:
    value = fields.get("image") or fields.get("image_tail")
    return value if isinstance(value, str) and "://" not in value else None


def _atomic_write(target: Path, data: bytes) -> None:
    # os.open with 0o666 lets the umask decide the mode, as a plain open() would: a page
    # that only its owner could read would be useless behind a web server.
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
