"""How fast a batch may go: pauses after 429s, the account's task limit, and when to poll.

Three separate things, because the gateway limits three separate things:

- `Pause`: a time-based pause for one kind of request (creates, or queries), set by a 429
  on that kind. A 429 on a create pauses creates only; polls and downloads go on, since
  noticing finished tasks is what frees the account's slots (issue 13.4).
- `TaskWindow`: how many tasks may be created but not finished at once. Kling accounts cap
  it (upstream code 1303, "more tasks running than the account's package allows", which
  the gateway passes on as a 429: gateway-facts.md, Errors). Without `max_running` the
  window finds the cap: it grows by one per create that succeeds with the window full
  (slow start), and a create answered 429 while `n` other tasks were running or being
  created sets it to `n`: the gateway just said the account holds no more. That is a
  multiplicative cut to the measured level rather than by a fixed factor, since the 429
  carries the measurement. Afterwards it probes one above its level only after a
  number of successes that doubles after each probe that fails, so that a fixed limit
  costs a handful of 429s in a whole batch, while a raised one is still found.
- `DurationGuess`: tasks of one batch take similar times; a task is polled close to
  when tasks before it finished rather than only on the doubling schedule, so a finished
  task (a free slot) is noticed early. The gateway's progress steps 0/10/20/30/100 %
  (gateway-facts.md, Query) cannot predict the end; past durations can.
"""

from __future__ import annotations

import collections
import time

from ._http import RetryPolicy

__all__ = ["DurationGuess", "Pause", "TaskWindow"]


class Pause:
    """A pause shared by every request of one kind, set by 429s."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._until = 0.0
        self._strikes = 0

    def remaining(self) -> float:
        return self._until - time.monotonic()

    def strike(self, error: BaseException) -> float:
        self._strikes += 1
        delay = self._policy.delay(min(self._strikes, 16), error)
        self._until = max(self._until, time.monotonic() + delay)
        return delay

    def clear(self) -> None:
        self._strikes = 0


class TaskWindow:
    """Tasks created but not finished that the batch allows itself (see the module doc)."""

    _FIRST_PROBE_AFTER = 4
    """Successes at the learned level, per task of the level, before probing one above."""

    def __init__(self, max_running: int | None, start: int) -> None:
        self.fixed = max_running is not None
        self.limit = max_running if max_running is not None else max(1, start)
        self.learned: int | None = max_running
        self._successes = 0
        self._probe_after = self._FIRST_PROBE_AFTER
        self._probing = False
        self.limited = 0
        """Creates answered 429 as too many running."""

    def admits(self, busy: int) -> bool:
        """Whether one more create may go out with `busy` tasks running or being created."""
        return busy < self.limit

    def created(self, busy: int) -> None:
        """A create succeeded; `busy` counts it."""
        if self.fixed:
            return
        if self._probing:
            self._probing = False
            self.learned = self.limit  # the probe went through: the account holds more
            self._probe_after = self._FIRST_PROBE_AFTER
        if busy < self.limit:
            return  # not at the window's edge: this success says nothing about the limit
        if self.learned is None:
            self.limit += 1  # slow start: no limit seen yet
            return
        self._successes += 1
        if self._successes >= self._probe_after * self.limit:
            self._successes = 0
            self._probing = True
            self.limit += 1

    def refused(self, busy_others: int) -> bool:
        """A create got a 429 while `busy_others` other tasks were running or being created.
        Returns whether that looks like the task limit (else: a saturated gateway)."""
        self.limited += 1
        if busy_others == 0:
            return False  # nothing of ours runs: not the account's task limit
        if self.fixed:
            return True
        if self._probing:
            self._probing = False
            self._probe_after *= 2
        self._successes = 0
        self.learned = self.limit = max(1, busy_others)
        return True


class DurationGuess:
    """When the tasks of this batch tend to finish: the shortest of the recent durations."""

    STEP = 0.02
    """A finish is noticed within 2 % of a task's time (10 s polls would be 8 % of 2 minutes)."""
    WATCH = 0.5

    def __init__(self, keep: int = 8) -> None:
        self._recent: collections.deque[float] = collections.deque(maxlen=keep)

    def finished(self, seconds: float) -> None:
        self._recent.append(seconds)

    def expected(self) -> float | None:
        return min(self._recent) if self._recent else None

    def next_poll(self, age: float, scheduled: float, shortest: float) -> float:
        """Seconds until the next query of a task `age` seconds old, whose own schedule says
        `scheduled`: at the time tasks like it finished, then every `STEP` of that time
        (but not more often than `shortest`) until it is `WATCH` late, then on schedule."""
        expected = self.expected()
        if expected is None:
            return scheduled
        due = expected - age
        if due > 0:
            return min(scheduled, max(due, shortest))
        if age <= expected * (1 + self.WATCH):
            return min(scheduled, max(shortest, expected * self.STEP))
        return scheduled
