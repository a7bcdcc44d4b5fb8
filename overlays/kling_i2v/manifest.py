"""What a batch asks for: rows read from a manifest (CSV or JSON Lines) or a folder of images.

A manifest has one video per row. Its columns (CSV) or keys (JSON Lines) are request
fields of openapi.yaml (`image`, `prompt`, `mode`, `duration`, `camera_control`, ...),
plus `output`: the video's file name inside the output folder. Image paths are relative
to the manifest's folder; URLs are passed through. Options given for the whole batch
(`defaults`) fill in what a row leaves out.

    image,prompt,mode,duration
    cat.png,the cat jumps onto the sofa,pro,5
    https://example.com/dog.jpg,the dog runs,,10

Every row is checked against the spec before anything is sent (images only for existing;
they are read when their row is created), so a typo in row 40 stops the batch before
row 1 is paid for.

A row's identity (`key`) is a hash of the request it makes, plus a counter for identical
rows. It does not include the row's position, so inserting or reordering rows never makes
a finished row look new; changing what a row asks for does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from ._imageheader import image_suffixes
from ._inputs import regular_file
from ._manifest_files import (
    JSON_LINES_SUFFIXES,
    OUTPUT_COLUMN,
    Found,
    Record,
    csv_records,
    folder_records,
    json_lines_records,
)
from .errors import ImageError, ManifestError, RequestValidationError
from .fields import IMAGE_FIELDS, request_fields
from .images import Image
from .motion import BRUSHES_COLUMN, check_brushes
from .requests import build_request_body

__all__ = ["OUTPUT_COLUMN", "Manifest", "ManifestError", "ManifestRow",
           "Problem", "check_request", "local_images", "read_manifest", "read_rows"]

# a scheme of two letters or more: "C:\\cat.png" stays a path
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
# stands in for local images while rows are checked, so that checking reads no image
_PROBE_IMAGE = Image.from_url("https://probe.invalid/image.png")


@attrs.frozen
class Problem:
    """One thing wrong with one row, kept apart so that repeats can be told together."""

    where: str
    """`shots.csv:3`, or the image's name in a folder batch."""
    line: int
    field: str | None
    """The column (or request path) at fault; None for the row as a whole."""
    rule: str
    got: str | None = None
    """The value found, as shown; None when there is nothing to show."""
    hint: str | None = None
    """What to do about it, when there is one thing to do."""

    def __str__(self) -> str:
        return self.told(self.where)

    def told(self, where: str) -> str:
        """The problem as a line, for `where` (this row, or several that share it)."""
        # "prompt: prompt is required ..." says the name twice
        named = self.field and not self.rule.startswith(f"{self.field} ")
        text = f"{where}: " + (f"{self.field}: " if named else "") + self.rule
        if self.got is not None:
            text += f" ({self.got})"
        return text + (f" — {self.hint}" if self.hint else "")


@attrs.frozen
class ManifestRow:
    """One video to make."""

    line: int
    """The row's line in the manifest (CSV: where its record ends), or its place in a folder."""
    key: str
    written: Mapping[str, Any]
    """The request fields as written (paths as in the manifest), defaults filled in."""
    fields: Mapping[str, Any]
    """The same, with local image paths resolved: what goes to `create()`."""
    output: str
    """The video's path inside the output folder (POSIX separators)."""
    where: str = ""
    """How messages name the row: `shots.csv:3`, or the image's name in a folder."""

    @property
    def image(self) -> str:
        """The image as written, for messages."""
        for name in IMAGE_FIELDS:
            if isinstance(self.written.get(name), str):
                return str(self.written[name])
        return "(no image)"


@attrs.frozen
class Manifest:
    """What a manifest asks for: the rows that pass every check made without the network
    or the images' contents, and the problems of the others."""

    source: str
    rows: tuple[ManifestRow, ...]
    problems: tuple[Problem, ...]
    folder: bool
    """Rows come from a folder of images (so there are no columns to add)."""
    invalid_rows: tuple[ManifestRow, ...] = ()
    """The rows with problems that could be read as requests (their `key` is empty)."""


def read_rows(source: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None) -> list[ManifestRow]:
    """The rows of a manifest file, or one row per image of a folder.

    Raises ManifestError listing every problem (unknown columns, unreadable values,
    missing images, requests the spec refuses), or OSError if `source` cannot be read."""
    manifest = read_manifest(source, defaults)
    if manifest.problems:
        raise ManifestError(manifest.source, [str(p) for p in manifest.problems])
    return list(manifest.rows)


def read_manifest(source: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None, *,
                  allow_unknown_model: bool = False,
                  folder_suffixes: Collection[str] | None = None) -> Manifest:
    """Every row of a manifest or folder, checked: the good rows and the problems of the
    others. Raises ManifestError only when the file as a whole cannot be read (encoding,
    size, header), OSError when it does not exist."""
    path = Path(source)
    defaults = dict(defaults or {})
    if path.is_dir():
        records = list(folder_records(path, folder_suffixes))
        if not records:
            kinds = "/".join(image_suffixes()) if folder_suffixes is None else "readable"
            raise ManifestError(str(path), [f"no {kinds} images in this folder"])
        base = path
    elif path.suffix.lower() in JSON_LINES_SUFFIXES:
        records = list(json_lines_records(path))
        base = path.parent
    elif path.suffix.lower() == ".csv":
        records = list(csv_records(path))
        base = path.parent
    elif not path.exists():
        raise FileNotFoundError(f"no such manifest or folder: {path}")
    else:
        suffix = path.suffix or "no suffix"
        raise ManifestError(
            str(path), [f"a manifest must be a .csv or .jsonl file (or a folder of images); got {suffix}"]
        )
    return _rows(str(path), base, records, defaults, folder=path.is_dir(),
                 allow_unknown_model=allow_unknown_model)


# --------------------------------------------------------------------- checking


def _rows(source: str, base: Path, records: Sequence[Record], defaults: Mapping[str, Any],
          *, folder: bool, allow_unknown_model: bool) -> Manifest:
    rows: list[ManifestRow] = []
    invalid: list[ManifestRow] = []
    problems: list[Problem] = []
    seen_keys: dict[str, int] = {}
    seen_outputs: set[str] = set()
    where_prefix = "" if folder else f"{Path(source).name}:"
    for index, record in enumerate(records, start=1):
        where = f"{where_prefix}{record.line}" if not folder else str(record.values.get("image"))

        def problem(field: str | None, rule: str, got: str | None = None, hint: str | None = None,
                    *, where: str = where, line: int = record.line) -> Problem:
            return Problem(where=where, line=line, field=field, rule=rule, got=got, hint=hint)

        found = [problem(*parts) for parts in record.problems]
        if found and not record.values:
            # an unreadable line (not JSON, not an object): checking it as a request
            # would only add made-up problems
            problems += found
            continue
        written = {**defaults, **record.values}
        output = written.pop(OUTPUT_COLUMN, None)
        resolved, path_problems = _resolve(written, base)
        found += [problem(*parts) for parts in path_problems]
        found += [problem(*parts) for parts in _check(resolved, folder=folder, empty=record.empty,
                                                       allow_unknown_model=allow_unknown_model)]
        if output is None:
            output = f"{index:04d}-{_stem(written)}.mp4"
        else:
            output, output_problem = _output(str(output))
            if output_problem:
                found.append(problem(OUTPUT_COLUMN, output_problem))
        problems += found
        if found:
            # kept so that its images can be checked too: every problem is told at once
            invalid.append(ManifestRow(line=record.line, key="", written=written, fields=resolved,
                                       output=output, where=where))
            continue
        output = _unique(output, seen_outputs)
        seen_outputs.add(output)
        digest = hashlib.sha256(
            json.dumps(written, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                       default=str).encode()
        ).hexdigest()[:16]
        seen_keys[digest] = seen_keys.get(digest, 0) + 1
        key = digest if seen_keys[digest] == 1 else f"{digest}-{seen_keys[digest]}"
        rows.append(ManifestRow(line=record.line, key=key, written=written, fields=resolved,
                                output=output, where=where))
    if not rows and not problems:
        problems.append(Problem(where=source, line=0, field=None, rule="no rows"))
    return Manifest(source=source, rows=tuple(rows), problems=tuple(problems), folder=folder,
                    invalid_rows=tuple(invalid))


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and _SCHEME.match(value) is None


def local_images(fields: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, path) of each local file a row's fields send: its images and mask images."""
    for name in IMAGE_FIELDS:
        value = fields.get(name)
        if _is_path(value) and value:
            yield name, value
    masks = fields.get("dynamic_masks")
    for index, mask in enumerate(masks if isinstance(masks, list) else ()):
        if isinstance(mask, dict) and _is_path(mask.get("mask")) and mask.get("mask"):
            yield f"dynamic_masks[{index}].mask", mask["mask"]


def _resolve(written: Mapping[str, Any], base: Path) -> tuple[dict[str, Any], list[Found]]:
    """`written` with local image paths made absolute (relative to `base`), and the images
    that are missing or are not regular files (a FIFO would block the batch's read)."""
    problems: list[Found] = []

    def local(name: str, value: str) -> str:
        path = Path(value).expanduser()
        # absolute: the row must not change meaning if the working folder does
        path = path if path.is_absolute() else (base / path).absolute()
        try:
            regular_file(path, "the image")
        except OSError:
            problems.append((name, f"no such image file: {value}", None, None))
        except ValueError as exc:
            problems.append((name, str(exc), None, None))
        return str(path)

    resolved = dict(written)
    for name in IMAGE_FIELDS:
        value = resolved.get(name)
        if _is_path(value) and value:
            resolved[name] = local(name, value)
    brushes = resolved.get(BRUSHES_COLUMN)
    if isinstance(brushes, str) and brushes:  # a JSON file of motion brushes (kling_i2v.motion)
        path = Path(brushes).expanduser()
        resolved[BRUSHES_COLUMN] = str(path if path.is_absolute() else base / path)
        problems += [(BRUSHES_COLUMN, p, None, None)
                     for p in check_brushes(resolved[BRUSHES_COLUMN])]
    masks = resolved.get("dynamic_masks")
    if isinstance(masks, list):
        resolved["dynamic_masks"] = [
            {**m, "mask": local(f"dynamic_masks[{i}].mask", m["mask"])}
            if isinstance(m, dict) and _is_path(m.get("mask")) and m.get("mask") else m
            for i, m in enumerate(masks)
        ]
    return resolved, problems


def _check(fields: Mapping[str, Any], *, folder: bool, allow_unknown_model: bool,
           empty: Collection[str] = ()) -> list[Found]:
    """What the spec says is wrong with a row, without reading its images."""
    from .errors import MISSING, shorten

    try:
        check_request(fields, allow_unknown_model=allow_unknown_model)
    except RequestValidationError as exc:
        return [(v.path, v.rule, "missing" if v.value is MISSING else f"got {shorten(v.value)}",
                 _hint(v.path, folder, empty) if v.value is MISSING
                 else v.next_step(cli=True) or None)
                for v in exc.violations]
    except (ImageError, TypeError, ValueError) as exc:
        return [(None, str(exc), None, None)]
    return []


def check_request(fields: Mapping[str, Any], *, allow_unknown_model: bool = False) -> None:
    """Raise what `create(**fields)` would raise for the request itself (the spec's
    RequestValidationError), without reading a local image: each stands in as a URL."""
    probe = dict(fields)
    if probe.pop(BRUSHES_COLUMN, None):  # checked by _resolve; a mask stands in for the rules
        probe["dynamic_masks"] = [{"mask": _PROBE_IMAGE, "trajectories": [{"x": 0, "y": 0}] * 2}]
    for name in IMAGE_FIELDS:
        if _is_path(probe.get(name)):
            probe[name] = _PROBE_IMAGE
    if isinstance(probe.get("dynamic_masks"), list):
        probe["dynamic_masks"] = [
            {**m, "mask": _PROBE_IMAGE} if isinstance(m, dict) and _is_path(m.get("mask")) else m
            for m in probe["dynamic_masks"]
        ]
    build_request_body(None, probe, validate=True, allow_unknown_model=allow_unknown_model)


def _hint(name: str, folder: bool, empty: Collection[str] = ()) -> str | None:
    """For a field a row leaves out: where it can come from. A column that is there with
    an empty cell on this line is told as such: adding the column would not help."""
    if name not in request_fields():
        return None
    option = request_fields()[name].option
    if name in empty:
        return f"its `{name}` cell is empty: fill it in, or pass {option} for such rows"
    return f"pass {option}" if folder else f"add a `{name}` column or pass {option}"


def _stem(written: Mapping[str, Any]) -> str:
    for name in IMAGE_FIELDS:
        value = written.get(name)
        if isinstance(value, str) and value:
            if _is_path(value):
                stem = Path(value).stem
            else:
                stem = PurePosixPath(urllib.parse.urlsplit(value).path).stem
            cleaned = re.sub(r"[^\w.-]+", "_", stem).strip("._")
            if cleaned:
                return cleaned[:60]
    return "video"


def _output(value: str) -> tuple[str, str | None]:
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.name or Path(value).is_absolute():
        return value, f"must be a file name inside the output folder, got {value!r}"
    if not path.suffix:
        path = path.with_suffix(".mp4")
    return str(path), None


def _unique(output: str, taken: set[str]) -> str:
    if output not in taken:
        return output
    path = PurePosixPath(output)
    number = 2
    while (candidate := str(path.with_name(f"{path.stem}-{number}{path.suffix}"))) in taken:
        number += 1
    return candidate
