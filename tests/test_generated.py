"""The generated package: typed, faithful to the reference page, tolerant where the spec is open."""

from __future__ import annotations

import inspect
from typing import Any, get_type_hints

import pytest
from kling_i2v_api.api.image2video import create_image_to_video, get_image_to_video_task
from kling_i2v_api.models import (
    CameraControl,
    CameraControlConfig,
    CameraControlType,
    Duration,
    DynamicMask,
    Element,
    ImageToVideoRequest,
    Mode,
    ModelName,
    MultiPromptShot,
    ShotType,
    Sound,
    TaskQueryResponse,
    TrajectoryPoint,
    VideoTask,
    WatermarkInfo,
)

from tests.conftest import load_data


def shape(value: Any) -> Any:
    """Keys, nesting and JSON value types, without the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_create_takes_a_typed_request_model() -> None:
    for fn in (create_image_to_video.sync_detailed, create_image_to_video.asyncio_detailed):
        hints = get_type_hints(fn)
        assert hints["body"] is ImageToVideoRequest
    assert "task_id" in inspect.signature(get_image_to_video_task.sync_detailed).parameters


def test_digit_string_enums_have_readable_names() -> None:
    assert Duration.SECONDS_5 == "5"
    assert sorted((d.value for d in Duration), key=int) == [str(n) for n in range(3, 16)]
    assert Duration("12") is Duration.SECONDS_12
    assert not any(name.startswith("VALUE_") for name in Duration.__members__)
    assert Sound.ON == "on" and Sound.OFF == "off"


def test_every_field_of_the_reference_example_serializes_to_the_same_shape() -> None:
    reference = load_data("reference_request.json")
    request = ImageToVideoRequest(
        model_name=ModelName.KLING_V2_MASTER,
        image="<string>",
        image_tail="<string>",
        prompt="<string>",
        negative_prompt="<string>",
        mode=Mode.STD,
        duration=Duration.SECONDS_5,
        cfg_scale=0.5,
        multi_shot=False,
        shot_type=ShotType.CUSTOMIZE,
        multi_prompt=[MultiPromptShot(index=123, prompt="<string>", duration="<string>")],
        element_list=[Element(element_id=123)],
        sound=Sound.OFF,
        camera_control=CameraControl(
            type_=CameraControlType.SIMPLE,
            config=CameraControlConfig(horizontal=123, vertical=123, pan=123, tilt=123, roll=123, zoom=123),
        ),
        static_mask="<string>",
        dynamic_masks=[DynamicMask(mask="<string>", trajectories=[TrajectoryPoint(x=123, y=123)])],
        watermark_info=WatermarkInfo(enabled=True),
        callback_url="<string>",
        external_task_id="<string>",
    )
    body = request.to_dict()
    assert shape(body) == shape(reference)
    assert list(body) == list(reference)
    assert body["duration"] == "5"  # a JSON string: the gateway rejects a number
    assert isinstance(body["dynamic_masks"][0]["trajectories"][0]["x"], int)


def test_reference_example_round_trips_through_the_model() -> None:
    reference = load_data("reference_request.json")
    reference["shot_type"] = "customize"
    assert ImageToVideoRequest.from_dict(reference).to_dict() == reference


def test_reference_example_response_parses() -> None:
    task = VideoTask.from_dict(load_data("reference_response.json"))
    assert task.task_id == "860260753860210752"
    assert task.id == task.task_id
    assert task.created_at == 1773130665
    assert task.status == "<string>"  # status is an open string


def test_query_success_parses_with_the_video_url() -> None:
    reply = TaskQueryResponse.from_dict(load_data("query_success.json"))
    assert reply.data.status == "SUCCESS"
    assert reply.data.progress == "100%"
    kling = reply.data.data
    assert kling is not None and not isinstance(kling, type(None))
    videos = kling.data.task_result.videos  # type: ignore[union-attr]
    assert videos[0].url.endswith(".mp4")  # type: ignore[index, union-attr]
    assert kling.data.task_info.external_task_id == "batch-7f3c-row-12"  # type: ignore[union-attr]


def test_query_failure_and_in_progress_parse() -> None:
    failed = TaskQueryResponse.from_dict(load_data("query_failure.json"))
    assert failed.data.fail_reason == "Failure to pass the risk control system"
    running = TaskQueryResponse.from_dict(load_data("query_in_progress.json"))
    assert running.data.data is None
    assert running.data.progress == "30%"


@pytest.mark.parametrize("status", ["SOMETHING_NEW", "", "queued"])
def test_unknown_status_strings_parse(status: str) -> None:
    body = load_data("query_in_progress.json")
    body["data"]["status"] = status
    assert TaskQueryResponse.from_dict(body).data.status == status


def test_the_generated_client_keeps_the_token_out_of_its_repr() -> None:
    from kling_i2v_api import AuthenticatedClient

    client = AuthenticatedClient(base_url="https://example.com", token="sk-canary-generated")
    client.get_httpx_client()  # puts the Authorization header into its headers
    try:
        assert "sk-canary-generated" not in repr(client)
        assert client.get_httpx_client().headers["Authorization"] == "Bearer sk-canary-generated"
    finally:
        client.get_httpx_client().close()
