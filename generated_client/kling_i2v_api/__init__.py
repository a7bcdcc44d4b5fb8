"""A client library for accessing Kling image-to-video (anyfast.ai gateway)"""

from .client import AuthenticatedClient, Client

__all__ = (
    "AuthenticatedClient",
    "Client",
)
