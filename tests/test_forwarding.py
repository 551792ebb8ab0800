"""What a subscriber's stream looks like on the wire, from its negotiated parameters."""

from __future__ import annotations

import pytest
from aiortc.rtcrtpparameters import (RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters,
                                     RTCRtpParameters)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from videoroomd.engine.forwarding import ABS_SEND_TIME, AUDIO_LEVEL, MID, SendParameters
from videoroomd.engine.rtp_packets import rtp_packet

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
