"""What a failed request means for a batch row: until kling_i2v.outcomes (the one
classifier, owner: client) lands, the batch's rule as it was, in one place."""

from __future__ import annotations

import enum
from typing import Literal

from .errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    KlingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TaskNotFoundError,
)

__all__ = ["Outcome", "decide", "describe", "status_of"]


class Outcome(enum.StrEnum):
    RETRY = "retry"
    PAUSE = "pause"
    AMBIGUOUS = "ambiguous"
    REFUSED = "refused"
    FAILED = "failed"
    FATAL = "fatal"


def decide(operation: Literal["create", "query", "download"], error: BaseException) -> Outcome:
    status = error.status_code if isinstance(error, APIStatusError) else None
    gateway = isinstance(error, APIStatusError) and error.shape in ("gateway", "task")
    if isinstance(error, RateLimitError) or (status == 503 and gateway):
        return Outcome.PAUSE
    if isinstance(error, AuthenticationError | PermissionDeniedError | NotFoundError
                  | ConfigurationError):
        return Outcome.FATAL
    if operation == "create":
        if isinstance(error, AmbiguousCreateError) or (status is not None and status >= 500 and not gateway):
            return Outcome.AMBIGUOUS
        if (status is not None and status >= 500) or (
                isinstance(error, APIConnectionError) and not error.request_sent):
            return Outcome.RETRY
        if isinstance(error, APIResponseError):
            return Outcome.AMBIGUOUS  # not the gateway's answer: proves nothing either way
        return Outcome.REFUSED if isinstance(error, KlingError) else Outcome.AMBIGUOUS
    if isinstance(error, TaskNotFoundError):
        return Outcome.FAILED
    return Outcome.RETRY if isinstance(error, APIError | OSError) else Outcome.FATAL


def describe(error: BaseException) -> str:
    text = " ".join((str(error) or type(error).__name__).split())
    if isinstance(error, APIError) and error.external_task_id:
        # the journal keeps the external id in its own column
        text = text.replace(f"; external_task_id={error.external_task_id}", "")
    return text


def status_of(error: BaseException) -> str:
    return f"HTTP {error.status_code}" if isinstance(error, APIStatusError) else type(error).__name__
