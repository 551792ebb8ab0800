"""A pair nominated anew (what an ICE restart ends with: the client's checks with USE-CANDIDATE from its
new address) carries the compiled plane's sends at once: the route moves within aioice's own handling of
that check, not at the next once-a-second refresh, and the media socket the compiled module reads takes
media from the new address (bench.receive's pair of aiortc connections on 127.0.0.1, the server's socket
read by the compiled module)."""

from __future__ import annotations

import asyncio
import socket

from aioice import stun

from bench.receive import connect
from videoroomd.media.dataplane.native_plane import NativeDataPlane
from videoroomd.media.webrtc.compat import native_port
from videoroomd.media.webrtc.compat.ice import ice_connections
from videoroomd.media.webrtc.compat.ice_restart import follow_valid_pairs
from videoroomd.media.webrtc.compat.native_port import sync_ports
from videoroomd.media.webrtc.native_routes import ConnectionRoutes


def nominating_check(client, priority: int) -> bytes:
    """A Binding request of the client's ICE connection (controlling) that nominates the pair it arrives on."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{client.remote_username}:{client.local_username}"
    request.attributes["PRIORITY"] = priority
    request.attributes["ICE-CONTROLLING"] = client._tie_breaker
    request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity(client.remote_password.encode())
    request.add_fingerprint()
    return bytes(request)


def answer(client, check: stun.Message, address) -> bytes:
    """The client's success response to the server's check from ``address``."""
    response = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE,
                            transaction_id=check.transaction_id)
    response.attributes["XOR-MAPPED-ADDRESS"] = address
    response.add_message_integrity(client.local_password.encode())
    response.add_fingerprint()
    return bytes(response)


def test_a_newly_nominated_pair_carries_the_compiled_planes_route_at_once():
    async def main():
        publisher, server, _plane = await connect(native=True)
        loop = asyncio.get_running_loop()
        newcomer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        routes = ConnectionRoutes(NativeDataPlane(), "p")
        try:
            (connection,), (client,) = ice_connections(server), ice_connections(publisher)
            first = connection._nominated[1]
            routes.bind(server.getTransceivers()[0].receiver.transport)
            assert routes.route.address == first.remote_addr

            def pairs_changed():  # what each connection of a media worker does (connections.EndpointConnection)
                sync_ports(server)
                routes.refresh()

            follow_valid_pairs(server, pairs_changed)

            newcomer.bind(("127.0.0.1", 0))
            newcomer.setblocking(False)
            moved_to = newcomer.getsockname()
            assert type(first.protocol.transport) is native_port.PortTransport
            server_address = first.protocol.transport.get_extra_info("sockname")
            newcomer.sendto(nominating_check(client, first.remote_candidate.priority + 1), server_address)
            async with asyncio.timeout(5):
                while connection._nominated[1] is first:  # answer the server's triggered check; nothing refreshes
                    try:
                        data = await asyncio.wait_for(loop.sock_recv(newcomer, 2048), 0.1)
                    except TimeoutError:
                        continue
                    message = stun.parse_message(data)
                    if message.message_class == stun.Class.REQUEST:
                        newcomer.sendto(answer(client, message, moved_to), server_address)
            assert connection._nominated[1].remote_addr == moved_to
            assert routes.route.address == moved_to  # the plane sends there from the next packet on
            assert moved_to in first.protocol.transport._allowed  # and media from there is read, not dropped
        finally:
            routes.close()
            newcomer.close()
            await publisher.close()
            await server.close()

    asyncio.run(main())
