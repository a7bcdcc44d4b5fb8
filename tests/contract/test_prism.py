"""The client against openapi.yaml, judged by Stoplight Prism (a tool we did not write).

`prism mock openapi.yaml` (pinned in scripts/prism/package-lock.json, installed into
.tools/prism by scripts/install-prism.sh on first use) validates every request it gets
against the spec, including the JSON Schema 2020-12 cross-field rules (`if`/`then`,
`not`, `anyOf`, `oneOf`) and `format: uri`. A recording proxy between the client and Prism
keeps every exchange, so the verdict does not depend on the client under test letting us
hook into it: any `sl-violations` header, any 422, or any non-2xx answer to a request that
should be valid fails the test.

The client is a `Driver`: the generated low-level client, and the overlay's
`KlingClient` (with its own client-side validation switched off, so Prism alone judges
what it sends; the body goes in as a request dict, since its images are already
encoded).

One limit of the tool, recorded where it matters: Prism validates `format: int64` with
JavaScript numbers, so it rejects integers above 2**53 - 1 (Number.MAX_SAFE_INTEGER) that
the spec allows; the element_id sent here stays below that.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import attrs
import httpx
import pytest
import yaml
from kling_i2v import KlingClient
from kling_i2v_api.api.image2video import create_image_to_video, get_image_to_video_task
from kling_i2v_api.client import AuthenticatedClient
from kling_i2v_api.models import ImageToVideoRequest, TaskQueryResponse, VideoTask

from tests.conftest import REPO

TOKEN = "sk-prism"
SPEC = yaml.safe_load((REPO / "openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]

# ---------------------------------------------------------------- request bodies

IMAGE = "https://example.com/first.png"
POINTS = [{"x": 10 * i, "y": 5 * i} for i in range(77)]  # the most points a trajectory may have
COMMON: dict[str, Any] = {
    "model_name": "kling-v2-master",
    "prompt": "the sun goes down behind the tree",
    "negative_prompt": "blur, text",
    "mode": "pro",
    "duration": "10",
    "cfg_scale": 0.75,
    "element_list": [{"element_id": 1}, {"element_id": 2}, {"element_id": 2**53 - 1}],
    "sound": "on",
    "watermark_info": {"enabled": True},
    "callback_url": "http://127.0.0.1:9/callback?run=1",
    "external_task_id": "prism-contract-1",
}
# Every field, split over bodies because image_tail, the masks and camera_control exclude
# each other (x-rule); test_every_field_is_sent checks that together they cover the spec.
FULL_BODIES: dict[str, dict[str, Any]] = {
    "all-with-image-tail-and-storyboard": {
        **COMMON,
        "image": IMAGE,
        "image_tail": "https://example.com/last.png",
        "multi_shot": True,
        "shot_type": "customize",
        "multi_prompt": [{"index": i, "prompt": f"shot {i}", "duration": "2"} for i in range(1, 7)],
    },
    "all-with-camera": {
        **COMMON,
        "image": "aGVsbG8=",  # raw base64, no data: prefix
        "multi_shot": False,
        "camera_control": {
            "type": "simple",
            "config": {"horizontal": 0, "vertical": 0, "pan": 0, "tilt": 0, "roll": 0, "zoom": -10},
        },
    },
    "all-with-masks": {
        **COMMON,
        "image": IMAGE,
        "multi_shot": True,
        "shot_type": "intelligence",
        "static_mask": "https://example.com/static.png",
        "dynamic_masks": [
            {"mask": "https://example.com/m1.png", "trajectories": POINTS},
            {"mask": "bWFzaw==", "trajectories": POINTS[:2]},
        ],
    },
}
MINIMAL_BODIES: dict[str, dict[str, Any]] = {
    "image-and-prompt": {"image": IMAGE, "prompt": "a cat"},
    "image-tail-and-prompt": {"image_tail": IMAGE, "prompt": "ends on this frame"},
    "storyboard-without-prompt": {"image": IMAGE, "multi_shot": True, "shot_type": "intelligence"},
}


def enum_bodies() -> dict[str, dict[str, Any]]:
    """One valid body per value of every enum the request uses, values read from the spec."""
    bodies: dict[str, dict[str, Any]] = {}
    minimal = MINIMAL_BODIES["image-and-prompt"]
    for field, schema in (
        ("model_name", "ModelName"),
        ("mode", "Mode"),
        ("duration", "Duration"),
        ("sound", "Sound"),
    ):
        for value in SCHEMAS[schema]["enum"]:
            bodies[f"{field}={value}"] = {**minimal, field: value}
    for value in SCHEMAS["ShotType"]["enum"]:
        storyboard = {"image": IMAGE, "multi_shot": True, "shot_type": value}
        if value == "customize":
            storyboard["multi_prompt"] = [{"index": 1, "prompt": "one", "duration": "5"}]
        bodies[f"shot_type={value}"] = storyboard
    for value in SCHEMAS["CameraControlType"]["enum"]:
        camera: dict[str, Any] = {"type": value}
        if value == "simple":
            camera["config"] = {"pan": 3.5}
        bodies[f"camera_control.type={value}"] = {**minimal, "camera_control": camera}
    return bodies


ALL_VALID = {**FULL_BODIES, **MINIMAL_BODIES, **enum_bodies()}

# ---------------------------------------------------------------------- drivers


class Driver(Protocol):
    """A client under test: sends create and query calls to `base_url`."""

    def create(self, body: dict[str, Any]) -> str:
        """Create a task from `body` (a JSON body as the spec says); return its task id."""
        ...

    def get(self, task_id: str) -> None:
        """Query the task; raise if the reply could not be read."""
        ...

    def close(self) -> None: ...


class GeneratedDriver:
    """kling_i2v_api, the generated low-level client."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = AuthenticatedClient(base_url=base_url, token=token, timeout=httpx.Timeout(30))

    def create(self, body: dict[str, Any]) -> str:
        response = create_image_to_video.sync_detailed(
            client=self.client, body=ImageToVideoRequest.from_dict(body)
        )
        assert isinstance(response.parsed, VideoTask), (response.status_code, response.content)
        return response.parsed.task_id

    def get(self, task_id: str) -> None:
        response = get_image_to_video_task.sync_detailed(task_id, client=self.client)
        assert isinstance(response.parsed, TaskQueryResponse), (
            response.status_code,
            response.content,
        )

    def close(self) -> None:
        self.client.get_httpx_client().close()


class OverlayDriver:
    """kling_i2v.KlingClient, the client users import."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = KlingClient(token, base_url=base_url, validate=False, max_retries=0)

    def create(self, body: dict[str, Any]) -> str:
        return self.client.create(body).task_id

    def get(self, task_id: str) -> None:
        self.client.get(task_id)

    def close(self) -> None:
        self.client.close()


DRIVERS: dict[str, Callable[[str, str], Driver]] = {
    "generated": GeneratedDriver,
    "overlay": OverlayDriver,
}

# ------------------------------------------------------------ prism and its proxy


@attrs.frozen
class Exchange:
    method: str
    path: str
    request_json: Any
    status: int
    violations: list[Any]


class RecordingProxy(ThreadingHTTPServer):
    """Forwards every request verbatim to Prism and records what Prism answered."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = httpx.Client(base_url=upstream, trust_env=False, timeout=30)
        self.exchanges: list[Exchange] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @contextlib.contextmanager
    def expect_valid(self) -> Iterator[list[Exchange]]:
        """The exchanges made inside the block; none may carry a violation or an error status."""
        start = len(self.exchanges)
        seen: list[Exchange] = []
        yield seen
        seen[:] = self.exchanges[start:]
        assert seen, "no request reached Prism"
        bad = [e for e in seen if e.violations or not 200 <= e.status < 300]
        assert not bad, "Prism reported:\n" + "\n".join(
            f"{e.method} {e.path} -> {e.status} {json.dumps(e.violations)}" for e in bad
        )


_HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: RecordingProxy

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):
            return self._forward
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        reply = self.server.upstream.request(self.command, self.path, headers=headers, content=body)
        try:
            request_json = json.loads(body) if body else None
        except ValueError:
            request_json = body
        raw_violations = reply.headers.get("sl-violations")
        self.server.exchanges.append(
            Exchange(
                self.command,
                self.path,
                request_json,
                reply.status_code,
                json.loads(raw_violations) if raw_violations else [],
            )
        )
        self.send_response(reply.status_code)
        for name in ("content-type", "sl-violations"):
            if name in reply.headers:
                self.send_header(name, reply.headers[name])
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def prism() -> Iterator[RecordingProxy]:
    """Prism on a free loopback port behind a recording proxy; always stopped afterwards."""
    installed = subprocess.run(
        [str(REPO / "scripts" / "install-prism.sh")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, f"installing Prism failed:\n{installed.stderr}"
    binary = installed.stdout.strip().splitlines()[-1]
    port = free_port()
    process = subprocess.Popen(
        [binary, "mock", str(REPO / "openapi.yaml"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(process.stdout or ()), daemon=True).start()
    proxy: RecordingProxy | None = None
    try:
        deadline = time.monotonic() + 60
        while not any("Prism is listening" in line for line in log):
            assert process.poll() is None, "Prism exited:\n" + "".join(log)
            assert time.monotonic() < deadline, "Prism did not start in 60 s:\n" + "".join(log)
            time.sleep(0.1)
        proxy = RecordingProxy(f"http://127.0.0.1:{port}")
        threading.Thread(
            target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        yield proxy
    finally:
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
            proxy.upstream.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the session Prism was started in
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, prism: RecordingProxy) -> Iterator[Driver]:
    client = DRIVERS[request.param](prism.url, TOKEN)
    try:
        yield client
    finally:
        client.close()


# ------------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", sorted(ALL_VALID))
def test_create_is_accepted_by_prism(name: str, driver: Driver, prism: RecordingProxy) -> None:
    body = ALL_VALID[name]
    with prism.expect_valid() as seen:
        assert driver.create(body)
    (sent,) = seen
    # every field arrives as given (a client may add fields of its own, e.g. external_task_id)
    assert {k: sent.request_json.get(k) for k in body} == body


def test_query_is_accepted_by_prism(driver: Driver, prism: RecordingProxy) -> None:
    with prism.expect_valid() as seen:
        task_id = driver.create(MINIMAL_BODIES["image-and-prompt"])
        driver.get(task_id)
        driver.get("860260753860210752")
    assert [e.method for e in seen] == ["POST", "GET", "GET"]


def test_every_field_is_sent() -> None:
    """The full bodies together set every property the spec's request schemas have."""
    sent: dict[str, set[str]] = {}

    def collect(schema_name: str, value: Any) -> None:
        schema = SCHEMAS[schema_name]
        sent.setdefault(schema_name, set()).update(value)
        for key, item in value.items():
            ref = schema["properties"][key].get("$ref") or schema["properties"][key].get(
                "items", {}
            ).get("$ref")
            target = ref.rsplit("/", 1)[1] if ref else None
            if target and "properties" in SCHEMAS[target]:
                for element in item if isinstance(item, list) else [item]:
                    collect(target, element)

    for body in FULL_BODIES.values():
        collect("ImageToVideoRequest", body)
    for schema_name, fields in sent.items():
        assert fields == set(SCHEMAS[schema_name]["properties"]), schema_name


def test_prism_reports_a_broken_rule(prism: RecordingProxy) -> None:
    """The negative control: a body breaking a cross-field rule is caught, so the checks above
    can fail. (Sent with plain httpx: the clients under test may refuse to send it.)"""
    body = {
        **MINIMAL_BODIES["image-and-prompt"],
        "image_tail": IMAGE,
        "static_mask": IMAGE,
        "duration": 5,
    }
    start = len(prism.exchanges)
    reply = httpx.post(
        f"{prism.url}/kling/v1/videos/image2video",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        trust_env=False,
    )
    (exchange,) = prism.exchanges[start:]
    assert reply.status_code in (400, 422)
    codes = {v["code"] for v in exchange.violations}
    assert {"not", "type"} <= codes, exchange.violations
    start = len(prism.exchanges)
    httpx.get(f"{prism.url}/kling/v1/videos/image2video/1", trust_env=False)
    (unauthenticated,) = prism.exchanges[start:]
    assert unauthenticated.status == 401 and unauthenticated.violations
