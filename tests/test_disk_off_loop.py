"""The async client keeps disk waits off its event loop (_flows.Blocking): a download's
temporary file is created, fsync'd and renamed in a worker thread, and a cancelled call
leaves no temporary file behind and no error unretrieved. The sync client does the same
work in its own thread.
Also: sniffio is installed, so httpcore's async locks do not pay a failed import each."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kling_i2v import AsyncKlingClient, KlingClient
from kling_i2v._core import ClientCore
from kling_i2v._download import Target

from tests.test_send import SAMPLE_MP4, TASK, TOKEN, RawServer


@pytest.fixture
def server() -> Iterator[RawServer]:
    raw = RawServer()
    yield raw
    raw.close()


def _record_threads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {"fsync": [], "open": []}
    real_fsync, real_open = os.fsync, os.open

    def fsync(fd: int) -> None:
        seen["fsync"].append(threading.get_ident())
        real_fsync(fd)

    def open_(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if str(path).endswith(".part"):
            seen["open"].append(threading.get_ident())
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "open", open_)
    return seen


def test_async_download_creates_and_fsyncs_its_file_off_the_event_loop(
        server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_threads(monkeypatch)

    async def run() -> tuple[Path, int]:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url) as kling:
            path = await kling.download(TASK, tmp_path / "v.mp4")
            return path, threading.get_ident()

    path, loop_thread = asyncio.run(run())
    assert path.read_bytes()[4:8] == b"ftyp"
    assert len(seen["open"]) == 1 and len(seen["fsync"]) == 1
    assert loop_thread not in seen["open"] + seen["fsync"]


def test_sync_download_does_its_disk_work_in_the_calling_thread(
        server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_threads(monkeypatch)
    with KlingClient(TOKEN, base_url=server.base_url) as kling:
        kling.download(TASK, tmp_path / "v.mp4")
    assert seen["open"] == seen["fsync"] == [threading.get_ident()]


def _cancel_while(owner: Any, method: str, server: RawServer, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> None:
    """Cancel an async download while `owner.method` (file work, in the worker thread)
    is under way, then let the thread go on (raising OSError first if `fail`)."""
    started, release = threading.Event(), threading.Event()
    real = getattr(owner, method)

    def slow(self: Any, *args: Any) -> Any:
        started.set()
        release.wait(10)
        if fail:
            raise OSError(28, "No space left on device")
        return real(self, *args)

    monkeypatch.setattr(owner, method, slow)

    async def run() -> None:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url) as kling:
            call = asyncio.create_task(kling.download(TASK, tmp_path / "v.mp4"))
            while not started.is_set():
                await asyncio.sleep(0.01)
            call.cancel()
            release.set()  # the cancelled call waits for the thread before its clean-up
            with pytest.raises(asyncio.CancelledError):
                await call

    asyncio.run(run())
    gc.collect()  # an unretrieved error of the thread's future is logged when it is freed


def test_a_download_cancelled_while_its_file_is_made_leaves_no_temporary_file(
        server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cancel_while(ClientCore, "download_target", server, tmp_path, monkeypatch)
    assert list(tmp_path.iterdir()) == []


def test_a_download_cancelled_while_its_file_is_finished_keeps_it_whole(
        server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cancel_while(Target, "finish", server, tmp_path, monkeypatch)
    # the rename was under way: it ends, and only then is the call's clean-up run
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    assert (tmp_path / "v.mp4").read_bytes() == SAMPLE_MP4


def test_a_cancelled_download_whose_finish_fails_leaves_nothing_and_logs_nothing(
        server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="asyncio"):
        _cancel_while(Target, "finish", server, tmp_path, monkeypatch, fail=True)
    assert list(tmp_path.iterdir()) == []
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_sniffio_is_a_dependency_and_installed() -> None:
    """httpcore 1.0.9 imports sniffio on every async lock/event set-up
    (httpcore/_synchronization.py, current_async_library); anyio >= 4.11 no longer installs
    it (agronholm/anyio#1021), and a failed import searches sys.path each time
    (encode/httpcore#1103). Profiled here: ~20% of a batch run's CPU went to those searches."""
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert any(dep.startswith("sniffio") for dep in pyproject["project"]["dependencies"])
    assert importlib.util.find_spec("sniffio") is not None
