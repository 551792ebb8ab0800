"""The room directory on Redis: one key per room, claimed with ``SET NX PX``, fenced by token.

Keys (``PREFIX`` is ``videoroomd:`` unless told otherwise):

- ``PREFIX room:NAME``: the lease of room NAME, a string ``"TOKEN JSON"``
  (:mod:`.records`) whose Redis TTL is the lease's: Redis's own expiry is
  what frees the room of a node that died.
- ``PREFIX lease-token``: the counter tokens come from.
- ``PREFIX chat:NAME``: room NAME's chat history (:mod:`.redis_chat`),
  whose expiry each renewal moves to ``CHAT_GRACE`` seconds after the lease's.

Each call is one Lua script, so that checking the token and changing the
key are one step for Redis. A token is the larger of the counter's next
value and Redis's clock in microseconds: when Redis restarts empty (or is
flushed) the counter starts again from the clock, above every token
handed out before, so a node that held a room before the loss cannot
renew or release it over its new holder. A node's lease expiry
(``Lease.expires``) is written on its own clock (``clock``, wall-clock time
by default) for people to read; Redis's TTL alone decides.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import trio

from ..rooms.directory import LEASE_TTL, Lease, LeaseLost, RoomTaken, lost_because
from .records import MalformedRecord, decode_lease, encode_lease

PREFIX = "videoroomd:"
LIST_LIMIT = 10000  # leases :meth:`RedisRoomDirectory.leases` reads at most
CHAT_GRACE = 30.0   # seconds a room's chat history outlives its lease: long enough for the room to be placed again

# KEYS: the room, the token counter. ARGV: the record's body, the TTL in ms.
# Returns {0, record} when the room is held (a record that is not a lease is overwritten), {1, token}.
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^%d+ ') then return {0, held} end
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
local token = redis.call('INCR', KEYS[2])
if token < floor then
  token = floor
  redis.call('SET', KEYS[2], string.format('%d', floor))
end
local text = string.format('%d', token)
redis.call('SET', KEYS[1], text .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, text}
"""

# KEYS: the room, its chat history. ARGV: the token, the new body, the TTL in ms, the history's TTL in ms.
# Returns {0} when the room has no lease, {1, record} when another token holds it, {2} renewed.
RENEW = """
local held = redis.call('GET', KEYS[1])
if not held then return {0} end
if string.sub(held, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ' ' then return {1, held} end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {2}
"""

# KEYS: the room. ARGV: the token. Returns as RENEW, {2} when released.
RELEASE = """
local held = redis.call('GET', KEYS[1])
if not held then return {0} end
if string.sub(held, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ' ' then return {1, held} end
redis.call('DEL', KEYS[1])
return {2}
"""


class RedisRoomDirectory:
    """The :class:`~videoroomd.rooms.directory.RoomDirectory` of every node sharing ``client``'s Redis.

    ``malformed`` counts the records read that were not leases (dropped:
    a lookup answers None, a claim overwrites them)."""

    def __init__(self, client: Any, clock: Callable[[], float] = time.time, *, prefix: str = PREFIX):
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._claim = client.register_script(CLAIM)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self.malformed = 0

    def key(self, room: str) -> str:
        return f"{self._prefix}room:{room}"

    async def lookup(self, room: str) -> Lease | None:
        """Returns the live lease of ``room``; None when nobody runs it (or its record is not a lease)."""
        await trio.lowlevel.checkpoint()  # a call in a cancelled scope sends nothing
        raw = await self._client.get(self.key(room))
        return None if raw is None else self._decode(room, raw)

    async def claim(self, room: str, owner: str, *, ttl: float = LEASE_TTL) -> Lease:
        """Returns a new lease of ``room`` for ``owner``; raises RoomTaken while one is live."""
        await trio.lowlevel.checkpoint()
        expires = self._clock() + ttl
        _, body = encode_lease(Lease(room, owner, 0, expires))
        answer = await self._claim(keys=[self.key(room), f"{self._prefix}lease-token"], args=[body, _ms(ttl)])
        if int(answer[0]) == 0:
            holder = self._decode(room, answer[1])
            raise RoomTaken(holder if holder is not None else Lease(room, "?", _token(answer[1]), expires))
        return Lease(room, owner, int(answer[1]), expires)

    async def renew(self, lease: Lease, *, ttl: float = LEASE_TTL, worker: str | None = None) -> Lease:
        """Returns ``lease`` extended by ``ttl`` from now; raises LeaseLost when it expired or was taken."""
        await trio.lowlevel.checkpoint()
        renewed = Lease(lease.room, lease.owner, lease.token, self._clock() + ttl,
                        worker if worker is not None else lease.worker)
        token, body = encode_lease(renewed)
        answer = await self._renew(keys=[self.key(lease.room), f"{self._prefix}chat:{lease.room}"],
                                   args=[token, body, _ms(ttl), chat_ttl_ms(ttl)])
        self._check(lease, answer)
        return renewed

    async def release(self, lease: Lease) -> None:
        """Gives ``room`` up; raises LeaseLost when ``lease`` is no longer the room's."""
        await trio.lowlevel.checkpoint()
        answer = await self._release(keys=[self.key(lease.room)], args=[str(lease.token)])
        self._check(lease, answer)

    async def leases(self, limit: int = LIST_LIMIT) -> list[Lease]:
        """Returns the live leases of every room (at most ``limit``), sorted by room: for people, not for
        the daemon's own decisions (SCAN walks the key space, and a lease may lapse as it is read)."""
        keys = []
        async for key in self._client.scan_iter(match=f"{self._prefix}room:*", count=500):
            keys.append(key)
            if len(keys) >= limit:
                break
        room_of = len(f"{self._prefix}room:")
        leases = []
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            for key, raw in zip(chunk, await self._client.mget(chunk)):
                lease = None if raw is None else self._decode(key[room_of:].decode(errors="replace"), raw)
                if lease is not None:
                    leases.append(lease)
        return sorted(leases, key=lambda lease: lease.room)

    def _check(self, lease: Lease, answer: list) -> None:
        """Raises LeaseLost unless the script's ``answer`` says it found ``lease`` and acted."""
        status = int(answer[0])
        if status == 2:
            return
        held = self._decode(lease.room, answer[1]) if status == 1 else None
        if status == 1 and held is None:
            raise LeaseLost(lease, f"room {lease.room!r} holds a record that is not a lease")
        raise LeaseLost(lease, lost_because(lease, held))

    def _decode(self, room: str, raw: bytes) -> Lease | None:
        try:
            return decode_lease(room, raw)
        except MalformedRecord:
            self.malformed += 1
            return None


def chat_ttl_ms(lease_ttl: float) -> int:
    """The lifetime of a room's chat history in Redis from its last renewal or message, in milliseconds."""
    return _ms(lease_ttl + CHAT_GRACE)


def _ms(ttl: float) -> int:
    """A TTL in whole milliseconds, at least one (Redis refuses PX 0)."""
    return max(1, int(ttl * 1000))


def _token(raw: bytes) -> int:
    head = raw.split(b" ", 1)[0]
    return int(head) if head.isdigit() else 0
