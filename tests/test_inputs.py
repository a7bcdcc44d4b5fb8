"""_inputs: the bounded readers behind manifests and @file options, with literal examples
at each limit (a test that read its limits from the module could not see a wrong one)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from kling_i2v._inputs import check_depth, parse_json, read_text, regular_file


def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="must be a regular file, got a named pipe"):
        read_text(tmp_path / "pipe", "the manifest", 100)  # would block forever if opened
    with pytest.raises(ValueError, match="got a character device"):
        regular_file("/dev/zero", "the file")
    with pytest.raises(ValueError, match="got a folder"):
        regular_file(tmp_path, "the file")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        with pytest.raises(ValueError, match="got a socket"):
            regular_file(tmp_path / "sock", "the file")
    with pytest.raises(FileNotFoundError):
        regular_file(tmp_path / "missing", "the file")
    (tmp_path / "real").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert regular_file(tmp_path / "link", "the file").st_size == 1  # links are followed


def test_text_is_bounded_and_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n" + b"x" * 93)  # BOM + 100 bytes of text
    assert read_text(path, "the manifest", 100).startswith("a,b\n")  # the BOM is dropped
    with pytest.raises(ValueError, match=r"is larger than 99 bytes"):
        read_text(path, "the manifest", 99)
    path.write_bytes(b"a\nb\nc\xff\n")
    with pytest.raises(ValueError, match=r"is not UTF-8 text \(byte 0xff on line 3\); save it as UTF-8"):
        read_text(path, "the manifest", 100)


def test_json_depth() -> None:
    assert parse_json("[" * 32 + "]" * 32) is not None  # 32 levels: allowed
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        parse_json("[" * 33 + "]" * 33)
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        parse_json("[" * 100_000 + "]" * 100_000)  # past Python's own recursion limit
    check_depth({"a": [{"b": [1, 2]}]}, limit=4)
    with pytest.raises(ValueError):
        check_depth({"a": [{"b": [1, 2]}]}, limit=3)
    check_depth("a string is no nesting", limit=0)
