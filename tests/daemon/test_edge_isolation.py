"""One connection can never end the daemon: the attacks seen on it, against a real daemon on 127.0.0.1."""

from __future__ import annotations

import json

import trio

from testsupport.edge_helpers import connect, exchange, frame, get, read_all, read_until, reset, status_of, upgrade_head
from testsupport.metrics import metric
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import next_json, relay_client, running_daemon

ROOMS = "[rooms.lobby]\nmax_peers = 4\n[rooms.pair]\nmax_peers = 1\n"
DEEP = "[" * 1000 + "]" * 1000
HUGE_NUMBER = "1" * 5000


async def still_serving(daemon) -> None:
    """What a user notices: /healthz answers and a new join works."""
    assert status_of(await exchange(daemon.port, get("/healthz"))) == 200
    async with phoenix_client(daemon) as client:
        assert (await client.join("lobby"))["status"] == "ok"


async def test_upgrade_reset_before_the_101_ends_only_that_connection(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        for path in ("/socket/websocket?vsn=2.0.0", "/signaling/lobby") * 10:
            stream = await connect(daemon.port)
            await stream.send_all(upgrade_head(path))
            reset(stream)
        await trio.sleep(0.2)
        await still_serving(daemon)
        assert metric(daemon, "videoroomd_connection_errors_total") == 0  # a client that left, not a fault of ours


async def test_deep_json_and_huge_numbers_are_refused_on_every_input(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with phoenix_client(daemon) as client:
            for text in (DEEP, HUGE_NUMBER, f'[null, "1", "phoenix", "heartbeat", {DEEP}]'):
                await client.ws.send_message(text)
                reply = await client.receive()
                assert reply[3] in ("phx_error", "phx_reply") and "not JSON" in json.dumps(reply)
        async with relay_client(daemon, "lobby") as relay:
            peer_id = (await next_json(relay))["data"]["peer_id"]
            for text in (DEEP, HUGE_NUMBER, '{"event": "x", "to": "all", "data": %s}' % DEEP):
                await relay.send_message(text)
                message = await next_json(relay)
                assert message["event"] == "error" and message["to"] == [peer_id]
                assert "not JSON" in message["data"]["details"]
        for cookie in (DEEP, HUGE_NUMBER):
            upgrade = upgrade_head("/signaling/lobby", headers=[("Cookie", f"credentials={cookie}")])
            response = await exchange(daemon.port, upgrade)
            assert status_of(response) == 400 and b"credentials cookie must hold JSON" in response
        await still_serving(daemon)


async def test_an_oversized_frame_after_the_servers_close_frame_ends_only_that_connection(tmp_path):
    # trio-websocket's reader task raises wsproto's LocalProtocolError here: an error the daemon
    # cannot prevent, so it ends that connection only, and is logged with its traceback and counted.
    async with running_daemon(tmp_path, ROOMS, server="max_frame_size = 2048") as daemon:
        for path in ("/socket/websocket?vsn=2.0.0", "/signaling/lobby"):
            stream = await connect(daemon.port)
            await stream.send_all(upgrade_head(path))
            assert b" 101 " in await read_until(stream, b"\r\n\r\n")
            # enough malformed frames to make the server close the socket ...
            await stream.send_all(frame("nope") * 25)
            await read_until(stream, b"too many")
            # ... then a frame over the limit after its close frame
            try:
                await stream.send_all(frame("x" * 4096))
                await read_all(stream)
            except trio.BrokenResourceError:
                pass
            await stream.aclose()
        await still_serving(daemon)
        assert metric(daemon, "videoroomd_connection_errors_total") == 2


async def test_a_refused_relay_join_on_a_failing_connection_ends_only_that_connection(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon:
        async with relay_client(daemon, "pair") as first:
            await next_json(first)
            for _ in range(10):
                # the upgrade, then a reset: about every other time the 101 leaves before the
                # reset arrives, and the refusal is sent on a broken connection
                stream = await connect(daemon.port)
                await stream.send_all(upgrade_head("/signaling/pair") + frame(b"\x03\xe8", opcode=0x8))
                reset(stream)
            await trio.sleep(0.2)
            await still_serving(daemon)
            assert metric(daemon, "videoroomd_connection_errors_total") == 0
