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

What is read waits in a bounded inbox (``INBOX`` messages, ``INBOX_BYTES``
bytes) for the handler: the Redis client hands each message over as it
arrives (a channel handler, so that its own unbounded queue never fills),
and a message that finds the inbox full is dropped, counted (``overrun``)
and its link ended (``on_lost`` with the link's key: a participant whose
messages were lost rejoins), so a node that reads slowly cannot grow its
memory without bound.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import structlog
import trio

from ..logs.ratelimit import ThrottledLog
from ..rooms.link_codec import MAX_MESSAGE, BadMessage, decode
from .redis_directory import PREFIX

log = structlog.get_logger("videoroomd.cluster")
throttled = ThrottledLog(log)

QUEUE = 4096        # messages waiting to be published, all nodes together
RESUBSCRIBE = 1.0   # seconds between tries to subscribe while Redis is away
INBOX = 1024        # messages read and waiting for the handler
INBOX_BYTES = 16 << 20  # and their bytes, together

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
        self.overrun = 0     # messages read while the inbox was full (dropped, their links ended)
        self.on_lost: Callable[[str], None] | None = None  # told the key of each link a dropped message was for
        self._inbox_in, self._inbox = trio.open_memory_channel[bytes](INBOX)
        self._inbox_bytes = 0

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
            nursery.start_soon(self._read)
            task_status.started()

    async def _publish(self) -> None:
        async for node, message in self._queue:
            try:
                with trio.fail_after(2.0):
                    await self._client.publish(self.channel(node), message)
            except Exception as error:  # Redis away: the message is lost, the links' beats notice
                self.dropped += 1
                if self.up:  # once per outage: the heartbeat says the rest
                    log.warning("cluster: link messages cannot be published; they are dropped until Redis answers",
                                node=node, why=repr(error))
                self.up = False
                continue
            self.published += 1
            self.bytes_out += len(message)
            if not self.up:
                log.info("cluster: link messages are published again")
            self.up = True

    async def _subscribe(self) -> None:
        """Read this node's channel into the inbox, subscribing again whenever the subscription ends."""
        failing = False  # logged once per outage
        while True:
            try:
                async with self._client.pubsub(channel_handlers={self.channel(self.node): self._take},
                                               ignore_subscribe_messages=True) as pubsub:
                    self.subscribed.set()
                    if failing:
                        log.info("cluster: link channel read again")
                        failing = False
                    async for _ in pubsub:  # the handler took every message: this drains the client's own queue
                        pass
            except Exception as error:  # Redis away, or the connection dropped: subscribe again
                if not failing:
                    log.warning("cluster: link channel not readable; subscribing again every second", why=repr(error))
                failing = True
            await trio.sleep(RESUBSCRIBE)

    def _take(self, message: Any) -> None:
        """One message as the client read it: into the inbox, or dropped (never waits)."""
        raw = message.get("data") if isinstance(message, dict) else None
        if not isinstance(raw, (bytes, str)) or len(raw) > MAX_MESSAGE:
            self.malformed += 1
            throttled.warning("cluster: malformed link message dropped", why="not text, or too large")
            return
        raw = raw.encode() if isinstance(raw, str) else raw
        if self._inbox_bytes + len(raw) <= INBOX_BYTES:
            try:
                self._inbox_in.send_nowait(raw)
                self._inbox_bytes += len(raw)
                return
            except trio.WouldBlock:
                pass
        self.overrun += 1
        throttled.warning("cluster: link messages arrive faster than this node handles them; the links "
                          "they were for end, and their participants rejoin", waiting=INBOX)
        try:
            key = decode(raw)[1].get("link")
        except BadMessage:
            self.malformed += 1
            return
        if isinstance(key, str) and self.on_lost is not None:
            self.on_lost(key)

    async def _read(self) -> None:
        async for raw in self._inbox:
            self._inbox_bytes -= len(raw)
            await self._dispatch(raw)

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
