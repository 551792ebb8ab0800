"""The node directory on Redis: each node's load a key with a TTL, and the set of their ids.

Keys (``PREFIX`` as in :mod:`.redis_directory`):

- ``PREFIX node:ID``: node ID's last load, JSON (:mod:`.records`), with the
  TTL it was published with; Redis's expiry is what drops a dead node.
- ``PREFIX nodes``: the set of node ids, so that listing needs no SCAN of
  the key space. Listing drops the ids whose key has expired.
- ``PREFIX placed:ID``: the rooms placed on node ID that its published
  load does not count yet (each publication takes off the rooms the node
  gained since the one before), so that a burst of new rooms through any
  nodes is spread, not sent to the node that looked least loaded at its
  last beat.
- ``PREFIX rooms:ID``: the rooms node ID runs (:func:`.records.encode_rooms`),
  with its load's TTL, so that every node's admin view lists every room.

The listing script reads keys it builds from ``PREFIX`` rather than
receiving them in KEYS: fine on a single Redis or Valkey (what the cluster
runs on), not on a Redis Cluster, whose slots it would cross.
"""

from __future__ import annotations

from typing import Any, Sequence

import trio

from .nodes import candidates
from .records import MalformedRecord, NodeLoad, RoomRow, decode_node, decode_rooms, encode_node, encode_rooms
from .redis_directory import PREFIX

# KEYS: the node key, the set of ids, the node's placed count. ARGV: the record, the TTL in ms, the node id,
# its rooms. Returns the record replaced. The rooms gained since the record replaced were placed: they
# come off the placed count (those still on their way stay on it).
PUBLISH = """
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local before = 0
if previous then
  local ok, record = pcall(cjson.decode, previous)
  if ok and type(record) == 'table' and type(record['rooms']) == 'number' then before = record['rooms'] end
end
local gained = tonumber(ARGV[4]) - before
if gained > 0 and redis.call('DECRBY', KEYS[3], gained) <= 0 then redis.call('DEL', KEYS[3]) end
return previous
"""

# ARGV: the placed counts' key prefix, their TTL in ms, then (node, rooms, cpu) for each candidate, in the
# order of preference among equals. Returns the node with the fewest rooms counting those placed since its
# last publication (then the least CPU, then the first), whose placed count it adds one to.
PLACE = """
local best, best_rooms, best_cpu
for i = 3, #ARGV, 3 do
  local rooms = tonumber(ARGV[i + 1]) + (tonumber(redis.call('GET', ARGV[1] .. ARGV[i])) or 0)
  local cpu = tonumber(ARGV[i + 2])
  if best == nil or rooms < best_rooms or (rooms == best_rooms and cpu < best_cpu) then
    best, best_rooms, best_cpu = ARGV[i], rooms, cpu
  end
end
if best then
  redis.call('INCR', ARGV[1] .. best)
  redis.call('PEXPIRE', ARGV[1] .. best, ARGV[2])
end
return best
"""

# KEYS: the set of ids. ARGV: the node key prefix. Returns the records of the live nodes.
LIST = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('GET', ARGV[1] .. id)
  if record then table.insert(out, record) else redis.call('SREM', KEYS[1], id) end
end
return out
"""


# KEYS: the set of ids. ARGV: the room lists' key prefix, this node's id, its list, the TTL in ms.
# Stores this node's list; returns the lists of the other live nodes.
SHARE_ROOMS = """
redis.call('SET', ARGV[1] .. ARGV[2], ARGV[3], 'PX', ARGV[4])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[2] then
    local record = redis.call('GET', ARGV[1] .. id)
    if record then table.insert(out, record) end
  end
end
return out
"""


class RedisNodeDirectory:
    """The :class:`~.nodes.NodeDirectory` of the nodes sharing ``client``'s Redis.

    ``malformed`` counts the records read that were not a node's load (dropped)."""

    def __init__(self, client: Any, *, prefix: str = PREFIX):
        self._client = client
        self._prefix = prefix
        self._publish = client.register_script(PUBLISH)
        self._list = client.register_script(LIST)
        self._place = client.register_script(PLACE)
        self._share_rooms = client.register_script(SHARE_ROOMS)
        self.malformed = 0

    def key(self, node: str) -> str:
        return f"{self._prefix}node:{node}"

    async def publish(self, load: NodeLoad, *, ttl: float) -> NodeLoad | None:
        """Record ``load`` for ``ttl`` seconds; returns the live load it replaced, if any."""
        await trio.lowlevel.checkpoint()
        previous = await self._publish(keys=[self.key(load.node), f"{self._prefix}nodes", f"{self._prefix}placed:{load.node}"],
                                       args=[encode_node(load), max(1, int(ttl * 1000)), load.node, load.rooms])
        return None if previous is None else self._decode(previous)

    async def place(self, loads: Sequence[NodeLoad], *, ttl: float) -> NodeLoad | None:
        """The node of ``loads`` a new room goes to, counted there until its next publication (at most
        ``ttl`` seconds); None when every node drains. One step for Redis, so that nodes placing rooms
        at once see each other's."""
        await trio.lowlevel.checkpoint()
        args: list[Any] = [f"{self._prefix}placed:", max(1, int(ttl * 1000))]
        for candidate in candidates(loads):
            if candidate.alive:
                args += [candidate.name, candidate.rooms, repr(candidate.cpu)]
        if len(args) == 2:
            return None
        picked = await self._place(keys=[], args=args)
        name = picked.decode() if isinstance(picked, bytes) else picked
        return next((load for load in loads if load.node == name), None)

    async def share_rooms(self, node: str, rows: list[RoomRow], *, ttl: float) -> list[RoomRow]:
        """Store the rooms ``node`` runs for ``ttl`` seconds; returns the rooms the other live nodes run
        (lists that are not ours are counted in ``malformed`` and left out)."""
        await trio.lowlevel.checkpoint()
        found: list[RoomRow] = []
        for raw in await self._share_rooms(keys=[f"{self._prefix}nodes"], args=[
                f"{self._prefix}rooms:", node, encode_rooms(node, rows), max(1, int(ttl * 1000))]):
            try:
                found += decode_rooms(raw)
            except MalformedRecord:
                self.malformed += 1
        return found

    async def withdraw(self, node: str) -> None:
        """Remove ``node`` now."""
        await trio.lowlevel.checkpoint()
        await self._client.delete([self.key(node), f"{self._prefix}rooms:{node}"])
        await self._client.srem(f"{self._prefix}nodes", [node])

    async def nodes(self) -> list[NodeLoad]:
        """Returns the live nodes' loads, sorted by node id; records that are not loads are counted and left out."""
        await trio.lowlevel.checkpoint()
        loads: dict[str, NodeLoad] = {}
        for raw in await self._list(keys=[f"{self._prefix}nodes"], args=[f"{self._prefix}node:"]):
            load = self._decode(raw)
            if load is not None:
                loads[load.node] = load
        return [loads[node] for node in sorted(loads)]

    def _decode(self, raw: bytes) -> NodeLoad | None:
        try:
            return decode_node(raw)
        except MalformedRecord:
            self.malformed += 1
            return None
