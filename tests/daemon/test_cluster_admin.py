"""The operator's view of a cluster: `/admin/rooms` and `videoroomd rooms --live` on any node show every
node's rooms, each with its node, worker and participants."""

from __future__ import annotations

import json
import urllib.request
from contextlib import AsyncExitStack

import trio
from click.testing import CliRunner

from testsupport.daemon import config_text
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from videoroomd.cli.main import cli
from videoroomd.cluster.records import RoomRow, decode_rooms, encode_rooms
from videoroomd.cluster.redis_client import open_redis

ROOMS = "[rooms.lobby]\nmax_peers = 4\n[rooms.standup]\n[rooms.board]\n"


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'


def api_rooms(daemon) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/api/rooms", timeout=5) as response:
        return json.load(response)


def admin_rooms(daemon) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/admin/rooms", timeout=5) as response:
        return json.load(response)["rooms"]


async def test_every_node_shows_every_nodes_rooms_with_node_worker_and_people(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons = []
        for node in ("node-a", "node-b", "node-c"):
            (tmp_path / node).mkdir()
            daemons.append(await stack.enter_async_context(running_daemon(
                tmp_path / node, rooms=cluster(redis_server.url, node) + ROOMS, server="dynamic_rooms = true")))
        for daemon in daemons:
            with trio.fail_after(5):
                await daemon.cluster.bus.subscribed.wait()
        owner = {name: next(d.cluster.node_id for d in daemons if d.rooms.get(name) is not None)
                 for name in ("lobby", "standup", "board")}
        first, second = await stack.enter_async_context(phoenix_client(daemons[0])), \
            await stack.enter_async_context(phoenix_client(daemons[1]))
        for client in (first, second):
            assert (await client.join("lobby", displayName="x"))["status"] == "ok"
        third = await stack.enter_async_context(phoenix_client(daemons[0]))
        assert (await third.join("pop-up", displayName="y"))["status"] == "ok"  # a dynamic room, placed somewhere
        owner["pop-up"] = next(d.cluster.node_id for d in daemons if d.rooms.get("pop-up") is not None)
        expected = {"lobby": 2, "standup": 0, "board": 0, "pop-up": 1}
        for daemon in daemons:
            with trio.fail_after(5):
                while True:
                    rows = await trio.to_thread.run_sync(admin_rooms, daemon)
                    seen = {row["name"]: (row["node"], row["peers"], row["status"]) for row in rows}
                    if seen == {name: (owner[name], peers, "running") for name, peers in expected.items()}:
                        break
                    await trio.sleep(0.1)
            assert all(row["worker"] is not None for row in rows)  # where the room's media runs, on its node
            public = {room["name"]: room["people"] for room in (await trio.to_thread.run_sync(api_rooms, daemon))["rooms"]}
            assert public == {"lobby": 2, "standup": 0, "board": 0}  # the page's list, on every node alike
        # the CLI, pointed at one node, lists them all with their node
        path = tmp_path / "cli.toml"
        path.write_text(config_text(ROOMS, port=daemons[2].port))
        result = await trio.to_thread.run_sync(lambda: CliRunner().invoke(cli, ["rooms", "--live", "-c", str(path)]))
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].split() == ["ROOM", "MAX", "PASSWORD", "STUN", "TURN", "STATUS", "PEOPLE", "TRACKS", "NODE",
                                    "WORKER"]
        lobby = next(line.split() for line in lines if line.startswith("lobby"))
        assert lobby[5:9] == ["running", "2", "0", owner["lobby"]]
        assert any(line.split()[0] == "pop-up" and owner["pop-up"] in line.split() for line in lines)


async def test_a_room_list_on_redis_that_is_not_ours_is_counted_and_left_out(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with running_daemon(tmp_path, rooms=cluster(redis_server.url, "node-a") + ROOMS) as daemon:
        async with open_redis(redis_server.url) as client:
            await client.sadd("videoroomd:nodes", ["forged", "other"])
            await client.set("videoroomd:rooms:forged", b'{"v": 1, "node": "forged", "rooms": [["x", "ok"]]}')
            good = encode_rooms("other", [RoomRow("far", "other", "running", True, 3, 0, 2, "1")])
            await client.set("videoroomd:rooms:other", good)
            with trio.fail_after(5):
                while daemon.cluster.nodes.malformed == 0 or "far" not in {r["name"] for r in daemon.cluster.service.snapshot()}:
                    await trio.sleep(0.1)
        far = next(r for r in daemon.cluster.service.snapshot() if r["name"] == "far")
        assert (far["node"], far["peers"], far["tracks"], far["worker"]) == ("other", 3, 2, "1")
        assert 'videoroomd_cluster_malformed_records_total{kind="node"}' in daemon.metrics.render().decode()


def test_a_room_list_read_back_is_the_list_shared():
    rows = [RoomRow("lobby", "node-a", "running", False, 2, 1, 4, "0"), RoomRow("x", "node-a", "backoff", True, 0, 0, 0, None)]
    assert decode_rooms(encode_rooms("node-a", rows)) == rows
