"""What Jupyter shows: `_repr_html_` of a Task, a batch result and a refused request.

The tasks and the batch come from the fake gateway over real HTTP; the HTML is parsed with
the standard library's parser, as a browser would read it, not matched as text alone.

Covers: _html.py
"""

from __future__ import annotations

import asyncio
import html.parser
from pathlib import Path

import pytest
from kling_i2v import AsyncKlingClient, KlingClient, RequestValidationError, RetryPolicy, Task, TaskStatus
from kling_i2v.batch import BatchOptions, run_batch
from kling_i2v.manifest import read_rows
from kling_i2v.testing import FakeGateway, sample_image_path

TOKEN = "sk-notebook-canary-0b1d"


class Elements(html.parser.HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


pytestmark = pytest.mark.fake_gateway(tokens=(TOKEN,), time_scale=1000)  # the `gw` of conftest.py


def test_a_running_task_shows_its_status_and_a_progress_bar() -> None:
    task = Task(task_id="8602", status=TaskStatus.RUNNING, progress=30)
    page = Elements(task._repr_html_())
    assert page.all("progress") == [{"value": "30", "max": "100", "style": "width:100%"}]
    assert "task 8602 running 30%" in page.words
    assert page.all("video") == []


def test_a_finished_task_shows_its_video(gw: FakeGateway) -> None:
    with KlingClient(TOKEN, base_url=gw.base_url) as kling:
        done = kling.create_and_wait(image=sample_image_path(), prompt="the sun sets")
    page = Elements(done._repr_html_())
    (video,) = page.all("video")
    assert video["src"] == done.video_url and "controls" in video
    assert page.all("progress")[0]["value"] == "100"
    assert "succeeded" in page.words


def test_a_failed_task_shows_its_reason_as_text_only() -> None:
    task = Task(task_id="1", status=TaskStatus.FAILED, progress=30,
                fail_reason="<img src=x onerror=alert(1)>\x1b[31mblocked",
                video_urls=("javascript:alert(1)",))
    markup = task._repr_html_()
    page = Elements(markup)
    assert page.all("img") == [] and page.all("video") == []  # not a URL we would load
    assert "<img src=x onerror=alert(1)>blocked" in page.words
    assert "\x1b" not in markup


def test_a_refused_request_lists_its_problems() -> None:
    with KlingClient(TOKEN, base_url="http://127.0.0.1:9") as kling, \
            pytest.raises(RequestValidationError) as caught:
        kling.create(image=sample_image_path(), prompt="x", mode="ultra", cfg_scale=1.5)
    page = Elements(caught.value._repr_html_())
    assert len(page.all("li")) == len(caught.value.violations) == 2
    assert "2 problems (nothing was sent)" in page.words
    assert "mode" in page.words and "cfg_scale" in page.words


def test_a_batch_result_shows_counts_and_each_rows_video_or_reason(
    gw: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifest = tmp_path / "shots.csv"
    (tmp_path / "cat.png").write_bytes(sample_image_path().read_bytes())
    manifest.write_text("image,prompt\ncat.png,the cat jumps\ncat.png,the cat falls [fake:fail=too dark]\n")

    async def run():
        async with AsyncKlingClient(TOKEN, base_url=gw.base_url,
                                    retry=RetryPolicy(max_retries=0)) as kling:
            return await run_batch(read_rows(manifest), kling, tmp_path / "out",
                                   BatchOptions(poll_interval=0.05))

    result = asyncio.run(run())
    monkeypatch.chdir(tmp_path)  # a notebook's links are relative to its folder
    page = Elements(result._repr_html_())
    assert len(page.all("tr")) == 3  # a header and two rows
    (video,) = page.all("video")
    assert video["src"] == f"out/{result.rows[0].output}"
    assert (tmp_path / str(video["src"])).is_file()
    assert "too dark" in page.words and "downloaded 1" in page.words and "failed 1" in page.words
