"""Manifests read as a user writes them: CSV in the delimiter their spreadsheet used, JSON
Lines, or a folder; every problem with its row, a suggestion for a misspelt column; rows
keyed by what they ask for.

Covers: _manifest_files.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kling_i2v.manifest import ManifestError, read_manifest, read_rows
from kling_i2v.testing import sample_image_path


@pytest.fixture
def here(tmp_path: Path) -> Path:
    (tmp_path / "cat.png").write_bytes(sample_image_path().read_bytes())
    return tmp_path


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_header_decides_the_delimiter(here: Path, delimiter: str) -> None:
    path = here / "m.csv"
    # every delimiter also appears inside the prompt: only the header can tell
    path.write_text(delimiter.join(["image", "prompt", "cfg_scale"]) + "\n"
                    + delimiter.join(["cat.png", '"a, b; c\td | e"', "0.5"]) + "\n")
    (row,) = read_rows(path)
    assert row.fields["prompt"] == "a, b; c\td | e" and row.fields["cfg_scale"] == 0.5


def test_a_one_column_csv_is_a_comma_csv(here: Path) -> None:
    path = here / "m.csv"
    path.write_text("image\ncat.png\n")
    manifest = read_manifest(path, {"prompt": "x"})
    assert len(manifest.rows) == 1 and manifest.problems == ()


def test_misspelt_columns_get_a_suggestion(here: Path) -> None:
    path = here / "m.csv"
    path.write_text("image,promt,durtion,colour\ncat.png,a,5,red\n")
    with pytest.raises(ManifestError) as caught:
        read_rows(path)
    assert caught.value.problems == (
        "unknown column 'promt' — did you mean 'prompt'?",
        "unknown column 'durtion' — did you mean 'duration'?",
        "unknown column 'colour' — known columns: " + caught.value.problems[2].split(": ", 1)[1],
    )
    assert "negative_prompt" in caught.value.problems[2] and "output" in caught.value.problems[2]


def test_an_empty_cell_in_a_column_that_is_there_says_so(here: Path) -> None:
    # "add a `prompt` column" to a CSV that has one sent the user looking for the wrong thing (A7)
    path = here / "m.csv"
    path.write_text("image,prompt\ncat.png,a\ncat.png,\ncat.png\n")
    manifest = read_manifest(path)
    assert [str(p) for p in manifest.problems] == [
        "m.csv:3: prompt is required unless multi_shot is true (missing) — its `prompt` cell "
        "is empty: fill it in, or pass --prompt for such rows",
        "m.csv:4: prompt is required unless multi_shot is true (missing) — its `prompt` cell "
        "is empty: fill it in, or pass --prompt for such rows",
    ]


def test_problems_carry_row_field_rule_and_hint(here: Path) -> None:
    path = here / "m.csv"
    path.write_text("image,mode\ncat.png,std\nnope.png,std\n")
    manifest = read_manifest(path)
    assert manifest.rows == ()
    missing = [p for p in manifest.problems if p.field == "prompt"]
    assert [(p.where, p.line, p.got, p.hint) for p in missing] == [
        ("m.csv:2", 2, "missing", "add a `prompt` column or pass --prompt"),
        ("m.csv:3", 3, "missing", "add a `prompt` column or pass --prompt"),
    ]
    (gone,) = [p for p in manifest.problems if p.field == "image"]
    assert str(gone) == "m.csv:3: image: no such image file: nope.png"
    assert [row.line for row in manifest.invalid_rows] == [2, 3]


def test_keys_follow_the_request_not_the_position(here: Path) -> None:
    path = here / "m.csv"
    path.write_text("image,prompt\ncat.png,a\ncat.png,b\n")
    first = {row.fields["prompt"]: row.key for row in read_rows(path)}
    path.write_text("image,prompt\ncat.png,new\ncat.png,b\ncat.png,a\ncat.png,a\n")
    again = read_rows(path)
    assert first["a"] == again[2].key and first["b"] == again[1].key
    assert again[3].key == f"{first['a']}-2"  # a second identical row is a second video


def test_a_manifest_larger_than_the_cap_is_refused_unread(here: Path, monkeypatch) -> None:
    import kling_i2v._manifest_files as files

    monkeypatch.setattr(files, "MAX_MANIFEST_BYTES", 1000)
    path = here / "m.jsonl"
    path.write_text('{"image": "cat.png", "prompt": "a"}\n' * 40)
    with pytest.raises(ManifestError) as caught:
        read_rows(path)
    assert caught.value.problems == (f"the manifest {path} is larger than 1,000 bytes",)
