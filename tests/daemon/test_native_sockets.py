"""A server connection whose media socket the compiled module reads (``data_plane = "native"``; bench.receive's
pair of aiortc connections on 127.0.0.1): media from an address that is no validated ICE pair never reaches
SRTP, ICE consent keeps being answered and media keeps flowing through consent refreshes, and closing the
connection frees the socket."""

from __future__ import annotations

import asyncio
import socket

from aioice import ice as aioice_ice

from bench.receive import connect, datagrams, pump
from videoroomd.media.webrtc.compat import native_port
from videoroomd.media.webrtc.compat.ice import ice_connections


def the_port(server):
    """The PortTransport under the server's nominated pair."""
    transport = ice_connections(server)[0]._nominated[1].protocol.transport
    assert type(transport) is native_port.PortTransport
    return transport


def test_media_from_an_address_that_is_no_validated_pair_never_reaches_srtp():
    async def main():
        publisher, server, plane = await connect(native=True)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            _plain, stream, sock, address = datagrams(publisher, 120, 600)
            for data in stream[:60]:  # the publisher's own packets, valid SRTP, from another port
                stranger.sendto(data, address)
            assert await pump(stream[60:], sock, address, plane) == 60
            counters = the_port(server).port.counters
            assert counters["unvalidated"] == 60
            assert counters["rtp"] == 60 and counters["auth"] == counters["replay"] == 0
            assert plane.counters.packets_received == 60
        finally:
            stranger.close()
            await publisher.close()
            await server.close()

    asyncio.run(main())


def test_rtp_keeps_flowing_through_ice_consent_refreshes(monkeypatch):
    monkeypatch.setattr(aioice_ice, "CONSENT_INTERVAL", 0.2)  # a check every 0.16-0.24 s; 6 missed: 1.2 s

    async def main():
        publisher, server, plane = await connect(native=True)
        try:
            _plain, stream, sock, address = datagrams(publisher, 300, 600)
            ported = the_port(server)
            stun_before = ported.port.counters["stun"]
            received = 0
            for start in range(0, 300, 30):  # 3 s: consent would have expired twice without its answers
                received += await pump(stream[start:start + 30], sock, address, plane)
                await asyncio.sleep(0.3)
            assert received == 300
            assert ported.port.counters["stun"] - stun_before >= 10  # checks and answers, read by the Port
            assert server.connectionState == publisher.connectionState == "connected"
            assert type(ice_connections(server)[0]._nominated[1].protocol.transport) is native_port.PortTransport
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())


def test_closing_the_connection_stops_reading_and_frees_the_socket():
    async def main():
        publisher, server, plane = await connect(native=True)
        ported = the_port(server)
        local = ported.get_extra_info("sockname")
        await server.close()
        await publisher.close()
        assert ported.is_closing() and ported._sock.fileno() == -1
        again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            again.bind(local)  # the port is free again: no descriptor of it is left open
        finally:
            again.close()

    asyncio.run(main())
