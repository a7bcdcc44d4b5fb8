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

import csv
import hashlib
import json
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import attrs

from .errors import ImageError, KlingError, RequestValidationError
from .fields import IMAGE_FIELDS, request_fields
from .images import Image
from .requests import build_request_body

__all__ = ["IMAGE_SUFFIXES", "OUTPUT_COLUMN", "ManifestError", "ManifestRow", "read_rows"]

OUTPUT_COLUMN = "output"
"""The one manifest column that is not a request field: the video's file name."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
"""What a folder batch picks up (the upstream image formats)."""
_JSON_LINES = (".jsonl", ".ndjson")
_MAX_PROBLEMS = 20
# a scheme of two letters or more: "C:\\cat.png" stays a path
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
# stands in for local images while rows are checked, so that checking reads no image
_PROBE_IMAGE = Image.from_url("https://probe.invalid/image.png")


class ManifestError(KlingError, ValueError):
    """The manifest (or folder) cannot be run: every problem found, with where it is."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        shown = list(self.problems[:_MAX_PROBLEMS])
        if len(self.problems) > _MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - _MAX_PROBLEMS} more")
        count = len(self.problems)
        lines = "".join(f"\n  {p}" for p in shown)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}:{lines}")


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

    @property
    def image(self) -> str:
        """The image as written, for messages."""
        for name in IMAGE_FIELDS:
            if isinstance(self.written.get(name), str):
                return str(self.written[name])
        return "(no image)"


def read_rows(source: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None) -> list[ManifestRow]:
    """The rows of a manifest file, or one row per image of a folder.

    Raises ManifestError listing every problem (unknown columns, unreadable values,
    missing images, requests the spec refuses), or OSError if `source` cannot be read."""
    path = Path(source)
    defaults = dict(defaults or {})
    if path.is_dir():
        records = list(_folder(path))
        if not records:
            raise ManifestError(str(path), [f"no {'/'.join(IMAGE_SUFFIXES)} images in this folder"])
        base = path
    elif path.suffix.lower() in _JSON_LINES:
        records = list(_json_lines(path))
        base = path.parent
    elif path.suffix.lower() == ".csv":
        records = list(_csv(path))
        base = path.parent
    elif not path.exists():
        raise FileNotFoundError(f"no such manifest or folder: {path}")
    else:
        suffix = path.suffix or "no suffix"
        raise ManifestError(
            str(path), [f"a manifest must be a .csv or .jsonl file (or a folder of images); got {suffix}"]
        )
    return _rows(str(path), base, records, defaults, folder=path.is_dir())


# --------------------------------------------------------------------- reading


@attrs.frozen
class _Record:
    line: int
    values: dict[str, Any]
    problems: tuple[str, ...] = ()


def _known(name: str) -> bool:
    return name in request_fields() or name == OUTPUT_COLUMN


def _unknown_columns(names: Sequence[str]) -> str:
    known = ", ".join([*request_fields(), OUTPUT_COLUMN])
    listed = ", ".join(repr(n) for n in names)
    return f"unknown column{'s' if len(names) != 1 else ''} {listed} (known: {known})"


def _csv(path: Path) -> Iterator[_Record]:
    # utf-8-sig: spreadsheets like to start a CSV with a byte order mark
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ManifestError(str(path), ["the file is empty (a header row is needed)"]) from None
        unknown = [h for h in header if h and not _known(h)]
        if unknown:
            raise ManifestError(f"{path}:1", [_unknown_columns(unknown)])
        fields = request_fields()
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            values: dict[str, Any] = {}
            problems: list[str] = []
            if len(cells) > len(header):
                problems.append(f"{len(cells)} cells, but the header has {len(header)} columns")
            for name, cell in zip(header, cells, strict=False):
                if not name or not cell.strip():
                    continue  # an empty cell leaves the field out
                if name == OUTPUT_COLUMN:
                    values[name] = cell.strip()
                    continue
                try:
                    values[name] = fields[name].parse(cell)
                except ValueError as exc:
                    problems.append(str(exc))
            yield _Record(reader.line_num, values, tuple(problems))


def _json_lines(path: Path) -> Iterator[_Record]:
    fields = request_fields()
    with open(path, encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except ValueError as exc:
                yield _Record(number, {}, (f"not JSON ({exc})",))
                continue
            if not isinstance(data, dict):
                yield _Record(number, {}, (f"expected a JSON object, got {type(data).__name__}",))
                continue
            unknown = [k for k in data if not _known(k)]
            if unknown:
                yield _Record(number, {}, (_unknown_columns(unknown),))
                continue
            values: dict[str, Any] = {}
            problems: list[str] = []
            for name, value in data.items():
                if value is None:
                    continue
                if isinstance(value, str) and name != OUTPUT_COLUMN and fields[name].kind not in (
                    "text", "image", "choice"
                ):
                    try:  # "0.5" for a number: read the text as a cell would be read
                        value = fields[name].parse(value)
                    except ValueError as exc:
                        problems.append(str(exc))
                        continue
                values[name] = value
            yield _Record(number, values, tuple(problems))


def _folder(path: Path) -> Iterator[_Record]:
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for number, image in enumerate(images, start=1):
        yield _Record(number, {"image": image.name, OUTPUT_COLUMN: image.stem + ".mp4"})


# --------------------------------------------------------------------- checking


def _rows(source: str, base: Path, records: Sequence[_Record], defaults: Mapping[str, Any],
          *, folder: bool) -> list[ManifestRow]:
    rows: list[ManifestRow] = []
    problems: list[str] = []
    seen_keys: dict[str, int] = {}
    seen_outputs: set[str] = set()
    where_prefix = "" if folder else f"{Path(source).name}:"
    for index, record in enumerate(records, start=1):
        where = f"{where_prefix}{record.line}" if not folder else str(record.values.get("image"))
        found = [f"{where}: {p}" for p in record.problems]
        if found and not record.values:
            # an unreadable line (not JSON, not an object): checking it as a request
            # would only add made-up problems
            problems += found
            continue
        written = {**defaults, **record.values}
        output = written.pop(OUTPUT_COLUMN, None)
        resolved, path_problems = _resolve(written, base)
        found += [f"{where}: {p}" for p in path_problems]
        found += [f"{where}: {p}" for p in _check(resolved)]
        if output is None:
            output = f"{index:04d}-{_stem(written)}.mp4"
        else:
            output, output_problem = _output(str(output))
            if output_problem:
                found.append(f"{where}: {OUTPUT_COLUMN}: {output_problem}")
        problems += found
        if found:
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
                                output=output))
    if problems:
        raise ManifestError(source, problems)
    if not rows:
        raise ManifestError(source, ["no rows"])
    return rows


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and _SCHEME.match(value) is None


def _resolve(written: Mapping[str, Any], base: Path) -> tuple[dict[str, Any], list[str]]:
    """`written` with local image paths made absolute (relative to `base`), and the images
    that do not exist."""
    problems: list[str] = []

    def local(name: str, value: str) -> str:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            problems.append(f"{name}: no such image file: {value}")
        return str(path)

    resolved = dict(written)
    for name in IMAGE_FIELDS:
        value = resolved.get(name)
        if _is_path(value) and value:
            resolved[name] = local(name, value)
    masks = resolved.get("dynamic_masks")
    if isinstance(masks, list):
        resolved["dynamic_masks"] = [
            {**m, "mask": local(f"dynamic_masks[{i}].mask", m["mask"])}
            if isinstance(m, dict) and _is_path(m.get("mask")) and m.get("mask") else m
            for i, m in enumerate(masks)
        ]
    return resolved, problems


def _check(fields: Mapping[str, Any]) -> list[str]:
    """What the spec says is wrong with a row, without reading its images."""
    probe = dict(fields)
    for name in IMAGE_FIELDS:
        if _is_path(probe.get(name)):
            probe[name] = _PROBE_IMAGE
    if isinstance(probe.get("dynamic_masks"), list):
        probe["dynamic_masks"] = [
            {**m, "mask": _PROBE_IMAGE} if isinstance(m, dict) and _is_path(m.get("mask")) else m
            for m in probe["dynamic_masks"]
        ]
    try:
        build_request_body(None, probe, validate=True)
    except RequestValidationError as exc:
        return [str(v) for v in exc.violations]
    except (ImageError, TypeError, ValueError) as exc:
        return [str(exc)]
    return []


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
