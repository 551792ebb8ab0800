"""Errors of asyncio tasks nobody awaits, kept and logged within bounds (an event loop's exception handler).

aiortc and aioice raise in tasks nobody awaits (InvalidStateError,
ConnectionError...). Such an error ends at most its own peer connection (its
state turns failed and the engine removes the peer); here it is only kept
for a look and logged, and the loop goes on. A client can make these happen
at will (odd STUN, bad RTP), so a line is logged now and then, saying how many
were left out, rather than one per packet.
"""

from __future__ import annotations

import asyncio
import collections
import time

import structlog

log = structlog.get_logger("videoroomd.media")

MAX_ERRORS = 100          # the latest errors kept for a look (tests, debugging)
ERROR_LOG_INTERVAL = 10.0  # seconds between two log lines of such errors; the others are counted


class TaskErrors:
    """An asyncio exception handler: ``loop.set_exception_handler(TaskErrors())``."""

    def __init__(self) -> None:
        self.errors: collections.deque[str] = collections.deque(maxlen=MAX_ERRORS)
        self.error_count = 0    # since start, all of them
        self.errors_logged = 0  # of which a log line told
        self._unlogged = 0
        self._logged_at = float("-inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        error = context.get("exception")
        message = context.get("message", "")
        text = f"{type(error).__name__}: {error}" if error else message
        self.errors.append(text)
        self.error_count += 1
        now = time.monotonic()
        if now - self._logged_at < ERROR_LOG_INTERVAL:
            self._unlogged += 1
            return
        log.warning("media task failed", error=text, detail=message, not_logged_before=self._unlogged)
        self.errors_logged += 1
        self._logged_at, self._unlogged = now, 0
