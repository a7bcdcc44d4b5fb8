"""kling-i2v: a typed client for Kling image-to-video on the anyfast.ai gateway.

    from kling_i2v import KlingClient, Image

    with KlingClient() as kling:                       # token from ANYFAST_API_KEY
        task = kling.create(image=Image.from_path("cat.png"), prompt="the cat jumps")
        done = kling.wait(task, on_progress=print)
        kling.download(done, "cat.mp4")

The generated low-level package stays importable as `kling_i2v_api`.
"""

from typing import TYPE_CHECKING, Any

from . import errors
from ._http import RetryPolicy
from ._version import __version__
from .client import DEFAULT_BASE_URL, AsyncKlingClient, Deadlines, KlingClient
from .errors import *  # noqa: F403 - the error tree, listed once: errors.__all__
from .fit import FitResult, fit_image, fit_mask
from .images import Image
from .outcomes import Outcome, classify
from .motion import MotionBrush
from .polling import PollPolicy
from .tasks import Task, TaskStatus

if TYPE_CHECKING:
    from kling_i2v_api.models import CameraControlType, Duration, Mode, ModelName, ShotType, Sound

    from ._create_fields import CreateFields, ImageLike


def __getattr__(name: str) -> Any:
    # The spec's enums and CreateFields import the generated models: loaded on first use,
    # so that `import kling_i2v` does not pay for them.
    from ._fields_doc import ENUMS

    if name in ENUMS:
        import kling_i2v_api.models

        return getattr(kling_i2v_api.models, name)
    if name in ("CreateFields", "ImageLike"):
        from . import _create_fields

        return getattr(_create_fields, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncKlingClient",
    "CameraControlType",
    "CreateFields",
    "Deadlines",
    "Duration",
    "FitResult",
    "Image",
    "ImageLike",
    "KlingClient",
    "Mode",
    "ModelName",
    "MotionBrush",
    "Outcome",
    "PollPolicy",
    "RetryPolicy",
    "ShotType",
    "Sound",
    "Task",
    "TaskStatus",
    "__version__",
    "classify",
    "fit_image",
    "fit_mask",
]
__all__ += errors.__all__
