"""Everything about a batch that can be known before the first create, and the plan.

    report = preflight("shots.csv", {"mode": "pro"})
    if report.problems: ...          # nothing may be sent (unless the valid rows are run alone)
    report.problem_lines()           # repeats told once: "20 rows (...): prompt: ... — add a ..."
    plan = make_plan(report.rows, Path("videos"))

A folder batch takes the files of the spec's image formats (x-image-rules), or with `fit` every
format Pillow decodes (.webp, .heic, .gif, .bmp, .tiff, ...: fit converts them); the files
it leaves out are counted, with why, among the warnings.

Checked for every row, without the network: the request against openapi.yaml (manifest.py),
every local image against the upstream image rules (its header: format, size, sides,
aspect ratio — the same `Image.from_path` the create uses), the model's reported
capabilities (capabilities.py: warnings, never errors, because the gateway decides), and
rows that ask for exactly the same video (a warning: each is made and paid for).

The plan reads the output folder's journal, if there is one, without changing it: which
rows would be created, polled, downloaded, or are done; and per model, mode and duration
the number of tasks to create and the seconds of video they ask for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ._imageheader import image_suffixes
from .errors import ImageError
from .fields import request_fields
from .manifest import Manifest, ManifestRow, Problem, local_images, read_manifest
from .motion import BRUSHES_COLUMN

__all__ = ["Notice", "Plan", "Preflight", "make_plan", "preflight"]

_SHOWN_PLACES = 4
"""How many rows a grouped line names before "and N more"."""


@attrs.frozen
class Notice:
    """A warning about one row: it is sent anyway."""

    where: str
    line: int
    text: str


@attrs.frozen
class Preflight:
    manifest: Manifest
    rows: tuple[ManifestRow, ...]
    """The rows that passed every check."""
    problems: tuple[Problem, ...]
    warnings: tuple[Notice, ...]
    left_out: tuple[tuple[str, str], ...] = ()
    """Files of a folder batch that are not rows: (file name, why)."""

    @property
    def total(self) -> int:
        return len(self.rows) + self.invalid

    @property
    def invalid(self) -> int:
        """Rows with at least one problem."""
        return len({p.line for p in self.problems if p.line})

    def problem_lines(self) -> list[str]:
        return _grouped(self.problems, lambda p: (p.field, p.rule, p.got, p.hint), Problem.told)

    def warning_lines(self) -> list[str]:
        lines = _grouped(self.warnings, lambda w: (w.text,), lambda w, places: f"{places}: {w.text}")
        return ([self._left_out_line()] if self.left_out else []) + lines

    def _left_out_line(self) -> str:
        by_why: dict[str, list[str]] = {}
        for name, why in self.left_out:
            by_why.setdefault(why, []).append(name)
        files = len(self.left_out)
        kinds = [f"{len(names)} {why}".replace("{names}", _names(names))
                 for why, names in by_why.items()]
        return (f"{self.manifest.source}: {files} of {files + self.total} file(s) left out: "
                + "; ".join(kinds))


def preflight(source: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None, *,
              allow_unknown_model: bool = False, fit: bool = False) -> Preflight:
    """Check every row of a manifest or folder (see the module's docstring). Raises
    ManifestError only when the manifest as a whole cannot be read."""
    from .capabilities import capability_warnings

    suffixes = folder_suffixes(fit)
    manifest = read_manifest(source, defaults, allow_unknown_model=allow_unknown_model,
                             folder_suffixes=suffixes if fit else None)
    problems = list(manifest.problems)
    warnings: list[Notice] = []
    valid: list[ManifestRow] = []
    images: dict[str, tuple[str, str, str | None] | None] = {}  # each file is read once
    sizes: dict[str, tuple[int, int] | None] = {}
    told = {(p.line, p.field) for p in problems}  # a missing image is said once, by the manifest
    for row in (*manifest.rows, *manifest.invalid_rows):
        found = [Problem(where=row.where, line=row.line, field=name, rule=broken[0], got=broken[1],
                         hint=broken[2])
                 for name, path in local_images(row.fields) if (row.line, name) not in told
                 and (broken := images[path] if path in images
                     else images.setdefault(path, _image(path, fit))) is not None]
        problems += found
        if not found and row.key:
            found = [Problem(where=row.where, line=row.line, field=BRUSHES_COLUMN, rule=text)
                     for text in _brushes_on_image(row.fields, fit, sizes)]
            problems += found
        if found or not row.key:
            continue
        valid.append(row)
        # an unlisted model gets here only with allow_unknown_model, and is warned about
        # by capability_warnings (refused, naming the option, by read_manifest otherwise)
        warnings += [Notice(row.where, row.line, text) for text in capability_warnings(row.written)]
    problems.sort(key=lambda p: p.line)
    warnings += _duplicates(valid)
    return Preflight(manifest=manifest, rows=tuple(valid), problems=tuple(problems),
                     warnings=tuple(warnings), left_out=_left_out(Path(source), suffixes, fit))


def folder_suffixes(fit: bool) -> frozenset[str]:
    """The files a folder batch takes as images: those of the formats the API takes (the
    spec's x-image-rules formats, _imageheader.image_suffixes), or with `fit` every format
    Pillow decodes here, which fit turns into one of those."""
    from ._pillow import readable_suffixes

    return frozenset(image_suffixes()) | (readable_suffixes() if fit else frozenset())


def _left_out(folder: Path, taken: frozenset[str], fit: bool) -> tuple[tuple[str, str], ...]:
    """The files of a folder batch that are not rows, with why ({names} stands for them)."""
    if not folder.is_dir():
        return ()
    from ._pillow import EXTRA, readable_suffixes

    convertible = readable_suffixes() - taken
    api_files = "/".join(image_suffixes())  # ".jpg/.jpeg/.png": the spec's image formats
    if fit:
        why_other = "not an image Pillow reads ({names})"
    elif convertible:
        why_other = "not an image ({names})"
    else:  # without Pillow nothing says which of them --fit would take
        why_other = (f"not {api_files} ({{names}}); --fit (with {EXTRA}) takes any image "
                     "Pillow reads")
    left = []
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if path.is_file() and suffix not in taken:
            why = (f"not {api_files}, the files the API takes ({{names}}); --fit converts them"
                   if suffix in convertible else why_other)
            left.append((path.name, why))
    return tuple(left)


def _names(names: Sequence[str]) -> str:
    more = len(names) - _SHOWN_PLACES
    return ", ".join(names[:_SHOWN_PLACES]) + (f" and {more} more" if more > 0 else "")


def _image(path: str, fit: bool = False) -> tuple[str, str, str | None] | None:
    """The upstream image rule one local file breaks, as (rule, got, hint); None if none.
    With `fit` (kling_i2v.fit), any image Pillow can open will be made to meet them;
    without it, a refusal fitting would cure says so."""
    from .fit import fit_hint, precheck
    from .images import Image

    if fit:
        broken = precheck(path)
        return (*broken, None) if broken else None
    try:
        Image.from_path(path)
    except ImageError as exc:
        return exc.rule, f"{os.path.basename(path)}: {exc.value}", fit_hint(exc, cli=True)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}", os.path.basename(path), None
    return None


def _brushes_on_image(fields: Mapping[str, Any], fit: bool,
                      sizes: dict[str, tuple[int, int] | None]) -> list[str]:
    """The row's motion brushes (kling_i2v.motion) checked against its image's size, read
    from the header: a point off the image is refused here, not after other rows were
    created. `sizes` keeps each image's size for the rows that share it."""
    from .motion import check_brushes_on

    brushes = fields.get(BRUSHES_COLUMN)
    image = next((path for name, path in local_images(fields) if name == "image"), None)
    if not (isinstance(brushes, str) and brushes and image):
        return []  # a URL's size is not known before the run
    size = sizes[image] if image in sizes else sizes.setdefault(image, _shown_size(image, fit))
    return check_brushes_on(brushes, size) if size is not None else []


def _shown_size(path: str, fit: bool) -> tuple[int, int] | None:
    """The image's width and height as the brushes' coordinates see it: as stored (what
    the create sends), or with `fit` upright (EXIF orientation 5-8 swaps the sides), which
    is what fit's map_point starts from (kling_i2v.fit). With --crop a point on the
    picture may still be cut away: only the run's check sees that."""
    from .images import Image

    try:
        if not fit:
            image = Image.from_path(path)
            return (image.width, image.height) if image.width and image.height else None
        from ._pillow import orientation, pillow

        with pillow().Image.open(path) as img:
            width, height = img.size
            return (height, width) if orientation(img) >= 5 else (width, height)
    except Exception:  # noqa: BLE001 - the image's own check tells what is wrong with it
        return None


def _duplicates(rows: Sequence[ManifestRow]) -> list[Notice]:
    # manifest.py gives the n-th copy of a request the key "<hash>-<n>"
    by_request: dict[str, list[ManifestRow]] = {}
    for row in rows:
        by_request.setdefault(row.key.partition("-")[0], []).append(row)
    notices: list[Notice] = []
    for same in by_request.values():
        if len(same) > 1:
            first = same[0].where
            notices += [Notice(row.where, row.line, f"asks for the same video as {first}; each copy "
                                                    "is made and paid for") for row in same[1:]]
    return notices


# ============================================================================ grouping


_T = TypeVar("_T", Problem, Notice)


def _grouped(items: Sequence[_T], key: Callable[[_T], tuple[Any, ...]],
             text: Callable[[_T, str], str]) -> list[str]:
    """One line per distinct key, naming the rows that share it, in first-seen order."""
    groups: dict[tuple[Any, ...], list[_T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return [text(same[0], _places([i.where for i in same])) for same in groups.values()]


def _places(wheres: Sequence[str]) -> str:
    if len(wheres) == 1:
        return wheres[0]
    shown = ", ".join(wheres[:_SHOWN_PLACES])
    more = len(wheres) - _SHOWN_PLACES
    return f"{len(wheres)} rows ({shown}{f' and {more} more' if more > 0 else ''})"


# ============================================================================ plan


@attrs.frozen
class Plan:
    """What a run would do with each row, from the journal in the output folder."""

    actions: Mapping[str, str]
    """Row key -> "create", "poll", "download", "done", "failed" or "ambiguous"."""
    totals: tuple[tuple[str, str, str, int, int], ...]
    """(model_name, mode, duration, tasks, seconds of video) of the rows to create."""

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions.values() if a == action)


def make_plan(rows: Sequence[ManifestRow], out_dir: str | os.PathLike[str], *,
              retry_failed: bool = False, resubmit_ambiguous: bool = False) -> Plan:
    """What a run would do; reads the journal (if any) and changes nothing."""
    from .journal import JOURNAL_NAME, Journal, RowState

    out = Path(out_dir)
    journal_path = out / JOURNAL_NAME
    known = {}
    if journal_path.is_file():
        with Journal(journal_path) as journal:  # read only: no lock, nothing written
            known = {row.key: row for row in journal.rows()}
    action = {
        RowState.PENDING: "create", RowState.SUBMITTING: "ambiguous",
        RowState.SUBMITTED: "poll", RowState.SUCCEEDED: "download", RowState.DOWNLOADED: "done",
        RowState.FAILED: "create" if retry_failed else "failed",
        RowState.AMBIGUOUS: "create" if resubmit_ambiguous else "ambiguous",
    }
    actions: dict[str, str] = {}
    for row in rows:
        entry = known.get(row.key)
        verdict = "create" if entry is None else action[entry.state]
        if verdict == "done" and entry is not None and not (out / entry.output).is_file():
            verdict = "download"
        actions[row.key] = verdict
    return Plan(actions=actions, totals=_totals(r for r in rows if actions[r.key] == "create"))


def _totals(rows: Iterable[ManifestRow]) -> tuple[tuple[str, str, str, int, int], ...]:
    # what the gateway gets when a row leaves a field out: the spec's default
    fields = request_fields()
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows:
        model, mode, duration = (str(row.written.get(name, fields[name].default))
                                 for name in ("model_name", "mode", "duration"))
        counts[model, mode, duration] = counts.get((model, mode, duration), 0) + 1
    return tuple((model, mode, duration, n, n * _seconds(duration))
                 for (model, mode, duration), n in counts.items())


def _seconds(duration: str) -> int:
    try:
        return int(duration)
    except ValueError:
        return 0
