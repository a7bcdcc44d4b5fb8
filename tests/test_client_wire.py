"""The client against a scripted loopback server: every error shape, every retry rule,
what is (and is not) sent. End-to-end flows against the fake gateway are in
test_client.py.

Covers: _http.py, _wire.py
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kling_i2v import (
    AmbiguousCreateError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APITimeoutError,
    AsyncKlingClient,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InsufficientBalanceError,
    KlingClient,
    NotAGatewayError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    RetryPolicy,
    ServerError,
    TaskNotFoundError,
    TaskStatus,
    UpstreamBadRequestError,
)
from kling_i2v.testing import AsyncSimulatedClock, SimulatedClock, sample_video_path

from tests.conftest import load_data

VIDEO = sample_video_path().read_bytes()
from tests.scripted_server import Reply, ScriptedServer, scripted_server

TOKEN = "sk-canary-7f3a9c0d1e2b"
URL_IMAGE = "https://example.com/cat.png"
CREATED = load_data("reference_response.json") | {"status": "queued"}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def client(server: ScriptedServer, clock: SimulatedClock, make_client: Any) -> Iterator[KlingClient]:
    # make_client: every test here runs on KlingClient and on AsyncKlingClient
    with make_client(TOKEN, base_url=server.base_url, clock=clock) as c:
        yield c


def gateway_error(status: int, code: str, message: str = "no", **headers: str) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "new_api_error", "code": code}}, headers)


def task_error(status: int, code: str, message: str = "no") -> Reply:
    return Reply(status, {"code": code, "message": message, "data": None})


# --------------------------------------------------------------------- happy path


def test_create_sends_the_generated_json_with_the_token(server: ScriptedServer, client: KlingClient) -> None:
    server.script(Reply(200, CREATED))
    task = client.create(image=URL_IMAGE, prompt="the cat jumps", mode="pro", duration=10)
    assert task.task_id == "860260753860210752"
    assert task.status is TaskStatus.QUEUED
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/kling/v1/videos/image2video")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    body = seen.json()
    assert body["image"] == URL_IMAGE
    assert body["mode"] == "pro"
    assert body["duration"] == "10"
    assert body["external_task_id"] == task.external_task_id
    assert task.external_task_id and task.external_task_id.startswith("kling-i2v-")


def test_each_create_gets_a_fresh_external_task_id_unless_given(
    server: ScriptedServer, client: KlingClient
) -> None:
    server.script(Reply(200, CREATED), Reply(200, CREATED), Reply(200, CREATED))
    a = client.create(image=URL_IMAGE, prompt="a")
    b = client.create(image=URL_IMAGE, prompt="b")
    c = client.create(image=URL_IMAGE, prompt="c", external_task_id="mine-1")
    assert a.external_task_id != b.external_task_id
    assert c.external_task_id == "mine-1"
    assert server.seen[2].json()["external_task_id"] == "mine-1"


def test_get_reads_the_nested_query_answer(server: ScriptedServer, client: KlingClient) -> None:
    server.script(Reply(200, load_data("query_success.json")))
    task = client.get("860260753860210752")
    assert server.seen[0].path == "/kling/v1/videos/image2video/860260753860210752"
    assert task.status is TaskStatus.SUCCEEDED
    assert task.progress == 100
    assert task.video_url == "https://cdn.klingai.com/bs2/upload-kling-api/a1b2c3.mp4"
    assert task.external_task_id == "batch-7f3c-row-12"


def test_one_pooled_connection_serves_every_call(server: ScriptedServer, client: KlingClient) -> None:
    server.script(*[Reply(200, CREATED), Reply(200, load_data("query_in_progress.json"))] * 3)
    for _ in range(3):
        client.create(image=URL_IMAGE, prompt="p")
        client.get("1")
    assert len(server.seen) == 6
    assert len({s.client_port for s in server.seen}) == 1


def test_task_ids_are_quoted_into_the_path(server: ScriptedServer, client: KlingClient) -> None:
    server.script(Reply(200, load_data("query_in_progress.json")))
    client.get("../../etc/passwd")
    assert server.seen[0].path == "/kling/v1/videos/image2video/..%2F..%2Fetc%2Fpasswd"


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("reply", "error", "code", "message"),
    [
        (gateway_error(401, "invalid_api_key", "invalid token"), AuthenticationError, "invalid_api_key", "invalid token"),
        (gateway_error(403, "forbidden", "model not allowed"), PermissionDeniedError, "forbidden", "model not allowed"),
        (gateway_error(404, "not_found", "no route"), NotFoundError, "not_found", "no route"),
        (task_error(400, "task_failed", "upstream: image too small"), UpstreamBadRequestError, "task_failed", "upstream: image too small"),
        (task_error(400, "invalid_request", "bad body"), BadRequestError, "invalid_request", "bad body"),
        (task_error(500, "internal", "boom"), ServerError, "internal", "boom"),
        (Reply(500, "<html><body>Internal Server Error</body></html>", {"Content-Type": "text/html"}), ServerError, None, "Internal Server Error"),
        (Reply(520, "", {"Content-Type": "text/plain"}), ServerError, None, ""),
        (Reply(418, {"unexpected": True}), Exception, None, ""),
    ],
)
def test_error_shapes_become_typed_errors(
    server: ScriptedServer, reply: Reply, error: type[Exception], code: str | None, message: str
, make_client: Any) -> None:
    # a query: its errors are raised as they are (a create's may become ambiguous)
    server.script(reply)
    with make_client(TOKEN, base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(error) as info:
            client.get("1")
    exc: Any = info.value
    assert exc.status_code == reply.status
    assert getattr(exc, "code", None) == code
    assert message in str(exc)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (gateway_error(401, "invalid_api_key", "invalid token"), AuthenticationError),
        (gateway_error(403, "forbidden", "model not allowed"), PermissionDeniedError),
        (task_error(403, "insufficient_user_quota", "quota"), InsufficientBalanceError),
        (task_error(400, "task_failed", "upstream: image too small"), UpstreamBadRequestError),
        (task_error(400, "invalid_request", "bad body"), BadRequestError),
    ],
)
def test_create_refused_by_the_gateway_raises_its_error_with_the_external_id(
    server: ScriptedServer, reply: Reply, error: type[Exception]
, make_client: Any) -> None:
    server.script(reply)
    with make_client(TOKEN, base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(error) as info:
            client.create(image=URL_IMAGE, prompt="p")
    assert not isinstance(info.value, AmbiguousCreateError)
    assert info.value.external_task_id == server.seen[0].json()["external_task_id"]  # type: ignore[attr-defined]


def test_unknown_task_is_task_not_found(server: ScriptedServer, client: KlingClient) -> None:
    server.script(task_error(400, "task_not_exist", "task_not_exist"))
    with pytest.raises(TaskNotFoundError) as info:
        client.get("nope")
    assert isinstance(info.value, BadRequestError)
    assert info.value.code == "task_not_exist"


def test_request_id_comes_from_header_or_body(server: ScriptedServer, make_client: Any) -> None:
    server.script(
        Reply(400, {"code": "invalid_request", "message": "x", "request_id": "rid-body"}),
        Reply(401, {"error": {"message": "bad"}}, {"X-Oneapi-Request-Id": "rid-header"}),
    )
    with make_client(TOKEN, base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(BadRequestError) as a:
            client.get("1")
        with pytest.raises(AuthenticationError) as b:
            client.get("1")
    assert a.value.request_id == "rid-body"
    assert b.value.request_id == "rid-header"
    assert "rid-header" in str(b.value)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "<html>proxy page</html>", {"Content-Type": "text/html"}),
        Reply(200, '{"code": "success", "data": {"task_id": "1", "sta'),
        Reply(200, b""),
        Reply(200, {"code": "success"}),
        Reply(200, {"code": "success", "data": {"task_id": 5, "status": ["x"]}}),
        Reply(200, {"code": "success", "data": {"task_id": "1", "status": "QUEUED", "data": {"data": "nope"}}}),
        Reply(200, [1, 2, 3]),
    ],
)
def test_malformed_query_answers_raise_api_response_error(
    server: ScriptedServer, client: KlingClient, reply: Reply
) -> None:
    # a query is safe to repeat, so an unreadable answer is asked again (outcomes.py)
    server.script(*[reply] * 4)
    with pytest.raises(APIResponseError) as info:
        client.get("1")
    assert info.value.status_code == 200
    # except a web page: the base URL is wrong (NotAGatewayError), asking again is pointless
    assert len(server.seen) == (1 if isinstance(info.value, NotAGatewayError) else 4)


def test_unknown_status_string_is_unknown_not_an_error(server: ScriptedServer, client: KlingClient) -> None:
    body = load_data("query_in_progress.json")
    body["data"]["status"] = "WEIRD_NEW_STATE"
    body["data"]["progress"] = "n/a"
    server.script(Reply(200, body))
    task = client.get("1")
    assert task.status is TaskStatus.UNKNOWN
    assert task.gateway_status == "WEIRD_NEW_STATE"
    assert task.progress == 0


@pytest.mark.parametrize(
    "reply", [Reply(200, "<html>oops</html>"), Reply(200, {"id": "x"}), Reply(200, {"task_id": 7})]
)
def test_unreadable_create_success_is_ambiguous(
    server: ScriptedServer, client: KlingClient, reply: Reply
) -> None:
    server.script(reply)
    with pytest.raises(AmbiguousCreateError) as info:
        client.create(image=URL_IMAGE, prompt="p", external_task_id="ext-1")
    assert info.value.external_task_id == "ext-1"
    assert len(server.seen) == 1


# --------------------------------------------------------------------- retries


def test_queries_retry_429_and_5xx_with_backoff(server: ScriptedServer, client: KlingClient, clock: SimulatedClock) -> None:
    server.script(
        gateway_error(429, "rate_limited"),
        Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}),
        task_error(503, "unavailable"),
        Reply(200, load_data("query_in_progress.json")),
    )
    task = client.get("1")
    assert task.status is TaskStatus.RUNNING
    assert len(server.seen) == 4
    assert len(clock.sleeps) == 3
    # equal jitter: each delay within [step/2, step], steps 0.5, 1, 2
    for delay, step in zip(clock.sleeps, (0.5, 1.0, 2.0), strict=True):
        assert step / 2 <= delay <= step


def test_retries_are_bounded(server: ScriptedServer, clock: SimulatedClock, make_client: Any) -> None:
    server.script(*[gateway_error(429, "rate_limited")] * 10)
    with make_client(TOKEN, base_url=server.base_url, max_retries=2, clock=clock) as client:
        with pytest.raises(RateLimitError):
            client.get("1")
    assert len(server.seen) == 3


def test_retry_after_seconds_and_dates_are_honoured(server: ScriptedServer, client: KlingClient, clock: SimulatedClock) -> None:
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.script(
        gateway_error(429, "rate_limited", **{"Retry-After": "7"}),
        gateway_error(503, "no_channel", **{"Retry-After": soon}),
        Reply(200, load_data("query_in_progress.json")),
    )
    client.get("1")
    assert clock.sleeps[0] == 7.0
    assert 25 <= clock.sleeps[1] <= 30


def test_retry_after_is_capped(server: ScriptedServer, clock: SimulatedClock, make_client: Any) -> None:
    server.script(gateway_error(429, "x", **{"Retry-After": "86400"}), Reply(200, load_data("query_in_progress.json")))
    policy = RetryPolicy(max_retry_after=20)
    with make_client(TOKEN, base_url=server.base_url, retry=policy, clock=clock) as client:
        client.get("1")
    assert clock.sleeps == [20.0]


def test_retries_are_logged_at_info_without_the_token(
    server: ScriptedServer, client: KlingClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(gateway_error(429, "x"), Reply(200, load_data("query_in_progress.json")))
    with caplog.at_level(logging.DEBUG):
        client.get("1")
    retries = [r for r in caplog.records if r.name == "kling_i2v" and "retrying" in r.getMessage()]
    assert len(retries) == 1 and retries[0].levelno == logging.INFO
    assert "HTTP 429" in retries[0].getMessage()
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    "first",
    [
        gateway_error(429, "rate_limited"),
        gateway_error(503, "model_not_found", "no available channel"),
        task_error(500, "do_request_failed", "dial tcp: i/o timeout"),
        task_error(500, "internal"),  # any task-shaped 500: the gateway refunded it
    ],
)
def test_create_retries_only_when_nothing_was_created(
    server: ScriptedServer, client: KlingClient, first: Reply
) -> None:
    server.script(first, Reply(200, CREATED))
    task = client.create(image=URL_IMAGE, prompt="p")
    assert task.task_id == CREATED["task_id"]
    assert len(server.seen) == 2
    ids = {s.json()["external_task_id"] for s in server.seen}
    assert len(ids) == 1, "a retried create must carry the same external_task_id"


def test_an_unlisted_model_that_no_channel_serves_is_not_retried(
    server: ScriptedServer, client: KlingClient
) -> None:
    # 503 model_not_found (gateway-facts Errors): a listed model is retried above; one the
    # spec does not list, sent because the caller allowed it, fails at once (outcomes.py)
    server.script(gateway_error(503, "model_not_found", "No available channel for model kling-v9"),
                  Reply(200, CREATED))
    with pytest.raises(ServerError) as raised:
        client.create(image=URL_IMAGE, prompt="p", model_name="kling-v9", allow_unknown_model=True)
    assert raised.value.code == "model_not_found"
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "first",
    [
        task_error(503, "upstream_unavailable"),  # a 503 in the task shape is not in the table
        Reply(503, "<html>busy</html>", {"Content-Type": "text/html"}),
        Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}),
        task_error(504, "timeout"),
        Reply(500, {"code": "internal", "message": "x"}, {"Content-Type": "text/plain"}),
        Reply(302, "", {"Location": "https://login.example/"}),
        Reply(200, "<html>anyfast</html>", {"Content-Type": "text/html"}),
        Reply(404, "<html>not found</html>", {"Content-Type": "text/html"}),
    ],
)
def test_create_is_not_retried_after_an_answer_that_may_hide_a_task(
    server: ScriptedServer, client: KlingClient, first: Reply
) -> None:
    server.script(first, Reply(200, CREATED))
    with pytest.raises(AmbiguousCreateError) as info:
        client.create(image=URL_IMAGE, prompt="p", external_task_id="ext-9")
    assert len(server.seen) == 1
    assert info.value.external_task_id == "ext-9"
    assert isinstance(info.value.__cause__, APIError)  # what was seen, for the curious


def test_create_reset_after_sending_is_ambiguous_and_not_retried(
    server: ScriptedServer, client: KlingClient
) -> None:
    server.script(Reply(action="reset"), Reply(200, CREATED))
    with pytest.raises(AmbiguousCreateError) as info:
        client.create(image=URL_IMAGE, prompt="p", external_task_id="ext-reset")
    assert len(server.seen) == 1
    assert info.value.external_task_id == "ext-reset"
    assert "ext-reset" in str(info.value)


def test_query_reset_is_retried(server: ScriptedServer, client: KlingClient) -> None:
    server.script(Reply(action="reset"), Reply(200, load_data("query_in_progress.json")))
    assert client.get("1").status is TaskStatus.RUNNING
    assert len(server.seen) == 2


def test_create_read_timeout_is_ambiguous(server: ScriptedServer, make_client: Any) -> None:
    server.script(Reply(200, CREATED, action="delay:1.0"))
    with make_client(TOKEN, base_url=server.base_url, timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(AmbiguousCreateError):
            client.create(image=URL_IMAGE, prompt="p")
    assert len(server.seen) == 1


def test_query_timeout_is_retried_then_raised(server: ScriptedServer, clock: SimulatedClock, make_client: Any) -> None:
    server.script(*[Reply(200, load_data("query_in_progress.json"), action="delay:0.6")] * 3)
    with make_client(TOKEN, base_url=server.base_url, timeout=httpx.Timeout(0.15),
                     max_retries=1, clock=clock) as client:
        with pytest.raises(APITimeoutError):
            client.get("1")
    assert len(server.seen) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_create_is_retried_since_nothing_was_sent(clock: SimulatedClock, make_client: Any) -> None:
    with make_client(TOKEN, base_url=f"http://127.0.0.1:{free_port()}", max_retries=2, clock=clock) as client:
        with pytest.raises(APIConnectionError) as info:
            client.create(image=URL_IMAGE, prompt="p")
    assert info.value.request_sent is False
    assert not isinstance(info.value, AmbiguousCreateError)
    assert len(clock.sleeps) == 2


# --------------------------------------------------------------------- validation


def test_invalid_input_sends_nothing_and_names_every_problem(server: ScriptedServer, client: KlingClient) -> None:
    shots = [{"index": i, "prompt": "x", "duration": "2"} for i in (1, 2)]
    shots.append({"index": 3, "prompt": "x", "duration": "99"})
    with pytest.raises(RequestValidationError) as info:
        client.create(
            image=URL_IMAGE, prompt="p" * 2501, mode="ultra", cfg_scale=1.5,
            multi_shot=True, shot_type="customize", multi_prompt=shots,
        )
    assert server.seen == []
    fields = info.value.fields
    assert {"prompt", "mode", "cfg_scale", "multi_prompt[2].duration"} <= set(fields)
    text = str(info.value)
    assert "mode: must be one of std, pro (got \"ultra\")" in text
    assert "cfg_scale: must be <= 1 (got 1.5)" in text
    assert "multi_prompt[2].duration" in text
    assert "2501 chars" in text  # the long prompt is shortened, not printed
    assert len(text) < 2000


def test_cross_field_rules_are_checked_before_sending(server: ScriptedServer, client: KlingClient) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.create(prompt="no image at all")
    assert "at least one of image or image_tail is required" in str(info.value)
    with pytest.raises(RequestValidationError) as info:
        client.create(image=URL_IMAGE, prompt="p", camera_control={"type": "simple", "config": {"zoom": 3, "pan": 1}})
    assert "camera_control.config: exactly one of" in str(info.value)
    assert server.seen == []


def test_validation_can_be_skipped(server: ScriptedServer, make_client: Any) -> None:
    server.script(Reply(200, CREATED))
    with make_client(TOKEN, base_url=server.base_url, validate=False) as client:
        client.create(image=URL_IMAGE, prompt="p", model_name="kling-v9-future",
                      **{"new_field": 1, "camera_control": {"type": "simple", "config": {"future": 2}}})
    body = server.seen[0].json()
    # what the spec does not know yet goes out as given (the gateway judges it)
    assert body["model_name"] == "kling-v9-future" and body["new_field"] == 1
    assert body["camera_control"] == {"type": "simple", "config": {"future": 2}}


def test_a_generated_request_model_is_accepted(server: ScriptedServer, client: KlingClient) -> None:
    from kling_i2v_api.models import ImageToVideoRequest, Mode

    server.script(Reply(200, CREATED))
    request = ImageToVideoRequest(image=URL_IMAGE, prompt="from the model", mode=Mode.PRO)
    client.create(request, negative_prompt="blur")
    body = server.seen[0].json()
    assert (body["prompt"], body["mode"], body["negative_prompt"]) == ("from the model", "pro", "blur")


def test_create_keyword_arguments_cover_every_spec_field() -> None:
    from kling_i2v import CreateFields
    from kling_i2v.validation import request_schema

    assert set(CreateFields.__annotations__) == set(request_schema()["properties"])


# --------------------------------------------------------------------- configuration and secrecy


def test_token_and_base_url_come_from_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYFAST_API_KEY", TOKEN)
    monkeypatch.setenv("ANYFAST_BASE_URL", server.base_url)
    server.script(Reply(200, load_data("query_in_progress.json")))
    with KlingClient() as client:
        client.get("1")
    assert server.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANYFAST_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ANYFAST_API_KEY"):
        KlingClient()


def test_default_base_url_and_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANYFAST_BASE_URL", raising=False)
    with KlingClient(TOKEN) as client:
        assert client.base_url == "https://www.anyfast.ai"
        timeout = client._http.timeout
        assert timeout.connect is not None and timeout.connect <= 10
        assert timeout.read is not None and timeout.read >= 60


@pytest.mark.parametrize("url", ["http://api.example.com", "http://10.0.0.5:8080", "ftp://127.0.0.1"])
def test_token_is_never_sent_over_plain_http_to_remote_hosts(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        KlingClient(TOKEN, base_url=url)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://example.com"])
def test_loopback_http_and_https_are_allowed(url: str) -> None:
    KlingClient(TOKEN, base_url=url).close()


def test_token_stays_out_of_reprs_and_errors(server: ScriptedServer, client: KlingClient) -> None:
    server.script(gateway_error(401, "invalid_api_key", "invalid token"))
    with pytest.raises(AuthenticationError) as info:
        client.get("1")
    texts = [repr(client), str(client), repr(client._core.auth), repr(client._http.auth),
             str(info.value), repr(info.value), repr(client._core.__dict__)]
    assert not any(TOKEN in t for t in texts)


def test_download_does_not_send_the_token_to_another_host(client: KlingClient, tmp_path: Path) -> None:
    with scripted_server() as cdn:
        cdn.script(Reply(200, VIDEO, {"Content-Type": "video/mp4"}))
        # a different origin (port) than the gateway
        client.download(cdn.base_url + "/v.mp4", tmp_path / "v.mp4")
    assert "authorization" not in cdn.seen[0].headers
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO


def test_download_refuses_to_overwrite_and_leaves_no_partial_file(
    server: ScriptedServer, client: KlingClient, tmp_path: Path
) -> None:
    target = tmp_path / "v.mp4"
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        client.download(server.base_url + "/v.mp4", target)
    assert target.read_bytes() == b"mine"
    server.script(*[Reply(502, "<html>no</html>")] * 4)  # the first try and 3 retries
    with pytest.raises(ServerError):
        client.download(server.base_url + "/v.mp4", tmp_path / "new.mp4")
    assert len(server.seen) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    server.script(Reply(200, VIDEO))
    client.download(server.base_url + "/v.mp4", target, overwrite=True)
    assert target.read_bytes() == VIDEO


def test_download_urls_must_be_http(client: KlingClient, tmp_path: Path) -> None:
    from kling_i2v import KlingError

    with pytest.raises(KlingError):
        client.download("file:///etc/passwd", tmp_path / "x")


# --------------------------------------------------------------------- async


def test_async_client_has_the_same_rules(server: ScriptedServer) -> None:
    server.script(
        gateway_error(429, "x"), Reply(200, CREATED),
        Reply(action="reset"),
    )
    clock = AsyncSimulatedClock()

    async def main() -> None:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url, clock=clock) as client:
            task = await client.create(image=URL_IMAGE, prompt="p")
            assert task.task_id == CREATED["task_id"]
            with pytest.raises(AmbiguousCreateError):
                await client.create(image=URL_IMAGE, prompt="p")
            with pytest.raises(RequestValidationError):
                await client.create(image=URL_IMAGE, prompt="p", cfg_scale=2)

    asyncio.run(main())
    assert len(server.seen) == 3
    assert len(clock.sleeps) == 1


# --------------------------------------------------------------------- models and the pool


def test_capability_warnings_are_logged_and_kept_on_the_task(
    server: ScriptedServer, client: KlingClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply(200, CREATED))
    with caplog.at_level(logging.WARNING, logger="kling_i2v"):
        task = client.create(image=URL_IMAGE, prompt="p", model_name="kling-v2-master", sound="on")
    assert any("sound" in w for w in task.warnings), task.warnings
    assert any("sound" in r.getMessage() for r in caplog.records)
    assert server.seen[0].json()["sound"] == "on"  # a warning, not a refusal


def test_an_unknown_model_is_sent_only_when_allowed(server: ScriptedServer, client: KlingClient) -> None:
    from kling_i2v import RequestValidationError

    with pytest.raises(RequestValidationError, match="model_name"):
        client.create(image=URL_IMAGE, prompt="p", model_name="kling-v9")  # type: ignore[typeddict-item]
    assert server.seen == []
    server.script(Reply(200, CREATED))
    task = client.create(image=URL_IMAGE, prompt="p", model_name="kling-v9",  # type: ignore[typeddict-item]
                         allow_unknown_model=True)
    assert server.seen[0].json()["model_name"] == "kling-v9"
    assert any("kling-v9" in w for w in task.warnings)


@pytest.mark.parametrize("size", [1, 4])
def test_the_pool_is_sized_by_max_connections(server: ScriptedServer, size: int) -> None:
    body = load_data("query_in_progress.json")
    server.script(*[Reply(200, body, action="delay:0.05")] * 16)

    async def main() -> None:
        async with AsyncKlingClient(TOKEN, base_url=server.base_url, max_connections=size) as client:
            await asyncio.gather(*(client.get(str(i)) for i in range(16)))

    asyncio.run(main())
    assert len({s.client_port for s in server.seen}) == size  # reused, never more than the pool


def test_max_connections_must_be_a_positive_whole_number() -> None:
    with pytest.raises(ConfigurationError, match="max_connections"):
        KlingClient(TOKEN, max_connections=0)


@pytest.mark.parametrize("url", ["http://[::1/x", "http://" + "a" * 70_000, "ftp://x"])
def test_an_invalid_base_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        KlingClient(TOKEN, base_url=url)
