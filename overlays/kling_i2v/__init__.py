"""kling-i2v: a typed client for Kling image-to-video on the anyfast.ai gateway.

    from kling_i2v import KlingClient, Image

    with KlingClient() as kling:                       # token from ANYFAST_API_KEY
        task = kling.create(image=Image.from_path("cat.png"), prompt="the cat jumps")
        done = kling.wait(task, on_progress=print)
        kling.download(done, "cat.mp4")

The generated low-level package stays importable as `kling_i2v_api`.
"""

# Every public name is loaded on first use (PEP 562), so a short-lived program pays only
# for what it touches: `kling-i2v status ID --json` needs neither fit, motion nor the
# spec's enums (issue 12: the command took 1.31x a one-shot httpx GET, a third of it our
# imports). `from kling_i2v import X`, `kling_i2v.X`, `__all__` and `dir()` work as
# before; type checkers and IDEs read the imports under TYPE_CHECKING.
# tests/test_startup_imports.py checks each name in a fresh process.

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from ._fields_doc import ENUMS as _ENUMS
from ._version import __version__
from .errors import *  # noqa: F403 - the error tree, listed once: errors.__all__

if TYPE_CHECKING:
    from kling_i2v_api.models import CameraControlType, Duration, Mode, ModelName, ShotType, Sound

    from ._create_fields import CreateFields, ImageLike
    from ._http import RetryPolicy
    from .client import DEFAULT_BASE_URL, AsyncKlingClient, Deadlines, KlingClient
    from .fit import FitResult, fit_image, fit_mask
    from .images import Image
    from .motion import MotionBrush
    from .outcomes import Outcome, classify
    from .polling import PollPolicy
    from .tasks import Task, TaskStatus

_HOMES = {
    "RetryPolicy": "._http",
    "DEFAULT_BASE_URL": ".client", "AsyncKlingClient": ".client", "Deadlines": ".client",
    "KlingClient": ".client",
    "FitResult": ".fit", "fit_image": ".fit", "fit_mask": ".fit",
    "Image": ".images",
    "MotionBrush": ".motion",
    "Outcome": ".outcomes", "classify": ".outcomes",
    "PollPolicy": ".polling",
    "Task": ".tasks", "TaskStatus": ".tasks",
    "CreateFields": "._create_fields", "ImageLike": "._create_fields",
    **dict.fromkeys(_ENUMS, "kling_i2v_api.models"),  # the spec's enums, generated
}
"""Where each lazily loaded public name lives."""


# Only at run time: a type checker that saw a module `__getattr__` would take every
# unknown name, `from kling_i2v import KlingClinet` too, for Any. It reads the names
# from the TYPE_CHECKING imports above and `__all__` instead (tests/test_typing.py).
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is not None:
            value = getattr(importlib.import_module(home, __name__), name)
            globals()[name] = value  # later lookups are plain attribute reads
            return value
        # A submodule read as an attribute (`kling_i2v.client.KlingClient` after a bare
        # `import kling_i2v`), as when this module imported them all eagerly.
        if not name.startswith("__"):
            try:
                return importlib.import_module(f".{name}", __name__)
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise  # the submodule exists, and something it imports is missing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))


__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncKlingClient",
    "CreateFields",
    "Deadlines",
    "FitResult",
    "Image",
    "ImageLike",
    "KlingClient",
    "MotionBrush",
    "Outcome",
    "PollPolicy",
    "RetryPolicy",
    "Task",
    "TaskStatus",
    "__version__",
    "classify",
    "fit_image",
    "fit_mask",
]
__all__ += sorted(_ENUMS)  # the spec's enums, generated (_fields_doc.ENUMS)
__all__ += errors.__all__
