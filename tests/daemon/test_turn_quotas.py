"""A full house of TURN allocations never locks out a new participant.

Against a real daemon: one address takes allocations until it is refused,
a few more fill the table, and a new participant relayed through the
built-in server still allocates and its call flows; a participant's
allocations end when it leaves, and its credentials allocate nothing after.
"""

from __future__ import annotations

import time
import urllib.request
from contextlib import AsyncExitStack

import trio
from aioice import stun

from testsupport.daemon import free_port
from testsupport.media_bot import bot, media_thread
from test_turn_workers import RelayedBot
from testsupport.metrics import sample as metric
from testsupport.wait import until
from testsupport.turn_client import TurnClient, allocate_request, credentials
from testsupport.turn_participants import issued

SECRET = "worker-turn-secret-0123456789"  # RelayedBot's


def rooms(turn_port: int) -> str:
    return f'''
[ice]
addresses = ["127.0.0.1"]

[turn]
enabled = true
listen = "127.0.0.1:{turn_port}"
relay_ports = [46000, 46999]
secret = "{SECRET}"
max_allocations = 12
max_allocations_per_user = 8
max_allocations_per_address = 4

[rooms.red]
max_peers = 6
'''


def metrics(daemon) -> str:
    return urllib.request.urlopen(daemon.url + "/metrics", timeout=5).read().decode()


async def allocate_until_refused(stack: AsyncExitStack, server, source: str, username: str, password: str) -> tuple[int, int]:
    """Allocations made from ``source`` (one client port each) until one is refused; returns (made, refusal code)."""
    made = 0
    while True:
        client = await stack.enter_async_context(TurnClient("udp", server, source=source))
        await client.login(username, password)
        reply = await client.request(allocate_request())
        if reply.message_class != stun.Class.RESPONSE:
            return made, reply.error_code
        made += 1


async def test_one_address_is_refused_at_its_share_and_a_new_participant_still_gets_relayed_media(start_daemon, monkeypatch):
    turn_port = free_port()
    daemon = start_daemon(rooms=rooms(turn_port), server="connections_per_second = 1000\n")
    server = ("127.0.0.1", turn_port)
    async with media_thread() as media, AsyncExitStack() as stack:
        first = await stack.enter_async_context(issued(daemon, "red", "mallory"))
        second = await stack.enter_async_context(issued(daemon, "red", "mallory again"))
        # One address gets its share (4 of 12), however many participants it speaks for.
        assert await allocate_until_refused(stack, server, "127.0.0.2", first.username, first.password) == (4, 486)
        assert await allocate_until_refused(stack, server, "127.0.0.2", second.username, second.password) == (0, 486)
        # Two more addresses fill the table; a participant's own cap holds across addresses.
        assert await allocate_until_refused(stack, server, "127.0.0.3", first.username, first.password) == (4, 486)
        assert await allocate_until_refused(stack, server, "127.0.0.4", second.username, second.password) == (4, 486)
        assert metric(metrics(daemon), "videoroomd_turn_allocations") == 12

        # A newcomer's address holds none: it still gets allocations, and its call flows.
        direct = await stack.enter_async_context(bot(daemon, "direct", room="red", media=media))
        relayed = type("RelayedBotQuota", (RelayedBot,), {"transport": "udp", "turn_port": turn_port})
        monkeypatch.setattr("testsupport.media_bot.Bot", relayed)
        newcomer = await stack.enter_async_context(bot(daemon, "newcomer", room="red", media=media))
        monkeypatch.undo()
        (video,) = await newcomer.publish(audio=False)
        (back,) = await direct.publish(audio=False)
        await direct.frames_from(video, at_least=20)
        await newcomer.frames_from(back, at_least=20)
        page = metrics(daemon)
        assert metric(page, "videoroomd_turn_allocations") <= 12
        assert metric(page, "videoroomd_turn_dropped_total", reason="allocation_evicted") >= 1

        # Leaving ends a participant's allocations, and its credentials allocate nothing any more.
        before = metric(metrics(daemon), "videoroomd_turn_allocations")
        await first.client.ws.aclose()
        await until(lambda: metric(metrics(daemon), "videoroomd_turn_allocations") <= before - 4, what="first's end")
        async with TurnClient("udp", server, source="127.0.0.5") as client:
            await client.login(first.username, first.password)
            assert (await client.request(allocate_request())).error_code == 403
    daemon.wait_healthy()


async def test_a_username_valid_for_longer_than_credential_lifetime_is_refused(start_daemon):
    turn_port = free_port()
    daemon = start_daemon(rooms=rooms(turn_port).replace("max_allocations = 12", "credential_lifetime = 600"))
    async with issued(daemon, "red") as joined:
        async with TurnClient("udp", ("127.0.0.1", turn_port)) as client:
            await client.login(*credentials(SECRET, joined.peer_id, time.time(), lifetime=86400))
            assert (await client.request(allocate_request())).error_code == 401
            await client.login(*credentials(SECRET, joined.peer_id, time.time(), lifetime=500))
            assert (await client.request(allocate_request())).message_class == stun.Class.RESPONSE


def test_a_full_table_gives_a_newcomer_the_oldest_allocation_of_the_address_holding_most():
    from videoroomd.turn.allocations import Allocation, AllocationTable, QuotaError

    table = AllocationTable(max_total=5, max_per_user=10, max_lifetime=600, max_per_source=3)
    for n, source in enumerate(["10.0.0.1"] * 3 + ["10.0.0.2"] * 2):
        assert table.check_quota(f"user{n}", source) is None
        table.add(Allocation(n, "u", ("127.0.0.1", 1000 + n), 600, user=f"user{n}", source=source))
    assert table.check_quota("new", "10.0.0.3") == 0       # the oldest of 10.0.0.1's three
    for source in ("10.0.0.1", "10.0.0.2"):                # at its share; one short of the most: no better off
        try:
            table.check_quota("new", source)
        except QuotaError as refused:
            assert refused.code == 486
        else:
            raise AssertionError(f"{source} was given an allocation")
    table.remove(0)
    assert table.per_source() == {"10.0.0.1": 2, "10.0.0.2": 2}
    assert table.of_user("user0") == [] and table.of_user("user1") == [1]


async def test_a_tcp_clients_connection_ends_with_its_participant(start_daemon):
    turn_port = free_port()
    daemon = start_daemon(rooms=rooms(turn_port))
    async with issued(daemon, "red", "leaving", transport="tcp") as joined:
        client = TurnClient("tcp", ("127.0.0.1", turn_port))
        async with client:
            await client.allocate(joined.username, joined.password)
            await joined.client.ws.aclose()  # the participant leaves: its allocation ends, and the connection
            with trio.fail_after(10):
                try:
                    while True:
                        await client.receive()
                except (EOFError, trio.BrokenResourceError, ConnectionResetError):
                    pass
    assert metric(metrics(daemon), "videoroomd_turn_allocations") == 0
