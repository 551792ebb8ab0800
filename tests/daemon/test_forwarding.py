"""What a subscriber's stream looks like on the wire, and what happens when its socket cannot keep up."""

from __future__ import annotations

import asyncio
import os
import socket
from types import SimpleNamespace

import pytest
from aiortc.rtcdtlstransport import State
from pylibsrtp import Policy, Session
from aiortc.rtcrtpparameters import (RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters,
                                     RTCRtpParameters)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from videoroomd.media import event_loop, gate
from videoroomd.media.aiortc_compat import rtp as compat
from videoroomd.media.publisher import PublishedTrack
from videoroomd.media.subscriber import ABS_SEND_TIME, AUDIO_LEVEL, MID, ForwardedTrack, SendParameters
from videoroomd.media.rtp_packets import rtp_packet

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=101, parameters={"apt": 100})
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def negotiated(codecs, extensions: dict[str, int], mid: str | None = "3") -> RTCRtpParameters:
    return RTCRtpParameters(codecs=codecs, muxId=mid,
                            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in extensions.items()])


def read_back(parameters: RTCRtpParameters, extensions: bytes) -> RtpPacket:
    """The packet as the subscriber's aiortc would parse it, with the same negotiation."""
    ids = HeaderExtensionsMap()
    ids.configure(parameters)
    return RtpPacket.parse(rtp_packet(100, 0, 1, 2, 3, extensions, b"data"), ids)


def test_video_carries_the_subscribers_mid_and_the_send_time():
    parameters = negotiated([VP8, RTX], {MID: 4, ABS_SEND_TIME: 9})
    stream = SendParameters(parameters, ssrc=11, rtx_ssrc=12)
    assert (stream.payload_type, stream.rtx_payload_type, stream.clock_rate) == (100, 101, 90000)
    for send_time in (0, 0x123456, 0xFFFFFF):
        packet = read_back(parameters, stream.extensions(send_time.to_bytes(3, "big"), None))
        assert (packet.extensions.mid, packet.extensions.abs_send_time) == ("3", send_time)


@pytest.mark.parametrize("level", [None, (True, 25), (False, 127)])
def test_audio_carries_the_mid_and_the_publishers_level(level):
    parameters = negotiated([OPUS], {MID: 1, AUDIO_LEVEL: 2})
    stream = SendParameters(parameters, ssrc=11, rtx_ssrc=12)
    assert stream.rtx_payload_type is None
    packet = read_back(parameters, stream.extensions(b"\x00\x00\x01", level))
    assert (packet.extensions.mid, packet.extensions.audio_level) == ("3", level)
    assert packet.extensions.abs_send_time is None  # not negotiated for this stream


def test_a_level_the_subscriber_did_not_negotiate_is_left_out():
    parameters = negotiated([OPUS], {MID: 1})
    packet = read_back(parameters, SendParameters(parameters, 11, 12).extensions(b"\x00\x00\x01", (True, 30)))
    assert (packet.extensions.mid, packet.extensions.audio_level) == ("3", None)


def test_without_negotiated_extensions_the_header_has_none():
    parameters = negotiated([VP8], {}, mid=None)
    stream = SendParameters(parameters, 11, 12)
    assert stream.extensions(b"\x00\x00\x01", None) == b""
    assert stream.rtx_payload_type is None


KEY = os.urandom(44)  # AES-256-GCM key and salt, shared by the two ends below
KEYFRAME_START = bytes([0x10, 0x50]) + b"k" * 1000  # VP8 descriptor S=1, frame tag P=0
DELTA = bytes([0x10, 0x51]) + b"d" * 1000


def srtp(direction: int) -> Session:
    return Session(policy=Policy(key=KEY, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_256_GCM))


class Publisher:
    """Stands in for aiortc's receiver of the published track: notes the PLIs asked of it."""

    def __init__(self):
        self.plis = 0

    async def _send_rtcp_pli(self, ssrc: int) -> None:
        self.plis += 1


def slow_subscriber(protocol, address: str) -> ForwardedTrack:
    """A subscriber whose connection writes through ``protocol.transport``: a plain socket, or
    a transport of the loop the media runs on (the forwarder writes to the socket under it).

    A UDP socket on loopback never refuses a datagram (the kernel hands it to the
    receiver at once or drops it), so the condition under test cannot happen on one
    here; a Unix datagram socket whose reader stops does refuse, as a real
    network's full send queue does. aiortc's sender and DTLS transport are stand-ins
    carrying what the forwarder reads; the SRTP session is real.
    """
    pair = SimpleNamespace(protocol=protocol, remote_addr=address)
    dtls = SimpleNamespace(_state=State.CONNECTED, _tx_srtp=srtp(Policy.SSRC_ANY_OUTBOUND),
                           transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair})))
    sender = SimpleNamespace(transport=dtls, _ssrc=11, _rtx_ssrc=12, replaceTrack=lambda track: None,
                             _RTCRtpSender__ntp_timestamp=0, _RTCRtpSender__rtp_timestamp=0,
                             _RTCRtpSender__octet_count=0, _RTCRtpSender__packet_count=0)
    track = ForwardedTrack("video", sender)
    track.configure(negotiated([VP8, RTX], {MID: 1}))
    return track


def received(reader: socket.socket) -> list[RtpPacket]:
    """Every packet waiting at the subscriber, decrypted."""
    inbound, packets = srtp(Policy.SSRC_ANY_INBOUND), []
    while True:
        try:
            data = reader.recv(2048)
        except BlockingIOError:
            return packets
        packets.append(RtpPacket.parse(inbound.unprotect(data)))


def test_a_subscriber_that_cannot_keep_up_skips_to_the_next_keyframe(tmp_path):
    async def main():
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        reader.bind(str(tmp_path / "subscriber"))
        reader.setblocking(False)
        writer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        writer.setblocking(False)
        publisher = Publisher()
        published = PublishedTrack("a:video", "video", publisher)
        subscriber = slow_subscriber(SimpleNamespace(transport=writer), str(tmp_path / "subscriber"))
        subscriber.switch(published)
        seq = 1000

        def publish(payload: bytes) -> None:
            nonlocal seq
            packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 100, ssrc=42, payload=payload)
            published.on_packet(packet)
            seq += 1

        publish(KEYFRAME_START)
        while subscriber.counters.packets_dropped == 0:  # the subscriber stops reading; its queue fills
            assert seq < 2000, "the socket never refused a packet"
            publish(DELTA)
        await asyncio.sleep(0)  # the keyframe request goes out
        asked = publisher.plis
        assert asked >= 1  # a keyframe was asked of the publisher
        before = received(reader)  # the subscriber catches up with what it was sent
        assert before[0].payload == KEYFRAME_START and len(before) < seq - 1000
        for _ in range(20):  # what follows cannot be decoded without the frames it lost
            publish(DELTA)
        assert received(reader) == []
        publish(KEYFRAME_START)
        publish(DELTA)
        after = received(reader)
        # The same stream goes on at the keyframe: the same SSRC, sequence numbers past the
        # ones it was sent (the packet that could not go left a gap of one, in the history).
        assert [p.payload for p in after] == [KEYFRAME_START, DELTA]
        assert after[0].ssrc == before[-1].ssrc == 11
        assert (after[0].sequence_number - before[-1].sequence_number) & 0xFFFF == 2
        assert after[1].sequence_number == (after[0].sequence_number + 1) & 0xFFFF

    asyncio.run(main())


class MediaSocket(asyncio.DatagramProtocol):
    """Keeps its transport, as aioice's protocol of a media socket does."""

    def connection_made(self, transport):
        self.transport = transport


def test_on_the_media_loop_a_subscriber_that_cannot_keep_up_is_dropped_not_buffered(tmp_path):
    """The forwarder writes to the socket under the loop's transport: a full send queue drops
    packets for that subscriber, and nothing piles up in the loop's own buffer."""
    async def main():
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        reader.bind(str(tmp_path / "subscriber"))
        reader.setblocking(False)
        writer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        writer.setblocking(False)
        transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(MediaSocket, sock=writer)
        published = PublishedTrack("a:video", "video", Publisher())
        subscriber = slow_subscriber(protocol, str(tmp_path / "subscriber"))
        subscriber.switch(published)
        for seq in range(1000, 2000):
            published.on_packet(RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 100, ssrc=42,
                                          payload=KEYFRAME_START if seq == 1000 else DELTA))
            if subscriber.counters.packets_dropped:
                break
        assert subscriber.counters.packets_dropped == 1, "the socket never refused a packet"
        assert transport.get_write_buffer_size() == 0
        got = received(reader)
        assert got[0].payload == KEYFRAME_START and len(got) == seq - 1000
        transport.close()  # the connection ends: the forwarder's socket on it is closed too
        await asyncio.sleep(0.05)
        assert not subscriber._send(b"\x80" * 20)
        assert compat.pair_socket(SimpleNamespace(protocol=protocol)) is None

    event_loop.run(main())


def test_keyframe_requests_are_rate_limited_but_a_late_switch_need_not_wait_out_the_interval():
    async def main():
        publisher = Publisher()
        published = PublishedTrack("a:video", "video", publisher)
        published.on_packet(RtpPacket(payload_type=96, sequence_number=1, ssrc=42, payload=DELTA))

        async def asked() -> int:
            await asyncio.sleep(0)  # the PLI task runs
            return publisher.plis

        published.request_keyframe(starting=True)
        assert await asked() == 1
        published.request_keyframe(starting=True)  # unanswered yet: the keyframe may be on its way
        published.request_keyframe()
        assert await asked() == 1
        published.on_packet(RtpPacket(payload_type=96, sequence_number=2, ssrc=42, payload=KEYFRAME_START))
        await asyncio.sleep(gate.KEYFRAME_GAP + 0.05)
        published.request_keyframe()  # a subscriber's own PLI: the usual wait
        assert await asked() == 1
        published.request_keyframe(starting=True)  # one that switched to it after that keyframe passed
        assert await asked() == 2
        published.request_keyframe(starting=True)  # and the new request is unanswered again
        assert await asked() == 2

    asyncio.run(main())
