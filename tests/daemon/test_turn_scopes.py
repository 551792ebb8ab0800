"""A TURN credential relays only to the media sockets of the call it was issued for.

Against a real daemon whose two rooms share one media worker: a participant's
credentials get permissions and channels for its own connection's media
socket, and 403 for another room's and for another participant's; data sent
to those (on the very address its permission covers) is dropped, in the
daemon and in the media worker alike.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import trio
from aioice import stun

from testsupport.daemon import free_port
from testsupport.media_bot import media_thread
from test_turn_workers import (
    SECRET, SERVER, admin, check_through_channel, ice_check, media_participant, relayed_client, rooms,
)
from testsupport.metrics import read as metrics
from testsupport.metrics import sample as metric
from testsupport.wait import until
from testsupport.turn_client import TurnClient, credentials

NOTHING_ARRIVES = 0.5


async def nothing_comes_back(client: TurnClient) -> bool:
    with trio.move_on_after(NOTHING_ARRIVES):
        await client.receive()
        return False
    return True


async def test_a_cross_room_permission_or_channel_is_refused_while_the_own_rooms_works(start_daemon):
    turn_port = free_port()
    daemon = start_daemon(rooms=rooms(turn_port), server=SERVER, media="workers = 1")
    server = ("127.0.0.1", turn_port)
    async with media_thread() as media, AsyncExitStack() as stack:
        red, red_socket = await media_participant(stack, daemon, media, "red")
        red_too, red_too_socket = await media_participant(stack, daemon, media, "red")
        blue, blue_socket = await media_participant(stack, daemon, media, "blue")
        assert len({row["worker"] for row in admin(daemon)["rooms"]}) == 1  # one worker holds both calls

        # Before any handoff, in the daemon: only red's own connection.
        client = await stack.enter_async_context(TurnClient("udp", server))
        await client.allocate(*credentials(SECRET, red.id, time.time()))
        for other in (blue_socket, red_too_socket):
            refused = await client.create_permission(other)
            assert refused.error_code == 403, refused
            assert "not your call's media" in refused.attributes["ERROR-CODE"][1]
            assert (await client.channel_bind(0x4002, other)).error_code == 403
        assert (await client.create_permission(red_socket)).message_class == stun.Class.RESPONSE
        await client.send_indication(blue_socket, bytes(ice_check()))  # its permission's IP, another's port
        assert await nothing_comes_back(client)
        await until(lambda: metric(metrics(daemon), "videoroomd_turn_dropped_total", reason="forbidden_peer") >= 5)

        # Handed to the media worker that holds both calls: still only red's own socket.
        handed = await relayed_client(stack, "udp", turn_port, red.id, red_socket)
        await until(lambda: metric(metrics(daemon), "videoroomd_turn_handed_off_total", transport="udp") >= 1)
        await check_through_channel(handed)
        before = metric(metrics(daemon), "videoroomd_turn_dropped_total", reason="forbidden_peer")
        await handed.send_indication(blue_socket, bytes(ice_check()))
        await handed.send_indication(red_too_socket, bytes(ice_check()))
        assert await nothing_comes_back(handed)
        await until(lambda: metric(metrics(daemon), "videoroomd_turn_dropped_total", reason="forbidden_peer") >= before + 2)
        assert (await handed.channel_bind(0x4003, blue_socket)).error_code == 403

        # Blue's own credentials reach blue's socket.
        blues = await relayed_client(stack, "tcp", turn_port, blue.id, blue_socket)
        await check_through_channel(blues)
    daemon.wait_healthy()
