"""kling-i2v: a typed client for Kling image-to-video on the anyfast.ai gateway.

    from kling_i2v import KlingClient, Image

    with KlingClient() as kling:                       # token from ANYFAST_API_KEY
        task = kling.create(image=Image.from_path("cat.png"), prompt="the cat jumps")
        done = kling.wait(task, on_progress=print)
        kling.download(done, "cat.mp4")

The generated low-level package stays importable as `kling_i2v_api`.
"""

from ._http import RetryPolicy
from ._version import __version__
from .client import DEFAULT_BASE_URL, AsyncKlingClient, KlingClient
from .errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ImageError,
    KlingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    TaskFailedError,
    TaskNotFoundError,
    Violation,
    WaitTimeoutError,
)
from .images import Image
from .polling import PollPolicy
from .requests import CreateFields
from .tasks import Task, TaskStatus

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousCreateError",
    "AsyncKlingClient",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "CreateFields",
    "Image",
    "ImageError",
    "KlingClient",
    "KlingError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollPolicy",
    "RateLimitError",
    "RequestValidationError",
    "RetryPolicy",
    "ServerError",
    "Task",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskStatus",
    "Violation",
    "WaitTimeoutError",
    "__version__",
]
