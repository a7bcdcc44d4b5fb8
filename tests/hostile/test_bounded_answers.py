"""Hostile answers, byte by byte: huge, endless, trickling, compressed bombs, redirects,
an echoed token and escape sequences, cut / empty / HTML videos. Each test asserts what
the user sees and records its figures in tests/hostile/figures.json ("bounded_answers").

Every test runs on both clients (the `make_client` fixture).

Covers: _wire.py, _download.py
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kling_i2v import (
    AmbiguousCreateError,
    APIResponseError,
    DeadlineExceededError,
    DownloadError,
    KlingError,
    NotAGatewayError,
    ResponseTooLargeError,
    ServerError,
    TaskFailedError,
    WaitTimeoutError,
)
from kling_i2v.testing import sample_video_path

from tests.conftest import load_data
from tests.hostile import figures
from tests.hostile.misbehaving import (
    Misbehaving,
    cut,
    echo_token,
    endless,
    gzip_bomb,
    gzipped,
    huge,
    json_answer,
    misbehaving,
    raw_answer,
    redirect,
    trickle,
)

TOKEN = "sk-hostile-0123456789abcdef"
URL_IMAGE = "https://example.com/cat.png"
CREATED = {"id": "860260753860210752", "task_id": "860260753860210752", "object": "video",
           "model": "kling-v2-master", "status": "queued", "progress": 0, "created_at": 1773130665}
CAP = 1 << 20  # a 1 MiB answer cap, so the bounds are easy to see
FIGURES: dict[str, Any] = {}


def record(name: str, value: Any) -> None:
    """Figures per attack and per client (`sync` / `async`, the `make_client` run)."""
    ids = os.environ.get("PYTEST_CURRENT_TEST", "").partition("[")[2].partition("]")[0]
    kind = next((part for part in ids.split("-") if part in ("sync", "async")), "client")
    FIGURES.setdefault(name, {})[kind] = value
    figures.record("bounded_answers", dict(sorted(FIGURES.items())))


@pytest.fixture
def server() -> Iterator[Misbehaving]:
    with misbehaving() as s:
        yield s


def peak_of(call: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """Peak traced memory (bytes) while `call` runs, and what it raised."""
    gc.collect()
    tracemalloc.start()
    error: BaseException | None = None
    try:
        call()
    except Exception as exc:  # noqa: BLE001
        error = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, error


def timed(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except Exception as exc:  # noqa: BLE001
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


# --------------------------------------------------------------------- size


@pytest.mark.parametrize("attack", ["huge", "endless", "gzip_bomb"])
def test_an_oversized_query_answer_is_refused_at_the_cap(
    server: Misbehaving, make_client: Any, attack: str
) -> None:
    if attack == "huge":
        answer, sent = huge(64 << 20), "64 MiB announced"
    elif attack == "endless":
        answer, sent = endless(), "endless chunked"
    else:
        answer, size = gzip_bomb(128 << 20)
        sent = f"{size:,} gzip bytes inflating to 128 MiB"
    server.script(answer)
    client = make_client(TOKEN, base_url=server.base_url, max_response_bytes=CAP, max_retries=0)
    peak, error = peak_of(lambda: client.get("1"))
    assert isinstance(error, ResponseTooLargeError), error
    assert "larger than 1,048,576 bytes" in str(error)
    assert peak < CAP + (3 << 20), f"peak {peak:,} bytes for a {CAP:,}-byte cap"
    assert server.requests_to("GET") == 1
    record(f"query_{attack}", {"sent": sent, "cap_bytes": CAP, "peak_traced_bytes": peak,
                               "peak_over_cap": round(peak / CAP, 2)})


def test_an_oversized_create_answer_is_ambiguous_and_not_sent_again(
    server: Misbehaving, make_client: Any
) -> None:
    server.script(huge(64 << 20), json_answer(200, CREATED))
    client = make_client(TOKEN, base_url=server.base_url, max_response_bytes=CAP)
    peak, error = peak_of(lambda: client.create(image=URL_IMAGE, prompt="p"))
    assert isinstance(error, AmbiguousCreateError), error
    assert isinstance(error.__cause__, ResponseTooLargeError)
    assert server.requests_to("POST") == 1
    assert peak < CAP + (3 << 20)
    record("create_huge", {"creates_sent": server.requests_to("POST"), "peak_traced_bytes": peak})


def test_a_huge_html_error_page_costs_only_its_snippet(server: Misbehaving, make_client: Any) -> None:
    server.script(huge(64 << 20, status=502, content_type="text/html"))
    client = make_client(TOKEN, base_url=server.base_url, max_retries=0)
    peak, error = peak_of(lambda: client.get("1"))
    assert isinstance(error, ServerError) and error.status_code == 502
    assert len(str(error)) < 400
    assert peak < 2 << 20
    record("html_error_page_64MiB", {"peak_traced_bytes": peak, "message_chars": len(str(error))})


# --------------------------------------------------------------------- time


def test_a_trickled_create_answer_ends_at_the_deadline(server: Misbehaving, make_client: Any) -> None:
    import json

    server.script(trickle(json.dumps(CREATED).encode(), every=0.2))
    client = make_client(TOKEN, base_url=server.base_url)
    seconds, error = timed(lambda: client.create(image=URL_IMAGE, prompt="p", timeout=1.5))
    assert isinstance(error, AmbiguousCreateError), error  # sent, and the answer never finished
    assert isinstance(error.__cause__, DeadlineExceededError)
    assert seconds < 1.5 + 0.8, seconds
    assert server.requests_to("POST") == 1
    record("trickled_create_body", {"deadline_s": 1.5, "wall_s": round(seconds, 2)})


def test_trickled_headers_end_at_the_deadline(server: Misbehaving, make_client: Any) -> None:
    server.script(trickle(b'{"code": "success"}', every=0.2, headers_too=True))
    client = make_client(TOKEN, base_url=server.base_url, max_retries=0)
    seconds, error = timed(lambda: client.get("1", timeout=1.5))
    assert isinstance(error, DeadlineExceededError), error
    assert seconds < 1.5 + 0.8, seconds
    record("trickled_query_headers", {"deadline_s": 1.5, "wall_s": round(seconds, 2)})


def test_wait_on_a_trickling_gateway_ends_at_its_timeout(server: Misbehaving, make_client: Any) -> None:
    server.default = trickle(b'{"code": "success"}' * 10, every=0.2)
    client = make_client(TOKEN, base_url=server.base_url)
    seconds, error = timed(lambda: client.wait("1", timeout=1.5))
    assert isinstance(error, WaitTimeoutError | DeadlineExceededError), error
    assert seconds < 1.5 + 0.8, seconds
    record("trickled_wait", {"timeout_s": 1.5, "wall_s": round(seconds, 2)})


# --------------------------------------------------------------------- shapes


def test_a_redirected_create_is_ambiguous_and_sent_once(server: Misbehaving, make_client: Any) -> None:
    server.script(redirect("https://login.example/"), json_answer(200, CREATED))
    client = make_client(TOKEN, base_url=server.base_url)
    with pytest.raises(AmbiguousCreateError, match="redirect"):
        client.create(image=URL_IMAGE, prompt="p")
    assert server.requests_to("POST") == 1
    record("redirected_create", {"creates_sent": server.requests_to("POST")})


def test_a_web_page_names_the_base_url(server: Misbehaving, make_client: Any) -> None:
    server.script(raw_answer(200, b"<!doctype html><title>anyfast</title>", {"Content-Type": "text/html"}))
    client = make_client(TOKEN, base_url=server.base_url + "/kling")
    with pytest.raises(NotAGatewayError, match="base URL") as info:
        client.get("1")
    assert server.base_url + "/kling" in str(info.value)


def test_the_echoed_token_and_escapes_never_reach_the_user(server: Misbehaving, make_client: Any) -> None:
    evil = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b[2J\x9b31m"
    failed = load_data("query_failure.json")

    def fail_reason(token: str) -> Any:
        failed["data"]["fail_reason"] = f"{evil} key {token} refused"
        return failed

    server.script(
        echo_token(401, lambda t: {"error": {"message": f"Incorrect API key {t} {evil}", "type": "x"}}),
        echo_token(500, lambda t: {"code": "do_request_failed", "message": f"{t}{evil}"}),
        echo_token(200, fail_reason),
    )
    client = make_client(TOKEN, base_url=server.base_url, max_retries=0)
    seen: list[str] = []
    for call in (lambda: client.get("1"), lambda: client.create(image=URL_IMAGE, prompt="p"),
                 lambda: client.wait("1", timeout=5)):
        with pytest.raises(KlingError) as info:
            call()
        error: BaseException | None = info.value
        while error is not None:
            seen += [str(error), repr(error), *(str(v) for v in vars(error).values())]
            error = error.__cause__ or error.__context__
    text = "\n".join(seen)
    assert isinstance(info.value, TaskFailedError)
    assert info.value.task.fail_reason == "click  key *** refused"
    tokens, escapes = text.count(TOKEN), sum(text.count(c) for c in "\x1b\x9b\x07")
    assert (tokens, escapes) == (0, 0)
    record("echoed_token", {"token_occurrences": tokens, "escape_bytes": escapes,
                            "strings_checked": len(seen)})


def test_a_huge_task_id_and_a_broken_video_url_are_documented_errors(
    server: Misbehaving, make_client: Any, tmp_path: Path
) -> None:
    answer = load_data("query_success.json")
    answer["data"]["task_id"] = "x" * 70_000
    server.script(json_answer(200, answer))
    client = make_client(TOKEN, base_url=server.base_url, max_retries=0)
    with pytest.raises(APIResponseError, match="task id"):
        client.get("1")
    with pytest.raises(KlingError, match="not a valid URL"):
        client.download("http://[::1/x", tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------- downloads


VIDEO = sample_video_path().read_bytes()


@pytest.mark.parametrize(
    ("name", "answer", "message"),
    [
        ("cut_with_length", cut(VIDEO, len(VIDEO) // 2), "cut"),
        ("cut_close_delimited", cut(VIDEO, len(VIDEO) // 2, announce=False), "cut"),
        ("empty", raw_answer(200, b"", {"Content-Type": "video/mp4"}), "empty"),
        ("html", raw_answer(200, b"<html><body>Login</body></html>", {"Content-Type": "text/html"}),
         "web page"),
        ("json", raw_answer(200, b'{"code": "expired"}', {"Content-Type": "application/json"}), "JSON"),
    ],
)
def test_a_bad_video_is_refused_and_leaves_nothing(
    server: Misbehaving, make_client: Any, tmp_path: Path, name: str, answer: Any, message: str
) -> None:
    server.script(answer)
    client = make_client(TOKEN, base_url=server.base_url, max_retries=0)
    with pytest.raises(DownloadError, match=message):
        client.download(server.base_url + "/v.mp4", tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []
    record(f"download_{name}", {"refused": True, "files_left": 0})


def test_a_gzip_encoded_video_is_saved_as_the_video(
    server: Misbehaving, make_client: Any, tmp_path: Path
) -> None:
    server.script(gzipped(200, VIDEO, "video/mp4"))
    client = make_client(TOKEN, base_url=server.base_url)
    path = client.download(server.base_url + "/v.mp4", tmp_path / "v.mp4")
    assert path.read_bytes() == VIDEO


def test_a_gzip_bomb_video_stops_at_the_cap(server: Misbehaving, make_client: Any, tmp_path: Path) -> None:
    answer, size = gzip_bomb(256 << 20, content_type="video/mp4")
    server.script(answer)
    client = make_client(TOKEN, base_url=server.base_url, max_video_bytes=8 << 20, max_retries=0)
    peak, error = peak_of(lambda: client.download(server.base_url + "/v.mp4", tmp_path / "v.mp4"))
    assert isinstance(error, ResponseTooLargeError | DownloadError), error
    assert list(tmp_path.iterdir()) == []
    assert peak < 4 << 20
    record("download_gzip_bomb", {"compressed_bytes": size, "inflates_to": 256 << 20,
                                  "cap_bytes": 8 << 20, "peak_traced_bytes": peak})


def test_redirects_are_followed_without_the_token_only_to_http(
    server: Misbehaving, make_client: Any, tmp_path: Path
) -> None:
    with misbehaving() as cdn:
        cdn.script(raw_answer(200, VIDEO, {"Content-Type": "video/mp4"}))
        server.script(redirect(cdn.base_url + "/signed.mp4?sig=abc"), redirect("file:///etc/passwd"))
        client = make_client(TOKEN, base_url=server.base_url)
        path = client.download(server.base_url + "/v.mp4", tmp_path / "a.mp4")
        assert path.read_bytes() == VIDEO
        assert "authorization" in server.requests[0][1]  # the gateway's own origin
        assert "authorization" not in cdn.requests[0][1]
        with pytest.raises(DownloadError, match="refusing a redirect"):
            client.download(server.base_url + "/v.mp4", tmp_path / "b.mp4")
        assert not (tmp_path / "b.mp4").exists()
    record("redirects", {"token_sent_to_other_host": 0, "non_http_redirect_refused": True})
