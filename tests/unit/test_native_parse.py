"""The compiled parsers (dataplane/csrc/parse.c): RFC 7983 demultiplexing, RTP headers read as aiortc reads
them, header extension elements found in both RFC 8285 forms, RTCP compounds walked as aiortc walks them,
and every lying length refused rather than read past."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtpPacket
from hypothesis import given, settings, strategies as st

from testsupport.rtp_datagrams import compounds, nack, one_byte_elements, receiver_report, rtcp, rtp, \
    two_byte_elements
from videoroomd.media.dataplane.native_module import load

native = load()


@pytest.mark.parametrize("first,second,kind", [
    (0, 1, "STUN"), (1, 1, "STUN"), (3, 0, "STUN"), (16, 0, "ZRTP"), (20, 0, "DTLS"), (22, 254, "DTLS"),
    (63, 0, "DTLS"), (64, 0, "TURN_CHANNEL"), (79, 0, "TURN_CHANNEL"), (0x80, 96, "RTP"), (0x90, 0xE0, "RTP"),
    (0x80, 200, "RTCP"), (0x81, 201, "RTCP"), (0xBF, 223, "RTCP"), (0x80, 224, "RTP"), (4, 0, "DROP"),
    (80, 0, "DROP"), (127, 0, "DROP"), (192, 200, "DROP"), (255, 0, "DROP"),
])
def test_each_first_byte_goes_where_rfc7983_sends_it(first, second, kind):
    assert native.demux(bytes([first, second]) + bytes(20)) == getattr(native, kind)


def test_an_empty_or_one_byte_rtp_datagram_is_dropped():
    assert native.demux(b"") == native.DROP
    assert native.demux(b"\x80") == native.DROP


@settings(max_examples=300, deadline=None)
@given(marker=st.booleans(), pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1),
       ssrc=st.integers(0, 2**32 - 1), csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15),
       elements=st.one_of(st.none(), st.dictionaries(st.integers(1, 14), st.binary(min_size=1, max_size=16),
                                                     max_size=5)),
       two_byte=st.booleans(), padding=st.integers(0, 255), payload=st.binary(max_size=60))
def test_every_header_field_reads_as_aiortc_reads_it(marker, pt, seq, ts, ssrc, csrcs, elements, two_byte, padding,
                                                     payload):
    extension = None
    if elements is not None:
        extension = (two_byte_elements if two_byte else one_byte_elements)(elements)
    data = rtp(seq, ssrc=ssrc, pt=pt, marker=marker, timestamp=ts, csrcs=tuple(csrcs), extension=extension,
               padding=padding, payload=payload)
    ours, theirs = native.parse_rtp(data), RtpPacket.parse(data, HeaderExtensionsMap())
    assert (ours["marker"], ours["payload_type"], ours["sequence"], ours["timestamp"], ours["ssrc"]) == \
        (bool(theirs.marker), theirs.payload_type, theirs.sequence_number, theirs.timestamp, theirs.ssrc)
    assert ours["csrc_count"] == len(theirs.csrc) and ours["padding"] == theirs.padding_size
    start = ours["header_length"]
    assert data[start:start + ours["payload_length"]] == theirs.payload == payload
    for element_id in range(1, 15):
        assert native.rtp_extension(data, element_id) == (elements or {}).get(element_id)


def test_two_byte_elements_reach_past_id_14_and_may_be_empty():
    data = rtp(1, extension=two_byte_elements({200: b"x" * 255, 15: b"", 3: b"abc"}))
    assert native.rtp_extension(data, 200) == b"x" * 255
    assert native.rtp_extension(data, 15) == b""
    assert native.rtp_extension(data, 3) == b"abc"
    assert native.rtp_extension(data, 4) is None


def test_one_byte_elements_stop_at_id_15_and_skip_padding_bytes():
    data = rtp(1, extension=(0xBEDE, b"\x00\x00\x10a\xf0\x20b"))
    assert native.rtp_extension(data, 1) == b"a"
    assert native.rtp_extension(data, 2) is None  # after the reserved id 15: not read
    assert native.rtp_extension(rtp(1, extension=(0x0001, b"\x10abc")), 1) is None  # not an RFC 8285 profile


@pytest.mark.parametrize("data", [
    b"\x80\x60\x00",                                   # shorter than a header
    b"\x40" + bytes(11),                               # version 1
    b"\x8f" + bytes(11) + bytes(56),                   # fifteen CSRCs announced, fourteen there
    b"\x90" + bytes(11) + b"\xbe\xde",                 # extension header cut
    b"\x90" + bytes(11) + b"\xbe\xde\xff\xff" + bytes(1000),  # an extension length past the end
    b"\xa0" + bytes(11),                               # padding announced, no byte to count it
    b"\xa0" + bytes(11) + b"\x00",                     # padding count 0
    b"\xa0" + bytes(11) + b"\x02",                     # more padding than payload
    b"\xb1" + bytes(11) + bytes(4) + b"\xbe\xde\x00\x00" + b"\xff",  # padding 255 after an empty extension
])
def test_a_lying_rtp_header_is_refused(data):
    with pytest.raises(ValueError):
        RtpPacket.parse(data, HeaderExtensionsMap())
    with pytest.raises(native.ParseError):
        native.parse_rtp(data)
    with pytest.raises(native.ParseError):
        native.rtp_extension(data, 1)


@pytest.mark.parametrize("elements", [
    b"\x33\x00\x00\x00",          # one-byte: 4 bytes announced, 3 in the block
    b"\x00\x00\x00\x1f",          # one-byte: padding, then 16 bytes announced at the block's end
])
def test_an_element_running_past_its_block_is_refused_on_lookup(elements):
    data = rtp(1, extension=(0xBEDE, elements))
    assert native.parse_rtp(data)["extension_length"] == 4  # the block itself is whole
    with pytest.raises(native.ParseError, match="extension"):
        native.rtp_extension(data, 9)
    with pytest.raises(native.ParseError, match="extension"):
        native.rtp_extension(rtp(1, extension=(0x1000, b"\x05\x09ab")), 9)  # two-byte: 9 announced, 2 there


AIORTC_TYPES = {"RtcpSrPacket": 200, "RtcpRrPacket": 201, "RtcpSdesPacket": 202, "RtcpByePacket": 203,
                "RtcpRtpfbPacket": 205, "RtcpPsfbPacket": 206}


@pytest.mark.parametrize("compound", compounds())
def test_an_rtcp_compound_walks_as_aiortc_reads_it(compound):
    walked = native.walk_rtcp(compound)
    assert [packet_type for packet_type, *_ in walked] == \
        [AIORTC_TYPES[type(p).__name__] for p in RtcpPacket.parse(compound)]
    assert [offset for *_, offset, _length, _padding in walked] == \
        [sum(length for *_, length, _padding in walked[:i]) for i in range(len(walked))]
    assert sum(length for *_, length, _padding in walked) == len(compound)


def test_rtcp_walk_reports_type_count_ssrc_and_place():
    compound = receiver_report(ssrc=7) + nack(ssrc=9)
    assert native.walk_rtcp(compound) == [(201, 1, 7, 0, 32, 0), (205, 1, 9, 32, 16, 0)]


@pytest.mark.parametrize("data", [
    b"",                                                     # nothing
    b"\x80\xc8\x00",                                         # a header cut
    rtcp(200, 0, bytes(24))[:-4],                            # a length one word past the end
    receiver_report() + b"\x80\xcd\xff\xff" + bytes(8),      # a second packet lying about its length
    receiver_report() + b"\x80",                             # trailing bytes that are no header
    b"\x40\xc9\x00\x00",                                     # version 1
    b"\xa0\xc9\x00\x01\x00\x00\x00\x00",                     # padding count 0
    b"\xa0\xc9\x00\x01\x00\x00\x00\x05",                     # padding past the packet's own header
])
def test_a_lying_rtcp_compound_is_refused(data):
    with pytest.raises(native.ParseError):
        native.walk_rtcp(data)


def test_a_compound_of_thousands_of_empty_packets_walks():
    data = struct.pack("!BBH", 0x80, 204, 0) * 16000
    walked = native.walk_rtcp(data)
    assert len(walked) == 16000 and walked[-1] == (204, 0, 0, 63996, 4, 0)
