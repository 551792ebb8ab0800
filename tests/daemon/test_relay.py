"""/signaling/NAME: the peer-to-peer relay over real sockets."""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected

from testsupport.signalling_helpers import next_json, relay_client, running_daemon

ROOMS = "[rooms.open]\nmax_peers = 2\n[rooms.locked]\npassword = 'pw'\n"


async def authenticated(websocket) -> str:
    message = await next_json(websocket)
    assert message["event"] == "authenticated" and message["from"] is None
    return message["data"]["peer_id"]


@pytest.mark.parametrize("path, status", [
    ("nowhere", 404),
    ("locked", 401),
    ("locked?password=nope", 401),
    ("bad%20name", 400),
])
async def test_refused_before_the_upgrade(tmp_path, path, status):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        with pytest.raises(ConnectionRejected) as caught:
            async with relay_client(daemon, path):
                pass
        assert caught.value.status_code == status


async def test_an_idle_client_is_closed_and_leaves(tmp_path, monkeypatch):
    from videoroomd.signalling import relay
    monkeypatch.setattr(relay, "IDLE_TIMEOUT", 0.5)  # instead of 300 s, so the test is short
    async with running_daemon(tmp_path, ROOMS) as daemon, relay_client(daemon, "open") as websocket:
        await authenticated(websocket)
        with pytest.raises(ConnectionClosed) as caught:
            with trio.fail_after(5):
                while True:
                    await websocket.get_message()
        assert (caught.value.reason.code, caught.value.reason.reason) == (1008, "idle for too long")
        with trio.fail_after(5):  # and it has left the room
            while daemon.rooms.get("open").peer_count("relay"):
                await trio.sleep(0.01)


async def test_malformed_credentials_cookie_is_400(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        with pytest.raises(ConnectionRejected) as caught:
            async with relay_client(daemon, "locked", extra_headers=[("Cookie", "credentials={oops")]):
                pass
        assert caught.value.status_code == 400
        assert b"credentials cookie must hold JSON" in caught.value.body


async def test_credentials_from_query_or_cookie(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with relay_client(daemon, "locked", "?username=ann&password=pw") as a:
            await authenticated(a)
        cookie = "credentials=" + json.dumps({"username": "bob", "password": "pw"}).replace('"', '\\"')
        async with relay_client(daemon, "locked", extra_headers=[("Cookie", f'credentials="{json.dumps({"username": "bob", "password": "pw"}).replace(chr(34), chr(92) + chr(34))}"')]) as b:
            await authenticated(b)


async def test_join_is_announced_and_messages_are_relayed_with_from_set(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with relay_client(daemon, "open") as a:
            a_id = await authenticated(a)
            async with relay_client(daemon, "open") as b:
                b_id = await authenticated(b)
                assert await next_json(a) == {"event": "joined", "data": {"peer_id": b_id}, "from": None, "to": "all"}
                # unicast: from is set by the server, whatever the client claims
                await b.send_message(json.dumps({"event": "offer", "data": {"sdp": "v=0"}, "to": [a_id], "from": "forged"}))
                assert await next_json(a) == {"event": "offer", "data": {"sdp": "v=0"}, "from": b_id, "to": [a_id]}
                # broadcast to everyone but the sender
                await a.send_message(json.dumps({"event": "hello", "data": 1, "to": "all"}))
                assert await next_json(b) == {"event": "hello", "data": 1, "from": a_id, "to": "all"}
            # b leaves: a hears of it
            assert await next_json(a) == {"event": "left", "data": {"peer_id": b_id}, "from": None, "to": "all"}


async def test_a_peer_can_only_reach_peers_of_its_own_room(tmp_path):
    async with running_daemon(tmp_path, ROOMS + "[rooms.other]\n") as daemon:
        async with relay_client(daemon, "open") as a, relay_client(daemon, "other") as b:
            a_id = await authenticated(a)
            await authenticated(b)
            await b.send_message(json.dumps({"event": "psst", "data": None, "to": [a_id]}))
            await b.send_message(json.dumps({"event": "psst", "data": None, "to": "all"}))
            with trio.move_on_after(0.3) as waited:
                await a.get_message()
            assert waited.cancelled_caught  # nothing reached a


async def test_invalid_message_gets_the_seed_error_and_the_socket_lives_on(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with relay_client(daemon, "open") as a:
            a_id = await authenticated(a)
            await a.send_message("{not json")
            assert await next_json(a) == {"event": "error", "from": None, "to": [a_id], "data": {
                "description": "Invalid message", "details": "not JSON: unexpected character, expected a string key at column 2"}}
            await a.send_message(json.dumps({"event": "x", "to": 5}))
            assert (await next_json(a))["data"]["details"] == 'to must be "all" or a list of peer ids'


async def test_full_room_says_could_not_join(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with relay_client(daemon, "open") as a, relay_client(daemon, "open") as b:
            await authenticated(a)
            await authenticated(b)
            async with relay_client(daemon, "open") as c:
                message = await next_json(c)
                assert message["event"] == "error"
                assert message["data"] == {"description": "Could not join room", "details": "room 'open' is full (2 people)"}
                with pytest.raises(ConnectionClosed):
                    await c.get_message()


async def test_room_closed_is_said_when_the_room_goes_away(tmp_path):
    async with running_daemon(tmp_path, ROOMS, server="drain_timeout = 0") as daemon:
        async with relay_client(daemon, "open") as a:
            await authenticated(a)
            daemon.config.rooms  # the room is removed from the configuration
            path = daemon.location.path
            path.write_text(path.read_text().replace("[rooms.open]\nmax_peers = 2\n", ""))
            assert await daemon.reload("test")
            message = await next_json(a)
            assert message["event"] == "error"
            assert message["data"] == {"description": "Room closed", "details": "room was removed from the configuration"}
            with pytest.raises(ConnectionClosed):
                await a.get_message()
