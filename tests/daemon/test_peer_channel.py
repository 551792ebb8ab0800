"""/socket/websocket over real sockets: joins, refusals, leaving, bad frames, limits."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from testsupport.phoenix import phoenix_client

from testsupport.signalling_helpers import running_daemon


async def peers_in(daemon, room: str) -> int:
    entry = daemon.rooms.entries[room]
    return entry.room.peer_count("rtc") if entry.room else 0


async def test_heartbeat_is_answered(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        ref = await client.send("phoenix", "heartbeat", {})
        assert await client.receive() == [None, ref, "phoenix", "phx_reply", {"status": "ok", "response": {}}]


async def test_join_gives_a_uuid_peer_id_and_the_room_counts_the_peer(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        reply = await client.join("lobby", displayName="Ann")
        assert reply["status"] == "ok"
        peer_id = reply["response"]["peer_id"]
        import uuid
        assert uuid.UUID(peer_id).version == 4
        room = daemon.rooms.get("lobby")
        assert room.peers[peer_id].name == "Ann"


@pytest.mark.parametrize("rooms, room, params, code, reason", [
    ("[rooms.lobby]\n", "nowhere", {}, "unknown_room", "there is no room called 'nowhere'"),
    ("[rooms.board]\npassword = 'secret'\n", "board", {"password": "guess"}, "wrong_password", "wrong password"),
    ("[rooms.board]\npassword = 'secret'\n", "board", {}, "wrong_password", "this room needs a password"),
])
async def test_refused_joins_say_why(tmp_path, rooms, room, params, code, reason):
    async with running_daemon(tmp_path, rooms) as daemon, phoenix_client(daemon) as client:
        reply = await client.join(room, **params)
        assert reply == {"status": "error", "response": {"reason": reason, "code": code}}
    assert f'videoroomd_joins_refused_total{{reason="{code}"}} 1.0' in daemon.metrics.render().decode()


async def test_password_room_lets_the_right_password_in(tmp_path):
    async with running_daemon(tmp_path, "[rooms.board]\npassword = 'secret'\n") as daemon, phoenix_client(daemon) as client:
        assert (await client.join("board", password="secret"))["status"] == "ok"


async def test_join_refused_when_room_full(tmp_path):
    async with running_daemon(tmp_path, "[rooms.duo]\nmax_peers = 2\n") as daemon:
        async with phoenix_client(daemon) as a, phoenix_client(daemon) as b, phoenix_client(daemon) as c:
            assert (await a.join("duo"))["status"] == "ok"
            assert (await b.join("duo"))["status"] == "ok"
            assert await c.join("duo") == {"status": "error", "response": {"reason": "room 'duo' is full (2 people)", "code": "room_full"}}


async def test_join_refused_while_draining(tmp_path):
    async with running_daemon(tmp_path, server="drain_timeout = 30") as daemon:
        async with phoenix_client(daemon) as a, phoenix_client(daemon) as b:
            assert (await a.join("lobby"))["status"] == "ok"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(daemon.shutdown, "test")
                await trio.sleep(0.05)
                assert await b.join("lobby") == {"status": "error", "response": {
                    "reason": "the server is shutting down", "code": "shutting_down"}}
                nursery.cancel_scope.cancel()


async def test_simultaneous_joins_never_exceed_the_limit(tmp_path):
    # 12 sockets race into a room nobody has opened yet (made from [defaults] on first join)
    async with running_daemon(tmp_path, "[defaults]\nmax_peers = 5\n", server="dynamic_rooms = true") as daemon:
        results: list[str] = []
        rooms_seen: set[int] = set()

        async def one():
            async with phoenix_client(daemon) as client:
                reply = await client.join("race")
                results.append(reply["status"])
                if reply["status"] == "ok":
                    rooms_seen.add(id(daemon.rooms.get("race")))
                    await trio.sleep(1)

        async with trio.open_nursery() as nursery:
            for _ in range(12):
                nursery.start_soon(one)
        assert sorted(results) == ["error"] * 7 + ["ok"] * 5
        assert len(rooms_seen) == 1  # one room of that name, never two


async def test_dynamic_room_stops_when_its_last_peer_leaves(tmp_path):
    async with running_daemon(tmp_path, "", server="dynamic_rooms = true") as daemon:
        async with phoenix_client(daemon) as client:
            assert (await client.join("pop-up"))["status"] == "ok"
            assert "pop-up" in daemon.rooms.entries
        with trio.fail_after(5):
            while "pop-up" in daemon.rooms.entries:
                await trio.sleep(0.01)


async def test_abrupt_disconnect_removes_the_peer(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        url = f"ws://127.0.0.1:{daemon.port}/socket/websocket?vsn=2.0.0"
        async with open_websocket_url(url) as websocket:
            from testsupport.phoenix import PhoenixClient
            client = PhoenixClient(websocket)
            await client.join("lobby")
            assert await peers_in(daemon, "lobby") == 1
            # vanish without a close frame: drop the TCP connection under the WebSocket
            await trio.aclose_forcefully(websocket._stream)
        with trio.fail_after(5):
            while await peers_in(daemon, "lobby"):
                await trio.sleep(0.01)


async def test_leave_then_join_again(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        await client.join("lobby")
        ref = await client.send("room:lobby", "phx_leave", {}, client.join_ref)
        assert (await client.reply_to(ref))["status"] == "ok"
        assert await peers_in(daemon, "lobby") == 0
        assert (await client.join("lobby"))["status"] == "ok"


async def test_one_room_per_socket(tmp_path):
    async with running_daemon(tmp_path, "[rooms.a]\n[rooms.b]\n") as daemon, phoenix_client(daemon) as client:
        assert (await client.join("a"))["status"] == "ok"
        reply = await client.join("b")
        assert reply == {"status": "error", "response": {"reason": "this connection is already in room 'a'; one room per connection"}}


async def test_a_join_of_a_topic_that_is_no_room_is_refused_saying_so_and_the_socket_lives_on(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        ref = await client.send("lobby\x00" + "x" * 100, "phx_join", {}, "1")
        reply = await client.reply_to(ref)
        assert reply["status"] == "error" and reply["response"]["reason"].startswith("unknown topic 'lobby\\x00xxx")
        assert reply["response"]["reason"].endswith('…\'; join "room:NAME"')
        assert (await client.join("lobby"))["status"] == "ok"


async def test_frames_for_a_topic_not_joined_are_unmatched(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        ref = await client.send("room:lobby", "mediaEvent", {"data": "{}"})
        assert (await client.reply_to(ref)) == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_malformed_frames_get_an_error_and_the_socket_lives_on(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        await client.ws.send_message("this is not json")
        assert await client.receive() == [None, None, "phoenix", "phx_error", {
            "reason": "malformed frame: not JSON: invalid literal, expected 'true' at column 1"}]
        await client.join("lobby")
        ref = await client.send("room:lobby", "mediaEvent", {"data": 5}, client.join_ref)
        assert await client.reply_to(ref) == {"status": "error", "response": {"reason": 'mediaEvent payload must be {"data": "<JSON string>"}'}}
        ref = await client.send("room:lobby", "shout", {}, client.join_ref)
        assert await client.reply_to(ref) == {"status": "error", "response": {"reason": "unknown event 'shout'"}}
        ref = await client.send("phoenix", "heartbeat", {})
        assert (await client.reply_to(ref))["status"] == "ok"
        assert 'videoroomd_protocol_errors_total{kind="bad_frame"} 3.0' in daemon.metrics.render().decode()


async def test_a_flood_of_malformed_frames_closes_the_socket(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        with pytest.raises(ConnectionClosed) as caught:
            for _ in range(100):
                await client.ws.send_message("[")
                await client.receive()
        assert caught.value.reason.code == 1008 and caught.value.reason.reason == "too many malformed frames"


async def test_a_client_that_stops_sending_heartbeats_is_closed_and_leaves(tmp_path, monkeypatch):
    from videoroomd.signalling import peer_channel
    monkeypatch.setattr(peer_channel, "IDLE_TIMEOUT", 0.5)  # instead of 60 s, so the test is short
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        await client.join("lobby")
        with pytest.raises(ConnectionClosed) as caught:
            await client.receive(timeout=5)
        assert (caught.value.reason.code, caught.value.reason.reason) == (1008, "no heartbeat")
        with trio.fail_after(5):  # and it has left the room
            while await peers_in(daemon, "lobby"):
                await trio.sleep(0.01)


async def test_oversized_frame_closes_the_socket_with_1009(tmp_path):
    async with running_daemon(tmp_path, server="max_frame_size = 2048") as daemon, phoenix_client(daemon) as client:
        await client.join("lobby")
        await client.ws.send_message(json.dumps([client.join_ref, "9", "room:lobby", "mediaEvent", {"data": "x" * 4096}]))
        with pytest.raises(ConnectionClosed) as caught:
            await client.receive()
        assert caught.value.reason.code == 1009
        with trio.fail_after(5):
            while await peers_in(daemon, "lobby"):
                await trio.sleep(0.01)


async def test_foreign_origin_is_refused_before_the_upgrade(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        with pytest.raises(ConnectionRejected) as caught:
            async with phoenix_client(daemon, extra_headers=[("Origin", "https://evil.example")]):
                pass
        assert caught.value.status_code == 403
        # the daemon's own origin is welcome
        async with phoenix_client(daemon, extra_headers=[("Origin", f"http://127.0.0.1:{daemon.port}")]) as client:
            assert (await client.join("lobby"))["status"] == "ok"


async def test_listed_origin_is_allowed(tmp_path):
    server = 'allowed_origins = ["https://app.example"]'
    async with running_daemon(tmp_path, server=server) as daemon:
        async with phoenix_client(daemon, extra_headers=[("Origin", "https://app.example")]) as client:
            assert (await client.join("lobby"))["status"] == "ok"


async def test_slow_consumer_is_cut_off_not_buffered(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        reply = await client.join("lobby")
        room = daemon.rooms.get("lobby")
        peer = room.peers[reply["response"]["peer_id"]]
        # the client stops reading; the room keeps producing
        big = "y" * 30000
        with trio.fail_after(10):
            while peer.id in room.peers:
                room.unicast(peer.id, big)
                await trio.sleep(0)
        assert peer.closed_reason == "too slow: 256 messages left unread"
        # what the client sees once it reads again: what was already on the wire, then the close
        with pytest.raises(ConnectionClosed) as caught:
            while True:
                await client.receive()
        assert caught.value.reason.code == 1008 and caught.value.reason.reason == "too slow: 256 messages left unread"
        assert 'videoroomd_protocol_errors_total{kind="slow_consumer"} 1.0' in daemon.metrics.render().decode()


async def test_rate_limit_on_new_connections(tmp_path):
    async with running_daemon(tmp_path, server="connections_per_second = 2") as daemon:
        statuses = []
        for _ in range(8):
            try:
                async with phoenix_client(daemon):
                    statuses.append(101)
            except ConnectionRejected as rejected:
                statuses.append(rejected.status_code)
        assert statuses[:4] == [101] * 4 and 429 in statuses[4:]
