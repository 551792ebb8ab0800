"""A simulcast publisher's three SSRCs through the server's receive path: each packet reaches its
layer, retransmissions are unwrapped onto the layer they repair, losses are NACKed per layer,
receiver reports name every layer, and packets of no known layer are dropped without harm.

Two aiortc peer connections on 127.0.0.1 as in test_receive_path; the publisher's offer is made
into what Chromium sends for three layers (RIDs, no SSRCs), and its packets are written by hand:
the RID extension on each layer's first packets only, as Chromium does until receiver reports
reach it.
"""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RTCP_PSFB_APP, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRrPacket, RtcpRtpfbPacket, unpack_remb_fci
from aiortc.sdp import SessionDescription

from bench.receive import BATCH, Idle, datagrams, pump
from test_simulcast import chrome_like_offer
from videoroomd.media.webrtc.compat import rtp as compat
from videoroomd.media.webrtc.compat.remb import DEFAULT_CEILING
from videoroomd.media.webrtc.compat.ice import limit_host_addresses, media_skips_stun_check, watch_incoming
from videoroomd.media.webrtc.compat.native_port import take_over
from videoroomd.media.webrtc.compat.simulcast import REPAIRED_RID_URI, RID_URI, negotiate_stream_ids
from videoroomd.media.dataplane.python_plane import PythonDataPlane
from videoroomd.media.webrtc.forwarding import attach_publisher, receive_at_once
from videoroomd.media.dataplane.rtp_packets import extension_block, one_byte_element, rtp_packet

RID_ID, REPAIRED_ID = 10, 11
LAYERS = {"l": 0x1111, "m": 0x2222, "h": 0x3333}
RTX_OF_H = 0x4444
STRANGER = 0x5555   # a RID the offer did not have
UNTAGGED = 0x6666   # never says its RID


class RecordingPlane(PythonDataPlane):
    """The data plane, noting the sequence numbers that reach each layer of "publisher:video"."""

    def __init__(self):
        super().__init__()
        self.arrived: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def receive(self, publisher_id, packet):
        ssrcs = self.publisher_stats(publisher_id).layer_ssrcs
        if packet.ssrc in ssrcs:
            self.arrived[ssrcs.index(packet.ssrc)].append(packet.sequence_number)
        super().receive(publisher_id, packet)


async def connect(max_bitrate=lambda: None, native: bool = False):
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.addTransceiver(Idle(), direction="sendonly")
    limit_host_addresses(publisher, ("127.0.0.1",))
    await publisher.setLocalDescription(await publisher.createOffer())
    offer = chrome_like_offer(publisher.localDescription.sdp)
    await server.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    receive_at_once(server)
    watch_incoming(server, lambda: None)
    transceiver = server.getTransceivers()[0]
    transceiver.direction = "recvonly"
    assert negotiate_stream_ids(transceiver, {RID_URI: RID_ID, REPAIRED_RID_URI: REPAIRED_ID})
    plane = RecordingPlane()
    plane.add_publisher("publisher:video", "video", ["l", "m", "h"])
    attach_publisher(transceiver.receiver, plane, "publisher:video", True, max_bitrate)
    limit_host_addresses(server, ("127.0.0.1",))
    await server.setLocalDescription(await server.createAnswer())
    media_skips_stun_check(server)
    await publisher.setRemoteDescription(server.localDescription)
    for _ in range(200):
        if server.connectionState == "connected" and publisher.connectionState == "connected":
            if native:  # the server's socket read by the compiled module, as with data_plane = "native"
                assert take_over(server) == {"0": "native"}
            return publisher, server, plane
        await asyncio.sleep(0.05)
    raise RuntimeError("the two peer connections did not connect on 127.0.0.1")


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_each_layer_is_received_repaired_nacked_and_reported_on_its_own(native):
    async def main():
        publisher, server, plane = await connect(native=native)
        heard: list = []
        try:
            sender = publisher.getTransceivers()[0].sender

            async def on_rtcp(packet, handle):
                heard.append(packet)

            compat.intercept_sender(sender, lambda parameters: None, on_rtcp)
            router = sender.transport._rtp_router
            for ssrc in LAYERS.values():  # the publisher hears RTCP about each layer's SSRC
                router.register_sender(sender, ssrc)
            codecs = SessionDescription.parse(publisher.remoteDescription.sdp).media[0].rtp.codecs
            vp8 = codecs[0].payloadType
            rtx = next(c.payloadType for c in codecs if c.mimeType.lower() == "video/rtx")
            srtp, pair = compat.nominated_route(sender.transport)
            socket, address = compat.pair_socket(pair), pair.remote_addr
            arrived = plane.arrived
            lost_m = {12, 13}

            def send(ssrc, seq, payload_type=vp8, rid=None, repaired=None, payload=b"\x90\x80\x01\x51" + b"x" * 200):
                elements = b""
                if rid is not None:
                    elements += one_byte_element(RID_ID, rid.encode())
                if repaired is not None:
                    elements += one_byte_element(REPAIRED_ID, repaired.encode())
                socket.sendto(srtp.protect(rtp_packet(payload_type, 0, seq, seq * 3000, ssrc,
                                                      extension_block(elements), payload)), address)

            for seq in range(1, 31):
                for rid, ssrc in LAYERS.items():
                    if rid == "m" and seq in lost_m:
                        continue
                    send(ssrc, seq, rid=rid if seq <= 3 else None)
                send(STRANGER, seq, rid="x" if seq <= 3 else None)
                send(UNTAGGED, seq)
                await asyncio.sleep(0.005)
            send(RTX_OF_H, 1, payload_type=rtx, repaired="h", payload=(7).to_bytes(2, "big") + b"\x90\x80\x01\x51rt")
            await asyncio.sleep(0.05)
            arriving = plane.publisher_stats("publisher:video").layers_arriving  # within LAYER_SILENCE of the last

            def nacks() -> dict[int, set[int]]:
                out: dict[int, set[int]] = {}
                for p in heard:
                    if isinstance(p, RtcpRtpfbPacket) and p.fmt == RTCP_RTPFB_NACK:
                        out.setdefault(p.media_ssrc, set()).update(p.lost)
                return out

            def reported() -> set[int]:
                return {r.ssrc for p in heard if isinstance(p, RtcpRrPacket) for r in p.reports}

            for _ in range(100):
                if set(LAYERS.values()) <= reported():
                    break
                await asyncio.sleep(0.05)
            assert arrived[0] == list(range(1, 31))
            assert arrived[1] == [s for s in range(1, 31) if s not in lost_m]
            assert arrived[2] == list(range(1, 31)) + [7]  # the retransmission, unwrapped onto h
            assert nacks() == {LAYERS["m"]: lost_m}  # not a sequence number of another layer
            assert set(LAYERS.values()) <= reported()
            stats = plane.publisher_stats("publisher:video")
            assert stats.unknown_layer_packets == 60  # the stranger's and the untagged ones
            assert stats.unknown_rids == {"x"}
            assert arriving == (True, True, True)
            assert server.connectionState == "connected"
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())


def test_the_remb_a_publisher_gets_is_capped_at_the_rooms_max_video_bitrate():
    async def main():
        cap = 40_000  # far below the ~2 Mbit/s it would be told otherwise
        publisher, server, plane = await connect(lambda: cap)
        heard: list = []
        try:
            sender = publisher.getTransceivers()[0].sender

            async def on_rtcp(packet, handle):
                heard.append(packet)

            compat.intercept_sender(sender, lambda parameters: None, on_rtcp)
            plane.learn_ssrc("publisher:video", sender._ssrc, "h", None)  # the layer the hand-made stream is
            # 1000-byte packets at 300 a second (2.4 Mbit/s) sent 1 ms apart: REMB comes soon.
            plain, stream, socket, address = datagrams(publisher, 300, 1000, spacing=0.001)
            pumping = asyncio.ensure_future(pump(stream, socket, address, plane, pace=BATCH / 300))

            def rembs() -> list[int]:
                return [unpack_remb_fci(p.fci)[0] for p in heard
                        if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_APP]

            for _ in range(100):
                if rembs() or pumping.done():
                    break
                await asyncio.sleep(0.05)
            pumping.cancel()
            assert rembs() and max(rembs()) <= cap
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())


@pytest.mark.slow
def test_a_publisher_steady_on_its_lowest_layer_is_told_the_ceiling_so_it_can_turn_its_next_layers_on():
    async def main():
        publisher, server, plane = await connect()  # a room without max_video_bitrate
        heard: list = []
        try:
            sender = publisher.getTransceivers()[0].sender

            async def on_rtcp(packet, handle):
                heard.append(packet)

            compat.intercept_sender(sender, lambda parameters: None, on_rtcp)
            plane.learn_ssrc("publisher:video", sender._ssrc, "l", None)
            # 625-byte packets at 30 a second (150 kbit/s, about what `l` sends) for 5 s: the
            # estimator's own figure would stay under 1.5 times that plus 10 kbit/s.
            plain, stream, socket, address = datagrams(publisher, 150, 625, spacing=1 / 30)
            await pump(stream, socket, address, plane, pace=BATCH / 30)
            await asyncio.sleep(0.2)
            rembs = [unpack_remb_fci(p.fci)[0] for p in heard
                     if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_APP]
            assert rembs and rembs[-1] == DEFAULT_CEILING, rembs
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())
