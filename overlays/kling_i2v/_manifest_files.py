"""Reading manifest files into records: CSV (its delimiter found from the header), JSON
Lines, or a folder of images. Every read is bounded (see _inputs); checking the records
as requests is manifest.py's job."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._inputs import MAX_MANIFEST_BYTES, check_depth, parse_json, read_text
from .fields import request_fields
from .validation import closest

if TYPE_CHECKING:
    from .manifest import ManifestError

__all__ = ["JSON_LINES_SUFFIXES", "OUTPUT_COLUMN", "Found", "Record",
           "csv_records", "folder_records", "json_lines_records"]

OUTPUT_COLUMN = "output"
# Columns that are not request fields: the video's file name, and a motion brushes file
# (kling_i2v.motion.BRUSHES_COLUMN, written out to keep this module free of imports).
_OTHER_COLUMNS = (OUTPUT_COLUMN, "motion_brushes")
"""The one manifest column that is not a request field: the video's file name."""
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
# what a spreadsheet may separate cells with; the header row decides (see _dialect)
_DELIMITERS = (",", ";", "\t", "|")


def _manifest_error(source: str, problems: Sequence[str]) -> ManifestError:
    from .manifest import ManifestError

    return ManifestError(source, problems)



Found = tuple[str | None, str, str | None, str | None]
"""A problem before it knows its row: (field, rule, got, hint)."""


@attrs.frozen
class Record:
    line: int
    values: dict[str, Any]
    problems: tuple[Found, ...] = ()
    """What could not be read."""
    empty: tuple[str, ...] = ()
    """The columns whose cell on this line is empty (so a missing field can say so)."""


def _text(path: Path) -> str:
    try:
        return read_text(path, "the manifest", MAX_MANIFEST_BYTES)
    except ValueError as exc:
        raise _manifest_error(str(path), [str(exc)]) from None


def _known(name: str) -> bool:
    return name in request_fields() or name in _OTHER_COLUMNS


def _unknown_column(name: str) -> Found:
    known = [*request_fields(), *_OTHER_COLUMNS]
    close = closest(name, known)
    hint = f"did you mean {close!r}?" if close else f"known columns: {', '.join(known)}"
    return None, f"unknown column {name!r}", None, hint


def _dialect(header_line: str) -> str:
    """The delimiter that splits the header into the most known column names (a `;`
    from a spreadsheet in a comma locale, a tab from a copy-paste); `,` when none does
    better. The header decides because its cells are field names, which contain no
    delimiter, while any cell of a later row (a prompt) may contain all of them."""
    def known(delimiter: str) -> int:
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        return sum(1 for cell in cells if _known(cell.strip()))

    return max(_DELIMITERS, key=lambda d: (known(d), d == ","))


def csv_records(path: Path) -> Iterator[Record]:
    text = _text(path)
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines, delimiter=_dialect(text.partition("\n")[0]))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise _manifest_error(str(path), ["the file is empty (a header row is needed)"]) from None
    except csv.Error as exc:
        raise _manifest_error(f"{path}:1", [f"unreadable header ({exc})"]) from None
    unknown = [h for h in header if h and not _known(h)]
    if unknown:
        raise _manifest_error(f"{path}:1", [f"{found[1]} — {found[3]}" for found in map(_unknown_column, unknown)])
    fields = request_fields()
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # the reader cannot go on past a broken record: the rest of the file is unread
            raise _manifest_error(f"{path}:{reader.line_num}", [_csv_problem(exc)]) from None
        if not any(c.strip() for c in cells):
            continue
        values: dict[str, Any] = {}
        problems: list[Found] = []
        empty = tuple(name for name, cell in zip(header, cells, strict=False)
                      if name and not cell.strip()) + tuple(header[len(cells):])
        if len(cells) > len(header):
            problems.append((None, f"{len(cells)} cells, but the header has {len(header)} columns",
                             None, None))
        for name, cell in zip(header, cells, strict=False):
            if not name or not cell.strip():
                continue  # an empty cell leaves the field out
            if name in _OTHER_COLUMNS:
                values[name] = cell.strip()
                continue
            try:
                values[name] = _parse(fields[name].parse, cell)
            except ValueError as exc:
                problems.append((name, str(exc).removeprefix(f"{name}: "), None, None))
        yield Record(reader.line_num, values, tuple(problems), empty)


def _csv_problem(error: csv.Error) -> str:
    limit = csv.field_size_limit()
    if "field larger than field limit" in str(error):
        # no field of the spec comes near it (prompts: 2,500 characters); the csv module's
        # own limit keeps one runaway quote from reading the whole file into a cell
        return f"a cell is longer than {limit:,} characters; the rows after it were not read"
    return f"unreadable CSV ({error}); the rows after it were not read"


def _parse(parse: Any, text: str) -> Any:
    try:
        value = parse(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    check_depth(value)
    return value


def json_lines_records(path: Path) -> Iterator[Record]:
    fields = request_fields()
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = parse_json(line)
        except ValueError as exc:
            yield Record(number, {}, ((None, f"not JSON ({exc})", None, None),))
            continue
        if not isinstance(data, dict):
            yield Record(number, {}, ((None, f"expected a JSON object, got {type(data).__name__}",
                                        None, None),))
            continue
        unknown = [k for k in data if not _known(k)]
        if unknown:
            yield Record(number, {}, tuple(_unknown_column(k) for k in unknown))
            continue
        values: dict[str, Any] = {}
        problems: list[Found] = []
        for name, value in data.items():
            if value is None:
                continue
            if isinstance(value, str) and name not in _OTHER_COLUMNS and fields[
                name
            ].kind not in ("text", "image", "choice"):
                try:  # "0.5" for a number: read the text as a cell would be read
                    value = _parse(fields[name].parse, value)
                except ValueError as exc:
                    problems.append((name, str(exc).removeprefix(f"{name}: "), None, None))
                    continue
            values[name] = value
        yield Record(number, values, tuple(problems))


def folder_records(path: Path, suffixes: Collection[str] | None = None) -> Iterator[Record]:
    """One row per image of the folder; `suffixes`: which files are images (default: the
    formats the spec's image rules take; batch --fit takes every format Pillow reads,
    preflight.folder_suffixes)."""
    if suffixes is None:
        from ._imageheader import image_suffixes

        suffixes = image_suffixes()
    images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    for number, image in enumerate(images, start=1):
        yield Record(number, {"image": image.name, OUTPUT_COLUMN: image.stem + ".mp4"})
