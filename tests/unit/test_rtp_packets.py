"""The forwarder's RTP writing, read back by aiortc's own parser; VP8 keyframe starts from real encoder output."""

from __future__ import annotations

import fractions
from datetime import datetime, timezone

import numpy
import pytest
from aiortc import clock
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from av import VideoFrame

from videoroomd.media.dataplane.rtp_packets import (abs_send_time, extension_block, ntp_time, one_byte_element, rtp_packet,
                                           vp8_starts_keyframe)

MID, LEVEL, ABS = 1, 2, 3


def extension_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=MID, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=LEVEL, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        RTCRtpHeaderExtensionParameters(id=ABS, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    ]))
    return extensions


def test_a_written_packet_reads_back_with_every_field_and_extension():
    elements = (one_byte_element(MID, b"12") + one_byte_element(ABS, (123456).to_bytes(3, "big"))
                + one_byte_element(LEVEL, bytes([0x80 | 30])))
    data = rtp_packet(111, 1, 65535, 0xFFFFFFFF, 0xDEADBEEF, extension_block(elements), b"opus!")
    packet = RtpPacket.parse(data, extension_map())
    assert (packet.payload_type, packet.marker, packet.sequence_number) == (111, 1, 65535)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (0xFFFFFFFF, 0xDEADBEEF, b"opus!")
    assert packet.extensions.mid == "12"
    assert packet.extensions.abs_send_time == 123456
    assert packet.extensions.audio_level == (True, 30)


def test_a_packet_without_extensions_or_with_padding_reads_back():
    plain = RtpPacket.parse(rtp_packet(96, 0, 7, 90000, 1, b"", b"vp8"), extension_map())
    assert (plain.sequence_number, plain.timestamp, plain.payload, plain.marker) == (7, 90000, b"vp8", 0)
    padded = RtpPacket.parse(rtp_packet(96, 0, 8, 90000, 1, extension_block(one_byte_element(MID, b"0")), b"",
                                        padding=200), extension_map())
    assert (padded.payload, padded.padding_size, padded.extensions.mid) == (b"", 200, "0")


def test_extension_blocks_are_padded_to_whole_words():
    assert extension_block(b"") == b""
    block = extension_block(one_byte_element(MID, b"1"))  # 2 bytes of element, 2 of padding
    assert block == b"\xbe\xde\x00\x01" + bytes([MID << 4, ord("1"), 0, 0])


@pytest.mark.parametrize("ext_id, value", [(0, b"x"), (15, b"x"), (1, b""), (1, b"x" * 17)])
def test_one_byte_elements_refuse_what_the_format_cannot_carry(ext_id, value):
    with pytest.raises(ValueError, match="one-byte header extension"):
        one_byte_element(ext_id, value)


def test_send_time_and_ntp_time_agree_with_aiortcs_clock():
    moment = datetime(2026, 11, 23, 8, 30, 15, 250000, tzinfo=timezone.utc)
    ntp = clock.datetime_to_ntp(moment)
    unix = moment.timestamp()
    assert abs(ntp_time(unix) - ntp) < 2 ** 32 // 1000  # within a millisecond
    assert abs_send_time(unix) == (ntp >> 14) & 0xFFFFFF


def vp8_payloads(frames: int) -> list[list[bytes]]:
    """The RTP payloads of ``frames`` encoded frames of a moving picture (the first a keyframe)."""
    encoder = Vp8Encoder()
    packets = []
    for index in range(frames):
        image = numpy.zeros((240, 320, 3), numpy.uint8)
        image[:, (index * 8) % 320] = 255
        image[::7, ::5] = numpy.random.default_rng(index).integers(0, 255, (35, 64, 3), dtype=numpy.uint8)
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = index * 3000, fractions.Fraction(1, 90000)
        payloads, _timestamp = encoder.encode(frame, force_keyframe=index == 3)
        packets.append(payloads)
    return packets


def test_only_the_first_packet_of_a_keyframe_starts_one():
    frames = vp8_payloads(5)
    assert len(frames[0]) > 1  # a keyframe of this size spans several packets
    starts = [[vp8_starts_keyframe(p) for p in payloads] for payloads in frames]
    assert starts[0] == [True] + [False] * (len(frames[0]) - 1)
    assert starts[3][0] is True  # forced
    assert not any(starts[1] + starts[2] + starts[4])


@pytest.mark.parametrize("descriptor", [
    bytes([0x10]),                          # S only
    bytes([0x90, 0x80, 0x05]),              # X, I: 7-bit picture id
    bytes([0x90, 0x80, 0x81, 0x23]),        # X, I: 15-bit picture id
    bytes([0x90, 0xE0, 0x81, 0x23, 0x07, 0x40]),  # X, I, L, T/K
])
def test_keyframe_starts_are_found_behind_every_descriptor_layout(descriptor):
    key, delta = b"\x50\x01\x00", b"\x51\x01\x00"  # VP8 frame tags: P bit 0 on a key frame
    assert vp8_starts_keyframe(descriptor + key)
    assert not vp8_starts_keyframe(descriptor + delta)
    assert not vp8_starts_keyframe(bytes([descriptor[0] & ~0x10]) + descriptor[1:] + key)  # not a start
    assert not vp8_starts_keyframe(bytes([descriptor[0] | 0x01]) + descriptor[1:] + key)  # partition 1
    assert not vp8_starts_keyframe(descriptor)  # cut short


def test_truncated_payloads_are_not_keyframes():
    assert not vp8_starts_keyframe(b"")
    assert not vp8_starts_keyframe(b"\x10")
    assert not vp8_starts_keyframe(b"\x90\x80")
