"""Any node accepts any participant: daemons on the test run's Redis, clients on different nodes in one room.

The room runs on one node; a client that reached another node joins it
through the participant link carried over Redis, and media goes straight
to the room's node. Nodes that die are noticed by the links' beats.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack

import pytest
import trio
from aioice import stun

from testsupport.cluster_nodes import cluster_daemons
from testsupport.media_bot import bot, media_thread
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import next_json, relay_client, running_daemon
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_directory import RedisRoomDirectory
from videoroomd.cluster.cluster_service import BEAT, SILENCE
from videoroomd.cluster.remote_link import NOT_ANSWERING
from videoroomd.rooms.link import RelaySend

LOBBY = "[rooms.lobby]\nmax_peers = 3\n[rooms.locked]\npassword = 'sesame'\n"


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'


def of_type(kind: str):
    return lambda event: event["type"] == kind


async def two_nodes(stack: AsyncExitStack, tmp_path, redis_server, rooms: str = LOBBY, count: int = 2) -> list:
    """``count`` daemons on one Redis, the room's node (the one that claimed lobby) first."""
    redis_server.command("FLUSHALL")
    daemons = await cluster_daemons(stack, tmp_path, ("node-a", "node-b", "node-c")[:count],
                                    lambda node: cluster(redis_server.url, node) + rooms)
    return sorted(daemons, key=lambda d: d.rooms.get("lobby") is None)


async def test_clients_on_different_nodes_meet_in_one_room_and_exchange_media(tmp_path, redis_server):
    async with AsyncExitStack() as stack:
        home, other = await two_nodes(stack, tmp_path, redis_server)
        media = await stack.enter_async_context(media_thread())
        async with bot(home, "Ann", media=media) as ann, bot(other, "Bob", media=media) as bob:
            assert other.rooms.get("lobby") is None  # Bob's node runs no room: Bob is in home's
            connected = next(e for e in bob.events if e["type"] == "connected")["data"]
            assert [e["id"] for e in connected["otherEndpoints"]] == [ann.id]
            added = await ann.wait_for(of_type("endpointAdded"))
            assert added["data"]["id"] == bob.id
            audio_id, video_id = await bob.publish()
            added = await ann.wait_for(of_type("tracksAdded"))
            assert added["data"]["endpointId"] == bob.id
            await ann.frames_from(video_id, at_least=10)
            await ann.frames_from(audio_id, at_least=10)
            back_audio, back_video = await ann.publish()
            await bob.frames_from(back_video, at_least=10)
            assert home.rooms.get("lobby").peer_count() == 2
        # Bob's socket closed on his node: the room's node let him go
        with trio.fail_after(5):
            while home.rooms.get("lobby").peer_count():
                await trio.sleep(0.05)


async def test_chat_and_limits_hold_for_a_client_on_another_node(tmp_path, redis_server):
    async with AsyncExitStack() as stack:
        home, other = await two_nodes(stack, tmp_path, redis_server)
        async with phoenix_client(home) as ann, phoenix_client(other) as bob:
            assert (await ann.join("lobby", displayName="Ann"))["status"] == "ok"
            assert (await bob.join("lobby", displayName="Bob"))["status"] == "ok"
            ref = await bob.send("room:lobby", "chat", {"text": "hi from b"}, bob.join_ref)
            reply = await bob.reply_to(ref)
            assert reply["status"] == "ok" and reply["response"]["id"]
            with trio.fail_after(5):
                while True:
                    _, _, _, event, payload = await ann.receive()
                    if event == "chat":
                        break
            assert (payload["text"], payload["name"], payload["id"]) == ("hi from b", "Bob", reply["response"]["id"])
            # the room's limits are the room's node's: a wrong password, and the room full
            async with phoenix_client(other) as eve:
                reply = await eve.join("locked", displayName="Eve", password="guess")
                assert (reply["status"], reply["response"]["code"]) == ("error", "wrong_password")
                assert (await eve.join("locked", displayName="Eve", password="sesame"))["status"] == "ok"
            async with phoenix_client(other) as carol, phoenix_client(other) as dan:
                assert (await carol.join("lobby", displayName="Carol"))["status"] == "ok"
                reply = await dan.join("lobby", displayName="Dan")
                assert (reply["status"], reply["response"]["code"]) == ("error", "room_full")


@pytest.mark.slow
async def test_a_client_through_another_node_gets_the_turn_server_of_the_rooms_node(tmp_path, redis_server):
    """Media never crosses nodes: the TURN server a client is handed is the room's node's, with credentials
    that node's TURN server takes (made for the participant there, from the shared [turn] secret)."""
    from testsupport.daemon import free_port
    from testsupport.turn_client import TurnClient, allocate_request
    from testsupport.turn_participants import offer_data

    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons, turn_ports = [], {}
        for node in ("node-a", "node-b"):
            (tmp_path / node).mkdir()
            turn_ports[node] = free_port()
            turn = f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_ports[node]}"\nsecret = "{"t" * 40}"\n'
            daemons.append(await stack.enter_async_context(
                running_daemon(tmp_path / node, rooms=cluster(redis_server.url, node) + turn + LOBBY)))
        for daemon in daemons:
            with trio.fail_after(5):
                await daemon.cluster.bus.subscribed.wait()
        home, other = sorted(daemons, key=lambda d: d.rooms.get("lobby") is None)
        async with phoenix_client(other) as bob:
            assert (await bob.join("lobby", displayName="Bob"))["status"] == "ok"
            await bob.media_event("lobby", {"type": "connect", "data": {"metadata": {"displayName": "Bob"}}})
            while (event := await bob.next_media_event())["type"] != "connected":
                pass
            servers = (await offer_data(bob, "lobby"))["integratedTurnServers"]
            assert servers and {(s["serverAddr"], s["serverPort"]) for s in servers} == {
                ("127.0.0.1", turn_ports[home.cluster.node_id])}, servers
            (udp,) = [s for s in servers if s["transport"] == "udp"]
            async with TurnClient("udp", ("127.0.0.1", turn_ports[home.cluster.node_id])) as client:
                await client.login(udp["username"], udp["password"])
                reply = await client.request(allocate_request())
            assert reply.message_class == stun.Class.RESPONSE, reply  # an allocation for Bob's call
            assert event["data"]["id"] in home.rooms.get("lobby").peers


async def test_the_relay_reaches_peers_on_another_node(tmp_path, redis_server):
    async with AsyncExitStack() as stack:
        home, other = await two_nodes(stack, tmp_path, redis_server, rooms="[rooms.open]\n[rooms.lobby]\n")
        owner = home if home.rooms.get("open") is not None else other
        elsewhere = other if owner is home else home
        async with relay_client(owner, "open") as a:
            a_id = (await next_json(a))["data"]["peer_id"]
            async with relay_client(elsewhere, "open") as b:
                b_id = (await next_json(b))["data"]["peer_id"]
                assert await next_json(a) == {"event": "joined", "data": {"peer_id": b_id}, "from": None, "to": "all"}
                await b.send_message(json.dumps({"event": "offer", "data": {"sdp": "v=0"}, "to": [a_id]}))
                assert await next_json(a) == {"event": "offer", "data": {"sdp": "v=0"}, "from": b_id, "to": [a_id]}
                await a.send_message(json.dumps({"event": "answer", "data": 1, "to": "all"}))
                assert await next_json(b) == {"event": "answer", "data": 1, "from": a_id, "to": "all"}
            assert await next_json(a) == {"event": "left", "data": {"peer_id": b_id}, "from": None, "to": "all"}


async def test_a_participant_on_another_node_can_send_only_what_a_local_one_of_its_kind_could(tmp_path, redis_server):
    async with AsyncExitStack() as stack:
        home, other = await two_nodes(stack, tmp_path, redis_server)
        async with relay_client(home, "lobby") as relay, phoenix_client(other) as bob:
            await next_json(relay)  # authenticated
            assert (await bob.join("lobby", displayName="Bob"))["status"] == "ok"
            (link,) = other.cluster.service.edge.links.values()  # Bob's, as a forged edge would use it
            await link.send(RelaySend('{"event": "forged", "data": null, "from": "x", "to": "all"}', None))
            assert home.cluster.service.room_side.refused == 1  # an "rtc" participant sends no relay frames
            with trio.move_on_after(0.3) as waited:
                await relay.get_message()
            assert waited.cancelled_caught


async def test_a_message_on_redis_that_is_not_ours_is_counted_and_the_node_goes_on(tmp_path, redis_server):
    async with AsyncExitStack() as stack:
        home, other = await two_nodes(stack, tmp_path, redis_server)
        channel = other.cluster.bus.channel(other.cluster.node_id)
        async with open_redis(redis_server.url) as client:
            for junk in (b"not json", b'{"v": 99, "t": "join"}', b'{"v": 1, "t": "join", "link": 3}',
                         b"[" * (2 << 20)):
                await client.publish(channel, junk)
        with trio.fail_after(5):
            while other.cluster.bus.malformed < 4:
                await trio.sleep(0.05)
        assert 'videoroomd_cluster_malformed_records_total{kind="link"} 4.0' in other.metrics.render().decode()
        async with phoenix_client(other) as bob:  # the node reads its channel on
            assert (await bob.join("lobby", displayName="Bob"))["status"] == "ok"
            assert home.rooms.get("lobby").peer_count() == 1


@pytest.mark.slow
async def test_new_rooms_are_placed_on_the_least_loaded_node_whichever_node_the_joins_reach(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons = []
        for node in ("node-a", "node-b", "node-c"):
            (tmp_path / node).mkdir()
            daemons.append(await stack.enter_async_context(running_daemon(
                tmp_path / node, rooms=cluster(redis_server.url, node), server="dynamic_rooms = true")))
        for number in range(6):
            await trio.sleep(0.7)  # a heartbeat: the nodes' loads count the rooms placed so far
            client = await stack.enter_async_context(phoenix_client(daemons[0]))
            assert (await client.join(f"room{number}", displayName="x"))["status"] == "ok"
        assert sorted(len(d.rooms.entries) for d in daemons) == [2, 2, 2]


@pytest.mark.slow
async def test_a_client_whose_node_was_killed_is_taken_out_of_the_room(tmp_path, start_daemon, redis_server):
    redis_server.command("FLUSHALL")
    async with running_daemon(tmp_path, rooms=cluster(redis_server.url, "node-a") + LOBBY) as home:
        assert home.rooms.get("lobby") is not None
        edge = start_daemon(rooms=cluster(redis_server.url, "node-b") + LOBBY, name="b.toml", wait=False)
        await trio.to_thread.run_sync(edge.wait_healthy)  # this process's node beats on meanwhile
        room = home.rooms.get("lobby")
        async with phoenix_client(_port(edge)) as bob:
            assert (await bob.join("lobby", displayName="Bob"))["status"] == "ok"
            assert room.peer_count() == 1
            edge.proc.kill()  # SIGKILL: the socket's node says nothing more
            started = trio.current_time()
            endpoints = home.cluster.service.room_side.endpoints
            with trio.fail_after(8):  # (its endpoint's task ends a moment after the room let the peer go)
                while room.peer_count() or endpoints:
                    await trio.sleep(0.1)
            assert trio.current_time() - started < SILENCE + 2 * BEAT
            assert room.peer_count() == 0 and endpoints == {}


@pytest.mark.slow
async def test_the_room_node_killed_its_clients_elsewhere_are_told_to_retry_and_get_back_in(start_daemon, redis_server):
    redis_server.command("FLUSHALL")
    daemons = {node: start_daemon(rooms=cluster(redis_server.url, node) + LOBBY, name=f"{node}.toml")
               for node in ("node-a", "node-b", "node-c")}
    async with open_redis(redis_server.url) as client:
        directory = RedisRoomDirectory(client)
        owner = (await directory.lookup("lobby")).owner
        survivors = [d for node, d in daemons.items() if node != owner]
        async with phoenix_client(_port(survivors[0])) as ann, phoenix_client(_port(survivors[1])) as bob:
            for participant in (ann, bob):
                assert (await participant.join("lobby", displayName="x"))["status"] == "ok"
            daemons[owner].proc.kill()  # SIGKILL: no goodbye, its lease lapses on its own
            started = trio.current_time()
            for participant in (ann, bob):
                with trio.fail_after(8):
                    while True:
                        _, _, _, event, payload = await participant.receive(timeout=8)
                        if event == "phx_close":
                            break
                assert payload == {"reason": NOT_ANSWERING, "retry": True}
            for participant in (ann, bob):
                with trio.fail_after(10):
                    while (await participant.join("lobby", displayName="back"))["status"] != "ok":
                        await trio.sleep(0.2)  # refused while the dead node's lease lives; the page retries too
            assert trio.current_time() - started < 10
            assert (await directory.lookup("lobby")).owner != owner  # placed again, on a live node


class _port:
    """A DaemonProcess as phoenix_client wants it."""

    def __init__(self, daemon):
        self.port = daemon.port
