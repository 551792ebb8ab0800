"""The receive path's lean RTP parse reads what aiortc's RtpPacket.parse reads, for every field the
server uses (header, payload, padding, abs-send-time, audio level, mid, RTP stream ids), and refuses
what it refuses."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket
from hypothesis import given, settings, strategies as st

from videoroomd.media.webrtc.compat.rtp import extension_ids, parse_received

SEND_TIME_ID, LEVEL_ID, MID_ID, RID_ID, REPAIRED_ID = 3, 1, 4, 5, 6


URIS = {"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": SEND_TIME_ID,
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level": LEVEL_ID,
        "urn:ietf:params:rtp-hdrext:sdes:mid": MID_ID,
        "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id": RID_ID,
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id": REPAIRED_ID}


def ids_and_map() -> tuple[HeaderExtensions, HeaderExtensionsMap]:
    """The ids as a negotiation sets them, and the map aiortc's parse reads them from."""
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(RTCRtpParameters(
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in URIS.items()]))
    ids = extension_ids(extensions_map)
    assert (ids.abs_send_time, ids.audio_level, ids.mid, ids.rtp_stream_id, ids.repaired_rtp_stream_id) == \
        (SEND_TIME_ID, LEVEL_ID, MID_ID, RID_ID, REPAIRED_ID)
    return ids, extensions_map


def packet_bytes(marker, pt, seq, ts, ssrc, csrcs, elements, padding, payload) -> bytes:
    first = 0x80 | len(csrcs)
    body = b"".join(struct.pack("!L", c) for c in csrcs)
    if elements is not None:
        first |= 0x10
        raw = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements)
        raw += b"\x00" * (-len(raw) % 4)
        body += struct.pack("!HH", 0xBEDE, len(raw) // 4) + raw
    tail = b""
    if padding:
        first |= 0x20
        tail = b"\x00" * (padding - 1) + bytes([padding])
    return struct.pack("!BBHII", first, (marker << 7) | pt, seq, ts, ssrc) + body + payload + tail


element = st.one_of(
    st.tuples(st.just(SEND_TIME_ID), st.binary(min_size=3, max_size=3)),
    st.tuples(st.just(LEVEL_ID), st.binary(min_size=1, max_size=1)),
    st.tuples(st.just(MID_ID), st.sampled_from([b"0", b"1", b"video"])),
    st.tuples(st.sampled_from([RID_ID, REPAIRED_ID]), st.sampled_from([b"h", b"m", b"q", b"f1"])),
    st.tuples(st.integers(7, 14), st.binary(min_size=1, max_size=16)),
)


@settings(max_examples=300, deadline=None)
@given(marker=st.integers(0, 1), pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1),
       ssrc=st.integers(0, 2**32 - 1), csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=3),
       elements=st.one_of(st.none(), st.lists(element, max_size=5)), padding=st.integers(0, 8),
       payload=st.binary(max_size=40))
def test_every_field_the_server_uses_reads_as_aiortc_reads_it(marker, pt, seq, ts, ssrc, csrcs, elements, padding,
                                                             payload):
    data = packet_bytes(marker, pt, seq, ts, ssrc, csrcs, elements, padding, payload)
    ids, extensions_map = ids_and_map()
    ours, theirs = parse_received(data, ids), RtpPacket.parse(data, extensions_map)
    for field in ("version", "marker", "payload_type", "sequence_number", "timestamp", "ssrc", "csrc", "payload",
                  "padding_size"):
        assert getattr(ours, field) == getattr(theirs, field), field
    for field in ("abs_send_time", "audio_level", "mid", "rtp_stream_id", "repaired_rtp_stream_id"):
        assert getattr(ours.extensions, field) == getattr(theirs.extensions, field), field


@pytest.mark.parametrize("data", [
    b"\x80\x60\x00",                                   # shorter than a header
    b"\x40" + bytes(11),                               # version 1
    b"\x82" + bytes(11) + bytes(4),                    # two CSRCs announced, one there
    b"\x90" + bytes(11) + b"\xbe\xde",                 # extension header cut
    b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4),  # extension shorter than its length
    b"\x90" + bytes(11) + b"\xbe\xde\x00\x01\x33\x00\x00\x00",  # an element running past the block
    b"\xa0" + bytes(11) + b"\x00",                     # padding count 0
    b"\xa0" + bytes(11) + b"\x09",                     # more padding than packet
])
def test_what_aiortc_refuses_is_refused(data):
    ids, extensions_map = ids_and_map()
    with pytest.raises(ValueError):
        RtpPacket.parse(data, extensions_map)
    with pytest.raises(ValueError):
        parse_received(data, ids)


def test_two_byte_extensions_are_read_by_aiortc():
    ids, extensions_map = ids_and_map()
    element = bytes([SEND_TIME_ID, 3]) + b"\x01\x02\x03\x00\x00\x00"  # id, length, value, padding: two words
    data = struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + struct.pack("!HH", 0x1000, 2) + element + b"payload"
    ours, theirs = parse_received(data, ids), RtpPacket.parse(data, extensions_map)
    assert ours.extensions.abs_send_time == theirs.extensions.abs_send_time == 0x010203
    assert ours.payload == theirs.payload == b"payload"
