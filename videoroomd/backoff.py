"""Waiting before trying again: the delay schedule (pure) and a retry loop over it (trio).

:class:`Backoff` says how long to wait after the n-th failure in a row;
:func:`recent` keeps the failures of the last few seconds, which decide both
the next delay and when to give up; :func:`retry` tries an operation again
after each failure until it works or the tries run out. The room supervisor,
the media plane's worker restarts and a room's reopening of its media all
wait by these. Imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

import trio

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait after the first, second, … failure; the last delay repeats."""

    delays: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.delays or min(self.delays) < 0:
            raise ValueError(f"a backoff needs delays of 0 seconds or more, not {self.delays!r}")

    @classmethod
    def doubling(cls, first: float, cap: float) -> Backoff:
        """``first``, then twice the one before, up to ``cap``."""
        delays = [first]
        while first > 0 and delays[-1] < cap:
            delays.append(min(delays[-1] * 2, cap))
        return cls(tuple(delays))

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures (1: the first); fewer than one counts as one."""
        return self.delays[min(max(failures, 1), len(self.delays)) - 1]


def recent(times: list[float], now: float, window: float) -> list[float]:
    """``times`` of earlier failures less those ``window`` seconds old or older, with ``now`` added."""
    return [t for t in times if now - t < window] + [now]


async def retry(
    attempt: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    tries: int,
    retry_on: tuple[type[Exception], ...],
    on_retry: Callable[[Exception, float], None] = lambda error, delay: None,
) -> T:
    """Await ``attempt()`` up to ``tries`` times, waiting ``backoff`` between; returns what it returned.

    A failure of a ``retry_on`` type is handed to ``on_retry`` with the delay
    before the next try; the last one is raised. Any other exception, and
    cancellation, passes through at once.
    """
    for failures in range(1, tries + 1):
        try:
            return await attempt()
        except retry_on as error:
            if failures >= tries:
                raise
            delay = backoff.delay(failures)
            on_retry(error, delay)
            await trio.sleep(delay)
    raise ValueError(f"retry needs at least one try, not {tries}")
