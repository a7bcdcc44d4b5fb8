"""The README's flows, driven through the public API against the fake gateway over
real HTTP on loopback.

Covers: _core.py, _flows.py, _download.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kling_i2v import (
    AmbiguousCreateError,
    AsyncKlingClient,
    AuthenticationError,
    Image,
    KlingClient,
    PollPolicy,
    RequestValidationError,
    Task,
    TaskFailedError,
    TaskNotFoundError,
    TaskStatus,
    WaitTimeoutError,
)
from kling_i2v.testing import FakeGateway, Fault, sample_image_path, sample_video_path

from tests.imagegen import make_jpeg

FAST_POLL = PollPolicy(initial_interval=0.02, max_interval=0.05)


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(time_scale=50.0) as gw:  # a 10 s task takes 0.2 s
        yield gw


@pytest.fixture
def kling(gateway: FakeGateway, make_client: Any) -> Iterator[KlingClient]:
    # make_client: every test using `kling` runs on KlingClient and on AsyncKlingClient
    with make_client(gateway.token, base_url=gateway.base_url, poll=FAST_POLL) as client:
        yield client


def test_readme_flow_create_wait_download(gateway: FakeGateway, kling: KlingClient, tmp_path: Path) -> None:
    seen: list[Task] = []
    task = kling.create(image=Image.from_path(sample_image_path()),
                        prompt="the cat jumps onto the sofa", mode="pro")
    assert task.status is TaskStatus.QUEUED
    done = kling.wait(task.task_id, on_progress=seen.append)
    assert done.status is TaskStatus.SUCCEEDED and done.progress == 100
    assert done.external_task_id == task.external_task_id
    progress = [t.progress for t in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert len(seen) >= 2
    path = kling.download(done, tmp_path / "cat.mp4")
    assert path.read_bytes() == sample_video_path().read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["cat.mp4"]
    # the fake received exactly one create, carrying our base64 image
    (fake_task,) = gateway.tasks.values()
    assert fake_task.body["image"] == Image.from_path(sample_image_path()).to_api()
    assert not fake_task.body["image"].startswith("data:")


def test_local_jpeg_path_is_encoded_and_sent(gateway: FakeGateway, kling: KlingClient, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(make_jpeg(800, 600))
    kling.create(image=photo, image_tail="https://example.com/end.png", prompt="p")
    (fake_task,) = gateway.tasks.values()
    import base64

    assert base64.b64decode(fake_task.body["image"]) == photo.read_bytes()
    assert fake_task.body["image_tail"] == "https://example.com/end.png"


def test_create_and_wait_reports_failure_with_its_reason(kling: KlingClient) -> None:
    with pytest.raises(TaskFailedError) as info:
        kling.create_and_wait(image="https://example.com/a.png", prompt="boom [fake:fail=content policy]")
    assert info.value.reason == "content policy"
    assert info.value.task.status is TaskStatus.FAILED
    assert "content policy" in str(info.value)


def test_wait_timeout_carries_the_last_state(gateway: FakeGateway) -> None:
    with FakeGateway(clock="manual") as frozen:  # never advances: the task stays queued
        with KlingClient(frozen.token, base_url=frozen.base_url, poll=FAST_POLL) as client:
            task = client.create(image="https://example.com/a.png", prompt="slow")
            with pytest.raises(WaitTimeoutError) as info:
                client.wait(task, timeout=0.2)
    assert info.value.task is not None
    assert info.value.task.task_id == task.task_id
    assert not info.value.task.finished


def test_unknown_status_keeps_polling(gateway: FakeGateway, kling: KlingClient) -> None:
    gateway.inject(Fault.unknown_status("SOMETHING_NEW"), on="query", times=2)
    task = kling.create(image="https://example.com/a.png", prompt="p")
    assert kling.wait(task).status is TaskStatus.SUCCEEDED
    assert gateway.count(on="query") >= 3


def test_retries_against_injected_faults(gateway: FakeGateway, kling: KlingClient) -> None:
    gateway.inject(Fault.status(429, retry_after="0"), on="create", times=2)
    gateway.inject(Fault.status(503), on="query", times=1)
    gateway.inject(Fault.reset_before_response(), on="query", times=1)
    done = kling.create_and_wait(image="https://example.com/a.png", prompt="p")
    assert done.status is TaskStatus.SUCCEEDED
    assert len(gateway.tasks) == 1
    assert gateway.count(on="create") == 3


def test_dropped_create_is_ambiguous_and_not_resent(gateway: FakeGateway, kling: KlingClient) -> None:
    gateway.inject(Fault.drop_after_create(), on="create")
    with pytest.raises(AmbiguousCreateError) as info:
        kling.create(image="https://example.com/a.png", prompt="p", external_task_id="mine-42")
    assert gateway.count(on="create") == 1
    (fake_task,) = gateway.tasks.values()  # the gateway did create (and bill) it
    assert fake_task.external_task_id == info.value.external_task_id == "mine-42"


def test_invalid_request_reaches_nothing(gateway: FakeGateway, kling: KlingClient) -> None:
    with pytest.raises(RequestValidationError):
        kling.create(image="https://example.com/a.png", prompt="p", duration=2)
    with pytest.raises(RequestValidationError):
        kling.create(image="https://example.com/a.png", multi_shot=True, shot_type="customize")
    assert gateway.requests == []


def test_the_fake_agrees_when_validation_is_skipped(gateway: FakeGateway) -> None:
    from kling_i2v import BadRequestError

    with KlingClient(gateway.token, base_url=gateway.base_url, validate=False) as client:
        with pytest.raises(BadRequestError) as info:
            client.create(image="https://example.com/a.png", prompt="p", cfg_scale=3)
    assert info.value.status_code == 400
    assert "cfg_scale" in info.value.message


def test_wrong_token_and_unknown_task(gateway: FakeGateway, kling: KlingClient) -> None:
    with KlingClient("sk-wrong", base_url=gateway.base_url) as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.get("1")
    assert "sk-wrong" not in str(info.value)
    with pytest.raises(TaskNotFoundError):
        kling.get("999999")


def test_download_into_a_folder_names_the_file_after_the_task(kling: KlingClient, tmp_path: Path) -> None:
    done = kling.create_and_wait(image="https://example.com/a.png", prompt="p")
    path = kling.download(done, tmp_path)
    assert path == tmp_path / f"{done.task_id}.mp4"
    with pytest.raises(FileExistsError):
        kling.download(done, tmp_path)


def test_download_survives_a_reset(gateway: FakeGateway, kling: KlingClient, tmp_path: Path) -> None:
    done = kling.create_and_wait(image="https://example.com/a.png", prompt="p")
    gateway.inject(Fault.reset_before_response(), on="download")
    path = kling.download(done, tmp_path / "v.mp4")
    assert path.read_bytes() == sample_video_path().read_bytes()


def test_async_client_flow(gateway: FakeGateway, tmp_path: Path) -> None:
    async def main() -> list[Path]:
        async with AsyncKlingClient(gateway.token, base_url=gateway.base_url, poll=FAST_POLL) as kling:
            tasks = await asyncio.gather(*(
                kling.create(image="https://example.com/a.png", prompt=f"shot {i}") for i in range(5)
            ))
            done = await asyncio.gather(*(kling.wait(t) for t in tasks))
            return [await kling.download(d, tmp_path) for d in done]

    paths = asyncio.run(main())
    assert len(gateway.tasks) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_async_failure_and_timeout(gateway: FakeGateway) -> None:
    async def main() -> None:
        async with AsyncKlingClient(gateway.token, base_url=gateway.base_url, poll=FAST_POLL) as kling:
            with pytest.raises(TaskFailedError):
                await kling.create_and_wait(image="https://example.com/a.png", prompt="[fake:fail]")
            slow = await kling.create(image="https://example.com/a.png", prompt="[fake:seconds=100000]")
            with pytest.raises(WaitTimeoutError):
                await kling.wait(slow, timeout=0.1)

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("ffprobe") is None and not os.environ.get("CI"),
                    reason="ffprobe (Debian ffmpeg) is not installed; CI installs it and never skips")
def test_the_downloaded_video_is_a_real_mp4(kling: KlingClient, tmp_path: Path) -> None:
    done = kling.create_and_wait(image="https://example.com/a.png", prompt="p")
    path = kling.download(done, tmp_path / "v.mp4")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )
    assert "video" in probe.stdout.split()


def test_demo_runs_offline(tmp_path: Path) -> None:
    from kling_i2v import demo

    assert demo.main(["--out", str(tmp_path), "--seconds", "0.3"]) == 0
    (video,) = tmp_path.glob("*.mp4")
    assert video.read_bytes() == sample_video_path().read_bytes()


def test_download_takes_a_task_id_or_a_stale_task(kling: KlingClient, tmp_path: Path) -> None:
    queued = kling.create(image="https://example.com/a.png", prompt="p")
    kling.wait(queued)
    by_id = kling.download(queued.task_id, tmp_path / "by-id.mp4")
    stale = kling.download(queued, tmp_path / "stale.mp4")  # seen before the video existed
    assert by_id.read_bytes() == stale.read_bytes() == sample_video_path().read_bytes()


def test_downloaded_files_get_the_usual_mode_not_a_private_one(kling: KlingClient, tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        done = kling.create_and_wait(image="https://example.com/a.png", prompt="p")
        path = kling.download(done, tmp_path / "v.mp4")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_an_existing_target_names_the_file(kling: KlingClient, tmp_path: Path) -> None:
    done = kling.create_and_wait(image="https://example.com/a.png", prompt="p")
    (tmp_path / "v.mp4").write_bytes(b"mine")
    with pytest.raises(FileExistsError) as info:
        kling.download(done, tmp_path / "v.mp4")
    assert info.value.filename == str(tmp_path / "v.mp4")
    assert "overwrite=True" in str(info.value)


def test_async_wait_awaits_an_async_progress_callback(gateway: FakeGateway) -> None:
    seen: list[int] = []

    async def report(task: Task) -> None:
        await asyncio.sleep(0)
        seen.append(task.progress)

    async def main() -> None:
        async with AsyncKlingClient(gateway.token, base_url=gateway.base_url, poll=FAST_POLL) as kling:
            task = await kling.create(image="https://example.com/a.png", prompt="p")
            await kling.wait(task, on_progress=report)

    asyncio.run(main())
    assert seen and seen[-1] == 100
