"""What a publisher relies on from the server's cut-down receive path: its packets arrive, what it
lost is NACKed, its receiver reports and REMB still come, as on aiortc's own path.

Two aiortc peer connections on 127.0.0.1 (bench.receive's): the publisher's packets are written
by hand to its real SRTP session and socket, and the RTCP the server sends back is what the
publisher's own aiortc sender receives.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from aiortc.rtp import RTCP_PSFB_APP, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRrPacket, RtcpRtpfbPacket

from bench.receive import BATCH, connect, datagrams, pump
from videoroomd.media.webrtc.compat import native_port, rtp as compat
from videoroomd.media.dataplane.rtp_packets import rtp_packet

LOST = {60, 61, 200}  # indexes of the stream's packets that never reach the server
COUNT = 270           # 3 s of video at 30 frames a second, 3 packets each, sent at that pace


PATHS = ["ours", "aiortc's", "native"]  # native: the server's socket read by the compiled module (_native.Port)


async def connected(path: str):
    """(publisher, server, the data plane, the RTCP the publisher's sender receives)."""
    publisher, server, plane = await connect(aiortc_path=path == "aiortc's", native=path == "native")
    heard: list = []

    async def on_rtcp(packet, handle):
        heard.append(packet)

    compat.intercept_sender(publisher.getTransceivers()[0].sender, lambda parameters: None, on_rtcp)
    return publisher, server, plane, heard


async def until(condition, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)


async def send_losing(publisher, plane, count: int, lost: set[int], first: int = 1) -> set[int]:
    """Send ``count`` packets of ``publisher``'s video numbered from ``first`` to ``plane``, all but the
    indexes in ``lost``; returns the sequence numbers lost."""
    plain, stream, socket, address = datagrams(publisher, count, 1000, first=first)
    sent = [data for index, data in enumerate(stream) if index not in lost]
    assert await pump(sent, socket, address, plane) == count - len(lost)  # all reached the data plane
    return {(first + index) & 0xFFFF for index in lost}


def nacked_of(heard: list, ssrc: int) -> set[int]:
    """The sequence numbers of ``ssrc`` that the NACKs in ``heard`` name (aiortc reads a PID of
    65535's bits as 65536 and on: taken modulo 2**16)."""
    return {seq & 0xFFFF for p in heard if isinstance(p, RtcpRtpfbPacket) and p.fmt == RTCP_RTPFB_NACK
            and p.media_ssrc == ssrc for seq in p.lost}


@pytest.mark.parametrize("path", PATHS)
def test_a_publisher_hears_of_its_lost_packets_and_gets_receiver_reports(path):
    async def main():
        publisher, server, plane, heard = await connected(path)
        try:
            ssrc = publisher.getTransceivers()[0].sender._ssrc
            lost_seqs = await send_losing(publisher, plane, COUNT, LOST)

            def nacked() -> set[int]:
                return nacked_of(heard, ssrc)

            def reports() -> list:
                return [r for p in heard if isinstance(p, RtcpRrPacket) for r in p.reports if r.ssrc == ssrc]

            await until(lambda: reports() and nacked() >= lost_seqs, 5)  # reports come every 0.5 to 1.5 s
            assert nacked() == lost_seqs
            report = reports()[-1]
            assert (report.highest_sequence, report.packets_lost) == (COUNT, len(LOST))
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())


@pytest.mark.parametrize("path", PATHS)
def test_a_publisher_hears_of_packets_lost_across_the_sequence_number_wrap(path):
    async def main():
        publisher, server, plane, heard = await connected(path)
        try:
            ssrc = publisher.getTransceivers()[0].sender._ssrc
            # 65535, 0, 1 and 44: the NACK goes oldest first, across the wrap
            lost_seqs = await send_losing(publisher, plane, 120, {35, 36, 37, 80}, first=65500)
            await until(lambda: nacked_of(heard, ssrc) >= lost_seqs, 5)
            assert nacked_of(heard, ssrc) == lost_seqs
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())


@pytest.mark.parametrize("path", PATHS)
def test_a_publisher_whose_packets_come_ever_later_is_told_a_bitrate_remb(path):
    async def main():
        publisher, server, plane, heard = await connected(path)
        try:
            # Sent (abs-send-time) 1 ms apart, arriving at 300 a second: a congested uplink.
            plain, stream, socket, address = datagrams(publisher, 300, 1000, spacing=0.001)
            pump_task = asyncio.ensure_future(pump(stream, socket, address, plane, pace=BATCH / 300))

            def remb() -> list:
                return [p for p in heard if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_APP]

            await until(lambda: remb() or pump_task.done(), 5)
            pump_task.cancel()
            assert remb(), "no REMB reached the publisher"
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())


@pytest.mark.parametrize("path", ["ours", "native"])
def test_datagrams_that_are_not_good_rtp_are_dropped_and_the_publishers_stream_goes_on(path):
    async def main():
        loop_errors: list = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
        publisher, server, plane, heard = await connected(path)
        try:
            plain, stream, socket, address = datagrams(publisher, 60, 500)
            srtp, _pair = compat.nominated_route(publisher.getTransceivers()[0].sender.transport)
            ssrc = publisher.getTransceivers()[0].sender._ssrc
            bad = [
                b"",                                       # empty
                b"\x80",                                   # an RTP first byte, nothing after it
                b"\x80\x60" + os.urandom(40),              # not encrypted with the session's key
                srtp.protect(rtp_packet(77, 0, 100, 0, ssrc, b"", b"x" * 20)),  # a payload type not negotiated
                srtp.protect(rtp_packet(96, 0, 101, 0, 12345, b"", b"x" * 20)),  # nobody's SSRC
                b"\xbf" * 3,                               # too short for a header
            ]
            for data in bad:
                socket.sendto(data, address)
            assert await pump(stream, socket, address, plane) == 60
            assert loop_errors == []
            assert server.connectionState == "connected"
            if path == "native":  # refused in C, counted: the empty and 1-byte ones, the wrong key, the short one
                [counters] = native_port.counters(server)
                assert (counters["other"], counters["auth"], counters["malformed"]) == (2, 1, 1), counters
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())
