"""The node directory's contract, on the local and the Redis implementation, and placing rooms on nodes.

As in tests/test_room_directory.py: the local directory runs on trio's
autojump clock, the Redis one on a :class:`StepClock` with short real TTLs
(Redis's expiry is real time).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from testsupport.contracts import Implementation, implementation_fixtures, needed
from testsupport.step_clock import StepClock
from videoroomd.cluster.heartbeat import LIVES, NodeHeartbeat
from videoroomd.cluster.nodes import LocalNodeDirectory, pick_node
from videoroomd.cluster.records import NodeLoad, decode_node, encode_node


@asynccontextmanager
async def _local(_needed):
    yield LocalNodeDirectory(trio.current_time)


@asynccontextmanager
async def _redis(needed):
    from videoroomd.cluster.redis_client import open_redis
    from videoroomd.cluster.redis_nodes import RedisNodeDirectory

    server, prefix = needed
    async with open_redis(server.url) as client:
        yield RedisNodeDirectory(client, prefix=prefix)


IMPLEMENTATIONS = {
    "local": Implementation(_local, 10.0, lambda: trio.testing.MockClock(autojump_threshold=0)),
    "redis": Implementation(_redis, 1.0, StepClock, needs="redis"),
}


implementation, clock, ttl = implementation_fixtures(IMPLEMENTATIONS)


@pytest.fixture
async def nodes(request, implementation, clock):
    async with implementation.open(needed(request, implementation)) as opened:
        yield opened


def load(node: str, **fields) -> NodeLoad:
    return NodeLoad(node, **{"advertise": f"{node}.example.org", **fields})


async def test_published_nodes_are_listed_with_their_load(nodes, ttl, clock):
    assert await nodes.nodes() == []
    b = load("node-b", workers=4, rooms=3, participants=11, cpu=1.5, at=1700000000.25)
    a = load("node-a", workers=2)
    await nodes.publish(b, ttl=ttl)
    await nodes.publish(a, ttl=ttl)
    assert await nodes.nodes() == [a, b]  # by node id


async def test_a_later_publication_replaces_the_earlier(nodes, ttl, clock):
    await nodes.publish(load("node-a", rooms=1), ttl=ttl)
    await nodes.publish(load("node-a", rooms=2, draining=True), ttl=ttl)
    assert await nodes.nodes() == [load("node-a", rooms=2, draining=True)]


async def test_a_node_that_stops_publishing_drops_out_after_its_ttl(nodes, ttl, clock):
    await nodes.publish(load("node-a"), ttl=ttl)
    await nodes.publish(load("node-b"), ttl=ttl)
    for _ in range(3):
        await trio.sleep(ttl * 0.6)
        await nodes.publish(load("node-b"), ttl=ttl)  # node-b beats, node-a went silent
    assert [n.node for n in await nodes.nodes()] == ["node-b"]


async def test_a_publication_returns_the_live_load_it_replaced(nodes, ttl, clock):
    first = load("node-a", rooms=1, incarnation="run-1")
    assert await nodes.publish(first, ttl=ttl) is None
    assert await nodes.publish(load("node-a", rooms=2, incarnation="run-1"), ttl=ttl) == first
    await trio.sleep(ttl * 1.5)  # lapsed: nothing live is replaced
    assert await nodes.publish(load("node-a", incarnation="run-2"), ttl=ttl) is None


async def test_a_second_daemon_under_the_same_node_id_is_logged_once_a_restart_is_not(nodes, ttl, clock):
    interval = ttl / LIVES
    await nodes.publish(load("node-a", incarnation="before-restart"), ttl=ttl)  # the previous run, just dead
    beats = NodeHeartbeat(nodes, lambda: load("node-a", incarnation="now"), interval=interval)
    twin = NodeHeartbeat(nodes, lambda: load("node-a", advertise="elsewhere", incarnation="twin"), interval=interval)
    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(beats.run)
            await trio.sleep(interval * 2.5)
            assert not beats.twin_seen  # a restart under the same id is no twin
            await nursery.start(twin.run)
            await trio.sleep(interval * 4)
            nursery.cancel_scope.cancel()
    errors = [e for e in logs if e["log_level"] == "error"]
    assert beats.twin_seen and len([e for e in errors if e["node"] == "node-a"]) <= 2  # once per daemon
    assert errors and "give each node its own [cluster] node_id" in errors[0]["event"]


async def test_a_withdrawn_node_is_gone_at_once(nodes, ttl, clock):
    await nodes.publish(load("node-a"), ttl=ttl)
    await nodes.withdraw("node-a")
    await nodes.withdraw("never-there")
    assert await nodes.nodes() == []
    await nodes.publish(load("node-a"), ttl=ttl)  # the same node_id restarting comes back
    assert [n.node for n in await nodes.nodes()] == ["node-a"]


async def test_rooms_placed_at_once_are_spread_and_a_publication_counts_them_afresh(nodes, ttl, clock):
    loads = [load("node-a", rooms=2), load("node-b"), load("node-c", draining=True)]
    for node in ("node-a", "node-b", "node-c"):
        await nodes.publish(next(l for l in loads if l.node == node), ttl=ttl)
    picked = [(await nodes.place(loads, ttl=ttl)).node for _ in range(6)]
    # node-b first (fewest rooms), then turn about as the placements count; never the draining node-c
    assert picked == ["node-b", "node-b", "node-a", "node-b", "node-a", "node-b"]
    # node-b now counts 3 of the 4 rooms placed there itself: one is still on its way, and counts
    await nodes.publish(load("node-b", rooms=3), ttl=ttl)
    loads = [load("node-a", rooms=2), load("node-b", rooms=3)]
    assert [(await nodes.place(loads, ttl=ttl)).node for _ in range(2)] == ["node-a", "node-b"]
    assert await nodes.place([load("node-c", draining=True)], ttl=ttl) is None


async def test_the_heartbeat_keeps_a_node_listed_and_withdraws_it_on_the_way_out(nodes, ttl, clock):
    beats = NodeHeartbeat(nodes, lambda: load("node-a", rooms=1), interval=ttl / LIVES)
    async with trio.open_nursery() as nursery:
        await nursery.start(beats.run)
        await trio.sleep(ttl * 2)
        assert [n.rooms for n in await nodes.nodes()] == [1] and beats.connected
        nursery.cancel_scope.cancel()
    assert await nodes.nodes() == []


async def test_a_heartbeat_that_cannot_publish_logs_once_and_goes_on(autojump_clock):
    class Away:
        up = False

        async def publish(self, load, *, ttl):
            if not self.up:
                raise ConnectionError("Redis is away")
            return None

        async def withdraw(self, node):
            raise ConnectionError("Redis is away")

    directory = Away()
    beats = NodeHeartbeat(directory, lambda: load("node-a"), interval=1.0)
    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(beats.run)  # a node starts without Redis
            await trio.sleep(5.5)
            directory.up = True
            await trio.sleep(2)
            nursery.cancel_scope.cancel()
    assert beats.failures == 6 and beats.connected
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "cluster: cannot publish this node's load; trying again every beat"]
    assert "cluster: publishing this node's load again" in [e["event"] for e in logs]


async def test_a_node_record_that_is_not_a_load_is_dropped_and_counted(redis_server, redis_prefix):
    from videoroomd.cluster.redis_client import open_redis
    from videoroomd.cluster.redis_nodes import RedisNodeDirectory

    async with open_redis(redis_server.url) as client:
        nodes = RedisNodeDirectory(client, prefix=redis_prefix)
        await nodes.publish(load("node-a"), ttl=5)
        await nodes.publish(load("node-b"), ttl=5)
        await client.set(nodes.key("node-b"), b'{"v": 1, "node": "node-b", "workers": "many"}')
        assert [n.node for n in await nodes.nodes()] == ["node-a"] and nodes.malformed == 1


def test_a_load_read_back_is_the_load_published():
    published = load("node-a", workers=3, rooms=2, participants=9, cpu=0.75, draining=True, at=12.5, incarnation="1f")
    assert decode_node(encode_node(published)) == published


def test_a_room_goes_to_the_node_with_the_most_room_left():
    nodes = [load("a", workers=2, rooms=4, cpu=0.2), load("b", workers=2, rooms=2, cpu=1.9),
             load("c", workers=8, rooms=2, cpu=1.9), load("d", rooms=0, draining=True)]
    assert pick_node(nodes).node == "c"  # fewest rooms; of equals, the lighter CPU per worker; never a draining one
    assert pick_node([load("d", draining=True)]) is None and pick_node([]) is None
