"""Contains all the data models used in inputs/outputs"""

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
