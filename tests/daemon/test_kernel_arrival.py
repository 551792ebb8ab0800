"""The REMB estimator's arrival times are when the kernel received each datagram, not when
a busy media worker got round to reading it."""

from __future__ import annotations

import asyncio
import socket
import time

import aioice

from testsupport.kernel_stamps import kernel_stamps
from videoroomd.media.webrtc.compat.ice import NTP_EPOCH_OFFSET, kernel_arrival_ms, media_first_of


def _ms_now() -> int:
    return int((time.time() + NTP_EPOCH_OFFSET) * 1000)


def test_a_datagram_read_late_keeps_the_time_it_arrived():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        sender.sendto(b"\x80first", receiver.getsockname())
        receiver.recvfrom(2048)
        kernel_arrival_ms(receiver.fileno())  # the first call turns the stamps on
        arrivals = []
        with kernel_stamps():  # which the kernel does a moment later (until then: the time of the read)
            for _ in range(3):
                sent = _ms_now()
                sender.sendto(b"\x80media", receiver.getsockname())
                time.sleep(0.25)  # the worker busy elsewhere: the datagram waits in the socket
                receiver.recvfrom(2048)
                arrivals.append((sent, kernel_arrival_ms(receiver.fileno()), _ms_now()))
        for sent, arrived, read in arrivals:
            assert arrived is not None
            assert sent - 5 <= arrived < sent + 100 <= read, (sent, arrived, read)
    finally:
        receiver.close()
        sender.close()


def test_a_socket_that_cannot_say_gives_none():
    with open("/dev/null", "rb") as not_a_socket:
        assert kernel_arrival_ms(not_a_socket.fileno()) is None


async def _arrivals_seen_by_the_receive_path(busy: float) -> list[tuple[int, int | None, int]]:
    """(sent, arrival the receive path was given, read) of RTP-looking datagrams a browser-side
    aioice connection sends to a server-side one over 127.0.0.1, while the server's loop is
    busy ``busy`` seconds before it reads each."""
    browser = aioice.Connection(ice_controlling=True, use_ipv6=False)
    server = aioice.Connection(ice_controlling=False, use_ipv6=False)
    for connection in (browser, server):
        original = connection.get_component_candidates

        async def on_loopback(component, addresses=None, _original=original, **kwargs):
            return await _original(component=component, addresses=["127.0.0.1"], **kwargs)

        connection.get_component_candidates = on_loopback
    try:
        await asyncio.gather(browser.gather_candidates(), server.gather_candidates())
        for ours, theirs in ((server, browser), (browser, server)):
            for candidate in theirs.local_candidates:
                await ours.add_remote_candidate(candidate)
            await ours.add_remote_candidate(None)
            ours.remote_username, ours.remote_password = theirs.local_username, theirs.local_password
        await asyncio.wait_for(asyncio.gather(browser.connect(), server.connect()), 10)
        media_first_of(server)
        seen: list[int | None] = []
        server.data_received = lambda data, component: seen.append(server._videoroomd_arrival_ms)
        await browser.send(b"\x80" + bytes(40))  # its stamp turns the kernel's stamps on
        await asyncio.sleep(0.1)
        seen.clear()
        results = []
        for _ in range(4):
            sent = _ms_now()
            await browser.send(b"\x80" + bytes(40))
            time.sleep(busy)  # the worker's loop busy with other work: the datagram waits
            for _ in range(100):
                if len(seen) > len(results):
                    break
                await asyncio.sleep(0.005)
            results.append((sent, seen[-1] if len(seen) > len(results) else None, _ms_now()))
        return results[1:]  # the first may carry the time the stamps were turned on
    finally:
        await browser.close()
        await server.close()


def test_the_receive_path_gets_the_kernel_arrival_of_a_datagram_its_loop_read_late():
    for sent, arrived, read in asyncio.run(_arrivals_seen_by_the_receive_path(0.25)):
        assert arrived is not None
        assert sent - 5 <= arrived < sent + 100 <= read, (sent, arrived, read)


async def _arrivals_seen_through_the_compiled_socket(busy: float) -> list[tuple[int, int | None, int]]:
    """As above, on a server connection whose socket the compiled module reads (bench.receive's pair)."""
    from bench.receive import connect, datagrams
    from videoroomd.media.webrtc.compat.ice import ice_connections

    publisher, server, _plane = await connect(native=True)
    try:
        _plain, stream, sock, address = datagrams(publisher, 6, 200)
        ported = ice_connections(server)[0]._nominated[1].protocol.transport
        seen: list[int] = []
        ported._route_rtp = lambda plain, arrival_ms: seen.append(arrival_ms)
        ported._fast.consider = lambda plain: None  # each datagram to Python's path (the C path's: test_native_receive)
        results = []
        for data in stream:
            sent = _ms_now()
            sock.sendto(data, address)
            time.sleep(busy)  # the worker's loop busy with other work: the datagram waits
            for _ in range(100):
                if len(seen) > len(results):
                    break
                await asyncio.sleep(0.005)
            results.append((sent, seen[-1] if len(seen) > len(results) else None, _ms_now()))
        return results[1:]  # the first may carry the time the stamps were turned on (the kernel defers that)
    finally:
        await publisher.close()
        await server.close()


def test_the_compiled_socket_gives_the_receive_path_the_kernel_arrival_of_each_datagram():
    for sent, arrived, read in asyncio.run(_arrivals_seen_through_the_compiled_socket(0.25)):
        assert arrived is not None
        assert sent - 5 <= arrived < sent + 100 <= read, (sent, arrived, read)
