"""A connection's senders and receivers send their RTCP reports together: one datagram an interval
with the SR (and CNAME) of each sender and the RR of each received stream, at aiortc's pace, and a
stopped sender still says BYE.

Two aiortc peer connections on 127.0.0.1 (bench.receive's way): the "publisher" sends a stream
(written by hand) and receives one from the "server", whose connection is set up as a worker's; what
the publisher's DTLS transport decrypts of the server's RTCP is what is looked at.
"""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RtcpByePacket, RtcpPacket, RtcpRrPacket, RtcpSdesPacket, RtcpSenderInfo, RtcpSrPacket

from bench.receive import Idle, datagrams, pump
from videoroomd.media.webrtc.compat.ice import limit_host_addresses, media_skips_stun_check, watch_incoming
from videoroomd.media.webrtc.compat.rtcp import MAX_DATAGRAM, pack, report_together
from videoroomd.media.dataplane.python_plane import PythonDataPlane
from videoroomd.media.webrtc.forwarding import attach_publisher, receive_at_once


async def connect():
    """(publisher, server, the server's data plane, its ConnectionReports, the RTCP datagrams
    the publisher got: [(time, packets)])."""
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.addTransceiver(Idle(), direction="sendonly")
    publisher.addTransceiver("video", direction="recvonly")
    limit_host_addresses(publisher, ("127.0.0.1",))
    await publisher.setLocalDescription(await publisher.createOffer())
    await server.setRemoteDescription(publisher.localDescription)
    receive_at_once(server)
    watch_incoming(server, lambda: None)
    incoming, outgoing = server.getTransceivers()
    incoming.direction = "recvonly"
    plane = PythonDataPlane()
    plane.add_publisher("publisher:video", "video")
    attach_publisher(incoming.receiver, plane, "publisher:video")
    outgoing.sender.replaceTrack(Idle())
    outgoing.direction = "sendonly"
    limit_host_addresses(server, ("127.0.0.1",))
    reports = report_together(server)
    await server.setLocalDescription(await server.createAnswer())
    media_skips_stun_check(server)
    heard: list = []
    dtls = publisher.getTransceivers()[0].sender.transport
    handle = dtls._handle_rtcp_data

    async def seen(data: bytes) -> None:
        heard.append((asyncio.get_running_loop().time(), RtcpPacket.parse(data)))
        await handle(data)

    dtls._handle_rtcp_data = seen
    await publisher.setRemoteDescription(server.localDescription)
    for _ in range(200):
        if server.connectionState == "connected" and publisher.connectionState == "connected":
            return publisher, server, plane, reports, heard
        await asyncio.sleep(0.05)
    raise RuntimeError("the two peer connections did not connect on 127.0.0.1")


@pytest.mark.slow
def test_one_datagram_an_interval_carries_every_report_and_a_closed_sender_says_bye():
    async def main():
        publisher, server, plane, reports, heard = await connect()
        try:
            published_ssrc = publisher.getTransceivers()[0].sender._ssrc
            server_ssrc = server.getTransceivers()[1].sender._ssrc
            _, stream, socket, address = datagrams(publisher, 30, 500)
            assert await pump(stream, socket, address, plane) == 30

            def with_rr():
                return [(t, p) for t, p in heard if any(isinstance(x, RtcpRrPacket) for x in p)]

            for _ in range(300):  # at most 15 s; three intervals are 1.5 to 4.5 s
                if len(with_rr()) >= 3:
                    break
                await asyncio.sleep(0.05)
            reported = with_rr()
            assert len(reported) >= 3
            for _, packets in reported:
                # Everything the server had to say, in one datagram: its sender's SR and CNAME
                # and its receiver's RR of the publisher's stream, the SR first.
                assert isinstance(packets[0], (RtcpSrPacket, RtcpRrPacket))
                assert any(isinstance(p, RtcpSrPacket) and p.ssrc == server_ssrc for p in packets)
                assert any(isinstance(p, RtcpSdesPacket) and p.chunks[0].ssrc == server_ssrc for p in packets)
                rr = [r for p in packets if isinstance(p, RtcpRrPacket) for r in p.reports]
                assert [r.ssrc for r in rr] == [published_ssrc]
                assert rr[0].highest_sequence == 30 and rr[0].packets_lost == 0
            # Not more often than aiortc's shortest interval (0.5 s); a busy machine only makes it longer.
            times = [t for t, packets in heard if any(isinstance(p, RtcpSrPacket) for p in packets)]
            assert all(later - earlier >= 0.45 for earlier, later in zip(times, times[1:]))
            assert len(times) <= reports.rounds
            await server.getTransceivers()[1].sender.stop()
            for _ in range(100):
                if any(isinstance(p, RtcpByePacket) and server_ssrc in p.sources for _, ps in heard for p in ps):
                    break
                await asyncio.sleep(0.02)
            assert any(isinstance(p, RtcpByePacket) and server_ssrc in p.sources for _, ps in heard for p in ps)
        finally:
            await server.close()
            await publisher.close()
        assert not reports.members  # the connection's reporting task has nothing left to report

    asyncio.run(main())


def test_reports_that_do_not_fit_one_datagram_go_in_several_each_starting_with_a_report():
    sr = bytes(RtcpSrPacket(ssrc=1, sender_info=RtcpSenderInfo(1, 2, 3, 4))) + bytes(40)  # stands in for an SR and its SDES
    rr = bytes(RtcpRrPacket(ssrc=2))
    reports = [sr] * 40 + [rr]
    packed = pack(reports)
    assert len(packed) > 1 and all(len(d) <= MAX_DATAGRAM for d in packed)
    assert b"".join(packed) == b"".join(reports)
    assert all(d.startswith(sr) or d.startswith(rr) for d in packed)
