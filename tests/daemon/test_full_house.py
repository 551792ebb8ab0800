"""A house filled on purpose with idle connections from many addresses never locks out a person or the health check."""

from __future__ import annotations

import collections
import itertools

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from testsupport.edge_helpers import connect, exchange, get, read_all, status_of
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from testsupport.metrics import metric

ADDRESSES = [f"127.0.0.{n}" for n in range(2, 22)]  # all of 127.0.0.0/8 is this machine's loopback on Linux
PER_ADDRESS = 10
SERVER = f"max_connections = 100\nmax_connections_per_address = {PER_ADDRESS}\nconnections_per_second = 1000"

pytestmark = pytest.mark.slow  # each fills a daemon's house or its descriptors: seconds


async def flood(port: int, per_second: float, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Open idle connections from ADDRESSES, round robin, each under the per-address cap, until cancelled.

    Reports started once the first pass has filled the house.
    """
    held: dict[str, collections.deque] = collections.defaultdict(collections.deque)
    started = False
    for count, address in enumerate(itertools.cycle(ADDRESSES)):
        if len(held[address]) >= PER_ADDRESS - 1:
            await trio.aclose_forcefully(held[address].popleft())
        held[address].append(await trio.open_tcp_stream("127.0.0.1", port, local_address=address))
        if not started and count >= 110:
            started = True
            task_status.started()
        await trio.sleep(1 / per_second if started else 0)


async def test_a_person_joins_and_healthz_answers_while_idle_connections_fill_the_house(tmp_path):
    async with running_daemon(tmp_path, server=SERVER) as daemon:
        async with trio.open_nursery() as nursery:
            await nursery.start(flood, daemon.port, 30.0)
            assert metric(daemon, 'videoroomd_connections_evicted_total{state="no_request"}') > 0  # the house is full

            async def poll_healthz() -> None:
                for _ in range(30):
                    assert status_of(await exchange(daemon.port, get("/healthz"))) == 200
                    await trio.sleep(0.1)

            nursery.start_soon(poll_healthz)
            async with phoenix_client(daemon) as person:
                assert (await person.join("lobby"))["status"] == "ok"
                await trio.sleep(3)  # ~90 more idle connections come and push others out; never the call
                ref = await person.send("phoenix", "heartbeat", {})
                assert (await person.reply_to(ref))["status"] == "ok"
            nursery.cancel_scope.cancel()
        assert metric(daemon, 'videoroomd_connections_refused_total{reason="max_connections"}') == 0
        assert metric(daemon, 'videoroomd_connections_evicted_total{state="no_request"}') > 50


async def test_a_connection_that_sends_no_request_is_closed_soon(tmp_path, monkeypatch):
    from videoroomd.http import server
    monkeypatch.setattr(server, "FIRST_REQUEST_TIMEOUT", 0.5)  # instead of 10 s
    async with running_daemon(tmp_path) as daemon:
        stream = await connect(daemon.port)
        with trio.fail_after(3):
            assert await read_all(stream) == b""
        assert metric(daemon, "videoroomd_connections_open") == 0


async def test_a_socket_that_joins_no_room_is_closed_with_a_reason(tmp_path, monkeypatch):
    from videoroomd.signalling import peer_channel
    monkeypatch.setattr(peer_channel, "JOIN_TIMEOUT", 0.5)  # instead of 10 s
    async with running_daemon(tmp_path) as daemon:
        url = f"ws://127.0.0.1:{daemon.port}/socket/websocket?vsn=2.0.0"
        async with open_websocket_url(url) as websocket:
            with trio.fail_after(3):
                try:
                    while True:
                        await websocket.get_message()
                except ConnectionClosed as closed:
                    assert closed.reason.code == 1008 and "join a room within 0.5 s" in closed.reason.reason
        assert metric(daemon, 'videoroomd_connections_refused_total{reason="join_timeout"}') == 1
        async with phoenix_client(daemon) as person:  # one that joins at once stays
            assert (await person.join("lobby"))["status"] == "ok"
            await trio.sleep(1)
            ref = await person.send("phoenix", "heartbeat", {})
            assert (await person.reply_to(ref))["status"] == "ok"
