"""A trio clock for tests against a real server whose time is real (Redis TTLs).

trio's autojump clock makes a sleep take no time at all, which a server
with its own clock cannot follow. :class:`StepClock` keeps the autojump
clock's other virtue: time stands still while tasks run or wait on sockets,
so two readings around a network call are equal, and it moves only when a
timer is due, after that much real time has passed (plus a small margin, so
that the server's clock has surely passed it too).
"""

from __future__ import annotations

import math
import time

import trio

IDLE = 86400.0  # what to sleep when no timer is pending (trio wakes on I/O anyway)


class StepClock(trio.abc.Clock):
    def __init__(self, margin: float = 0.005):
        self._now = 0.0
        self._margin = margin
        self._target: tuple[float, float] | None = None  # (deadline, the real time it is reached at)

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        if self._target is not None and time.monotonic() >= self._target[1]:
            self._now = max(self._now, self._target[0])
            self._target = None
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        now = self.current_time()
        if deadline <= now:
            return 0.0
        if math.isinf(deadline):
            return IDLE
        if self._target is None or self._target[0] != deadline:
            self._target = (deadline, time.monotonic() + deadline - now + self._margin)
        return max(0.0, self._target[1] - time.monotonic())
