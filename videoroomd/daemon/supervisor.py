"""Run a child task forever: restart it with exponential backoff when it crashes.

A child that crashes too often in a short time is given up on, loudly, so
that one broken room does not spin the CPU while the others run on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

import structlog
import trio

from ..backoff import Backoff, recent

log = structlog.get_logger("videoroomd.supervisor")


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5     # seconds before the first restart
    max_delay: float = 30.0      # the backoff doubles up to this
    max_crashes: int = 5         # crashes within `window` before giving up
    window: float = 60.0         # seconds; a child that ran this long is healthy again

    @property
    def backoff(self) -> Backoff:
        return Backoff.doubling(self.first_delay, self.max_delay)


@dataclass
class ChildState:
    """What a supervised child is doing, for the admin view and tests."""

    name: str
    status: str = "starting"     # starting, running, backoff, failed, stopped
    crashes: int = 0
    last_error: str | None = None
    restarts: int = 0
    crash_times: list[float] = field(default_factory=list)


async def supervise(
    name: str,
    run_child: Callable[[], Awaitable[None]],
    state: ChildState,
    policy: RestartPolicy = RestartPolicy(),
) -> None:
    """Run ``run_child()`` until it returns; restart it when it raises.

    Returns when the child returns normally (it stopped on purpose) or when
    it has crashed ``policy.max_crashes`` times within ``policy.window``
    seconds (``state.status`` is then ``"failed"``). Cancellation passes
    through untouched.
    """
    backoff = policy.backoff
    in_a_row = 0  # crashes since the child last ran for a whole window
    while True:
        state.status = "running"
        started = trio.current_time()
        try:
            await run_child()
        except Exception as error:  # a crash of the child, never of the supervisor
            now = trio.current_time()
            in_a_row = 1 if now - started >= policy.window else in_a_row + 1
            state.crash_times = recent(state.crash_times, now, policy.window)
            state.crashes += 1
            state.last_error = f"{type(error).__name__}: {error}"
            if len(state.crash_times) >= policy.max_crashes:
                state.status = "failed"
                log.error(
                    "giving up: crashed too often",
                    child=name, crashes=len(state.crash_times), window_s=policy.window,
                    error=state.last_error, exc_info=error,
                )
                return
            state.status = "backoff"
            delay = backoff.delay(in_a_row)
            log.error("crashed; restarting", child=name, error=state.last_error, restart_in_s=delay, exc_info=error)
            await trio.sleep(delay)
            state.restarts += 1
            continue
        state.status = "stopped"
        return
