"""Daemons with a [cluster] table on the test run's Redis: one node runs a room, the others join it there.

Two daemons run in this process, each a node with a Redis client of its own.
A join that reaches a node while another runs the room goes to the room's
node over the participant link (tests/daemon/test_cluster_links.py has more).
"""

from __future__ import annotations

import re
import subprocess
import sys
from contextlib import AsyncExitStack

import pytest
import trio
from structlog.testing import capture_logs

from testsupport.daemon import config_text
from testsupport.phoenix import phoenix_client
from testsupport.redis_server import start_redis, stop_redis
from testsupport.signalling_helpers import running_daemon
from videoroomd.config import load, locate
from videoroomd.daemon.daemon import Daemon
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_directory import RedisRoomDirectory
from videoroomd.cluster.redis_nodes import RedisNodeDirectory

LOBBY = "[rooms.lobby]\nmax_peers = 4\n"


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nadvertise = "{node}.example.org"\nlease_ttl = 3\n' \
           f'heartbeat = 0.5\n'


async def test_a_room_runs_on_one_node_and_the_others_join_it_there(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        nodes = {}
        for node in ("node-a", "node-b"):
            (tmp_path / node).mkdir()
            nodes[node] = await stack.enter_async_context(
                running_daemon(tmp_path / node, rooms=cluster(redis_server.url, node) + LOBBY))
        owner = next(n for n, d in nodes.items() if d.rooms.get("lobby") is not None)
        other = next(n for n in nodes if n != owner)
        assert nodes[other].rooms.get("lobby") is None  # every node read the room, one claimed it
        async with phoenix_client(nodes[owner]) as client:
            assert (await client.join("lobby", displayName="here"))["status"] == "ok"
            async with phoenix_client(nodes[other]) as there:
                assert (await there.join("lobby", displayName="there"))["status"] == "ok"
                assert nodes[owner].rooms.get("lobby").peer_count() == 2  # both in the one room, on its node
                assert nodes[other].rooms.get("lobby") is None


async def test_nodes_started_at_once_share_the_rooms_of_one_file_each_room_on_one_node(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    rooms = "".join(f"[rooms.room{n}]\n" for n in range(8))
    daemons = []
    for node in ("node-a", "node-b", "node-c"):
        path = tmp_path / node / "videoroomd.toml"
        path.parent.mkdir()
        path.write_text(config_text(cluster(redis_server.url, node) + rooms))
        daemons.append(Daemon(locate(str(path)), load(locate(str(path))), watch_interval=0))
    async with trio.open_nursery() as nursery:
        for daemon in daemons:  # all three claim all eight rooms at once
            nursery.start_soon(daemon.run)
        with trio.fail_after(10):
            while sum(1 for d in daemons for e in d.rooms.entries.values() if e.lease is not None) < 8 \
                    or any(e.lease is None for d in daemons for e in d.rooms.entries.values()):
                await trio.sleep(0.05)
        assert sum(len(d.rooms.entries) for d in daemons) == 8  # no room claimed twice
        owners = {name: d.cluster.node_id for d in daemons for name, e in d.rooms.entries.items()}
        assert sorted(owners) == [f"room{n}" for n in range(8)]  # every room runs, each on exactly one node
        for name, node in owners.items():
            assert (await daemons[0].rooms.directory.lookup(name)).owner == node
        nursery.cancel_scope.cancel()


async def test_a_room_given_up_by_its_node_starts_on_another_at_the_next_join(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rooms_b = cluster(redis_server.url, "node-b")
    async with running_daemon(tmp_path / "b", rooms=rooms_b, server="dynamic_rooms = true") as b:
        async with running_daemon(tmp_path / "a", rooms=cluster(redis_server.url, "node-a") + LOBBY) as a:
            assert a.rooms.get("lobby") is not None
            async with phoenix_client(b) as client:
                assert (await client.join("lobby", displayName="early"))["status"] == "ok"  # in node-a's room
                assert b.rooms.get("lobby") is None
        # node-a stopped and gave its lease up: the next join through node-b starts the room there
        async with phoenix_client(b) as client:
            assert (await client.join("lobby", displayName="late"))["status"] == "ok"
            assert b.rooms.get("lobby") is not None


async def test_a_configured_room_moves_to_another_node_once_its_node_stopped(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    paths = {}
    for node in ("node-a", "node-b"):
        paths[node] = tmp_path / node / "videoroomd.toml"
        paths[node].parent.mkdir()
        paths[node].write_text(config_text(cluster(redis_server.url, node) + LOBBY))
    a = Daemon(locate(str(paths["node-a"])), load(locate(str(paths["node-a"]))), watch_interval=0)

    async def run_a(*, task_status):
        with trio.CancelScope() as scope:
            stop_a.append(scope)
            await a.run(task_status=task_status)

    stop_a: list[trio.CancelScope] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(run_a)
        assert a.rooms.get("lobby") is not None  # node-a started first and holds the room
        async with running_daemon(tmp_path / "node-b", rooms=cluster(redis_server.url, "node-b") + LOBBY) as b:
            assert b.rooms.get("lobby") is None
            stop_a[0].cancel()  # node-a stops and gives its lease up
            with trio.fail_after(5):
                while await b.rooms.directory.lookup("lobby") is not None:  # released, not left to lapse
                    await trio.sleep(0.05)
            async with phoenix_client(b) as client:
                assert (await client.join("lobby", displayName="moved"))["status"] == "ok"
                assert b.rooms.get("lobby") is not None


@pytest.mark.slow
async def test_calls_go_on_while_redis_is_away_and_their_rooms_are_claimed_again_when_it_is_back(tmp_path):
    server = start_redis(tmp_path / "redis.log")  # a Redis of this test's own: it is stopped mid-call
    try:
        async with running_daemon(tmp_path, rooms=cluster(server.url, "node-a") + LOBBY) as a:
            room = a.rooms.get("lobby")
            old = a.rooms.entries["lobby"].lease
            async with phoenix_client(a) as client:
                assert (await client.join("lobby", displayName="ann"))["status"] == "ok"
                stop_redis(server)
                await trio.sleep(4)  # longer than lease_ttl: the lease is gone with Redis
                assert a.rooms.get("lobby") is room and not room.stopping and room.peer_count() == 1
                assert "videoroomd_cluster_redis_up 0.0" in a.metrics.render().decode()
                server = start_redis(tmp_path / "redis-again.log", port=server.port)  # back, and empty
                async with open_redis(server.url) as redis:
                    with trio.fail_after(10):  # the room's next renewal finds no lease, and claims it again
                        while (found := await RedisRoomDirectory(redis).lookup("lobby")) is None:
                            await trio.sleep(0.1)
                assert found.owner == "node-a" and found.token > old.token  # fenced: a token larger than any before
                assert a.rooms.get("lobby") is room and not room.stopping and room.peer_count() == 1
    finally:
        stop_redis(server)


@pytest.mark.slow
async def test_a_room_whose_node_was_killed_starts_on_another_once_its_lease_lapsed(start_daemon, redis_server):
    redis_server.command("FLUSHALL")
    a = start_daemon(rooms=cluster(redis_server.url, "node-a") + LOBBY, name="a.toml")
    b = start_daemon(rooms=cluster(redis_server.url, "node-b") + LOBBY, name="b.toml")
    async with open_redis(redis_server.url) as client:
        lease = await RedisRoomDirectory(client).lookup("lobby")
    killed, survivor = (a, b) if lease.owner == "node-a" else (b, a)
    killed.proc.kill()  # SIGKILL: no release, the lease lapses on its own
    started = trio.current_time()
    async with phoenix_client(survivor) as client:
        with trio.fail_after(10):
            while (await client.join("lobby", displayName="back"))["status"] != "ok":
                await trio.sleep(0.2)  # refused while the dead node's lease lives; the page retries too
    assert trio.current_time() - started < 3 + 2  # lease_ttl, and a margin for the retries


async def test_nodes_publish_their_load_and_withdraw_on_the_way_out(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with open_redis(redis_server.url) as client:
        directory = RedisNodeDirectory(client)
        (tmp_path / "a").mkdir()
        async with running_daemon(tmp_path / "a", rooms=cluster(redis_server.url, "node-a") + LOBBY) as a:
            async with phoenix_client(a) as phoenix:
                assert (await phoenix.join("lobby", displayName="one"))["status"] == "ok"
                with trio.fail_after(5):
                    while not [n for n in await directory.nodes() if n.participants == 1]:
                        await trio.sleep(0.1)
            (load,) = await directory.nodes()
            assert (load.node, load.advertise, load.rooms, load.draining) == ("node-a", "node-a.example.org", 1, False)
            assert "videoroomd_cluster_redis_up 1.0" in a.metrics.render().decode()
        assert await directory.nodes() == []


async def test_a_draining_node_says_so_and_withdraws_when_stopped(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with open_redis(redis_server.url) as client:
        directory = RedisNodeDirectory(client)
        async with running_daemon(tmp_path, rooms=cluster(redis_server.url, "node-a") + LOBBY,
                                  server="drain_timeout = 5") as a:
            async with phoenix_client(a) as phoenix:
                assert (await phoenix.join("lobby", displayName="one"))["status"] == "ok"
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(a.shutdown, "SIGTERM")  # the call holds the drain open
                    with trio.fail_after(5):  # no new rooms go to a node that drains
                        while not [n for n in await directory.nodes() if n.draining]:
                            await trio.sleep(0.1)
                    nursery.cancel_scope.cancel()  # seen: the daemon is stopped without waiting out the drain
        assert await directory.nodes() == []  # stopped: withdrawn at once, not left to lapse


async def test_a_node_starts_without_redis_says_so_and_refuses_rooms_it_cannot_claim(tmp_path):
    url = "redis://:hunter2-secret@127.0.0.1:1/0"  # nothing listens on port 1
    with capture_logs() as logs:
        async with running_daemon(tmp_path, rooms=cluster(url, "node-a") + LOBBY) as a:
            async with phoenix_client(a) as client:
                reply = await client.join("lobby", displayName="early")
            metrics = a.metrics.render().decode()
    assert reply["status"] == "error" and reply["response"]["code"] == "room_unavailable"
    assert "videoroomd_cluster_redis_up 0.0" in metrics
    assert re.search(r"^videoroomd_cluster_heartbeat_failures_total [1-9]", metrics, re.MULTILINE)
    warnings = [e for e in logs if e["event"].startswith("cluster: Redis does not answer")]
    assert warnings and warnings[0]["redis"] == "redis://:***@127.0.0.1:1/0"
    assert "hunter2" not in repr(logs)  # the password is never logged


def test_a_daemon_without_cluster_never_loads_the_redis_client(tmp_path):
    (tmp_path / "videoroomd.toml").write_text(LOBBY)
    program = (
        "import sys, trio\n"
        "from videoroomd.config import load, locate\n"
        "from videoroomd.daemon.daemon import Daemon\n"
        f"where = locate({str(tmp_path / 'videoroomd.toml')!r})\n"
        "Daemon(where, load(where))\n"
        "assert 'coredis' not in sys.modules, 'coredis was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
