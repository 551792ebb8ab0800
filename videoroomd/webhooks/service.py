"""The rooms' event sink that POSTs to ``[webhooks] urls``: :class:`Webhooks`, and its numbers for ``/metrics``.

:meth:`Webhooks.emit` is called by the rooms at the moment a thing happens:
it keeps the events ``[webhooks] events`` asks for, makes and signs the body
once, and offers it to every URL's queue without waiting. :meth:`run` runs
one delivery task per URL; :meth:`flush` lets what is queued go out before a
stop, for a bounded time.
"""

from __future__ import annotations

import ssl
import time
import uuid
from typing import Any, Callable

import structlog
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..config import WebhooksConfig
from .delivery import Counts, Endpoint, Pending
from .signing import body, signature

log = structlog.get_logger("videoroomd.webhooks")

MAX_BODY = 64 * 1024  # bytes of one event's JSON; the rooms bound what goes in (names, chat), this is a backstop


class Webhooks:
    """Every URL of ``[webhooks]``, fed by the rooms (a ``rooms.events.RoomEvents``)."""

    def __init__(self, config: WebhooksConfig, *, clock: Callable[[], float] = time.time,
                 tls: ssl.SSLContext | None = None):
        """``clock``: the wall clock the timestamps read; ``tls``: the certificates https URLs are
        checked against (default: the system's)."""
        self.config = config
        self.clock = clock
        self.counts = Counts()
        self.endpoints = [Endpoint(url, self.counts, queue_size=config.queue_size, timeout=config.timeout,
                                   retry_for=config.retry_for, tls=tls) for url in config.urls]
        self._wanted = frozenset(config.events)

    def emit(self, event: str, room: str, **fields: Any) -> None:
        """Queue ``event`` of ``room`` for every URL, if ``[webhooks] events`` asks for it. Never waits,
        never raises: a full queue drops the event (counted)."""
        if not self.endpoints or event not in self._wanted:
            return
        try:
            event_id = str(uuid.uuid4())
            payload = body(event, room, fields, event_id=event_id, timestamp=int(self.clock()))
            if len(payload) > MAX_BODY:
                raise ValueError(f"{len(payload)} bytes of JSON; at most {MAX_BODY}")
            pending = Pending(event_id, event, payload, signature(self.config.key or "", payload))
        except Exception:  # a room must never fail for telling of itself
            self.counts.drop("error")
            log.exception("webhook event could not be made; dropped", webhook_event=event)
            return
        for endpoint in self.endpoints:
            endpoint.offer(pending)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Deliver to every URL until cancelled; ``started`` at once (nothing to wait for)."""
        async with trio.open_nursery() as nursery:
            for endpoint in self.endpoints:
                await nursery.start(endpoint.run)
            if self.endpoints:
                log.info("webhooks on", urls=[e.shown for e in self.endpoints], events=list(self.config.events))
            task_status.started()
            await trio.sleep_forever()

    async def flush(self, timeout: float) -> bool:
        """Wait until every queue is delivered (or dropped), at most ``timeout`` seconds.

        Returns True when nothing is left; else logs how many events were not sent."""
        with trio.move_on_after(timeout):
            while not all(endpoint.idle for endpoint in self.endpoints):
                await trio.sleep(0.05)
            return True
        left = sum(endpoint.depth + endpoint.in_flight for endpoint in self.endpoints)
        log.warning("stopping with webhook events not delivered", events=left, waited_s=timeout)
        return False

    def queued(self) -> int:
        """Events waiting in every URL's queue, those being delivered not counted."""
        return sum(endpoint.depth for endpoint in self.endpoints)

    def collector(self) -> "_Collector":
        """The webhook numbers for a prometheus registry."""
        return _Collector(self)


class _Collector:
    def __init__(self, webhooks: Webhooks):
        self.webhooks = webhooks

    def collect(self):
        counts = self.webhooks.counts
        sent = CounterMetricFamily("videoroomd_webhooks_sent", "Webhook events delivered (a 2xx answer), all URLs")
        sent.add_metric([], counts.sent)
        failed = CounterMetricFamily(
            "videoroomd_webhooks_failed", "Webhook attempts that failed, by reason (connect, tls, timeout, connection, "
            "protocol, redirect, status, error); each is tried again until [webhooks] retry_for", labels=["reason"])
        for reason, count in sorted(counts.failed.items()):
            failed.add_metric([reason], count)
        dropped = CounterMetricFamily(
            "videoroomd_webhooks_dropped", "Webhook events given up, by reason (queue_full, gave_up, error, stopped)",
            labels=["reason"])
        for reason, count in sorted(counts.dropped.items()):
            dropped.add_metric([reason], count)
        depth = GaugeMetricFamily("videoroomd_webhooks_queue_depth", "Webhook events waiting to be sent, all URLs",
                                  value=self.webhooks.queued())
        yield from (sent, failed, dropped, depth)
