"""The nodes' mailboxes on Redis: one pub/sub channel per node, for the participant links between them.

Channel ``PREFIX link:NODE`` carries every message for node NODE (the
codec's, :mod:`..rooms.link_codec`). One channel per node rather than one
per participant: a node subscribes once, when it starts, so a join costs no
SUBSCRIBE/UNSUBSCRIBE round trips and Redis holds as many subscriptions as
there are nodes; the receiving node routes by link key in memory.

Messages to one node leave in the order they were handed over: one task
publishes them one after the other from a bounded queue (a pool of
connections would otherwise let a later PUBLISH overtake an earlier one).
Pub/sub delivers at most once: a message lost while Redis or a node is
away is never repeated, and the links' own beats (see :mod:`.links`) end
what was lost that way. What is read is decoded with limits; a message that
does not decode is counted and dropped.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import structlog
import trio

from ..logs.ratelimit import ThrottledLog
from ..rooms.link_codec import BadMessage, decode
from .redis_directory import PREFIX

log = structlog.get_logger("videoroomd.cluster")
throttled = ThrottledLog(log)

QUEUE = 4096        # messages waiting to be published, all nodes together
RESUBSCRIBE = 1.0   # seconds between tries to subscribe while Redis is away

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]


class LinkBus:
    """This node's mailbox (read) and the other nodes' (written to). ``handler(type, fields)`` gets each
    message that decodes, one at a time and in order; it should not wait long."""

    def __init__(self, client: Any, node: str, *, prefix: str = PREFIX):
        self._client = client
        self.node = node
        self._prefix = prefix
        self._send, self._queue = trio.open_memory_channel[tuple[str, bytes]](QUEUE)
        self.handler: Handler | None = None
        self.subscribed = trio.Event()
        self.malformed = 0   # messages read that did not decode (dropped)
        self.dropped = 0     # messages not published: the queue was full, or Redis did not take them
        self.published = 0
        self.bytes_out = 0
        self.received = 0
        self.failed = 0      # messages whose handling raised (logged)
        self.up = True       # the last publication went through (False while Redis is away)

    def channel(self, node: str) -> str:
        return f"{self._prefix}link:{node}"

    async def put(self, node: str, message: bytes) -> None:
        """Queue ``message`` for ``node``; waits while the queue is full."""
        await self._send.send((node, message))

    def post(self, node: str, message: bytes) -> bool:
        """Queue ``message`` for ``node`` without waiting; returns False (and counts it) when the queue is full."""
        try:
            self._send.send_nowait((node, message))
            return True
        except trio.WouldBlock:
            self.dropped += 1
            return False

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Publish what is queued and read this node's channel until cancelled; ``started`` at once
        (a node starts while Redis is away: ``subscribed`` is set once the channel is read)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publish)
            nursery.start_soon(self._subscribe)
            task_status.started()

    async def _publish(self) -> None:
        async for node, message in self._queue:
            try:
                with trio.fail_after(2.0):
                    await self._client.publish(self.channel(node), message)
            except Exception as error:  # Redis away: the message is lost, the links' beats notice
                self.dropped += 1
                self.up = False
                throttled.warning("cluster: a link message was not published", node=node, why=repr(error))
                continue
            self.published += 1
            self.bytes_out += len(message)
            self.up = True

    async def _subscribe(self) -> None:
        """Read this node's channel, subscribing again whenever the subscription ends."""
        while True:
            try:
                async with self._client.pubsub(channels=[self.channel(self.node)],
                                               ignore_subscribe_messages=True) as pubsub:
                    self.subscribed.set()
                    async for message in pubsub:
                        if message is not None and message.get("type") == "message":
                            await self._dispatch(message.get("data"))
            except Exception as error:  # Redis away, or the connection dropped: subscribe again
                throttled.warning("cluster: link channel not readable; subscribing again", why=repr(error))
            await trio.sleep(RESUBSCRIBE)

    async def _dispatch(self, raw: Any) -> None:
        try:
            kind, fields = decode(raw)
        except BadMessage as bad:
            self.malformed += 1
            throttled.warning("cluster: malformed link message dropped", why=str(bad)[:200])
            return
        self.received += 1
        if self.handler is not None:
            try:
                await self.handler(kind, fields)
            except Exception as error:  # one message that went wrong must not stop the node's reading
                self.failed += 1
                log.exception("cluster: a link message could not be handled", type=kind, why=repr(error))
