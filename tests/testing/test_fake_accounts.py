"""The fake gateway's versions of new-api, the account's balance and running-task limit, and
one clock shared with the client, over real HTTP.

Covers: testing/dialect.py, testing/clients.py
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from kling_i2v import KlingClient
from kling_i2v.testing import DIALECTS, FakeGateway, SimulatedClock

from tests.testing.test_fake_gateway import BODY, CREATE, SATURATED, client, query
from tests.testing.test_fake_gateway import create as created

manual_clock = pytest.mark.fake_gateway(clock="manual")
__all__ = ["client"]  # the fixture, shared with test_fake_gateway


def task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = query(client, task_id)["data"]
    return data


# --------------------------------------------------------------------- dialects


@pytest.mark.fake_gateway(clock="manual", dialect="new-api-U")
def test_new_api_u_has_public_task_ids_with_klings_id_inside(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = created(client)
    assert re.fullmatch(r"task_[A-Za-z0-9]{32}", task_id)
    kling_id = task(client, task_id)["data"]["data"]["task_id"]
    assert kling_id.isdigit() and len(kling_id) == 18 and kling_id != task_id
    assert fake_gateway.tasks[task_id].upstream_id == kling_id
    fake_gateway.advance(10)
    data = task(client, task_id)
    assert data["result_url"] == fake_gateway.video_url(task_id) and data["fail_reason"] == ""
    assert data["action"] == "generate"


@pytest.mark.fake_gateway(clock="manual", dialect="new-api-U")
def test_new_api_u_writes_the_failure_into_result_url(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = created(client, prompt="[fake:fail=nsfw] x")
    assert task(client, task_id)["result_url"] == ""
    fake_gateway.advance(10)
    data = task(client, task_id)
    assert (data["status"], data["fail_reason"], data["result_url"]) == ("FAILURE", "nsfw", "nsfw")


@pytest.mark.fake_gateway(clock="manual", dialect="new-api-O")
def test_new_api_o_writes_the_video_url_into_fail_reason_on_success(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    task_id = created(client)
    assert task_id.isdigit()
    assert task(client, task_id)["fail_reason"] == ""
    fake_gateway.advance(10)
    data = task(client, task_id)
    assert data["status"] == "SUCCESS" and "result_url" not in data and "id" not in data
    assert data["fail_reason"] == fake_gateway.video_url(task_id)


@manual_clock
def test_anyfast_has_numeric_ids_and_result_url(fake_gateway: FakeGateway, client: httpx.Client) -> None:
    task_id = created(client)
    assert task_id.isdigit() and task(client, task_id)["data"]["data"]["task_id"] == task_id
    assert task(client, task_id)["action"] == f"{CREATE}_POST"
    fake_gateway.advance(10)
    assert task(client, task_id)["result_url"] == fake_gateway.video_url(task_id)


@pytest.mark.parametrize("name", ["new-api-U", "new-api-O"])
def test_stock_new_api_wants_a_prompt_even_for_a_storyboard(name: str) -> None:
    storyboard = {**BODY, "multi_shot": True, "shot_type": "customize",
                  "multi_prompt": [{"index": 1, "prompt": "go", "duration": "5"}]}
    del storyboard["prompt"]
    with FakeGateway(dialect=name) as gw, FakeGateway() as anyfast:
        for gateway, status in ((gw, 400), (anyfast, 200)):
            reply = httpx.post(gateway.base_url + CREATE, json=storyboard,
                               headers={"Authorization": f"Bearer {gateway.token}"})
            assert reply.status_code == status, reply.text


def test_an_unknown_dialect_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="new-api-O"):
        FakeGateway(dialect="new-api-X")
    assert set(DIALECTS) == {"anyfast", "new-api-U", "new-api-O"}


# ---------------------------------------------------------------------- balance


@pytest.mark.parametrize(
    ("dialect", "code", "message"),
    [
        ("anyfast", "insufficient_user_quota", "用户额度不足, 剩余额度: ＄0.000000"),
        ("new-api-O", "quota_not_enough", "user quota is not enough"),
    ],
)
def test_a_balance_that_runs_out_answers_403(dialect: str, code: str, message: str) -> None:
    with FakeGateway(dialect=dialect, balance=2) as gw, httpx.Client(
        base_url=gw.base_url, headers={"Authorization": f"Bearer {gw.token}"}
    ) as http:
        assert [http.post(CREATE, json=BODY).status_code for _ in range(2)] == [200, 200]
        assert gw.balance == 0
        reply = http.post(CREATE, json=BODY)
        assert reply.status_code == 403
        assert reply.json() == {"code": code, "message": message, "data": None}
        assert len(gw.tasks) == 2
        gw.set_balance(1)  # topped up
        assert http.post(CREATE, json=BODY).status_code == 200


def test_a_refused_create_costs_nothing(fake_gateway: FakeGateway, client: httpx.Client) -> None:
    fake_gateway.set_balance(1)
    assert client.post(CREATE, json={**BODY, "mode": "ultra"}).status_code == 400
    assert fake_gateway.balance == 1
    created(client)
    assert fake_gateway.balance == 0


# ------------------------------------------------------------ running-task limit


@pytest.mark.fake_gateway(clock="manual", max_running=2)
def test_creates_beyond_the_running_limit_get_429_until_a_task_finishes(
    fake_gateway: FakeGateway, client: httpx.Client
) -> None:
    first = created(client, prompt="[fake:seconds=5] a")
    created(client, prompt="[fake:seconds=20] b")
    assert fake_gateway.running == 2
    reply = client.post(CREATE, json=BODY)
    assert reply.status_code == 429 and "Retry-After" not in reply.headers
    assert reply.json() == {"code": "fail_to_fetch_task", "message": SATURATED, "data": None}
    assert len(fake_gateway.tasks) == 2
    fake_gateway.advance(5)  # the first finishes: its slot is free
    assert task(client, first)["status"] == "SUCCESS" and fake_gateway.running == 1
    created(client)
    assert client.post(CREATE, json=BODY).status_code == 429
    fake_gateway.set_max_running(None)
    created(client)


def test_a_running_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_running"):
        FakeGateway(max_running=0)


# ------------------------------------------------------------------ one clock


def test_one_simulated_clock_drives_the_client_and_the_fake() -> None:
    clock = SimulatedClock()
    with FakeGateway(clock=clock, task_seconds=600) as gw, KlingClient(
        gw.token, base_url=gw.base_url, clock=clock
    ) as kling, httpx.Client(
        base_url=gw.base_url, headers={"Authorization": f"Bearer {gw.token}"}
    ) as http:
        task_id = created(http)
        done = kling.wait(task_id, timeout=3600)  # ten simulated minutes, no real waiting
    assert str(done.status).lower().endswith("succeeded")
    assert 600 <= clock.now < 700 and sum(clock.sleeps) == clock.now
