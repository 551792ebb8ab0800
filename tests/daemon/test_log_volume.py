"""What a client can make the daemon write: few lines, at the right level, no tracebacks for its own mistakes."""

from __future__ import annotations

import json

import trio
from structlog.testing import capture_logs

from testsupport.edge_helpers import frame, read_all, read_until, upgrade_head
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon

from videoroomd.signalling.websocket import accepted


async def test_a_flood_of_refused_media_events_writes_a_few_lines(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        assert (await client.join("lobby"))["status"] == "ok"
        with capture_logs() as logs:
            for n in range(60):
                await client.send("room:lobby", "mediaEvent", {"data": json.dumps({"type": "custom", "n": n})},
                                  client.join_ref)
            errors = 0
            with trio.move_on_after(5):
                while errors < 60:  # each is still answered, to its sender
                    if (await client.next_media_event()).get("type") == "error":
                        errors += 1
        assert errors == 60
        refused = [entry for entry in logs if entry["event"] == "media event refused"]
        assert 1 <= len(refused) <= 15 and all(entry["log_level"] == "info" for entry in refused)


async def test_an_oversized_frame_after_the_close_is_one_line_at_info_without_traceback():
    server_socket, client_socket = trio.socket.socketpair()
    server_stream, client_stream = trio.SocketStream(server_socket), trio.SocketStream(client_socket)

    async def client() -> None:
        await client_stream.send_all(upgrade_head("/socket/websocket?vsn=2.0.0"))
        assert b" 101 " in await read_until(client_stream, b"\r\n\r\n")
        assert (await client_stream.receive_some(2))[0] == 0x88  # the daemon's close frame
        try:
            await client_stream.send_all(frame("x" * 200_000))  # sent on regardless, and far too large
        except trio.BrokenResourceError:
            pass
        await read_all(client_stream)

    with capture_logs() as logs, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client)
            async with accepted(server_stream, 65536) as websocket:
                await websocket.aclose(1008, "closing")  # waits for the client's close, which never comes
    lines = [entry for entry in logs if entry["event"] == "socket closed: the client sent a frame too large after the close"]
    assert len(lines) == 1 and lines[0]["log_level"] == "info" and "exc_info" not in lines[0]
    assert [entry for entry in logs if entry["log_level"] in ("error", "critical")] == []


async def test_media_events_for_a_room_without_an_engine_write_a_few_lines():
    from videoroomd.config import RoomConfig
    from videoroomd.rooms import Room

    room = Room(RoomConfig(name="quiet"))
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        peer = room.join("Ann", None)
        with capture_logs() as logs:
            for n in range(500):
                room.media_event(peer, json.dumps({"type": "custom", "n": n}))
        dropped = [entry for entry in logs if entry["event"] == "media event dropped: this room has no media engine"]
        assert 1 <= len(dropped) <= 10 and {entry["log_level"] for entry in dropped} == {"info"}
        room.stop("done")
