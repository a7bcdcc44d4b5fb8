"""A clock for the client's own waiting, for tests: `KlingClient(clock=SimulatedClock())`
makes retries and `wait()` polling take no real time, and records how long they slept."""

from __future__ import annotations

__all__ = ["AsyncSimulatedClock", "SimulatedClock"]


class SimulatedClock:
    """Time moves only when the client sleeps; every sleep is recorded in `sleeps`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class AsyncSimulatedClock(SimulatedClock):
    """The same, for `AsyncKlingClient(clock=...)`."""

    async def sleep(self, seconds: float) -> None:  # type: ignore[override]
        SimulatedClock.sleep(self, seconds)
