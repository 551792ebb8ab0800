"""Both signalling sockets at the edge: server-only relay events, slow readers, oversized frames, quiet logs."""

from __future__ import annotations

import json
import time

import pytest
import trio
from structlog.testing import capture_logs
from trio_websocket import ConnectionClosed

from testsupport.phoenix import phoenix_client

from testsupport.signalling_helpers import next_json, relay_client, running_daemon
from testsupport.metrics import metric
from test_edge_isolation import still_serving


async def authenticated(websocket) -> str:
    message = await next_json(websocket)
    assert message["event"] == "authenticated"
    return message["data"]["peer_id"]


@pytest.mark.parametrize("event", ["joined", "left", "authenticated", "error"])
async def test_relay_peers_may_not_send_the_servers_events(tmp_path, event):
    async with running_daemon(tmp_path) as daemon, relay_client(daemon, "lobby") as a:
        a_id = await authenticated(a)
        async with relay_client(daemon, "lobby") as b:
            b_id = await authenticated(b)
            assert (await next_json(a))["event"] == "joined"
            await b.send_message(json.dumps({"event": event, "data": {"peer_id": "forged"}, "to": [a_id]}))
            reply = await next_json(b)
            assert reply["event"] == "error" and reply["to"] == [b_id]
            assert reply["data"] == {"description": "Invalid message",
                                     "details": f"event '{event}' is the server's own; peers may not send it"}
            with trio.move_on_after(0.3) as waited:
                await a.get_message()
            assert waited.cancelled_caught  # nothing reached a


async def test_an_oversized_relay_frame_is_counted_and_logged_like_on_the_phoenix_socket(tmp_path):
    async with running_daemon(tmp_path, server="max_frame_size = 2048") as daemon:
        with capture_logs() as logs:
            async with relay_client(daemon, "lobby") as a:
                await authenticated(a)
                await a.send_message(json.dumps({"event": "x", "to": "all", "data": "y" * 4096}))
                with pytest.raises(ConnectionClosed) as caught:
                    await next_json(a)
                assert caught.value.reason.code == 1009
            async with phoenix_client(daemon) as client:
                await client.join("lobby")
                await client.ws.send_message("z" * 4096)
                with pytest.raises(ConnectionClosed) as caught:
                    await client.receive()
                assert caught.value.reason.code == 1009
            with trio.fail_after(5):
                while metric(daemon, 'videoroomd_protocol_errors_total{kind="frame_too_large"}') < 2:
                    await trio.sleep(0.01)
        too_large = [line for line in logs if line["event"] == "socket closed: frame too large"]
        assert len(too_large) == 2 and all(line["limit"] == 2048 for line in too_large)


async def test_a_reader_too_slow_for_the_send_timeout_is_cut_off_logged_and_counted(tmp_path, monkeypatch):
    from videoroomd.signalling import websocket
    monkeypatch.setattr(websocket, "SEND_TIMEOUT", 0.5)  # instead of 15 s
    big = "y" * 500_000  # under the client's 1 MiB frame limit; 60 of them are more than the socket buffers hold
    async with running_daemon(tmp_path) as daemon:
        room = await daemon.rooms.open_room("lobby")
        with capture_logs() as logs:
            async with phoenix_client(daemon) as client:
                peer = room.peers[(await client.join("lobby"))["response"]["peer_id"]]
                for _ in range(60):
                    peer.deliver(big)
                with trio.fail_after(10):
                    while peer.id in room.peers:
                        await trio.sleep(0.05)
            async with relay_client(daemon, "lobby") as relay:
                peer = room.peers[await authenticated(relay)]
                for _ in range(60):
                    peer.deliver(big)
                with trio.fail_after(10):
                    while peer.id in room.peers:
                        await trio.sleep(0.05)
        assert metric(daemon, 'videoroomd_protocol_errors_total{kind="slow_consumer"}') == 2
        assert len([line for line in logs if line["event"] == "client cut off: a frame took too long to leave"]) == 2
        await still_serving(daemon)


async def test_thousands_of_bad_frames_make_few_log_lines_and_every_one_is_answered(tmp_path, monkeypatch):
    from videoroomd.signalling import peer_channel, relay
    monkeypatch.setattr(peer_channel, "MAX_BAD_FRAMES", 100_000)  # so one socket can send thousands
    monkeypatch.setattr(relay, "MAX_BAD_MESSAGES", 100_000)
    count = 1500
    async with running_daemon(tmp_path) as daemon:
        started = time.monotonic()
        with capture_logs() as logs:
            async with phoenix_client(daemon) as client:
                for _ in range(count):
                    await client.ws.send_message("not a frame")
                    assert (await client.receive())[3] == "phx_error"
            async with relay_client(daemon, "lobby") as a:
                await authenticated(a)
                for _ in range(count):
                    await a.send_message("not a message")
                    assert (await next_json(a))["event"] == "error"
        seconds = time.monotonic() - started
        bad_frames = [line for line in logs if line["event"] == "bad frame"]
        bad_messages = [line for line in logs if line["event"] == "invalid relay message"]
        # at most 5 lines a second of each kind
        assert 1 <= len(bad_frames) <= 5 * (seconds + 1) and 1 <= len(bad_messages) <= 5 * (seconds + 1)
        assert metric(daemon, 'videoroomd_protocol_errors_total{kind="bad_frame"}') == 2 * count
