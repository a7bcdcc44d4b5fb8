"""The command line's media parts: `--fit`/`--crop` (make local images meet the image rules)
and the batch gallery (`kling-i2v gallery OUT`, and the page a batch keeps)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exit import ExitCode
from ._options import Parser, add_command
from ._output import Output

if TYPE_CHECKING:
    from ..gallery import GalleryKeeper
    from ..manifest import ManifestRow

__all__ = ["add_fit_options", "fit_for_cli", "fit_hint_for", "gallery_keeper", "note_gallery",
           "register"]


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("making images acceptable (needs kling-i2v[images])")
    group.add_argument(
        "--fit", dest="fit", action="store_const", const="pad", default=False,
        help="convert any image Pillow reads (WebP, HEIC, GIF, ...) to JPEG or PNG, turn it "
             "upright, pad it to the aspect-ratio limit and scale it to the size rules; prints "
             "what changed")
    group.add_argument("--crop", dest="fit", action="store_const", const="crop",
                       help="like --fit, but crop to the aspect-ratio limit instead of padding")


def fit_for_cli(fields: Mapping[str, Any], args: argparse.Namespace, output: Output,
                report: dict[str, str]) -> dict[str, Any]:
    """`fields` with its local images fitted; each change printed (stderr) before sending,
    and put in `report` by field (for --json)."""
    from ..fit import fit_fields

    fitted = fit_fields(fields, mode=args.fit)
    for key, result in fitted.results.items():
        output.note(f"fit {key} {result.source}: {result.summary()}", style=None)
        report[key] = result.summary()
    return fitted.fields


def register(commands: Any, common: Parser) -> None:
    """`kling-i2v gallery OUT`."""
    gallery = add_command(
        commands, common, "gallery", _gallery,
        "rebuild a batch's gallery page, OUT/index.html, from its journal",
        "Write OUT/index.html: one card per row of the batch in OUT, with a thumbnail of its "
        "image, its prompt and options, its state or failure reason, and its video. A batch "
        "keeps this page up to date by itself; this rebuilds it (after moving the folder, or "
        "deleting the page). Open it in a browser: it needs no server and no network.")
    gallery.add_argument("out", type=Path, metavar="OUT", help="the batch's output folder")
    gallery.add_argument("--images", type=Path, metavar="DIR",
                         help="the folder the manifest's image paths are relative to, for "
                              "thumbnails not made yet (default: the current folder)")


def _gallery(args: argparse.Namespace, output: Output) -> ExitCode:
    from ..gallery import rebuild_gallery

    page = rebuild_gallery(args.out, images_dir=args.images)
    output.emit({"gallery": str(page.resolve())},
                lambda out: out.line(f"gallery: {page}  (open it in a browser)"))
    return ExitCode.OK


def gallery_keeper(out: Path, rows: Sequence[ManifestRow], source: object) -> GalleryKeeper:
    from ..gallery import GalleryKeeper

    return GalleryKeeper(out, rows, title=f"kling-i2v batch {Path(str(source)).name}")


def note_gallery(output: Output, page: Path) -> None:
    output.note(f"gallery: {page}  (open it in a browser)", style=None)


def fit_hint_for(error: BaseException, args: argparse.Namespace) -> str | None:
    """`--fit` suggested for an image refusal that fitting would cure, on a command that
    has --fit and was run without it."""
    from ..errors import ImageError
    from ..fit import fit_hint

    if isinstance(error, ImageError) and getattr(args, "fit", None) is False:
        return fit_hint(error, cli=True)
    return None
