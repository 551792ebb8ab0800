"""Other TURN clients against the built-in server: coturn's test client, and aioice's (which aiortc uses) doing ICE."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time

import aioice
import pytest
import trio
from aioice.ice import TransportPolicy

from videoroomd.config.schema import TurnConfig
from videoroomd.turn.peers import MediaAddresses
from videoroomd.turn.server import TurnService

from testsupport.daemon import free_port
from testsupport.turn_client import credentials

SECRET = "a-test-secret-long-enough"
UCLIENT = shutil.which("turnutils_uclient")
PEER = shutil.which("turnutils_peer")

needs_coturn = pytest.mark.skipif(UCLIENT is None or PEER is None,
                                  reason="coturn's turnutils are needed: apt-get install coturn (tests/run.sh does)")


async def run_uclient(media_ports: list[int], peer_port: int, *flags: str, lifetime: float = 2 * 86400) -> tuple[str, dict]:
    media = MediaAddresses(["127.0.0.1"])
    for port in media_ports:
        media.add("127.0.0.1", port)
    # uclient's REST-API usernames are valid for a day: longer than the default credential_lifetime allows.
    config = TurnConfig(enabled=True, host="127.0.0.1", port=0, relay_ports=(43000, 43999), secret=SECRET,
                        credential_lifetime=lifetime)
    service = TurnService(config, media.contains, relay_host="127.0.0.1")
    peer = subprocess.Popen([PEER, "-L", "127.0.0.1", "-p", str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(service.run)
            args = [UCLIENT, *flags, "-W", SECRET, "-u", "peer-1", "-e", "127.0.0.1", "-r", str(peer_port),
                    "-n", "10", "-c", "-p", str(addresses["udp"][1]), "127.0.0.1"]
            with trio.fail_after(30):
                done = await trio.run_process(args, capture_stdout=True, capture_stderr=True, check=False)
            nursery.cancel_scope.cancel()
    finally:
        peer.terminate()
        peer.wait(timeout=5)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace"), service.stats()


@pytest.mark.slow
@needs_coturn
@pytest.mark.parametrize("flags", [(), ("-s",), ("-t",), ("-t", "-s")], ids=["udp-channels", "udp-send", "tcp-channels", "tcp-send"])
async def test_turnutils_uclient_relays_through_us_to_a_media_socket(flags):
    port = free_port()
    output, stats = await run_uclient([port, port + 1], port, *flags)
    assert re.search(r"tot_send_msgs=10, tot_recv_msgs=10", output), output
    assert "Total lost packets 0 " in output, output
    # Over TCP, uclient may exit with bytes of ours unread: its kernel then resets the connection,
    # which the server counts as broken. Anything else dropped is ours.
    dropped = {k: v for k, v in stats["dropped"].items() if not ("-t" in flags and k == "connection_broken")}
    assert stats["created"] >= 1 and not dropped


@needs_coturn
async def test_turnutils_uclient_is_refused_credentials_valid_longer_than_credential_lifetime():
    port = free_port()
    output, stats = await run_uclient([port], port, lifetime=43200)
    assert "tot_recv_msgs=10" not in output, output
    assert stats["created"] == 0 and stats["refused"].get(401, 0) >= 1


@needs_coturn
async def test_turnutils_uclient_is_refused_a_peer_that_is_not_our_media():
    port = free_port()
    output, stats = await run_uclient([], port)
    assert "403" in output and "tot_recv_msgs=10" not in output, output
    assert stats["refused"].get(403, 0) >= 1


def _only_loopback(connection) -> None:
    """Gather host candidates on 127.0.0.1 only (aioice on its own leaves loopback out)."""
    original = connection.get_component_candidates

    async def on_loopback(component, addresses=None, **kwargs):
        return await original(component=component, addresses=["127.0.0.1"], **kwargs)

    connection.get_component_candidates = on_loopback


async def _ice_through(turn: tuple[str, int], transport: str, media: MediaAddresses) -> tuple[bytes, bytes]:
    """A relay-only aioice agent (as aiortc clients use) against a host-only one standing in for the SFU."""
    username, password = credentials(SECRET, "peer-1", time.time())
    client = aioice.Connection(ice_controlling=True, turn_server=turn, turn_username=username, turn_password=password,
                               turn_transport=transport, transport_policy=TransportPolicy.RELAY, use_ipv6=False)
    sfu = aioice.Connection(ice_controlling=False, use_ipv6=False)
    _only_loopback(sfu)
    try:
        await asyncio.gather(client.gather_candidates(), sfu.gather_candidates())
        assert [c.type for c in client.local_candidates] == ["relay"]
        for candidate in sfu.local_candidates:
            media.add(candidate.host, candidate.port)  # what the engine will do for its media sockets
        for ours, theirs in ((sfu, client), (client, sfu)):
            for candidate in theirs.local_candidates:
                await ours.add_remote_candidate(candidate)
            await ours.add_remote_candidate(None)
            ours.remote_username, ours.remote_password = theirs.local_username, theirs.local_password
        await asyncio.wait_for(asyncio.gather(client.connect(), sfu.connect()), 10)
        await client.send(b"over the relay")
        there = await asyncio.wait_for(sfu.recv(), 5)
        await sfu.send(b"and back")
        back = await asyncio.wait_for(client.recv(), 5)
        return there, back
    finally:
        await client.close()
        await sfu.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_relay_only_aioice_agent_connects_to_a_media_socket_through_us(transport):
    media = MediaAddresses(["127.0.0.1"])
    service = TurnService(TurnConfig(enabled=True, host="127.0.0.1", port=0, relay_ports=(43000, 43999), secret=SECRET),
                          media.contains, relay_host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(service.run)
        with trio.fail_after(30):
            there, back = await trio.to_thread.run_sync(asyncio.run, _ice_through(addresses[transport], transport, media))
        assert (there, back) == (b"over the relay", b"and back")
        assert service.stats()["created"] == 1
        nursery.cancel_scope.cancel()
