"""The rooms' chat histories on Redis, beside their leases: a late joiner on any node, and after a
failover, sees what was said.

Key ``PREFIX chat:NAME`` (``PREFIX`` as in :mod:`.redis_directory`) is a
list of room NAME's messages (:func:`.records.encode_chat`), the newest
last, trimmed to the room's history length (:data:`~..rooms.chat.HISTORY`)
at every append. It expires ``GRACE`` seconds after the room's lease would:
each append and each renewal of the lease (:class:`.redis_directory.RedisRoomDirectory`)
sets that, so the history outlives a node that died long enough for the
room to be placed again, and goes once nobody runs the room. A dynamic room
that ended (the last person left) drops it at once, unless the room runs
under another lease by then.

Appends leave in order from one task and a bounded queue (:meth:`RedisChatStore.run`):
a room's ``chat`` never waits on Redis; what does not fit, or what Redis
does not take, is counted in ``dropped`` and lost to later joiners only.
"""

from __future__ import annotations

from typing import Any

import structlog
import trio

from ..logs.ratelimit import ThrottledLog
from ..rooms.chat import HISTORY, ChatMessage
from .records import MalformedRecord, decode_chat, encode_chat
from .redis_directory import PREFIX, chat_ttl_ms

log = structlog.get_logger("videoroomd.cluster")
throttled = ThrottledLog(log)

QUEUE = 1024           # appends and drops waiting for Redis, all rooms together
WRITE_TIMEOUT = 2.0

# KEYS: the history. ARGV: the record, the length kept, the TTL in ms.
APPEND = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: the room's lease, the history. ARGV: the token of the room that ended.
# Returns 1 when dropped, 0 when another lease holds the room now.
FORGET = """
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ' ' then return 0 end
redis.call('DEL', KEYS[2])
return 1
"""


class RedisChatStore:
    """The :class:`~videoroomd.rooms.chat_store.ChatStore` of the nodes sharing ``client``'s Redis.

    ``lease_ttl``: the rooms' lease lifetime, which the histories outlive by
    the directory's grace; ``malformed``: records read that were not messages
    (dropped); ``dropped``: appends and drops that did not reach Redis."""

    def __init__(self, client: Any, lease_ttl: float, *, prefix: str = PREFIX, history: int = HISTORY):
        self._client = client
        self._prefix = prefix
        self.history = history
        self.ttl_ms = chat_ttl_ms(lease_ttl)
        self._append = client.register_script(APPEND)
        self._forget = client.register_script(FORGET)
        self._send, self._queue = trio.open_memory_channel[tuple](QUEUE)
        self.malformed = 0
        self.dropped = 0
        self.written = 0

    def key(self, room: str) -> str:
        return f"{self._prefix}chat:{room}"

    async def restore(self, room: str) -> list[ChatMessage]:
        """Returns room ``room``'s stored messages, oldest first; records that are not messages are counted
        and left out. Raises the client's errors."""
        await trio.lowlevel.checkpoint()
        messages = []
        for raw in await self._client.lrange(self.key(room), -self.history, -1):
            try:
                messages.append(decode_chat(raw))
            except MalformedRecord:
                self.malformed += 1
        return messages

    def record(self, room: str, message: ChatMessage) -> None:
        self._queue_nowait((self._append, [self.key(room)], [encode_chat(message), self.history, self.ttl_ms]))

    def forget(self, room: str, token: int) -> None:
        self._queue_nowait((self._forget, [f"{self._prefix}room:{room}", self.key(room)], [str(token)]))

    def _queue_nowait(self, call: tuple) -> None:
        try:
            self._send.send_nowait(call)
        except trio.WouldBlock:
            self.dropped += 1
            throttled.warning("cluster: chat history not stored: too many messages waiting for Redis")

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Write what is queued, in order, until cancelled; ``started`` at once."""
        task_status.started()
        async for script, keys, args in self._queue:
            try:
                with trio.fail_after(WRITE_TIMEOUT):
                    await script(keys=keys, args=args)
            except Exception as error:  # Redis away: later joiners miss this message; the call goes on
                self.dropped += 1
                throttled.warning("cluster: chat history not stored", why=repr(error))
                continue
            self.written += 1
