"""Contains all the data models used in inputs/outputs

Each model is imported on first use (PEP 562, kling-i2v's generator-templates/models_init.py.jinja):
a program that reads one answer does not build every model's attrs class (issue 12: start-up).
`from kling_i2v_api.models import X` and `kling_i2v_api.models.X` work as usual; type checkers
read the imports below."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .camera_control import CameraControl
    from .camera_control_config import CameraControlConfig
    from .camera_control_type import CameraControlType
    from .duration import Duration
    from .dynamic_mask import DynamicMask
    from .element import Element
    from .gateway_error import GatewayError
    from .gateway_error_body import GatewayErrorBody
    from .gateway_task import GatewayTask
    from .image_to_video_request import ImageToVideoRequest
    from .kling_reply import KlingReply
    from .kling_task import KlingTask
    from .kling_task_info import KlingTaskInfo
    from .kling_task_result import KlingTaskResult
    from .kling_video import KlingVideo
    from .mode import Mode
    from .model_name import ModelName
    from .multi_prompt_shot import MultiPromptShot
    from .shot_type import ShotType
    from .sound import Sound
    from .task_error_body import TaskErrorBody
    from .task_query_response import TaskQueryResponse
    from .trajectory_point import TrajectoryPoint
    from .video_task import VideoTask
    from .watermark_info import WatermarkInfo

_HOMES = {
    "CameraControl": ".camera_control",
    "CameraControlConfig": ".camera_control_config",
    "CameraControlType": ".camera_control_type",
    "Duration": ".duration",
    "DynamicMask": ".dynamic_mask",
    "Element": ".element",
    "GatewayError": ".gateway_error",
    "GatewayErrorBody": ".gateway_error_body",
    "GatewayTask": ".gateway_task",
    "ImageToVideoRequest": ".image_to_video_request",
    "KlingReply": ".kling_reply",
    "KlingTask": ".kling_task",
    "KlingTaskInfo": ".kling_task_info",
    "KlingTaskResult": ".kling_task_result",
    "KlingVideo": ".kling_video",
    "Mode": ".mode",
    "ModelName": ".model_name",
    "MultiPromptShot": ".multi_prompt_shot",
    "ShotType": ".shot_type",
    "Sound": ".sound",
    "TaskErrorBody": ".task_error_body",
    "TaskQueryResponse": ".task_query_response",
    "TrajectoryPoint": ".trajectory_point",
    "VideoTask": ".video_task",
    "WatermarkInfo": ".watermark_info",
}


# Only at run time: a type checker that saw a module `__getattr__` would take every unknown
# name, a misspelt model too, for Any; it reads the imports above instead.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is not None:
            value = getattr(importlib.import_module(home, __name__), name)
            globals()[name] = value
            return value
        # a model's module read as an attribute, as when all were imported eagerly
        if f".{name}" in _HOMES.values():
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))


__all__ = (
    "CameraControl",
    "CameraControlConfig",
    "CameraControlType",
    "Duration",
    "DynamicMask",
    "Element",
    "GatewayError",
    "GatewayErrorBody",
    "GatewayTask",
    "ImageToVideoRequest",
    "KlingReply",
    "KlingTask",
    "KlingTaskInfo",
    "KlingTaskResult",
    "KlingVideo",
    "Mode",
    "ModelName",
    "MultiPromptShot",
    "ShotType",
    "Sound",
    "TaskErrorBody",
    "TaskQueryResponse",
    "TrajectoryPoint",
    "VideoTask",
    "WatermarkInfo",
)
