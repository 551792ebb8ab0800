"""One webhook URL: its bounded queue, and the task that delivers the queue in order, retrying with backoff.

An event is offered without waiting: when the queue is full it is dropped
(and counted), so a slow or dead endpoint costs the rooms nothing and the
daemon at most ``queue_size`` events per URL. The task sends one event at a
time, so one URL receives its events in the order they happened; an event
that keeps failing is tried again after each failure (``RETRY``) until
``retry_for`` seconds have passed since its first failure, then dropped.
"""

from __future__ import annotations

import itertools
import ssl
from dataclasses import dataclass, field
from typing import Callable

import structlog
import trio

from ..backoff import Backoff
from ..config.webhook_url import shown
from ..logs.ratelimit import ThrottledLog
from .http_post import Connection, DeliveryFailed, Target
from .signing import EVENT_HEADER, ID_HEADER, SIGNATURE_HEADER

log = structlog.get_logger("videoroomd.webhooks")
throttled = ThrottledLog(log)  # an endpoint that is down would otherwise write a line per event

RETRY = Backoff.doubling(0.5, 15.0)  # seconds between two attempts at one event


@dataclass(frozen=True)
class Pending:
    """An event waiting for its URL: its body (signed once: a retry sends the very same bytes)."""

    event_id: str
    event: str
    body: bytes
    signature: str


@dataclass
class Counts:
    """What the deliveries did, for ``/metrics``: sent, failed attempts by reason, dropped events by reason."""

    sent: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed[reason] = self.failed.get(reason, 0) + 1

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class Endpoint:
    """One URL's queue and delivery task (:meth:`run`)."""

    def __init__(self, url: str, counts: Counts, *, queue_size: int, timeout: float, retry_for: float,
                 tls: ssl.SSLContext | None = None, backoff: Backoff = RETRY):
        self.shown = shown(url)  # the URL as logs say it: its path and query may hold the receiver's secret
        self.connection = Connection(Target.of(url), tls)  # kept open between events
        self.counts = counts
        self.timeout = timeout
        self.retry_for = retry_for
        self.backoff = backoff
        self._send, self._receive = trio.open_memory_channel(queue_size)
        self.in_flight = False

    def offer(self, pending: Pending) -> bool:
        """Queue ``pending`` without waiting; False (and counted as dropped) when the queue is full."""
        try:
            self._send.send_nowait(pending)
            return True
        except trio.WouldBlock:
            self.counts.drop("queue_full")
            throttled.warning("webhook queue full; event dropped", url=self.shown, webhook_event=pending.event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.counts.drop("stopped")
        return False

    @property
    def depth(self) -> int:
        """Events waiting, the one being delivered not counted."""
        return self._receive.statistics().current_buffer_used

    @property
    def idle(self) -> bool:
        return not self.in_flight and self.depth == 0

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Deliver the queue in order until cancelled; never raises but trio.Cancelled."""
        task_status.started()
        try:
            async for pending in self._receive:
                self.in_flight = True
                try:
                    await self._deliver(pending, trio.current_time)
                finally:
                    self.in_flight = False
        finally:
            await self.connection.aclose()

    async def _deliver(self, pending: Pending, clock: Callable[[], float]) -> None:
        """Send ``pending`` until a 2xx answer, or until retry_for after its first failure (then dropped)."""
        headers = [(SIGNATURE_HEADER, pending.signature), (EVENT_HEADER, pending.event), (ID_HEADER, pending.event_id)]
        first_failure: float | None = None
        for attempt in itertools.count(1):
            try:
                await self.connection.post(pending.body, headers, timeout=self.timeout)
            except DeliveryFailed as failed:
                self.counts.fail(failed.reason)
                now = clock()
                first_failure = now if first_failure is None else first_failure
                delay = self.backoff.delay(attempt)
                if now + delay - first_failure > self.retry_for:
                    self.counts.drop("gave_up")
                    log.warning("webhook not delivered; event dropped", url=self.shown, webhook_event=pending.event,
                                id=pending.event_id, attempts=attempt, error=str(failed))
                    return
                throttled.info("webhook attempt failed; trying again", url=self.shown, webhook_event=pending.event,
                               attempt=attempt, retry_in_s=delay, error=str(failed))
                await trio.sleep(delay)
            except Exception:  # a bug here must cost one event, not every later one
                self.counts.fail("error")
                self.counts.drop("error")
                log.exception("webhook delivery failed unexpectedly; event dropped", url=self.shown)
                return
            else:
                self.counts.sent += 1
                return
