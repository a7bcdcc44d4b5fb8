"""The fake gateway's own behaviour, over real HTTP with httpx, as a user's test would see it.

Most tests use the `fake_gateway` fixture that the package's pytest plugin provides (fast
clock); `@pytest.mark.fake_gateway(clock="manual")` gives one whose clock only moves on
`advance()`. Every JSON reply is checked against openapi.yaml itself.

Covers: testing/__init__.py, testing/api.py, testing/assets.py,
testing/callbacks.py, testing/faults.py, testing/lifecycle.py, testing/pytest_plugin.py,
testing/replies.py, testing/server.py, testing/spec.py
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from kling_i2v.testing import FakeGateway, Fault, Phase, sample_image_path, sample_video_path

from tests.conftest import REPO

CREATE = "/kling/v1/videos/image2video"
SPEC = yaml.safe_load((REPO / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]
MODEL = SCHEMAS["ModelName"]["enum"][0]
BODY: dict[str, Any] = {
    "model_name": MODEL,
    "image": "https://example.com/cat.png",
    "prompt": "a cat jumps",
}
SATURATED = "当前分组上游负载已饱和，请稍后再试"
manual_clock = pytest.mark.fake_gateway(clock="manual")


def conforms(schema: str, instance: Any) -> None:
    """Raise unless `instance` is valid under the spec's component `schema`."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": SPEC["components"]}
    jsonschema.Draft202012Validator(root).validate(instance)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.fixture
def client(fake_gateway: FakeGateway) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake_gateway.base_url,
        headers={"Authorization": f"Bearer {fake_gateway.token}"},
        trust_env=False,
        timeout=10,
    ) as c:
        yield c


def create(client: httpx.Client, **fields: Any) -> str:
    reply = client.post(CREATE, json={**BODY, **fields})
    assert reply.status_code == 200, reply.text
    task_id: str = reply.json()["task_id"]
    return task_id


def query(client: httpx.Client, task_id: str) -> dict[str, Any]:
    reply = client.get(f"{CREATE}/{task_id}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    conforms("TaskQueryResponse", body)
    return body


# ------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "authorization", [None, "Bearer sk-wrong", "Basic c2stZmFrZQ==", "sk-fake", "Bearer"]
)
def test_create_and_query_need_an_accepted_bearer_token(
    fake_gateway: FakeGateway, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    for reply in (
        httpx.post(fake_gateway.base_url + CREATE, json=BODY, headers=headers),
        httpx.get(fake_gateway.base_url + CREATE + "/123", headers=headers),
    ):
        assert reply.status_code == 401
        error = reply.json()["error"]
        assert (error["type"], error["code"]) == ("new_api_error", "")
        assert error["message"].startswith(("Invalid token (request id: ", "Token not provided"))
        assert error["message"].endswith(f"(request id: {reply.headers['X-Oneapi-Request-Id']})")
        conforms("GatewayErrorBody", reply.json())
    assert fake_gateway.tasks == {}


@pytest.mark.fake_gateway(tokens=("sk-one", "sk-two"))
def test_every_configured_token_is_accepted(fake_gateway: FakeGateway) -> None:
    assert fake_gateway.token == "sk-one"
    for token in ("sk-one", "sk-two"):
        reply = httpx.post(
            fake_gateway.base_url + CREATE, json=BODY, headers={"Authorization": f"bearer {token}"}
        )
        assert reply.status_code == 200
    assert len(fake_gateway.tasks) == 2


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"image": "x", "prompt": "p"}, 400, "Model name not specified, model name cannot be empty"),
        ({**BODY, "model_name": ""}, 400, "Model name not specified, model name cannot be empty"),
        ([BODY], 400, "Model name not specified, model name cannot be empty"),
        ({**BODY, "model_name": 2}, 400, "Invalid request: field model must be a string"),
        (
            {**BODY, "model_name": "kling-v9"},
            503,
            "No available channel for model kling-v9 under group default (distributor)",
        ),
    ],
)
def test_model_name_is_checked_first_in_the_gateway_shape(
    fake_gateway: FakeGateway, client: httpx.Client, body: Any, status: int, message: str
) -> None:
    reply = client.post(CREATE, json=body)
    assert reply.status_code == status
    conforms("GatewayErrorBody", reply.json())
    request_id = reply.headers["X-Oneapi-Request-Id"]
    assert reply.json()["error"] == {
        "message": f"{message} (request id: {request_id})",
        "type": "new_api_error",
        "code": "model_not_found" if status == 503 else "",
    }
    assert fake_gateway.tasks == {}


@pytest.mark.parametrize("prompt", [None, ""])
def test_a_missing_prompt_is_new_apis_invalid_request(client: httpx.Client, prompt: Any) -> None:
    body = {k: v for k, v in BODY.items() if k != "prompt"}
    if prompt is not None:
        body["prompt"] = prompt
    reply = client.post(CREATE, json=body)
    assert reply.status_code == 400
    assert reply.json() == {"code": "invalid_request", "message": "prompt is required", "data": None}


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({**BODY, "image": None}, ["image: None is not of type 'string'"]),
        (
            {**BODY, "duration": 5, "mode": "ultra", "cfg_scale": 2},
            ["duration: 5 is not of type 'string'", "mode: 'ultra' is not one of", "cfg_scale:"],
        ),
        (
            {**BODY, "image_tail": "y", "camera_control": {"type": "down_back"}},
            ["cannot be combined"],
        ),
        (
            {**BODY, "camera_control": {"type": "simple", "config": {"zoom": 1, "pan": 2}}},
            ["camera_control.config: exactly one of"],
        ),
        ({**BODY, "colour": "red"}, ["Additional properties are not allowed ('colour'"]),
        ({**BODY, "callback_url": "not a uri"}, ["callback_url: 'not a uri' is not a 'uri'"]),
        (
            {**BODY, "multi_prompt": [{"index": 9, "prompt": "", "duration": "16"}]},
            ["multi_prompt[0].index", "multi_prompt[0].prompt", "multi_prompt[0].duration"],
        ),
        ({**BODY, "prompt": "[fake:explode]"}, ["unknown marker [fake:explode]"]),
        ({**BODY, "prompt": "[fake:seconds=soon]"}, ["[fake:seconds=soon]: not a number"]),
    ],
)
def test_bodies_kling_refuses_get_400_fail_to_fetch_task_naming_every_violation(
    fake_gateway: FakeGateway, client: httpx.Client, body: Any, fragments: list[str]
) -> None:
    reply = client.post(CREATE, json=body)
    assert reply.status_code == 400
    error = reply.json()
    conforms("TaskErrorBody", error)
    assert error["code"] == "fail_to_fetch_task" and error["data"] is None
    kling = json.loads(error["message"])  # Kling's own body, passed on verbatim
    assert kling["code"] == 1201
    for fragment in fragments:
        assert fragment in kling["message"]
    assert fake_gateway.tasks == {}


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"image": NaN}', b"\xff\xfe"])
def test_a_body_that_is_not_json_gets_400(client: httpx.Client, content: bytes) -> None:
    reply = client.post(CREATE, content=content, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith(
        "Invalid request: invalid JSON request body (request id: "
    )


def test_every_duration_the_spec_allows_is_accepted(client: httpx.Client) -> None:
    for duration in SCHEMAS["Duration"]["enum"]:
        create(client, duration=duration)
    assert client.post(CREATE, json={**BODY, "duration": "16"}).status_code == 400


# -------------------------------------------------------------------- create


def test_create_answers_the_gateway_video_object(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    reply = client.post(CREATE, json={**BODY, "external_task_id": "mine-1"})
    assert reply.status_code == 200
    video = reply.json()
    conforms("VideoTask", video)
    assert video["id"] == video["task_id"] and video["task_id"].isdigit()
    assert video["object"] == "video" and video["status"] == "queued" and video["progress"] == 0
    assert video["model"] == SCHEMAS["ModelName"]["enum"][0]
    assert abs(video["created_at"] - time.time()) < 60
    task = fake_gateway.tasks[video["task_id"]]
    assert task.external_task_id == "mine-1" and task.body["prompt"] == BODY["prompt"]


def test_task_ids_are_deterministic_from_the_seed() -> None:
    def ids(seed: int) -> list[str]:
        with FakeGateway(seed=seed) as gw:
            headers = {"Authorization": f"Bearer {gw.token}"}
            for _ in range(3):
                httpx.post(gw.base_url + CREATE, json=BODY, headers=headers)
            return list(gw.tasks)

    assert ids(7) == ids(7) != ids(8)


def test_concurrent_creates_make_distinct_tasks(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    with ThreadPoolExecutor(8) as pool:
        task_ids = list(pool.map(lambda _: create(client), range(40)))
    assert len(set(task_ids)) == 40 and set(task_ids) == set(fake_gateway.tasks)


# -------------------------------------------------------------------- lifecycle


@manual_clock
def test_lifecycle_not_start_submitted_in_progress_success_in_new_api_steps(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = create(client, external_task_id="ext-42", duration="7")

    seen = []
    for _ in range(10):
        data = query(client, task_id)["data"]
        upstream = data["data"]["data"]  # never null: Kling's submit reply at first
        assert data["task_id"] == task_id and data["data"]["code"] == 0
        assert upstream["task_info"] == {"external_task_id": "ext-42"}
        seen.append((data["status"], data["progress"], upstream["task_status"]))
        fake_gateway.advance(1.0)
    assert sorted(set(seen), key=seen.index) == [
        ("NOT_START", "0%", "submitted"),
        ("SUBMITTED", "10%", "submitted"),
        ("IN_PROGRESS", "30%", "processing"),
    ]
    first = seen[0]
    assert first == ("NOT_START", "0%", "submitted")

    fake_gateway.advance(0.0)
    data = query(client, task_id)["data"]
    assert (data["status"], data["progress"], data["fail_reason"]) == ("SUCCESS", "100%", "")
    assert data["submit_time"] <= data["start_time"] <= data["finish_time"]
    reply = data["data"]
    assert reply["code"] == 0 and reply["request_id"]
    upstream = reply["data"]
    assert upstream["task_id"] == task_id and upstream["task_status"] == "succeed"
    assert upstream["created_at"] <= upstream["updated_at"]  # milliseconds
    assert upstream["updated_at"] // 1000 == data["finish_time"]
    (video,) = upstream["task_result"]["videos"]
    assert video["url"] == fake_gateway.video_url(task_id) and video["duration"] == "7"
    assert data["result_url"] == video["url"]  # new-api@U's result_url
    assert fake_gateway.tasks[task_id].outcome == Phase.SUCCESS == "SUCCESS"


@manual_clock
@pytest.mark.parametrize(
    ("prompt", "reason"),
    [
        ("a cat [fake:fail]", "Failure to pass the risk control system"),
        ("a cat [fake:fail=the cat refused to jump]", "the cat refused to jump"),
    ],
)
def test_fail_marker_ends_in_failure_with_the_reason(
    fake_gateway: FakeGateway, client: httpx.Client, prompt: str, reason: str
) -> None:
    task_id = create(client, prompt=prompt)
    fake_gateway.advance(5)
    assert query(client, task_id)["data"]["status"] == "IN_PROGRESS"
    fake_gateway.advance(5)
    data = query(client, task_id)["data"]
    assert (data["status"], data["fail_reason"], data["progress"]) == ("FAILURE", reason, "100%")
    upstream = data["data"]["data"]
    assert (upstream["task_status"], upstream["task_status_msg"]) == ("failed", reason)
    assert "task_result" not in upstream
    assert fake_gateway.tasks[task_id].outcome == "FAILURE"


@manual_clock
def test_seconds_marker_sets_the_length(fake_gateway: FakeGateway, client: httpx.Client) -> None:
    at_once = create(client, prompt="[fake:seconds=0] now")
    slow = create(client, prompt="slowly [fake:seconds=100]")
    storyboard = client.post(
        CREATE,
        json={
            "model_name": MODEL,
            "image": "x",
            "multi_shot": True,
            "shot_type": "customize",
            "multi_prompt": [{"index": 1, "prompt": "[fake:fail=shot one] go", "duration": "3"}],
        },
    ).json()["task_id"]
    assert query(client, at_once)["data"]["status"] == "SUCCESS"
    fake_gateway.advance(50)
    assert query(client, slow)["data"]["status"] == "IN_PROGRESS"
    assert query(client, slow)["data"]["progress"] == "30%"
    assert query(client, storyboard)["data"]["fail_reason"] == "shot one"
    fake_gateway.advance(50)
    assert query(client, slow)["data"]["status"] == "SUCCESS"


def test_fast_clock_finishes_a_default_task_in_a_tenth_of_a_second(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = create(client)
    started = time.monotonic()
    while query(client, task_id)["data"]["status"] != "SUCCESS":
        assert time.monotonic() - started < 2
        time.sleep(0.01)
    assert 0.08 < time.monotonic() - started


def test_advance_needs_the_manual_clock(fake_gateway: FakeGateway) -> None:
    with pytest.raises(TypeError, match="manual"):
        fake_gateway.advance(1)


def test_unknown_task_id_is_task_not_exist(client: httpx.Client) -> None:
    reply = client.get(f"{CREATE}/123456789")
    assert reply.status_code == 400
    assert reply.json()["code"] == "task_not_exist"
    conforms("TaskErrorBody", reply.json())


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/kling/v2/videos/image2video"), ("PUT", CREATE), ("GET", CREATE),
     ("DELETE", CREATE + "/1"), ("POST", CREATE + "/1"), ("GET", "/kling/v1/videos/image2video/1/x")],
)
def test_unknown_routes_outside_v1_and_api_are_the_web_ui(
    client: httpx.Client, method: str, path: str
) -> None:
    reply = client.request(method, path)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.text.startswith("<!doctype html>")
    assert reply.headers["X-Oneapi-Request-Id"]


@pytest.mark.parametrize("path", ["/v1/models", "/api/status", "/v1", "/assets/x.js"])
def test_unknown_routes_under_v1_and_api_are_relay_not_found(client: httpx.Client, path: str) -> None:
    reply = client.get(path)
    assert reply.status_code == 404
    assert reply.json() == {"error": {"message": f"Invalid URL (GET {path})",
                                      "type": "invalid_request_error", "param": "", "code": ""}}


@manual_clock
@pytest.mark.parametrize("action", ["image2video", "text2video", "generations", "anything"])
def test_the_query_route_takes_any_action_segment(client: httpx.Client, action: str) -> None:
    task_id = create(client)
    reply = client.get(f"/kling/v1/videos/{action}/{task_id}")
    assert reply.status_code == 200 and reply.json()["data"]["task_id"] == task_id


def test_every_answer_has_a_request_id_and_the_cdn_none(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = create(client)
    ids = {client.get(f"{CREATE}/{task_id}").headers["X-Oneapi-Request-Id"] for _ in range(5)}
    assert len(ids) == 5 and all(i.isdigit() and len(i) == 31 for i in ids)
    assert "X-Oneapi-Request-Id" not in httpx.get(fake_gateway.video_url(task_id)).headers
    assert {r.request_id for r in fake_gateway.requests if r.target == "query"} == ids


def test_connections_are_kept_alive(fake_gateway: FakeGateway) -> None:
    import http.client

    connection = http.client.HTTPConnection(fake_gateway.base_url.removeprefix("http://"))
    try:
        for _ in range(3):
            connection.request("GET", f"{CREATE}/1", headers={"Authorization": "Bearer sk-fake"})
            response = connection.getresponse()
            response.read()
            assert response.status == 400 and not response.will_close
            assert response.getheader("Content-Length")
    finally:
        connection.close()


# ------------------------------------------------------------------------ files


@manual_clock
def test_the_video_is_served_once_the_task_succeeded(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = create(client)
    url = fake_gateway.video_url(task_id)
    assert httpx.get(url).status_code == 404
    fake_gateway.advance(10)
    reply = httpx.get(url)  # no token: a CDN
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "video/mp4"
    assert reply.content == sample_video_path().read_bytes()
    assert int(reply.headers["Content-Length"]) == len(reply.content)
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(reply.content))
    assert httpx.get(fake_gateway.video_url("999")).status_code == 404


@manual_clock
def test_ffprobe_reads_the_served_video_as_mp4_with_a_video_stream(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    if shutil.which("ffprobe") is None:
        if os.environ.get("CI"):
            pytest.fail("ffprobe is missing: .ci/run must apt-get install ffmpeg")
        pytest.skip("ffprobe not installed here (apt-get install -y ffmpeg); CI installs it")
    task_id = create(client)
    fake_gateway.advance(10)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            fake_gateway.video_url(task_id),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    info = json.loads(probe.stdout)
    assert "mp4" in info["format"]["format_name"]
    assert float(info["format"]["duration"]) > 1
    (video,) = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert video["codec_name"] == "h264" and video["width"] >= 160 and video["height"] >= 90


def test_sample_files_are_small_real_media() -> None:
    image = sample_image_path().read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and image[12:16] == b"IHDR"
    width, height = struct.unpack(">II", image[16:24])
    assert min(width, height) >= 300 and 1 / 2.5 <= width / height <= 2.5
    assert len(image) < 100_000
    video = sample_video_path().read_bytes()
    assert video[4:8] == b"ftyp" and len(video) < 100_000


# ----------------------------------------------------------------------- faults


def test_status_faults_use_new_apis_shapes(fake_gateway: FakeGateway, client: httpx.Client) -> None:
    fake_gateway.inject(Fault.status(429), on="create", times=2)
    fake_gateway.inject(Fault.status(503), on="query")
    for _ in range(2):
        reply = client.post(CREATE, json=BODY)
        assert reply.status_code == 429 and "Retry-After" not in reply.headers
        assert reply.json() == {"code": "fail_to_fetch_task", "message": SATURATED, "data": None}
    assert fake_gateway.tasks == {}
    task_id = create(client)
    reply = client.get(f"{CREATE}/{task_id}")
    assert reply.status_code == 503 and "Retry-After" not in reply.headers
    conforms("GatewayErrorBody", reply.json())
    assert reply.json()["error"]["code"] == "model_not_found"
    assert query(client, task_id)["data"]["task_id"] == task_id
    assert [r.fault for r in fake_gateway.requests] == ["status", "status", None, "status", None]


@pytest.mark.parametrize(
    ("status", "shape", "code"),
    [(400, "task", "invalid_request"), (401, "gateway", ""), (403, "task", "insufficient_user_quota"),
     (404, "task", "fail_to_fetch_task"), (500, "task", "do_request_failed"),
     (502, "task", "fail_to_fetch_task"), (503, "gateway", "model_not_found"),
     (504, "task", "fail_to_fetch_task")],
)
def test_each_status_fault_has_the_shape_and_code_new_api_gives_it(
    fake_gateway: FakeGateway, client: httpx.Client, status: int, shape: str, code: str
) -> None:
    fake_gateway.inject(Fault.status(status, retry_after="7" if status == 504 else None))
    reply = client.post(CREATE, json=BODY)
    assert reply.status_code == status
    body = reply.json()
    if shape == "gateway":
        conforms("GatewayErrorBody", body)
        assert body["error"]["code"] == code and body["error"]["type"] == "new_api_error"
    else:
        conforms("TaskErrorBody", body)
        assert body["code"] == code and body["data"] is None
    assert reply.headers.get("Retry-After") == ("7" if status == 504 else None)


def test_reset_before_response_creates_nothing(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    fake_gateway.inject(Fault.reset_before_response(), on="create")
    with pytest.raises(httpx.TransportError):
        client.post(CREATE, json=BODY)
    assert fake_gateway.tasks == {}
    (recorded,) = fake_gateway.requests
    assert (recorded.status, recorded.fault, recorded.json) == (0, "reset_before_response", BODY)
    create(client)  # the next request is fine


def test_drop_after_create_creates_the_task_without_answering(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    fake_gateway.inject(Fault.drop_after_create(), on="create")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(CREATE, json={**BODY, "external_task_id": "ambiguous-1"})
    (task,) = fake_gateway.tasks.values()
    assert task.external_task_id == "ambiguous-1"
    assert fake_gateway.requests[0].status == 0
    assert query(client, task.task_id)["data"]["status"] == "NOT_START"


def test_delay_slows_the_answer_and_trips_client_timeouts(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    fake_gateway.inject(Fault.delay(0.3), on="any")
    started = time.monotonic()
    create(client)
    assert time.monotonic() - started >= 0.3
    fake_gateway.inject(Fault.delay(0.5), on="create")
    with pytest.raises(httpx.ReadTimeout):
        client.post(CREATE, json=BODY, timeout=0.1)
    wait_until(lambda: len(fake_gateway.tasks) == 2)  # processed all the same, late
    assert create(client)


def test_body_fault_sends_html(fake_gateway: FakeGateway, client: httpx.Client) -> None:
    fake_gateway.inject(Fault.body(b"<html>bad gateway</html>", status=502), on="query")
    reply = client.get(f"{CREATE}/1")
    assert reply.status_code == 502 and reply.headers["Content-Type"] == "text/html"
    assert reply.text == "<html>bad gateway</html>"


@manual_clock
def test_truncated_json_is_cut_in_half(fake_gateway: FakeGateway, client: httpx.Client) -> None:
    task_id = create(client)
    fake_gateway.advance(3600)  # finished: the reply no longer grows between the two reads
    whole = client.get(f"{CREATE}/{task_id}").content
    fake_gateway.inject(Fault.truncated_json(), on="query")
    reply = client.get(f"{CREATE}/{task_id}")
    assert reply.status_code == 200 and reply.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        reply.json()


def test_unknown_status_is_reported_in_both_replies(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    fake_gateway.inject(Fault.unknown_status("WEIRD_STATE"), on="any", times=2)
    reply = client.post(CREATE, json=BODY)
    assert reply.json()["status"] == "WEIRD_STATE"
    data = query(client, reply.json()["task_id"])["data"]  # still conforms: the set is open
    assert data["status"] == "WEIRD_STATE"


def test_faults_match_their_target_in_order_and_can_persist(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    fake_gateway.inject(Fault.status(500), on="download", times=None)
    fake_gateway.inject(Fault.status(502), on="query")
    fake_gateway.inject(Fault.status(503), on="query")
    task_id = create(client)  # no create fault queued
    assert client.get(f"{CREATE}/{task_id}").status_code == 502
    assert client.get(f"{CREATE}/{task_id}").status_code == 503
    assert client.get(f"{CREATE}/{task_id}").status_code == 200
    for _ in range(3):
        assert httpx.get(fake_gateway.video_url(task_id)).status_code == 500
    fake_gateway.clear_faults()
    assert httpx.get(fake_gateway.video_url(task_id)).status_code in (200, 404)


def test_fault_rates_are_deterministic_from_the_seed() -> None:
    def run(seed: int) -> list[str | None]:
        with FakeGateway(time_scale=100) as gw:
            gw.set_fault_rates({"429": 0.2, "5xx": 0.2, "reset": 0.1, "html": 0.1}, seed=seed)
            with httpx.Client(base_url=gw.base_url, trust_env=False) as c:
                for _ in range(60):
                    try:
                        c.post(CREATE, json=BODY, headers={"Authorization": f"Bearer {gw.token}"})
                    except httpx.TransportError:
                        pass
            return [f"{r.fault}:{r.status}" if r.fault else None for r in gw.requests]

    first = run(42)
    assert first == run(42) != run(43)
    faulted = sum(1 for f in first if f)
    assert 20 <= faulted <= 50  # about 60% of 60
    assert {f.split(":")[0] for f in first if f} == {"status", "reset_before_response", "body"}


def test_fault_rates_reject_unknown_keys_and_impossible_sums(fake_gateway: FakeGateway) -> None:
    with pytest.raises(ValueError, match="unknown"):
        fake_gateway.set_fault_rates({"teapot": 0.1})
    with pytest.raises(ValueError, match="at most 1"):
        fake_gateway.set_fault_rates({"429": 0.7, "5xx": 0.7})


# --------------------------------------------------------------------- records


def test_requests_are_recorded_with_the_token_redacted(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = create(client)
    query(client, task_id)
    query(client, task_id)
    httpx.get(fake_gateway.video_url(task_id))
    first = fake_gateway.requests[0]
    assert (first.method, first.path, first.status, first.target) == ("POST", CREATE, 200, "create")
    assert first.json == BODY
    assert first.headers["authorization"] == "Bearer ***"
    assert all(fake_gateway.token not in json.dumps(r.headers) for r in fake_gateway.requests)
    assert fake_gateway.count(method="POST", path=CREATE) == 1
    assert fake_gateway.count(method="GET", path=f"{CREATE}/{task_id}") == 2
    assert fake_gateway.count(on="query") == 2 and fake_gateway.count(on="download") == 1
    assert fake_gateway.count() == 4 and list(fake_gateway.tasks) == [task_id]


# ------------------------------------------------------------------- callbacks


class Receiver(ThreadingHTTPServer):
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/kling-callback"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/json"
        self.server.received.append(json.loads(body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield server
    server.shutdown()
    server.server_close()


def test_callbacks_are_posted_at_every_status_change(
    fake_gateway: FakeGateway, client: httpx.Client, receiver: Receiver
) -> None:
    ok = create(client, callback_url=receiver.url, external_task_id="cb-1")
    failed = create(client, callback_url=receiver.url, prompt="[fake:fail=nope]")
    wait_until(lambda: len(receiver.received) == 6)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for payload in receiver.received:
        conforms("KlingTask", payload)
        by_task.setdefault(payload["task_id"], []).append(payload)
    assert [p["task_status"] for p in by_task[ok]] == ["submitted", "processing", "succeed"]
    assert [p["task_status"] for p in by_task[failed]] == ["submitted", "processing", "failed"]
    assert by_task[ok][-1]["task_result"]["videos"][0]["url"] == fake_gateway.video_url(ok)
    assert by_task[ok][0]["task_info"] == {"external_task_id": "cb-1"}
    assert by_task[failed][-1]["task_status_msg"] == "nope"
    assert set(by_task[ok][0]) == {
        "task_id",
        "task_status",
        "task_status_msg",
        "task_info",
        "created_at",
        "updated_at",
    }
    assert all(a.status == 200 and a.error is None for a in fake_gateway.callbacks)


@manual_clock
def test_callbacks_follow_the_manual_clock(
    fake_gateway: FakeGateway, client: httpx.Client, receiver: Receiver
) -> None:
    create(client, callback_url=receiver.url)
    wait_until(lambda: len(receiver.received) == 1)
    fake_gateway.advance(10)  # jumps over IN_PROGRESS: it is still delivered, in order
    wait_until(lambda: len(receiver.received) == 3)
    assert [p["task_status"] for p in receiver.received] == ["submitted", "processing", "succeed"]


def test_callbacks_only_go_to_loopback(fake_gateway: FakeGateway, client: httpx.Client) -> None:
    create(client, callback_url="http://callbacks.example.com/kling")
    wait_until(lambda: len(fake_gateway.callbacks) == 3)
    for attempt in fake_gateway.callbacks:
        assert attempt.status is None and attempt.error and "refused" in attempt.error


def test_callback_receiver_errors_are_recorded(
    fake_gateway: FakeGateway, client: httpx.Client, receiver: Receiver
) -> None:
    receiver.status = 500
    create(client, callback_url=receiver.url)
    wait_until(lambda: len(fake_gateway.callbacks) == 3)
    assert [a.status for a in fake_gateway.callbacks] == [500, 500, 500]


@pytest.mark.parametrize("prompt", ["   ", "\t\u3000\n"])
def test_a_blank_prompt_is_new_apis_invalid_request_too(client: httpx.Client, prompt: str) -> None:
    # relay_utils.go validatePrompt trims with Go's unicode.IsSpace before comparing to ""
    reply = client.post(CREATE, json={**BODY, "prompt": prompt})
    assert reply.status_code == 400
    assert reply.json() == {"code": "invalid_request", "message": "prompt is required", "data": None}
