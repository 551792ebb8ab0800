"""A burst of new rooms through any nodes is spread over the nodes, not sent to the one that looked
least loaded at its last heartbeat."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_directory import RedisRoomDirectory

ROOMS = 30


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'


@pytest.mark.slow
async def test_thirty_rooms_created_at_once_through_random_nodes_are_spread_evenly(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons = []
        for node in ("node-a", "node-b", "node-c"):
            (tmp_path / node).mkdir()
            daemons.append(await stack.enter_async_context(running_daemon(
                tmp_path / node, rooms=cluster(redis_server.url, node), server="dynamic_rooms = true")))
        for daemon in daemons:
            with trio.fail_after(5):
                await daemon.cluster.bus.subscribed.wait()
        clients = [await stack.enter_async_context(phoenix_client(random.choice(daemons))) for _ in range(ROOMS)]
        replies = []

        async def join(number: int) -> None:
            replies.append(await clients[number].join(f"burst{number}", displayName="x", timeout=15))

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for number in range(ROOMS):
                nursery.start_soon(join, number)
        assert [reply["status"] for reply in replies] == ["ok"] * ROOMS
        assert trio.current_time() - started < 10
        spread = sorted(len(daemon.rooms.entries) for daemon in daemons)
        assert sum(spread) == ROOMS and spread[0] >= 8 and spread[-1] <= 12, spread  # 10 each, +-20 %
        async with open_redis(redis_server.url) as client:  # each on the node that holds its lease
            leases = await RedisRoomDirectory(client).leases()
        assert sorted((lease.room, lease.owner) for lease in leases) == sorted(
            (name, daemon.cluster.node_id) for daemon in daemons for name in daemon.rooms.entries)


async def test_the_cap_of_dynamic_rooms_holds_for_the_cluster_not_for_each_node(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons = []
        for node in ("node-a", "node-b"):
            (tmp_path / node).mkdir()
            daemons.append(await stack.enter_async_context(running_daemon(
                tmp_path / node, rooms=cluster(redis_server.url, node),
                server="dynamic_rooms = true\nmax_dynamic_rooms = 2")))
        for daemon in daemons:
            with trio.fail_after(5):
                await daemon.cluster.bus.subscribed.wait()
        holders = [await stack.enter_async_context(phoenix_client(daemon)) for daemon in daemons]
        for number, holder in enumerate(holders):  # one room made through each node, placed wherever
            assert (await holder.join(f"room{number}", displayName="x"))["status"] == "ok"
        with trio.fail_after(5):  # each node has read the other's room list
            while any(len([row for row in d.cluster.service.snapshot() if row["dynamic"]]) != 2 for d in daemons):
                await trio.sleep(0.1)
        for daemon in daemons:  # either node: the cluster runs its 2, though each node alone has room
            async with phoenix_client(daemon) as late:
                reply = await late.join("room2", displayName="y")
            assert (reply["status"], reply["response"]["code"]) == ("error", "too_many_rooms"), reply
        assert sum(len(daemon.rooms.entries) for daemon in daemons) == 2
        await holders[0].ws.aclose()  # its room closes, and the cluster may make one again
        async with phoenix_client(daemons[1]) as late:
            with trio.fail_after(15):
                while (await late.join("room2", displayName="y"))["status"] != "ok":
                    await trio.sleep(0.2)
