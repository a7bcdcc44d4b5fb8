"""How wait() polls: capped exponential backoff on a clock that tests can replace.

`Clock` is the one clock protocol of the package: both clients, the batch and the fake
gateway (kling_i2v.testing) take anything with `monotonic()` and `sleep()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs

from .errors import TaskFailedError, WaitTimeoutError
from .tasks import Task, TaskStatus

__all__ = ["AsyncClock", "Clock", "PollPolicy", "SystemAsyncClock", "SystemClock"]


class Clock(Protocol):
    """Seconds that only go forward, and a way to wait. `sleep` may return an awaitable
    (a coroutine): AsyncKlingClient awaits it, so one simulated clock serves both
    clients."""

    def monotonic(self) -> float: ...
    def sleep(self, seconds: float, /) -> Any: ...


AsyncClock = Clock
"""The same protocol; the name is kept for code written against earlier versions."""


class SystemClock:
    """The real clock, usable by both clients."""

    monotonic = staticmethod(time.monotonic)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


class SystemAsyncClock:
    """The real clock, for AsyncKlingClient."""

    monotonic = staticmethod(time.monotonic)

    @staticmethod
    async def sleep(seconds: float) -> None:
        import asyncio  # here, not at the top: it is ~8 ms of every `import kling_i2v`

        await asyncio.sleep(seconds)


@attrs.frozen
class PollPolicy:
    """Delays between status checks: initial, initial*factor, ... never above `max_interval`.

    `max_interval` bounds how late a finished task is noticed; the doubling keeps the
    number of requests for a long task close to duration / max_interval.
    """

    initial_interval: float = 1.0
    factor: float = 2.0
    max_interval: float = 10.0

    def intervals(self) -> Iterator[float]:
        interval = self.initial_interval
        while True:
            yield min(interval, self.max_interval)
            interval *= self.factor


class Waiter:
    """The decisions of one wait(), shared by the sync and async loops."""

    def __init__(
        self,
        task_id: str,
        *,
        timeout: float,
        policy: PollPolicy,
        monotonic: Callable[[], float],
        on_progress: Callable[[Task], object] | None,
    ) -> None:
        self.task_id = task_id
        self.timeout = timeout
        self._deadline = monotonic() + timeout
        self._monotonic = monotonic
        self._intervals = policy.intervals()
        self._on_progress = on_progress
        self.last: Task | None = None

    def observe(self, task: Task) -> object:
        """Record `task`; returns what `on_progress` returned if it changed (an awaitable,
        for an async callback, which the async loop awaits), else None."""
        previous = self.last
        self.last = task
        if self._on_progress is not None and (
            previous is None or (previous.status, previous.progress) != (task.status, task.progress)
        ):
            return self._on_progress(task)
        return None

    def outcome(self) -> Task | None:
        """The finished task, or None to keep polling; raises TaskFailedError."""
        task = self.last
        if task is None:
            return None
        if task.status is TaskStatus.FAILED:
            raise TaskFailedError(task)
        if task.status is TaskStatus.SUCCEEDED:
            return task
        return None

    def remaining(self) -> float:
        """Seconds left before the wait times out (negative once past)."""
        return self._deadline - self._monotonic()

    def next_sleep(self) -> float:
        """Seconds until the next check; raises WaitTimeoutError when time is up."""
        remaining = self._deadline - self._monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(self.last, self.timeout, self.task_id)
        return min(next(self._intervals), remaining)
