"""The accept loop: a task per connection, and a pause, not a flood of log lines, when out of file descriptors.

trio's own ``serve_listeners`` logs every failed accept with its traceback,
ten times a second, for as long as the process is out of descriptors. Here
that is one line when it begins (and at most one a minute, with the count
of failed tries, while it lasts) and a short pause between tries; the
connections already open are served all along.
"""

from __future__ import annotations

import errno
import os
from typing import Awaitable, Callable, NoReturn

import structlog
import trio

log = structlog.get_logger("videoroomd.http")

OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
PAUSE = 0.1           # seconds between tries while out of descriptors
LOG_INTERVAL = 60.0   # seconds between two lines about the same shortage


class Shortage:
    """Failed accepts for want of descriptors, and when a line last said so (pure code)."""

    def __init__(self) -> None:
        self.failures = 0          # failed accepts since the last line
        self._said_at: float | None = None

    def failed(self, now: float) -> int | None:
        """One more failed accept; returns the failures to write a line about now, or None (said recently)."""
        self.failures += 1
        if self._said_at is not None and now - self._said_at < LOG_INTERVAL:
            return None
        failures, self.failures, self._said_at = self.failures, 0, now
        return failures


async def _run_handler(stream: trio.abc.Stream, handler: Callable[[trio.abc.Stream], Awaitable[None]]) -> None:
    try:
        await handler(stream)
    finally:
        await trio.aclose_forcefully(stream)


async def _accept_loop(listener: trio.abc.Listener, nursery: trio.Nursery,
                       handler: Callable[[trio.abc.Stream], Awaitable[None]], short: Callable[[], None]) -> NoReturn:
    shortage = Shortage()
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as error:
                if error.errno not in OUT_OF_DESCRIPTORS:
                    raise
                failures = shortage.failed(trio.current_time())
                if failures is not None:
                    log.error("cannot accept connections: out of file descriptors; pausing, open ones are served",
                              error=os.strerror(error.errno), failed=failures, every_s=LOG_INTERVAL)
                short()
                await trio.sleep(PAUSE)
                continue
            nursery.start_soon(_run_handler, stream, handler)


async def serve_listeners(handler: Callable[[trio.abc.Stream], Awaitable[None]], listeners: list[trio.abc.Listener],
                          short: Callable[[], None] = lambda: None) -> NoReturn:
    """Accept on every listener and run ``handler(stream)`` for each connection until cancelled; never returns.

    ``short`` is called on each accept that failed for want of descriptors
    (the application may free one: close an idle connection). Raises the
    OSError of a listener that fails otherwise.
    """
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, nursery, handler, short)
    raise AssertionError("the accept loops never return")  # pragma: no cover
