"""A client's RTCP about the streams the compiled plane sends it, read in C (_native.Feedback,
csrc/feedback.c): NACKs answered with retransmissions from the subscriber's history, PLI and FIR turned
into keyframe requests of the publisher, REMB and a video report's lost fraction summed up for the
connection's bandwidth policy; sender reports and BYEs, and feedback about streams it does not know, go up
to aiortc's path; a compound aiortc's parser would refuse goes up whole with nothing of it done."""

from __future__ import annotations

import socket
import struct

import pytest
from aiortc.rtp import RtcpPacket, RtpPacket, unpack_remb_fci

from testsupport.rtp_datagrams import rtcp, rtp, sdes_cname, sender_report
from videoroomd.media.dataplane.interface import KeyframeNeeded, NativeRoute, RewriteStart, StreamParams
from videoroomd.media.dataplane.native_module import load
from videoroomd.media.dataplane.native_plane import NativeDataPlane

native = load()
KEY, SALT = bytes(range(16)), bytes(range(50, 64))
OUT, OUT_RTX = 7, 8                  # the stream the plane sends the subscriber
CLIENT = 0xC0FFEE                    # the client's own SSRC, as its reports name it
KEYFRAME = b"\x10\x00\x9d\x01\x2a" + bytes(60)


def report_block(ssrc: int, fraction: int) -> bytes:
    return struct.pack("!IB3sIIII", ssrc, fraction, b"\x00\x00\x05", 1234, 20, 0, 0)


def receiver_report(*blocks: bytes) -> bytes:
    return rtcp(201, len(blocks), struct.pack("!I", CLIENT) + b"".join(blocks))


def nack(media: int, *fcis: tuple[int, int]) -> bytes:
    return rtcp(205, 1, struct.pack("!II", CLIENT, media) + b"".join(struct.pack("!HH", *f) for f in fcis))


def pli(media: int) -> bytes:
    return rtcp(206, 1, struct.pack("!II", CLIENT, media))


def fir(target: int) -> bytes:  # RFC 5104: the media SSRC field is 0, the target is in the FCI
    return rtcp(206, 4, struct.pack("!II", CLIENT, 0) + struct.pack("!IB3x", target, 1))


def remb(exponent: int, mantissa: int, *named: int) -> bytes:
    fci = b"REMB" + bytes([len(named), exponent << 2 | mantissa >> 16]) + struct.pack("!H", mantissa & 0xFFFF)
    return rtcp(206, 15, struct.pack("!II", CLIENT, 0) + fci + b"".join(struct.pack("!I", s) for s in named))


def bye(ssrc: int) -> bytes:
    return rtcp(203, 1, struct.pack("!I", ssrc))


class Call:
    """A plane with a VP8 publisher and one subscriber on it (writing into a socket pair), the
    publisher's first packets forwarded; the subscriber's connection's Feedback."""

    def __init__(self):
        self.plane = NativeDataPlane()
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.theirs.setblocking(False)
        self.plane.add_publisher("cam", "video")
        self.plane.add_connection("c")
        self.plane.add_subscriber("s", "c", "video", NativeRoute(self.ours, None, native.AES_CM_128_HMAC_SHA1_80, KEY,
                                                                 SALT), RewriteStart(1, 2, 3))
        self.plane.set_stream("s", StreamParams(102, 90000, OUT, OUT_RTX, 103))
        self.plane.link("s", "cam")
        self.feedback = self.plane.feedback("c")
        self.unprotect = native.SrtpSession(native.AES_CM_128_HMAC_SHA1_80, KEY, SALT).unprotect
        for seq in range(100, 110):
            self.plane.receive_datagram("cam", rtp(seq, pt=96, timestamp=seq * 3000, payload=KEYFRAME))
        self.sent = self.received()
        self.plane.drain_events()

    def received(self) -> list[RtpPacket]:
        out = []
        while True:
            try:
                out.append(RtpPacket.parse(self.unprotect(self.theirs.recv(70000))))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@pytest.fixture
def call():
    made = Call()
    yield made
    made.close()


def test_a_nack_is_answered_in_c_with_retransmissions_of_what_aiortc_would_list(call):
    sent = {p.sequence_number: p for p in call.sent}
    first = min(sent)
    compound = receiver_report(report_block(OUT, 0)) + nack(OUT, (first + 1, 0b101))
    assert call.feedback.table.feed(compound) is None  # nothing for Python
    again = call.received()
    [listed] = [p for p in RtcpPacket.parse(compound) if hasattr(p, "lost")]
    assert [p.ssrc for p in again] == [OUT_RTX] * 3 and [p.payload_type for p in again] == [103] * 3
    assert [struct.unpack("!H", p.payload[:2])[0] for p in again] == listed.lost == [first + 1, first + 2, first + 4]
    assert [p.payload[2:] for p in again] == [sent[seq].payload for seq in listed.lost]
    assert call.feedback.table.counters["nacks"] == 1 and call.plane.counters.packets_retransmitted == 3


@pytest.mark.parametrize("request_", [pli(OUT), fir(OUT)], ids=["PLI", "FIR"])
def test_a_pli_or_fir_asks_the_publisher_for_a_keyframe(call, request_):
    assert call.feedback.table.feed(receiver_report() + request_) is None
    assert call.plane.drain_events() == [KeyframeNeeded("cam", 0x1234ABCD)]  # the SSRC it sends with
    assert call.feedback.table.counters["keyframe_requests"] == 1


def test_remb_and_loss_are_summed_up_for_the_connections_bandwidth(call):
    connection = call.plane._connections["c"]
    assert call.feedback.table.feed(receiver_report(report_block(OUT, 0)) + remb(3, 150000, OUT)) is None
    assert call.feedback.table.due
    bitrate, named = unpack_remb_fci(remb(3, 150000, OUT)[12:])
    assert call.feedback.table.take() == (bitrate, 0) and named == [OUT]
    assert not call.feedback.table.due and call.feedback.table.take() is None

    # a run of reports that lost nothing is told once; a loss each time, and the newest REMB of a batch
    assert call.feedback.table.feed(receiver_report(report_block(OUT, 0))) is None
    assert not call.feedback.table.due
    call.feedback.table.feed(remb(3, 100000, OUT))
    call.feedback.table.feed(receiver_report(report_block(OUT, 64)) + remb(3, 90000, OUT))
    call.feedback.take()
    assert connection.bandwidth.remb == 90000 * 8 and connection.bandwidth.loss == 0.25
    call.feedback.table.feed(receiver_report(report_block(OUT, 64)))
    assert call.feedback.table.take() == (None, 64)

    # a REMB naming none of the connection's streams is not the client's estimate for us
    call.feedback.table.feed(remb(1, 10, 0xBAD))
    assert not call.feedback.table.due


def test_sender_reports_byes_and_unknown_streams_go_up_as_they_were(call):
    sr = sender_report(CLIENT)
    table = call.feedback.table
    assert table.feed(sr + sdes_cname(CLIENT) + receiver_report(report_block(OUT, 0)) + pli(OUT)) == sr
    assert table.feed(bye(CLIENT)) == bye(CLIENT)
    stranger = nack(0xBAD, (5, 0)) + pli(0xBAD)
    assert table.feed(receiver_report() + stranger) == stranger
    assert call.received() == []  # nothing was sent again for a stream not known
    assert table.feed(sdes_cname(CLIENT) + rtcp(207, 0, bytes(8))) is None  # what aiortc reads nothing of


@pytest.mark.parametrize("broken", [
    rtcp(201, 1, struct.pack("!I", CLIENT) + report_block(OUT, 9)[:20]) + pli(OUT),   # a report's length lies
    pli(OUT) + b"\x81\xce\x00\x05" + bytes(4),                                           # cut short
    pli(OUT) + nack(OUT, (1, 0))[:-1],                                                   # cut by a byte
    b"\xa1\xce\x00\x02" + struct.pack("!II", CLIENT, OUT)[:7] + b"\x09",                # padding past the body
    rtcp(202, 2, struct.pack("!IBB", CLIENT, 1, 30) + bytes(2)) + pli(OUT),             # an SDES item past its end
    b"\x40\xce\x00\x02" + struct.pack("!II", CLIENT, OUT),                             # version 1
    b"".join([pli(OUT)] * 33),                                                           # more packets than read here
])
def test_a_compound_aiortc_would_refuse_goes_up_whole_with_nothing_done(call, broken):
    assert call.feedback.table.feed(broken) == broken
    assert call.plane.drain_events() == [] and call.received() == []
    assert call.feedback.table.counters["whole"] == 1


def test_a_stream_removed_or_replaced_is_no_longer_acted_on(call):
    core = call.plane._core
    table = native.Feedback(core)
    index = call.plane._slots["s"].index
    assert table.add(99, index, True, 100.0)  # an index whose subscriber sends another SSRC now
    assert table.feed(pli(99)) == pli(99)
    call.plane.remove_subscriber("s")  # discards its SSRC from the connection's table
    assert call.feedback.table.feed(pli(OUT)) == pli(OUT)
    assert call.feedback.table.counters["streams"] == 0 and call.plane.drain_events() == []


def test_the_table_is_bounded_and_checks_what_it_is_given(call):
    core, index = call.plane._core, call.plane._slots["s"].index
    table = native.Feedback(core)
    assert all(table.add(ssrc, index, True, 1.0) for ssrc in range(128))
    assert table.add(500, index, True, 1.0) is False and table.add(5, index, False, 2.0) is True  # an update
    with pytest.raises(ValueError):
        table.add(2 ** 32, index, True, 1.0)
    with pytest.raises(ValueError):
        table.add(1, index, True, -1.0)
    with pytest.raises(IndexError):
        table.add(1, index + 1, True, 1.0)
    with pytest.raises(TypeError):
        native.Feedback(object())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(TypeError):
        native.Port(sock.fileno()).set_feedback(object())
