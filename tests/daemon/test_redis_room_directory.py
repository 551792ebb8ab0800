"""The room directory on Redis, beyond the shared contract: several nodes at once, and Redis's own faults.

Each "node" here is a client of its own (its own connections), as two
daemons would be. Runs on the test run's real ``redis-server``.
"""

from __future__ import annotations

import pytest
import trio

from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_directory import RedisRoomDirectory
from videoroomd.rooms.directory import Lease, LeaseLost, RoomTaken
from videoroomd.rooms.leases import ClaimFailed, LeaseHolder

TTL = 5.0


async def test_nodes_racing_for_rooms_each_get_a_room_once(redis_server, redis_prefix):
    rooms = [f"room-{n}" for n in range(20)]
    won: dict[str, list[Lease]] = {room: [] for room in rooms}

    async def node(name: str) -> None:
        async with open_redis(redis_server.url) as client:
            directory = RedisRoomDirectory(client, prefix=redis_prefix)
            for room in rooms:
                try:
                    won[room].append(await directory.claim(room, name, ttl=TTL))
                except RoomTaken as taken:
                    assert taken.holder.owner != name
                await trio.sleep(0)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for name in ("node-a", "node-b", "node-c"):
                nursery.start_soon(node, name)
        async with open_redis(redis_server.url) as client:
            directory = RedisRoomDirectory(client, prefix=redis_prefix)
            for room in rooms:
                (lease,) = won[room]  # exactly one owner per room
                assert await directory.lookup(room) == lease
    tokens = [leases[0].token for leases in won.values()]
    assert len(set(tokens)) == len(tokens)  # never one token twice


async def test_a_flushed_redis_leaves_no_room_with_two_owners(redis_server, redis_prefix):
    async with open_redis(redis_server.url) as client:
        directory = RedisRoomDirectory(client, prefix=redis_prefix)
        old = await directory.claim("lobby", "node-a", ttl=TTL)
        assert redis_server.command("FLUSHALL") == "OK"  # Redis lost everything, the token counter too
        with pytest.raises(LeaseLost) as lost:
            await directory.renew(old, ttl=TTL)
        assert "expired or was released" in lost.value.why
        new = await directory.claim("lobby", "node-b", ttl=TTL)
        assert new.token > old.token  # fencing holds across the loss
        with pytest.raises(LeaseLost):
            await directory.release(old)
        assert await directory.lookup("lobby") == new


async def test_a_record_that_is_not_a_lease_is_dropped_and_counted(redis_server, redis_prefix):
    async with open_redis(redis_server.url) as client:
        directory = RedisRoomDirectory(client, prefix=redis_prefix)
        for garbage in (b"\xff\xfe not text", b"12 {not json", b"12 " + b"x" * 10000, b'7 {"v": 99, "owner": "x"}'):
            await client.set(directory.key("lobby"), garbage)
            assert await directory.lookup("lobby") is None
        assert directory.malformed == 4
        await client.set(directory.key("lobby"), b"nonsense")
        lease = await directory.claim("lobby", "node-a", ttl=TTL)  # a record that is no lease does not hold a room
        assert await directory.lookup("lobby") == lease
        await client.set(directory.key("lobby"), b"nonsense")
        with pytest.raises(LeaseLost):
            await directory.renew(lease, ttl=TTL)


async def test_a_lease_lives_in_redis_only_as_long_as_its_ttl(redis_server, redis_prefix):
    async with open_redis(redis_server.url) as client:
        directory = RedisRoomDirectory(client, prefix=redis_prefix)
        await directory.claim("lobby", "node-a", ttl=TTL)
        assert 0 < int(await client.pttl(directory.key("lobby"))) <= TTL * 1000  # a dead node's rooms free themselves


async def test_an_unreachable_redis_fails_the_claim_within_its_deadline():
    port = _closed_port()
    async with open_redis(f"redis://127.0.0.1:{port}/0") as client:
        holder = LeaseHolder(RedisRoomDirectory(client), "lobby", "node-a", TTL)
        with trio.fail_after(10):
            with pytest.raises(ClaimFailed):
                await holder.claim()
        assert holder.lease is None


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when this returns: nothing listens there
