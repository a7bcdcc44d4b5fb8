"""wait()'s polling schedule and the one Clock protocol."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from kling_i2v import PollPolicy, Task, TaskStatus, WaitTimeoutError
from kling_i2v.polling import Clock, SystemAsyncClock, SystemClock, Waiter
from kling_i2v.testing import AsyncSimulatedClock, SimulatedClock


def test_intervals_double_up_to_the_cap() -> None:
    policy = PollPolicy(initial_interval=1, factor=2, max_interval=10)
    assert list(itertools.islice(policy.intervals(), 6)) == [1, 2, 4, 8, 10, 10]


def test_the_last_sleep_is_cut_to_the_time_left_then_the_wait_times_out() -> None:
    clock = SimulatedClock()
    waiter = Waiter("7", timeout=5, policy=PollPolicy(), monotonic=clock.monotonic, on_progress=None)
    waiter.observe(Task(task_id="7", status=TaskStatus.RUNNING, progress=30))
    sleeps = []
    with pytest.raises(WaitTimeoutError, match="not finished after 5s") as info:
        while True:
            sleeps.append(waiter.next_sleep())
            clock.sleep(sleeps[-1])
    assert sleeps == [1, 2, 2]  # 1 + 2 + (cut from 4 to the 2 s left)
    assert info.value.task is not None and info.value.task.progress == 30
    assert waiter.remaining() == 0


def test_progress_is_reported_only_on_change() -> None:
    seen: list[int] = []
    waiter = Waiter("7", timeout=5, policy=PollPolicy(), monotonic=lambda: 0.0,
                    on_progress=lambda t: seen.append(t.progress))
    for progress in (0, 0, 10, 10, 30):
        waiter.observe(Task(task_id="7", status=TaskStatus.RUNNING, progress=progress))
    assert seen == [0, 10, 30]


def test_one_clock_protocol_for_both_clients() -> None:
    clocks: list[Clock] = [SystemClock(), SystemAsyncClock(), SimulatedClock(), AsyncSimulatedClock()]
    for clock in clocks:
        assert isinstance(clock.monotonic(), float)
    assert SimulatedClock().sleep(1) is None  # a plain sleep: the async client calls it as is
    pending = AsyncSimulatedClock().sleep(1)
    assert asyncio.iscoroutine(pending)  # an awaitable: the async client awaits it
    asyncio.run(pending)
