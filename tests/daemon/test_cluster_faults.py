"""A cluster's own faults, on real daemons and a real ``redis-server``: Redis absent when a node starts,
Redis flushed mid-call, a node restarted under its ``node_id`` while its old leases live, a node whose
wall clock jumps.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.cluster_nodes import cluster_daemons
from testsupport.daemon import free_port
from testsupport.phoenix import phoenix_client
from testsupport.redis_server import start_redis, stop_redis
from testsupport.signalling_helpers import running_daemon
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_directory import RedisRoomDirectory
from videoroomd.cluster.redis_nodes import RedisNodeDirectory

LOBBY = "[rooms.lobby]\nmax_peers = 4\n"
LEASE_TTL = 3.0


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = {LEASE_TTL:g}\nheartbeat = 0.5\n'


async def joined(client, room: str, name: str, timeout: float) -> float:
    """Join ``room`` again and again (as the page does after a refusal) until it admits ``client``;
    returns the seconds it took. Fails after ``timeout``."""
    started = trio.current_time()
    with trio.fail_after(timeout):
        while (await client.join(room, displayName=name))["status"] != "ok":
            await trio.sleep(0.2)
    return trio.current_time() - started


async def lease_of(url: str, room: str = "lobby"):
    async with open_redis(url) as redis:
        return await RedisRoomDirectory(redis).lookup(room)


async def live_nodes(url: str) -> list:
    async with open_redis(url) as redis:
        return await RedisNodeDirectory(redis).nodes()


@pytest.mark.slow
async def test_a_node_started_before_its_redis_serves_rooms_once_redis_is_up(tmp_path):
    port = free_port()  # nothing listens there yet
    url = f"redis://127.0.0.1:{port}/0"
    async with running_daemon(tmp_path, rooms=cluster(url, "node-a") + LOBBY) as a:
        async with phoenix_client(a) as client:
            reply = await client.join("lobby", displayName="early")
        assert (reply["status"], reply["response"]["code"]) == ("error", "room_unavailable")
        server = start_redis(tmp_path / "redis.log", port=port)
        try:
            async with phoenix_client(a) as client:
                await joined(client, "lobby", "later", timeout=15)  # the node retried on its own
                assert (await lease_of(url)).owner == "node-a"
                with trio.fail_after(5):  # its heartbeat publishes it again
                    while [n.node for n in await live_nodes(url)] != ["node-a"]:
                        await trio.sleep(0.1)
                assert "videoroomd_cluster_redis_up 1.0" in a.metrics.render().decode()
        finally:
            stop_redis(server)


async def test_redis_flushed_mid_call_the_call_goes_on_in_one_room_on_one_node(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons = await cluster_daemons(stack, tmp_path, ("node-a", "node-b"),
                                        lambda node: cluster(redis_server.url, node) + LOBBY)
        home, other = sorted(daemons, key=lambda d: d.rooms.get("lobby") is None)
        room, old = home.rooms.get("lobby"), home.rooms.entries["lobby"].lease
        async with phoenix_client(home) as ann, phoenix_client(other) as bob:
            assert (await ann.join("lobby", displayName="Ann"))["status"] == "ok"
            assert (await bob.join("lobby", displayName="Bob"))["status"] == "ok"  # over Redis
            assert redis_server.command("FLUSHALL") == "OK"  # every lease, node and token counter gone
            with trio.fail_after(10):  # the next renewal finds no lease and claims the room again
                while (found := await lease_of(redis_server.url)) is None:
                    await trio.sleep(0.1)
            assert found.owner == old.owner and found.token > old.token  # fenced: larger than any before
            assert home.rooms.get("lobby") is room and not room.stopping and room.peer_count() == 2
            assert other.rooms.get("lobby") is None  # no second copy of the room
            with trio.fail_after(5):  # both nodes publish themselves again
                while len(await live_nodes(redis_server.url)) != 2:
                    await trio.sleep(0.1)
            ref = await bob.send("room:lobby", "chat", {"text": "still here"}, bob.join_ref)
            assert (await bob.reply_to(ref))["status"] == "ok"  # the link across nodes still carries
            with trio.fail_after(5):
                while (pushed := await ann.receive())[3] != "chat":
                    pass
            assert pushed[4]["text"] == "still here"


@pytest.mark.slow
async def test_a_node_restarted_under_its_node_id_takes_its_room_back_once_the_old_lease_lapses(
        start_daemon, redis_server):
    """The dead run's lease names this node: the new run must not take it for its own (its room is gone with
    the old process) but wait for it to lapse and claim the room afresh, with a larger token."""
    redis_server.command("FLUSHALL")
    ttl = 10.0  # longer than a restart takes, so that the new run meets the old lease
    config = cluster(redis_server.url, "node-a").replace(f"lease_ttl = {LEASE_TTL:g}", f"lease_ttl = {ttl:g}")
    before = start_daemon(rooms=config + LOBBY, name="a.toml")
    old = await lease_of(redis_server.url)
    assert old.owner == "node-a"
    before.proc.kill()  # SIGKILL: its lease lives on in Redis under the same node_id
    killed = trio.current_time()
    before.proc.wait()
    again = start_daemon(rooms=config + LOBBY, name="a.toml")
    async with phoenix_client(again) as client:
        assert (await lease_of(redis_server.url)).token == old.token, "the restart outlasted the old lease"
        reply = await client.join("lobby", displayName="early")
        assert (reply["status"], reply["response"]["code"]) == ("error", "room_unavailable"), reply
        await joined(client, "lobby", "back", timeout=ttl + 5)
    assert trio.current_time() - killed >= ttl * 0.6  # not before the old lease could lapse (renewed every third)
    new = await lease_of(redis_server.url)
    assert new.owner == "node-a" and new.token > old.token  # claimed afresh, never the dead run's lease
    assert [n.node for n in await live_nodes(redis_server.url)] == ["node-a"]
    assert "give each node its own [cluster] node_id" not in again.log()  # a restart is no twin


@pytest.mark.slow
async def test_a_node_whose_wall_clock_jumps_keeps_its_lease_and_stays_listed(tmp_path, redis_server, monkeypatch):
    """Leases and heartbeats run on the monotonic clock and Redis's own expiry: the wall clock jumping an
    hour forward, then two back (as a mis-set NTP would make it) changes nothing. The jump is made in this
    process (the daemon runs in it), as no test may set the machine's clock."""
    redis_server.command("FLUSHALL")
    async with running_daemon(tmp_path, rooms=cluster(redis_server.url, "node-a") + LOBBY) as a:
        async with phoenix_client(a) as client:
            assert (await client.join("lobby", displayName="Ann"))["status"] == "ok"
            room, lease = a.rooms.get("lobby"), a.rooms.entries["lobby"].lease
            wall = time.time
            for jump in (3600.0, -3600.0):
                monkeypatch.setattr(time, "time", lambda jump=jump: wall() + jump)
                await trio.sleep(LEASE_TTL + 1)  # longer than a lease lives without renewal
                found = await lease_of(redis_server.url)
                assert (found.owner, found.token) == ("node-a", lease.token), jump  # renewed, never lost
                assert a.rooms.get("lobby") is room and not room.stopping and room.peer_count() == 1
                assert [n.node for n in await live_nodes(redis_server.url)] == ["node-a"]
            async with phoenix_client(a) as late:
                assert (await late.join("lobby", displayName="Bob"))["status"] == "ok"
