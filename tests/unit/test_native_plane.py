"""The compiled plane's own edges (the interface's behaviour is the contract suite's,
tests/daemon/test_dataplane_contract.py): its caps, its index checks, H.264 keyframes, and
datagrams it cannot read, counted and dropped, whatever they hold."""

from __future__ import annotations

import os
import socket

import pytest

from testsupport.rtp_datagrams import rtp
from videoroomd.media.dataplane.interface import KeyframeNeeded, NativeRoute, RewriteStart, StreamParams
from videoroomd.media.dataplane.native_module import load
from videoroomd.media.dataplane.native_plane import NativeDataPlane

native = load()
KEY, SALT = bytes(range(16)), bytes(range(50, 64))


def test_a_full_plane_refuses_more_with_an_error_that_says_its_cap_and_goes_on():
    plane = NativeDataPlane(max_publishers=2, max_subscribers=1)
    plane.add_publisher("a", "video")
    plane.add_publisher("b", "audio")
    with pytest.raises(ValueError, match="at most 2 publishers"):
        plane.add_publisher("c", "video")
    plane.add_connection("c")
    plane.add_subscriber("s", "c", "video", None)
    with pytest.raises(ValueError, match="at most 1 subscribers"):
        plane.add_subscriber("t", "c", "video", None)
    plane.remove_publisher("a")
    plane.add_publisher("c", "video")  # a freed place is taken again
    with pytest.raises(ValueError, match="0 to 4 layers"):
        plane.add_publisher("d", "video", list("abcde"))
    assert plane.publisher_stats("c").packets == 0 and "d" not in plane._publishers


def test_the_core_checks_every_index_it_is_given():
    core = native.Plane(4, 4)
    for call in (lambda: core.link(0, -1), lambda: core.receive_datagram(3, b""), lambda: core.meter(9),
                 lambda: core.nack(-5, [1], 1.0), lambda: core.subscriber_stats(2 ** 40)):
        with pytest.raises((IndexError, OverflowError)):
            call()


@pytest.fixture
def linked():
    """A plane with an H.264 publisher and one subscriber on it, writing into a socket pair."""
    plane = NativeDataPlane()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    theirs.setblocking(False)
    plane.add_publisher("cam", "video")
    plane.set_receive_extensions("cam", codec="h264")
    plane.add_connection("c")
    plane.add_subscriber("s", "c", "video", NativeRoute(ours, None, native.AES_CM_128_HMAC_SHA1_80, KEY, SALT),
                         RewriteStart(1, 2, 3))
    plane.set_stream("s", StreamParams(102, 90000, 7, 8, 103))
    plane.link("s", "cam")
    yield plane, theirs
    ours.close()
    theirs.close()


def received(sock) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(70000))
        except BlockingIOError:
            return out


@pytest.mark.parametrize("keyframe", [
    bytes([0x65, 0x88]),                                       # an IDR slice alone
    bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x65, 0x88]),  # STAP-A: SPS, IDR
    bytes([0x7C, 0x85, 0x88]),                                 # FU-A starting an IDR
])
def test_an_h264_subscriber_starts_at_an_idr_in_each_packing(linked, keyframe):
    plane, reader = linked
    plane.receive_datagram("cam", rtp(1, payload=bytes([0x41, 0x9A])), None)  # a P slice: asked for a keyframe
    plane.receive_datagram("cam", rtp(2, payload=bytes([0x7C, 0x05, 0x88])), None)  # FU-A, not its start
    plane.receive_datagram("cam", rtp(3, payload=bytes([0x78, 0x00, 0x02, 0x41, 0x9A])), None)  # STAP-A, no IDR
    assert received(reader) == []
    assert KeyframeNeeded("cam", 0x1234ABCD) in plane.drain_events()
    plane.receive_datagram("cam", rtp(4, payload=keyframe), None)
    plane.receive_datagram("cam", rtp(5, payload=bytes([0x41, 0x9A])), None)
    assert len(received(reader)) == 2 and plane.subscriber_stats("s").sent == (2, len(keyframe) + 2)


def test_the_core_takes_a_nacks_sequence_numbers_modulo_2_16_whatever_their_size(linked):
    """aiortc reads a PID of 65535 with bit 0 set as 65536: the core answers it as 0, and no number
    it is given (past 64 bits, negative) raises out of the packet path."""
    plane, reader = linked
    for seq in range(4, 7):  # an IDR, then P slices: the subscriber's 1, 2, 3
        plane.receive_datagram("cam", rtp(seq, payload=bytes([0x65 if seq == 4 else 0x41, 0x88])), None)
    assert len(received(reader)) == 3
    assert plane._core.nack(plane._slot("s").index, [65537, 2 ** 70 + 2, 3 - 2 ** 16, 4], 300.0) == 3
    assert len(received(reader)) == 3 and plane.counters.packets_retransmitted == 3


def test_a_route_given_again_with_the_same_keys_keeps_the_srtp_session_past_a_sequence_wrap():
    """A new ICE pair gives a subscriber's route again (another socket, the same keys): what comes on is
    still decrypted by the receiver, whose rollover counter went past a wrap of the sequence numbers (a new
    session would count from 0 again, the receiver would refuse it and its keystream would repeat)."""
    from pylibsrtp import Policy, Session
    plane = NativeDataPlane()
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    for pair in pairs:
        for end in pair:
            end.setblocking(False)
    plane.add_publisher("cam", "video")
    plane.set_receive_extensions("cam", codec="h264")
    plane.add_connection("c")
    route = lambda sock: NativeRoute(sock, None, native.AES_CM_128_HMAC_SHA1_80, KEY, SALT)  # noqa: E731
    plane.add_subscriber("s", "c", "video", route(pairs[0][0]), RewriteStart(65533, 2, 3))
    plane.set_stream("s", StreamParams(102, 90000, 7, 8, 103))
    plane.link("s", "cam")
    inbound = Session(Policy(key=KEY + SALT, ssrc_type=Policy.SSRC_ANY_INBOUND,
                             srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80))
    for seq in range(1, 6):  # 65533 .. 65535, 0, 1 on the wire
        plane.receive_datagram("cam", rtp(seq, payload=bytes([0x65, 0x88]) if seq == 1 else bytes([0x41, 0x9A])))
    before = [inbound.unprotect(d) for d in received(pairs[0][1])]
    assert [int.from_bytes(d[2:4], "big") for d in before] == [65533, 65534, 65535, 0, 1]
    plane.set_route("s", route(pairs[1][0]))
    for seq in range(6, 9):
        plane.receive_datagram("cam", rtp(seq, payload=bytes([0x41, 0x9A])))
    after = [inbound.unprotect(d) for d in received(pairs[1][1])]  # raises if the session started over
    assert [int.from_bytes(d[2:4], "big") for d in after] == [2, 3, 4] and received(pairs[0][1]) == []
    plane.set_route("s", NativeRoute(pairs[0][0], None, native.AES_CM_128_HMAC_SHA1_80, KEY[::-1], SALT))
    plane.receive_datagram("cam", rtp(9, payload=bytes([0x41, 0x9A])))
    with pytest.raises(Exception):  # new keys: a new session, which this receiver cannot read
        inbound.unprotect(received(pairs[0][1])[0])
    for pair in pairs:
        for end in pair:
            end.close()


@pytest.mark.parametrize("datagram", [
    b"", b"\x80", rtp(1)[:11], bytes([0x8F]) + rtp(1)[1:20],   # short, a CSRC list past the end
    bytes([0x90]) + rtp(1)[1:12] + b"\xbe\xde\xff\xff",        # an extension block past the end
    bytes([0xA0]) + rtp(1)[1:12] + b"\x00",                    # padding of 0
    bytes([0xA0]) + rtp(1)[1:12] + b"\x01\x02\xff",            # padding longer than the payload
    bytes([0x40]) + rtp(1)[1:],                                # version 1
])
def test_a_datagram_that_is_not_rtp_is_counted_and_dropped(linked, datagram):
    plane, reader = linked
    plane.receive_datagram("cam", rtp(1, payload=bytes([0x65])), None)
    assert plane.receive_datagram("cam", datagram, None) is False
    assert plane.counters.packets_malformed == 1 and plane.counters.packets_received == 1
    plane.receive_datagram("cam", rtp(2, payload=bytes([0x41])), None)
    assert len(received(reader)) == 2


def resident_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_a_publishers_packets_are_kept_once_for_all_its_subscribers_nacks():
    """Each subscriber's history points into its publisher's one ring: 40 subscribers with full
    histories cost about one copy of the last packets, not 40 (which would be some 30 MiB)."""
    plane = NativeDataPlane()
    plane.add_publisher("cam", "video")
    plane.set_receive_extensions("cam", rtx_payload_type=97)
    pairs = []
    before = resident_kib()
    for n in range(40):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setblocking(False)
        theirs.setblocking(False)
        pairs.append((ours, theirs))
        plane.add_connection(f"c{n}")
        plane.add_subscriber(f"s{n}", f"c{n}", "video", NativeRoute(ours, None, native.AEAD_AES_128_GCM,
                                                                     KEY, SALT[:12]), RewriteStart(0, 0, 0))
        plane.set_stream(f"s{n}", StreamParams(102, 90000, 7, 8, 103))
        plane.link(f"s{n}", "cam")
    for seq in range(700):
        plane.receive_datagram("cam", rtp(seq, payload=bytes([0x10, 0x50 if seq == 0 else 0x51]) + bytes(1098)), None)
        if seq % 50 == 49:
            for _, theirs in pairs:
                received(theirs)
    grown = resident_kib() - before
    assert plane.counters.packets_forwarded == 700 * 40
    plane.nack("s7", [100, 699])  # 100 went round the history (512 packets), 699 is there
    assert plane.counters.packets_retransmitted == 1
    if not os.environ.get("VIDEOROOMD_SANITIZED"):  # AddressSanitizer holds freed memory back on purpose
        assert grown < 8 * 1024, f"resident memory grew by {grown} KiB"
    for ours, theirs in pairs:
        ours.close()
        theirs.close()
