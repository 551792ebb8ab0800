"""A ported connection's RTP forwarded in C (_native.Port.route, csrc/port_fast*.c) on loopback UDP: a
routed SSRC's datagrams never come up to Python yet reach the plane's subscriber, its gaps come out as
aiortc's NackGenerator finds them and its retransmission (RTX) is unwrapped onto the media SSRC and
forwarded, its receiver statistics are aiortc's StreamStatistics' on the same packets, what the table does
not know goes up to Python as before (a route gone stale, by another payload type or publisher, is told to
Python), and broken
datagrams of a routed SSRC are counted or dropped with memory flat."""

from __future__ import annotations

import asyncio
import os
import random
import select
import struct
import sys
import time
import zlib

import pylibsrtp
import pytest
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RtpPacket

from testsupport.kernel_stamps import kernel_stamps
from testsupport.port_rig import OUT_KEY, OUT_SALT, RX_KEY, RX_SALT, VP8, PortRig
from testsupport.rtp_datagrams import mutated, one_byte_elements, rtp
from videoroomd.media.dataplane.native_module import load
from videoroomd.media.webrtc.compat.native_receive import PortStreamStatistics
from videoroomd.recording.trackfile import MAGIC, TrackEncoder, read_track

native = load()

MEDIA, RTX, OTHER = 0x1234ABCD, 0x5555AAAA, 0x77777777
VP8_RTX = 97
AST_ID = 3
KEYFRAME = b"\x10\x00" + bytes(range(100))  # VP8: S bit, partition 0, key frame


def media(seq: int, payload: bytes = KEYFRAME, ssrc: int = MEDIA, pt: int = VP8, timestamp: int | None = None) -> bytes:
    return rtp(seq, ssrc=ssrc, pt=pt, timestamp=seq * 3000 if timestamp is None else timestamp, payload=payload,
               extension=one_byte_elements({AST_ID: (seq * 100).to_bytes(3, "big")}))


class Rig(PortRig):
    """A Port on a loopback socket, keyed and taking media from ``client``; a compiled plane with a VP8
    publisher whose one subscriber writes into a socket pair; the publisher's MEDIA and RTX routed."""

    def __init__(self):
        super().__init__(MEDIA, abs_send_time_id=AST_ID)
        assert self.port.route(RTX, self.core, self.index, MEDIA, VP8_RTX, 90000, 0, AST_ID, None, None) is True
        inbound = pylibsrtp.Policy(key=OUT_KEY + OUT_SALT, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self.subscriber = pylibsrtp.Session(inbound)

    def send(self, packets: list[bytes]) -> list:
        """Protect and send ``packets``; what one read gives Python (after they all arrived)."""
        before = self.port.counters["datagrams"]
        for data in packets:
            self.client.sendto(self.sender.protect(data), self.server.getsockname())
        media, deadline = [], time.monotonic() + 2
        while self.port.counters["datagrams"] < before + len(packets) and time.monotonic() < deadline:
            media += self.port.read_batch()[1]
            time.sleep(0.001)
        return media

    def forwarded(self) -> list[RtpPacket]:
        out = []
        while True:
            try:
                out.append(RtpPacket.parse(self.subscriber.unprotect(self.theirs.recv(70000))))
            except BlockingIOError:
                return out

@pytest.fixture
def rig():
    made = Rig()
    yield made
    made.close()


def test_a_routed_ssrc_is_forwarded_in_c_its_gaps_nacked_and_its_retransmission_forwarded(rig):
    order = [1, 2, 3, 4, 7, 8, 10, 9]  # 5 and 6 lost, 9 late
    assert rig.send([media(seq) for seq in order]) == []  # nothing came up to Python
    forwarded = rig.forwarded()
    assert [p.payload for p in forwarded] == [KEYFRAME] * len(order)
    assert [p.ssrc for p in forwarded] == [7] * len(order)
    generator = NackGenerator()
    for seq in order:
        generator.add(RtpPacket(sequence_number=seq))
    nacks, arrivals, packets, octets, dropped, stale = rig.port.drain_fast()
    assert nacks == [(MEDIA, sorted(generator.missing))] == [(MEDIA, [5, 6])]
    assert [(ast, ssrc) for _, ast, _, ssrc in arrivals] == [(seq * 100, MEDIA) for seq in order]
    assert all(size == len(KEYFRAME) for _, _, size, _ in arrivals) and packets == len(order) and dropped == 0
    assert stale == []
    now_ms = (time.time() + 2208988800) * 1000
    assert all(now_ms - 2000 < arrival < now_ms + 1 for arrival, _, _, _ in arrivals)
    assert rig.port.drain_fast()[:3] == ([], [], 0)  # drained once

    # the retransmission of 5 (RFC 4588: the original sequence number first) fills the gap, is forwarded
    # as 5 on the subscriber's stream, and finds no new gap
    assert rig.send([rtp(1, ssrc=RTX, pt=VP8_RTX, timestamp=5 * 3000, payload=struct.pack("!H", 5) + KEYFRAME)]) == []
    [again] = rig.forwarded()
    assert again.payload == KEYFRAME and again.ssrc == 7 and again.timestamp == forwarded[3].timestamp + 3000
    assert rig.port.drain_fast()[0] == []
    assert rig.send([media(12)]) == []  # 11 is missing now; 5 no longer is
    assert rig.port.drain_fast()[0] == [(MEDIA, [6, 11])]
    assert rig.plane.publisher_stats("cam").packets == len(order) + 2


def track_file(records: bytes) -> bytes:
    """A track file of ``records`` (read_track reads records after a header)."""
    text = b'{"version":1,"kind":"video","codec":"vp8","clock_rate":90000,"participant":"p","track":"t","start":0}'
    framed = len(text).to_bytes(4, "big") + text
    return MAGIC + framed + zlib.crc32(framed).to_bytes(4, "big") + records


def test_a_recorded_ssrc_stays_in_c_and_the_recording_gets_its_packets_as_track_file_records(rig):
    """While the room records, the Port forwards a routed SSRC in C as before and makes each packet
    (a retransmission as the packet it repairs) the record TrackEncoder.rtp makes of it, byte for byte,
    arrival counted from the start given; off again, it makes none."""
    start_us = int(time.time() * 1_000_000) - 5_000_000
    assert rig.port.tap(RTX, True, start_us) is False  # an RTX SSRC's packets reach the tap unwrapped, as its media's
    assert rig.port.tap(OTHER, True, start_us) is False  # not routed here
    assert rig.port.tap(MEDIA, True, start_us) is True
    delta = b"\x10\x01" + bytes(range(60))  # VP8: S bit, partition 0, not a key frame
    sent = time.time()
    assert rig.send([media(1, payload=delta), media(2), media(4, payload=b"")]) == []
    assert rig.send([rtp(1, ssrc=RTX, pt=VP8_RTX, timestamp=3 * 3000, payload=struct.pack("!H", 3) + KEYFRAME)]) == []
    assert len(rig.forwarded()) == 3  # forwarded in C all the same (a subscriber starts at a key frame)
    [(ssrc, records, count, keyframe, start)], dropped = rig.port.take_records()
    assert (ssrc, count, keyframe, start, dropped) == (MEDIA, 4, 1, start_us, 0)  # the 2nd starts a key frame
    track = read_track(track_file(records))
    assert track.complete and len(track.records) == 4
    expected = [(1, delta), (2, KEYFRAME), (4, b""), (3, KEYFRAME)]
    encoder = TrackEncoder(0.0)
    made = b"".join(encoder.rtp((r.arrival_us + 0.5) / 1e6, False, VP8, seq, seq * 3000, MEDIA, payload)
                    for r, (seq, payload) in zip(track.records, expected))
    assert records == made
    assert all(-100_000 < start_us + r.arrival_us - sent * 1e6 < 2_000_000
               for r in track.records)  # the kernel's arrival, from the start given
    assert rig.port.take_records() == ([], 0)  # taken once
    assert rig.port.tap(MEDIA, True, start_us + 1)  # another file: what was held for the old one goes
    assert rig.send([media(5)]) == [] and rig.port.tap(MEDIA, True, start_us + 2)
    assert rig.port.take_records() == ([], 0)
    large = native.SrtpSession(native.AES_CM_128_HMAC_SHA1_80, RX_KEY, RX_SALT).protect(media(6, payload=bytes(2049)))
    before, deadline = rig.port.counters["datagrams"], time.monotonic() + 2
    rig.client.sendto(large, rig.server.getsockname())  # over trackfile's MAX_PAYLOAD (and pylibsrtp's): not kept
    while rig.port.counters["datagrams"] == before and time.monotonic() < deadline:
        assert rig.port.read_batch()[1] == []
        time.sleep(0.001)
    assert rig.send([media(7)]) == []
    [(_, records, count, keyframe, _)], _ = rig.port.take_records()
    assert (count, keyframe, [r.sequence for r in read_track(track_file(records)).records]) == (1, 0, [7])
    while select.select([rig.theirs], [], [], 0)[0]:
        rig.theirs.recv(70000)  # what was forwarded so far (the large one too long for pylibsrtp to read)
    assert rig.port.tap(MEDIA, False) is True
    assert rig.send([media(8)]) == [] and len(rig.forwarded()) == 1
    assert rig.port.take_records() == ([], 0)


def test_the_port_says_when_python_has_more_than_counters_to_drain(rig):
    """``Port.fast_due``: what lets Python leave a read batch that only forwarded undrained. Due on a
    gap (a NACK), an arrival waiting for Python's estimator, a stale route, a compiled estimator's
    REMB; not on in-order packets whose arrivals a compiled estimator took."""
    rig.port.drain_fast()
    assert rig.port.fast_due is False
    assert rig.send([media(1), media(2)]) == []
    assert rig.port.fast_due is True  # their arrivals wait in the ring (the route has no estimator)
    rig.port.drain_fast()
    assert rig.port.fast_due is False
    remb = native.Remb()
    stats, nack = rig.port.unroute(MEDIA)
    assert rig.port.route(MEDIA, rig.core, rig.index, -1, VP8, 90000, 0, AST_ID, stats, nack, remb) is True
    rig.port.drain_fast()
    assert rig.send([media(3), media(4)]) == [] and len(rig.forwarded()) == 4
    assert rig.port.fast_due is False  # in order, arrivals taken by the estimator in C: only counters
    assert rig.port.drain_fast()[2] == 2
    assert rig.send([media(6)]) == []  # 5 is missing
    assert rig.port.fast_due is True
    assert rig.port.drain_fast()[0] == [(MEDIA, [5])] and rig.port.fast_due is False
    seq, due, deadline = 7, False, time.monotonic() + 6
    while not due and time.monotonic() < deadline:  # the estimator's first REMB: after 3 s of arrivals
        rig.send([media(seq)])
        due, seq = rig.port.fast_due, seq + 1
        time.sleep(0.05)
    assert due and remb.take() is not None
    rig.port.drain_fast()
    assert rig.send([media(seq, pt=VP8_RTX + 1)]) == []  # another payload type: the route went stale
    assert rig.port.fast_due is True and rig.port.drain_fast()[5] == [MEDIA]


def test_the_loops_reader_runs_python_only_when_a_read_has_something_for_it(rig):
    """``Port.on_readable``, what the loop calls: a read whose packets were all forwarded in C calls no
    Python; STUN and DTLS, a gap's NACK (DUE_NOW), the routed SSRCs' counters once the drain interval
    passed (DUE_COUNTERS) call the handler; a read on a descriptor gone calls ``lost``."""
    calls = []
    rig.port.set_reader(lambda *args: calls.append(args), lambda error: calls.append(error), 60.0)
    stats, nack = rig.port.unroute(MEDIA)  # a route with a compiled estimator: its arrivals stay in C
    assert rig.port.route(MEDIA, rig.core, rig.index, -1, VP8, 90000, 0, AST_ID, stats, nack, native.Remb())

    def arrive(data: bytes) -> None:
        before = rig.port.counters["datagrams"]
        rig.client.sendto(data, rig.server.getsockname())
        select.select([rig.server], [], [], 2)
        rig.port.on_readable()
        assert rig.port.counters["datagrams"] == before + 1

    arrive(rig.sender.protect(media(1)))
    rig.port.drain_fast()
    arrive(rig.sender.protect(media(2)))
    assert calls == [] and len(rig.forwarded()) == 2
    stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12)
    arrive(stun)
    assert calls == [([(stun, rig.client.getsockname())], [], 0)]
    arrive(rig.sender.protect(media(4)))  # 3 is missing
    assert calls[1] == ([], [], native.DUE_NOW) and rig.port.drain_fast()[0] == [(MEDIA, [3])]
    rig.port.set_reader(lambda *args: calls.append(args), lambda error: calls.append(error), 0.0)
    arrive(rig.sender.protect(media(5)))
    assert calls[2] == ([], [], native.DUE_COUNTERS)
    rig.port.drain_fast()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, rig.server.fileno())  # the Port's descriptor is no socket now
    os.close(null)
    rig.port.on_readable()
    assert isinstance(calls[3], OSError)
    rig.port.set_reader(None, None)
    assert rig.port.on_readable() is None and len(calls) == 4


def test_a_handler_that_lets_the_port_go_from_inside_its_call_is_safe(rig):
    """The transport's close() drops the Port's reader while the Port is calling it (a DTLS close
    alert read, say): the Port holds the handler until the call returns."""
    calls = []

    class Transport:  # the only reference to the handler's object is the Port's
        def handle(self, signals, media, due):
            rig.port.set_reader(None, None)
            calls.append(len(signals))

    rig.port.set_reader(Transport().handle, None)
    rig.client.sendto(b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12), rig.server.getsockname())
    select.select([rig.server], [], [], 2)
    assert rig.port.on_readable() is None and calls == [1]
    rig.client.sendto(b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12), rig.server.getsockname())
    select.select([rig.server], [], [], 2)
    assert rig.port.on_readable() is None and calls == [1]


def srtcp(rig, compound: bytes) -> list:
    """Send ``compound`` as the client's SRTCP; what one read gives Python."""
    before = rig.port.counters["datagrams"]
    rig.client.sendto(rig.sender.protect_rtcp(compound), rig.server.getsockname())
    deadline = time.monotonic() + 2
    while rig.port.counters["datagrams"] == before and time.monotonic() < deadline:
        select.select([rig.server], [], [], 0.1)
    return rig.port.read_batch()[1]


def test_a_subscribers_rtcp_is_done_in_c_and_only_what_aiortc_needs_comes_up(rig):
    """With the connection's Feedback, a compound of receiver reports, REMB, NACK and PLI from the client
    never comes up to Python: the NACK is answered with a retransmission on the subscriber's stream, the PLI
    is the publisher's keyframe request, the REMB waits for Python's bandwidth policy (the Port says it is
    due); a sender report of the client's own stream still comes up, alone, for aiortc's receiver."""
    feedback = rig.plane.feedback("c")
    rig.port.set_feedback(feedback.table)
    assert rig.send([media(seq) for seq in range(1, 6)]) == []
    forwarded = rig.forwarded()
    rig.plane.drain_events()
    rig.port.drain_fast()
    block = struct.pack("!IB3sIIII", 7, 0, bytes(3), 0, 0, 0, 0)
    rr = struct.pack("!BBHI", 0x81, 201, 7, 0xC0FFEE) + block
    remb = struct.pack("!BBHII4sBBHI", 0x8F, 206, 5, 0xC0FFEE, 0, b"REMB", 1, 0x0A, 0x0000, 7)
    nack = struct.pack("!BBHIIHH", 0x81, 205, 3, 0xC0FFEE, 7, forwarded[1].sequence_number, 0)
    pli = struct.pack("!BBHII", 0x81, 206, 2, 0xC0FFEE, 7)
    assert srtcp(rig, rr + remb + nack + pli) == []
    [again] = rig.forwarded()
    assert again.ssrc == 8 and again.payload[2:] == forwarded[1].payload
    assert [type(e).__name__ for e in rig.plane.drain_events()] == ["KeyframeNeeded"]
    assert rig.port.fast_due is True and feedback.table.take() == (2 << 16 << 2, 0)  # exponent 2, mantissa 2 << 16
    sr = struct.pack("!BBHIQIII", 0x80, 200, 6, 0xC0FFEE, 1 << 32, 3000, 5, 500)
    [(kind, plain, _)] = srtcp(rig, sr + rr)
    assert kind == native.RTCP and plain == sr
    assert rig.port.counters["rtcp"] == 2


def test_the_remb_arrivals_are_the_kernels_even_when_the_socket_is_read_late(rig):
    with kernel_stamps():
        for seq in range(1, 4):
            sent = (time.time() + 2208988800) * 1000
            rig.client.sendto(rig.sender.protect(media(seq)), rig.server.getsockname())
            time.sleep(0.25)  # the loop busy elsewhere: the datagram waits in the socket
            rig.port.read_batch()
            [(arrival, _, _, _)] = rig.port.drain_fast()[1]
            assert sent - 5 <= arrival < sent + 100 <= (time.time() + 2208988800) * 1000


def test_receiver_statistics_are_aiortcs_on_the_same_packets(rig):
    order = [65530, 65531, 65533, 65535, 0, 1, 65534, 3]  # a wrap, losses, a late one
    stamp = {seq: (seq - 65530) % 65536 * 3000 for seq in order}
    rig.send([media(seq, timestamp=stamp[seq]) for seq in order])
    ours = StreamStatistics(90000)
    for seq in order:
        ours.add(RtpPacket(sequence_number=seq, timestamp=stamp[seq]))
    read = PortStreamStatistics(rig.port, MEDIA, 90000)
    assert (read.base_seq, read.max_seq, read.cycles, read.packets_received) == \
        (ours.base_seq, ours.max_seq, ours.cycles, ours.packets_received) == (65530, 3, 1 << 16, 8)
    assert (read.packets_expected, read.packets_lost) == (ours.packets_expected, ours.packets_lost) == (10, 2)
    assert read.fraction_lost == ours.fraction_lost == (2 << 8) // 10
    assert read.fraction_lost == 0  # a second read is the next interval, as aiortc's
    # Jitter from the kernel's arrival times: the packets were sent at once, 1/30 s apart in RTP time
    assert 0 < read.jitter <= 2 * 3000


def test_gaps_and_statistics_follow_aiortcs_generator_through_wraps_reorders_and_jumps(rig):
    rng = random.Random(4588)
    order, seq = [], 65000
    for _ in range(600):
        seq = (seq + (300 if rng.random() < 0.01 else 1)) & 0xFFFF  # now and then a jump past the window
        if rng.random() > 0.1:  # a tenth lost
            order.append(seq)
    for i in range(0, len(order) - 1, 7):  # some arrive a little late
        order[i], order[i + 1] = order[i + 1], order[i]
    generator, stats = NackGenerator(), StreamStatistics(90000)
    for start in range(0, len(order), 50):
        rig.send([media(seq) for seq in order[start:start + 50]])
        found = False
        for seq in order[start:start + 50]:
            packet = RtpPacket(sequence_number=seq, timestamp=seq * 3000)
            found |= generator.add(packet)
            stats.add(packet)
        nacks = rig.port.drain_fast()[0]
        assert nacks == ([(MEDIA, sorted(generator.missing, key=lambda s: (s - generator.max_seq) & 0xFFFF))]
                         if found else [])
    assert rig.port.stream(MEDIA)[:4] == (stats.base_seq, stats.max_seq, stats.cycles, stats.packets_received)
    _, (highest, missing) = rig.port.unroute(MEDIA)
    assert (highest, set(missing)) == (generator.max_seq, generator.missing) and len(missing) <= 128


def test_what_the_table_does_not_know_goes_up_to_python_and_a_stale_route_is_told(rig):
    others = [media(1, ssrc=OTHER), rtp(3, ssrc=RTX, pt=VP8_RTX, payload=b"\x00")]
    got = rig.send(others)
    assert [data for kind, data, _ in got if kind == native.RTP] == others[:1]  # the padding-only RTX dropped
    assert rig.forwarded() == [] and rig.port.drain_fast()[5] == []
    # another payload type on a routed SSRC: dropped, and the route is stale until Python looks again
    assert rig.send([media(2, pt=100)]) == []
    assert rig.port.drain_fast()[5] == [MEDIA] and rig.port.drain_fast()[5] == []
    assert rig.port.unroute(MEDIA) == (None, None)  # handed back: nothing counted
    assert rig.port.unroute(MEDIA) is None and rig.port.stream(MEDIA) is None
    [(kind, data, _)] = rig.send([media(4)])  # no longer routed: Python's again
    assert (kind, data) == (native.RTP, media(4))
    # a publisher gone (its index taken again by another): its datagrams never reach the newcomer
    assert rig.port.route(MEDIA, rig.core, rig.index, -1, VP8, 90000, 0, AST_ID, None, (4, [2, 3])) is True
    rig.plane.remove_publisher("cam")
    rig.plane.add_publisher("mic", "audio")
    assert rig.send([media(5)]) == []
    assert rig.plane.publisher_stats("mic").packets == 0
    assert rig.port.drain_fast()[5] == [MEDIA]
    stats, (highest, missing) = rig.port.unroute(MEDIA)
    assert (highest, missing) == (4, [2, 3]) and stats is None  # as seeded: the stale route's packet not counted


def test_a_route_with_an_estimator_feeds_it_in_c_and_holds_it_while_routed(rig):
    remb = native.Remb()  # one per receiver: its media and RTX SSRCs feed it
    held = sys.getrefcount(remb)
    assert rig.port.route(MEDIA, rig.core, rig.index, -1, VP8, 90000, 0, AST_ID, None, None, remb) is True
    assert rig.port.route(RTX, rig.core, rig.index, MEDIA, VP8_RTX, 90000, 0, AST_ID, None, None, remb) is True
    assert sys.getrefcount(remb) == held + 2
    rig.send([media(seq) for seq in range(1, 6)])
    rig.send([rtp(1, ssrc=RTX, pt=VP8_RTX, timestamp=3 * 3000, payload=struct.pack("!H", 3) + KEYFRAME)])  # no AST
    assert rig.port.drain_fast()[1] == []  # not through Python: the estimator had them
    assert (remb.arrivals, remb.take()) == (5, None)  # (no REMB in the first 3 s)
    with pytest.raises(TypeError, match="_native.Remb"):
        rig.port.route(MEDIA, rig.core, rig.index, -1, VP8, 90000, 0, AST_ID, None, None, object())
    assert rig.port.route(MEDIA, rig.core, rig.index, -1, VP8, 90000, 0, AST_ID, None, None) is True
    assert sys.getrefcount(remb) == held + 1  # routed anew without it: let go
    rig.send([media(6)])
    assert len(rig.port.drain_fast()[1]) == 1 and remb.arrivals == 5
    rig.port.unroute(RTX)
    assert sys.getrefcount(remb) == held


def test_routes_are_checked_and_bounded(rig):
    with pytest.raises(TypeError, match="_native.Plane"):
        rig.port.route(1, object(), 0, -1, VP8, 90000, 0, 0, None, None)
    with pytest.raises(IndexError):
        rig.port.route(1, rig.core, 200, -1, VP8, 90000, 0, 0, None, None)
    with pytest.raises(ValueError, match="out of range"):
        rig.port.route(1, rig.core, rig.index, -1, 300, 90000, 0, 0, None, None)
    with pytest.raises(ValueError, match="one plane"):
        rig.port.route(1, native.Plane(4, 4), 0, -1, VP8, 90000, 0, 0, None, None)
    taken = [rig.port.route(ssrc, rig.core, rig.index, -1, VP8, 90000, 0, 0, None, None) for ssrc in range(100, 120)]
    assert taken == [True] * 14 + [False] * 6  # 16 in all, MEDIA and RTX among them


def resident_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


@pytest.mark.slow
def test_broken_datagrams_of_a_routed_ssrc_reach_the_plane_safely_and_leave_memory_flat(rig):
    rng = random.Random(18)
    rounds = int(os.environ.get("VIDEOROOMD_FUZZ_ROUNDS", "50000")) // 5
    sender = native.SrtpSession(native.AES_CM_128_HMAC_SHA1_80, RX_KEY, RX_SALT)
    seeds = [media(seq, payload=rng.randbytes(rng.randrange(0, 1200))) for seq in range(20)]
    seeds += [rtp(1, ssrc=RTX, pt=VP8_RTX, payload=struct.pack("!H", 3) + KEYFRAME),
              rtp(2, ssrc=RTX, pt=VP8_RTX, padding=40, payload=b""), media(3, payload=b"")]
    baseline, seq = None, 0
    assert rig.port.tap(MEDIA, True, int(time.time() * 1e6))  # and each packet made a track-file record
    for start in range(0, rounds, 500):
        for _ in range(500):
            data = bytearray(mutated(rng.choice(seeds), rng))
            if len(data) >= 12 and rng.random() < 0.9:  # a routed SSRC's, a new sequence number: the C path
                ssrc = rng.choice((MEDIA, RTX))
                data[0] = 0x80 | (data[0] & 0x3F)
                data[1] = (data[1] & 0x80) | (VP8 if ssrc == MEDIA else VP8_RTX)
                seq += 1
                data[2:4] = (seq & 0xFFFF).to_bytes(2, "big")
                data[8:12] = ssrc.to_bytes(4, "big")
                try:
                    data = sender.protect(bytes(data))
                except native.SrtpError:
                    pass  # sent as it is: it fails authentication
            rig.client.sendto(bytes(data), rig.server.getsockname())
        rig.port.read_batch()
        rig.port.drain_fast()
        for _, records, count, _, _ in rig.port.take_records()[0]:
            assert len(read_track(track_file(records)).records) == count
        rig.forwarded()
        if baseline is None and start >= 2000:
            baseline = resident_kib()
    if not os.environ.get("VIDEOROOMD_SANITIZED"):
        assert resident_kib() - baseline < 2048
    assert rig.plane.publisher_stats("cam").packets > rounds // 10  # most went through the C path


def test_a_held_track_goes_back_to_pythons_path_with_its_statistics_and_returns_when_released():
    """bench.receive's pair of aiortc connections on 127.0.0.1, the server's socket read by a Port and its
    plane the compiled one: the publisher's SSRC is forwarded in C after its first batch; held by a
    moderator, it is handed back to Python with what the Port counted, and routed again once released; published
    again under a new index, the Port drops a read's worth and it is routed to the new index."""
    from aiortc.rtcrtpreceiver import StreamStatistics as AiortcStatistics

    from bench.receive import BATCH, PUBLISHER, connect, datagrams, pump
    from videoroomd.media.webrtc.compat.ice import ice_connections
    from videoroomd.media.webrtc.compat.native_receive import CHECK_INTERVAL, RETRY_INTERVAL
    from videoroomd.media.webrtc.forwarding import NativeTarget

    async def main():
        publisher, server, plane = await connect(native=True)
        try:
            receiver = server.getTransceivers()[0].receiver
            held: set[str] = set()
            receiver._videoroomd_target = NativeTarget(plane, PUBLISHER, held, None)
            ssrc = publisher.getTransceivers()[0].sender._ssrc
            _plain, stream, sock, address = datagrams(publisher, 240, 500)
            fast = ice_connections(server)[0]._nominated[1].protocol.transport._fast
            streams = receiver._RTCRtpReceiver__remote_streams
            assert await pump(stream[:60], sock, address, plane) == 60
            assert list(fast.receivers) == [ssrc] and isinstance(streams[ssrc], PortStreamStatistics)
            held.add(PUBLISHER)
            await asyncio.sleep(CHECK_INTERVAL)
            assert await pump(stream[60:120], sock, address, plane) == 60
            assert fast.receivers == {}
            assert type(streams[ssrc]) is AiortcStatistics
            assert (streams[ssrc].packets_received, streams[ssrc].max_seq) == (120, 120)
            held.clear()
            await asyncio.sleep(RETRY_INTERVAL)  # (refused while held: asked again after this)
            assert await pump(stream[120:150], sock, address, plane) == 30
            assert list(fast.receivers) == [ssrc]
            assert (streams[ssrc].packets_received, streams[ssrc].max_seq, streams[ssrc].packets_lost) == (150, 150, 0)
            # published again (a new index in the plane): its packets come up once, then go to the new one in C
            plane.remove_publisher(PUBLISHER)
            plane.add_publisher(PUBLISHER, "video")
            first = await pump(stream[150:170], sock, address, plane)  # the read before the drain: dropped
            assert 20 - BATCH <= first < 20
            assert await pump(stream[170:], sock, address, plane) == 70
            assert list(fast.receivers) == [ssrc] and plane.publisher_stats(PUBLISHER).packets == first + 70
        finally:
            await publisher.close()
            await server.close()

    asyncio.run(main())
