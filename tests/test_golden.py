"""Golden exchanges: what the real gateway answers, and what the user gets from it.

Each file in tests/data/gateway/ is one exchange shape of new-api / anyfast (request,
status, headers, body) with its source: a file and commit of QuantumNous/new-api, the
anyfast reference page, or a row of gateway-facts.md. Two tests read every file:

- the client's: the exchange's answer is served byte for byte by a loopback server and
  the client's call returns the `Task` the file says (field by field) or raises the
  exception it says (class, code, words of the message);
- the fake's: `kling_i2v.testing.FakeGateway`, set up as the file's `fake` section says,
  is sent the same request and must answer the same status, body shape and codes (and,
  where the file asks, the same message, or the same keys all the way down), so the fake
  and the real service cannot drift apart unnoticed. Files whose exchange the fake cannot
  produce say why in their `note`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import kling_i2v
import pytest
from kling_i2v import KlingClient
from kling_i2v.testing import FakeGateway, Fault

from tests.conftest import DATA
from tests.scripted_server import Reply, scripted_server

GOLDEN = sorted((DATA / "gateway").glob("*.json"))
FAKE_BODY = {
    "model_name": "kling-v2-master",
    "image": "https://example.com/cat.png",
    "prompt": "a cat jumps",
    "external_task_id": "batch-7f3c-row-12",
}
# values the fake must write exactly as the golden file does; any other value only by type
LITERAL_KEYS = {"status", "progress", "object", "code", "task_status", "type"}


def load(path: Path) -> dict[str, Any]:
    golden: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return golden


def test_every_exchange_names_its_source_and_what_the_user_sees() -> None:
    assert len(GOLDEN) >= 30
    for path in GOLDEN:
        golden = load(path)
        assert golden["source"].strip(), path.name
        assert set(golden["user_sees"]) in ({"task"}, {"error"}), path.name
        assert golden["fake"] is not None or golden.get("note"), f"{path.name}: why no fake?"


# ------------------------------------------------------------------- the client


def answer(golden: dict[str, Any]) -> Reply:
    response = golden["response"]
    body = response.get("body_text", response.get("body"))
    return Reply(response["status"], body, dict(response["headers"]))


def queried_id(golden: dict[str, Any]) -> str:
    body = golden["response"].get("body")
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        return str(body["data"]["task_id"])
    return "860260753860210752"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_the_client_reads_each_exchange_as_the_user_should_see_it(path: Path) -> None:
    golden = load(path)
    with scripted_server() as server, KlingClient(
        "sk-golden", base_url=server.base_url, max_retries=0
    ) as kling:
        server.script(answer(golden))

        def call() -> Any:
            if golden["operation"] == "create":
                return kling.create(image="https://example.com/cat.png", prompt="a cat jumps")
            return kling.get(queried_id(golden))

        sees = golden["user_sees"]
        if "task" in sees:
            task = call()
            for field, expected in sees["task"].items():
                value = getattr(task, field)
                value = list(value) if isinstance(value, tuple) else value
                assert value == expected, f"{path.stem}: Task.{field} is {value!r}, not {expected!r}"
            return
        expected = sees["error"]
        with pytest.raises(kling_i2v.KlingError) as info:
            call()
        error = info.value
        assert isinstance(error, getattr(kling_i2v, expected["class"])), repr(error)
        if expected["code"] is not None:
            assert getattr(error, "code", None) == expected["code"], repr(error)
        assert expected["message_contains"].replace("{base_url}", server.base_url) in str(error)
        assert "sk-golden" not in str(error)


# --------------------------------------------------------------------- the fake


def shape(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("text/html"):
        return "html"
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return "gateway error"
    if isinstance(body, dict) and body.get("code") == "success" and isinstance(body.get("data"), dict):
        return "task envelope"
    if isinstance(body, dict) and body.get("object") == "video":
        return "video object"
    if isinstance(body, dict) and {"code", "message", "data"} <= set(body):
        return "task error"
    return "other"


def codes(body: Any) -> tuple[Any, ...]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return ("gateway", body["error"].get("type"), body["error"].get("code"))
    if isinstance(body, dict):
        return ("task", body.get("code"))
    return ()


def skeleton(value: Any, key: str = "") -> Any:
    """`value` with every value replaced by its type, except those of LITERAL_KEYS."""
    if isinstance(value, dict):
        return {k: skeleton(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(value[0])] if value else []
    return value if key in LITERAL_KEYS else type(value).__name__


def fake_options(setup: dict[str, Any]) -> dict[str, Any]:
    return {k: setup[k] for k in ("dialect", "balance", "max_running", "clock") if k in setup}


def send(http: httpx.Client, request: dict[str, Any], task_id: str) -> httpx.Response:
    path = request["path"].replace("{task_id}", task_id)
    if "body_text" in request:
        return http.request(request["method"], path, content=request["body_text"].encode(),
                            headers={"Content-Type": "application/json"})
    return http.request(request["method"], path, json=request.get("body"))


def fake_reply(golden: dict[str, Any], **overrides: Any) -> httpx.Response:
    """The fake's answer to the golden request, set up as the file says (and `overrides`)."""
    fake = golden["fake"]
    setup = {**fake["setup"], **overrides}
    with FakeGateway(**fake_options(setup)) as gw, httpx.Client(
        base_url=gw.base_url,
        headers={"Authorization": f"Bearer {setup.get('token', gw.token)}"},
        trust_env=False,
        timeout=10,
    ) as http:
        task_id = "123456789"
        if setup.get("prepare") == "create":
            body = {**FAKE_BODY, **({"prompt": setup["prompt"]} if "prompt" in setup else {})}
            created = http.post("/kling/v1/videos/image2video", json=body)
            assert created.status_code == 200, created.text
            task_id = created.json()["task_id"]
        if "advance" in setup:
            gw.advance(setup["advance"])
        fault = setup.get("fault")
        if isinstance(fault, Fault):
            gw.inject(fault, on=golden["operation"])
        elif isinstance(fault, int):
            gw.inject(Fault.status(fault), on=golden["operation"])
        elif isinstance(fault, str):
            gw.inject(Fault.unknown_status(fault.split(":", 1)[1]), on=golden["operation"])
        reply = send(http, fake.get("request") or golden["request"], task_id)
        reply.read()
        return reply


def assert_same_answer(golden: dict[str, Any], reply: httpx.Response) -> None:
    expected = golden["response"]
    assert reply.status_code == expected["status"], reply.text
    assert shape(reply) == shape(httpx.Response(
        expected["status"], headers=expected["headers"],
        content=expected["body_text"].encode() if "body_text" in expected
        else json.dumps(expected["body"]).encode(),
    ))
    assert ("Retry-After" in reply.headers) == ("Retry-After" in expected["headers"])
    if "X-Oneapi-Request-Id" in expected["headers"]:
        assert reply.headers["X-Oneapi-Request-Id"]
    if "body" not in expected:
        return
    body = reply.json()
    assert codes(body) == codes(expected["body"])
    if golden["fake"]["compare"] == "exact_message":
        request_id = reply.headers["X-Oneapi-Request-Id"]
        golden_id = expected["headers"]["X-Oneapi-Request-Id"]
        assert json.dumps(body, ensure_ascii=False).replace(request_id, golden_id) == json.dumps(
            expected["body"], ensure_ascii=False
        )
    elif golden["fake"]["compare"] == "keys":
        assert skeleton(body) == skeleton(expected["body"])


@pytest.mark.parametrize(
    "path", [p for p in GOLDEN if load(p)["fake"] is not None], ids=lambda p: p.stem
)
def test_the_fake_answers_each_exchange_as_the_real_gateway_does(path: Path) -> None:
    golden = load(path)
    assert_same_answer(golden, fake_reply(golden))


@pytest.mark.parametrize(
    ("name", "drift"),
    [
        ("create_upstream_saturated", {"fault": Fault.status(429, retry_after="1")}),  # a header
        ("create_insufficient_user_quota", {"dialect": "new-api-O"}),  # another code
        ("query_success_new_api_u", {"dialect": "new-api-O"}),  # fields missing
        ("query_in_progress", {"advance": 10}),  # another status
        ("create_model_name_missing", {"token": "sk-wrong"}),  # another status and message
    ],
)
def test_a_fake_that_drifts_from_the_golden_exchange_fails_the_comparison(
    name: str, drift: dict[str, Any]
) -> None:
    golden = load(DATA / "gateway" / f"{name}.json")
    assert_same_answer(golden, fake_reply(golden))
    with pytest.raises(AssertionError):
        assert_same_answer(golden, fake_reply(golden, **drift))
