"""kling-i2v: a typed client for Kling image-to-video on the anyfast.ai gateway."""

from ._version import __version__

__all__ = ["__version__"]
