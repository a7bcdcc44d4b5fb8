"""The generated package: typed, faithful to the reference page, tolerant where the spec is open.

Covers: __init__.py, _create_fields.py, _fields_doc.py
"""

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


# ------------------------------------------------------- what generate.sh adds (issue 14)


@pytest.mark.parametrize("module", [create_image_to_video, get_image_to_video_task])
def test_every_operation_has_a_public_request_builder(module: Any) -> None:
    assert callable(module.build_request)
    assert not hasattr(module, "_get_kwargs")


def test_the_create_builder_takes_a_model_or_a_validated_mapping() -> None:
    from_model = create_image_to_video.build_request(
        body=ImageToVideoRequest(image="https://example.com/a.png", prompt="p", model_name=ModelName.KLING_V3)
    )
    assert from_model["method"] == "post" and from_model["url"] == "/kling/v1/videos/image2video"
    assert from_model["headers"] == {"Content-Type": "application/json"}
    assert from_model["json"]["model_name"] == "kling-v3"
    # a model the generated enum does not know yet, sent with allow_unknown_model
    from_mapping = create_image_to_video.build_request(body={"model_name": "kling-v9", "prompt": "p"})
    assert from_mapping["json"] == {"model_name": "kling-v9", "prompt": "p"}
    assert from_mapping["url"] == "/kling/v1/videos/image2video"


def test_the_query_builder_quotes_the_task_id() -> None:
    built = get_image_to_video_task.build_request(task_id="a/b c")
    assert built == {"method": "get", "url": "/kling/v1/videos/image2video/a%2Fb%20c"}


def test_the_overlay_uses_no_private_generated_name_and_writes_no_path() -> None:
    from tests.conftest import REPO

    for path in sorted((REPO / "overlays" / "kling_i2v").glob("*.py")):
        text = path.read_text()
        assert "_get_kwargs" not in text, path
        assert "/kling/v1" not in text, path


def test_enums_keep_the_specs_order() -> None:
    assert [d.value for d in Duration] == [str(n) for n in range(3, 16)]
    assert list(ModelName)[0] is ModelName.KLING_V2_MASTER
    assert [m.value for m in Mode] == ["std", "pro"]


def test_create_fields_resolve_at_run_time() -> None:
    import kling_i2v

    hints = get_type_hints(kling_i2v.CreateFields)
    assert set(hints) == set(ImageToVideoRequest.__annotations__)
    assert ModelName in hints["model_name"].__args__ and str in hints["model_name"].__args__
    assert int in hints["duration"].__args__  # a digit enum also takes 5
    assert hints["cfg_scale"] is float


def test_help_on_create_lists_every_field_with_type_default_and_description() -> None:
    import pydoc

    from kling_i2v import AsyncKlingClient, KlingClient

    for client in (KlingClient, AsyncKlingClient):
        text = pydoc.render_doc(client.create, renderer=pydoc.plaintext)
        for name in ImageToVideoRequest.__annotations__:
            assert f"\n        {name}: " in text, (client, name)
        assert "duration: Duration | str | int" in text
        words = " ".join(text.split())
        assert "Default: kling-v2-master (the client fills it in)." in words
        assert 'Default: "std" (the gateway\'s, when not sent).' in words
        assert "Prompt relevance (0-1)." in words


def test_import_kling_i2v_loads_neither_the_models_nor_yaml_and_enums_load_on_first_use() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, kling_i2v\n"
        "assert 'kling_i2v_api.models' not in sys.modules\n"
        "from kling_i2v import Duration, ModelName, Sound, CameraControlType\n"
        "assert list(Duration)[0] == '3' and ModelName.KLING_V3 == 'kling-v3'\n"
        "from kling_i2v.validation import validate_request\n"
        "validate_request({'image': 'https://example.com/a.png', 'prompt': 'p'})\n"
        "assert 'yaml' not in sys.modules, 'YAML parsed at run time'\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_the_fast_validators_are_generated_for_every_component() -> None:
    from kling_i2v_api import validators

    from kling_i2v.validation import _fast_check, load_spec

    assert set(validators.VALIDATORS) == set(load_spec()["components"]["schemas"])
    assert _fast_check("ImageToVideoRequest") is validators.is_valid_image_to_video_request
    # literal examples, so a wrong emitter cannot agree with itself
    ok = {"image": "https://example.com/a.png", "prompt": "p", "model_name": "kling-v2-master"}
    assert validators.is_valid_image_to_video_request(ok)
    assert not validators.is_valid_image_to_video_request({**ok, "duration": "16"})
    assert not validators.is_valid_image_to_video_request({**ok, "duration": 5})
    assert not validators.is_valid_image_to_video_request({**ok, "cfg_scale": True})
    assert not validators.is_valid_image_to_video_request({**ok, "callback_url": "x y"})
    assert not validators.is_valid_image_to_video_request({"prompt": "no image"})
    assert not validators.is_valid_image_to_video_request({**ok, "image_tail": "u", "camera_control": {"type": "down_back"}})
    assert validators.is_valid_multi_prompt_shot({"index": 1, "prompt": "a", "duration": "15"})
    assert not validators.is_valid_multi_prompt_shot({"index": 1, "prompt": "a", "duration": "15\n"})
    assert not validators.is_valid_camera_control({"type": "simple", "config": {"zoom": 1, "pan": 2}})
