"""The data plane's contract (:mod:`videoroomd.media.dataplane.interface`), run against each implementation.

Every test drives the plane through its interface only: ids, plain data,
packets in, datagrams out (decrypted at a real socket), events drained.
Each test runs on each implementation (the Python reference and the
compiled plane), and on each of the ways packets come in: as parsed packets
(``receive``) and as the decrypted datagrams themselves (``receive_datagram``).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import replace

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtpPacket
from pylibsrtp import Policy, Session

from testsupport import rtp_datagrams
from videoroomd.media.dataplane import gate
from videoroomd.media.dataplane.interface import (Bandwidth, FellBehind, FixedRoute, KeyframeNeeded, LayerChanged,
                                                  NativeRoute, Reason, RewriteStart, StreamParams, UnknownId,
                                                  VoiceChanged)
from videoroomd.media.dataplane.native_plane import NativeDataPlane
from videoroomd.media.dataplane.python_plane import PythonDataPlane
from videoroomd.media.dataplane.vp8_rewrite import descriptor_fields

IMPLEMENTATIONS = {"python": PythonDataPlane, "native": NativeDataPlane}
ENTRIES = ("packet", "datagram")
LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
LEVEL_ID = 5  # the publishers' audio level extension id, on the datagram entry
AEAD_AES_256_GCM = 8  # RFC 5764's number: the compiled plane's route takes it

KEY = os.urandom(44)  # AES-256-GCM key and salt, shared by the plane's route and the reading end
KEYFRAME = bytes([0x10, 0x50]) + b"k" * 500  # VP8 descriptor S=1, frame tag P=0
DELTA = bytes([0x10, 0x51]) + b"d" * 500
START = RewriteStart(seq=5000, timestamp=123456, rtx_seq=700)
VIDEO = StreamParams(payload_type=100, clock_rate=90000, ssrc=11, rtx_ssrc=12, rtx_payload_type=101, mid="3",
                     mid_id=4, abs_send_time_id=9)
AUDIO = StreamParams(payload_type=111, clock_rate=48000, ssrc=21, rtx_ssrc=22, mid="0", mid_id=4, audio_level_id=2)


class ThroughDatagrams:
    """A plane whose ``receive`` goes through ``receive_datagram``: each packet as the wire has it,
    its audio level in extension LEVEL_ID."""

    def __init__(self, plane):
        self.inner = plane
        ids = HeaderExtensionsMap()
        ids.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=LEVEL_ID,
                                                                                         uri=LEVEL_URI)]))
        self._ids = ids

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def add_publisher(self, publisher_id, kind, rids=None):
        self.inner.add_publisher(publisher_id, kind, rids)
        self.inner.set_receive_extensions(publisher_id, audio_level_id=LEVEL_ID)

    def receive(self, publisher_id, p: RtpPacket) -> None:
        assert self.inner.receive_datagram(publisher_id, p.serialize(self._ids), None)


@pytest.fixture(params=[(name, entry) for name in sorted(IMPLEMENTATIONS) for entry in ENTRIES],
                ids=lambda param: "-".join(param))
def plane(request):
    name, entry = request.param
    made = IMPLEMENTATIONS[name]()
    return ThroughDatagrams(made) if entry == "datagram" else made


def route(plane, sock, address):
    """The send route the plane takes: the compiled one makes its SRTP session from the keys."""
    if isinstance(getattr(plane, "inner", plane), NativeDataPlane):
        return NativeRoute(sock, address, AEAD_AES_256_GCM, KEY[:32], KEY[32:])
    return FixedRoute(srtp(Policy.SSRC_ANY_OUTBOUND), sock, address)


def srtp(direction: int) -> Session:
    return Session(policy=Policy(key=KEY, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_256_GCM))


class Reader:
    """The subscriber's end: a socket that reads and decrypts what the plane sent it."""

    def __init__(self, family=socket.AF_INET, address=("127.0.0.1", 0)):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self.inbound = srtp(Policy.SSRC_ANY_INBOUND)

    def packets(self, extensions: dict[str, int] | None = None) -> list[RtpPacket]:
        """What arrived, decrypted and parsed (with header extensions ``extensions``: URI -> id)."""
        ids = HeaderExtensionsMap()
        if extensions:
            ids.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u)
                                                             for u, i in extensions.items()]))
        out = []
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return out
            out.append(RtpPacket.parse(self.inbound.unprotect(data), ids))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def reader():
    end = Reader()
    yield end
    end.close()


def subscribe(plane, reader: Reader, subscriber_id="s", connection_id="c", kind="video", params=VIDEO,
              sock=None, start=START) -> socket.socket:
    """Add ``subscriber_id`` (of ``connection_id``, added if new) writing to ``reader``."""
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
    try:
        plane.add_connection(connection_id)
    except ValueError:
        pass  # there already
    plane.add_subscriber(subscriber_id, connection_id, kind, route(plane, sock, reader.address), start)
    plane.set_stream(subscriber_id, params)
    return sock


def packet(seq: int, payload: bytes, ssrc: int = 42, timestamp: int | None = None, marker: int = 0,
           level=None) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq & 0xFFFF, ssrc=ssrc, marker=marker,
                  timestamp=(seq * 3000 if timestamp is None else timestamp) & 0xFFFFFFFF, payload=payload)
    p.extensions.audio_level = level
    return p


def test_forwarded_packets_get_the_subscribers_ssrc_and_sequence_numbers_and_timestamps_go_on_from_its_start(plane,
                                                                                                             reader):
    plane.add_publisher("cam", "video")
    subscribe(plane, reader)
    plane.link("s", "cam")
    sent = [packet(1000, KEYFRAME, marker=1)] + [packet(1000 + i, DELTA, marker=i % 3 == 2) for i in range(1, 10)]
    for p in sent:
        plane.receive("cam", p)
    got = reader.packets()
    assert [p.payload for p in got] == [p.payload for p in sent]  # the publisher's payload, untouched
    assert {p.ssrc for p in got} == {11} and {p.payload_type for p in got} == {100}
    assert [p.sequence_number for p in got] == list(range(5000, 5010))
    assert [p.marker for p in got] == [p.marker for p in sent]
    # Timestamps keep their spacing, rebased past where the stream stood.
    first = got[0].timestamp
    assert [(p.timestamp - first) & 0xFFFFFFFF for p in got] == [(p.timestamp - sent[0].timestamp) for p in sent]
    assert 0 < (first - START.timestamp) & 0xFFFFFFFF < 90000
    assert plane.counters.packets_forwarded == 10 and plane.counters.packets_received == 10
    assert plane.subscriber_stats("s").sent == (10, sum(len(p.payload) for p in sent))
    stats = plane.sent_stats("s")
    assert (stats.packets, stats.rtp) == (10, got[-1].timestamp)


def test_a_subscriber_linked_to_a_running_video_asks_its_keyframe_at_the_link(plane, reader):
    """A screen a subscriber starts to receive: the keyframe is asked when the slot is linked, not
    after the first delta frames reach it (its first frame comes that much sooner)."""
    plane.add_publisher("cam", "video")
    plane.receive("cam", packet(1, DELTA))
    subscribe(plane, reader)
    plane.drain_events()
    plane.link("s", "cam")
    assert KeyframeNeeded("cam", 42) in plane.drain_events()


def test_a_video_subscriber_starts_at_a_keyframe_and_one_is_asked_for(plane, reader):
    plane.add_publisher("cam", "video")
    plane.receive("cam", packet(1, DELTA))  # the publisher's SSRC is known from its first packet
    subscribe(plane, reader)
    plane.link("s", "cam")
    for seq in range(2, 6):
        plane.receive("cam", packet(seq, DELTA))
    assert reader.packets() == []  # nothing it could decode
    assert KeyframeNeeded("cam", 42) in plane.drain_events()
    assert plane.counters.keyframe_requests >= 1
    plane.receive("cam", packet(6, KEYFRAME))
    plane.receive("cam", packet(7, DELTA))
    got = reader.packets()
    assert [p.payload for p in got] == [KEYFRAME, DELTA]
    assert got[0].sequence_number == START.seq


def test_audio_starts_at_once_its_level_goes_along_and_speech_comes_out_as_an_event(plane, reader):
    plane.add_publisher("mic", "audio")
    subscribe(plane, reader, kind="audio", params=AUDIO)
    plane.link("s", "mic")
    plane.receive("mic", packet(1, b"opus", level=(True, 30)))
    got = reader.packets({"urn:ietf:params:rtp-hdrext:sdes:mid": 4, "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 2})
    assert [p.payload for p in got] == [b"opus"] and got[0].ssrc == 21
    assert (got[0].extensions.audio_level, got[0].extensions.mid) == ((True, 30), "0")
    assert plane.drain_events() == []  # one loud packet is not speech yet
    for seq in range(2, 12):
        plane.receive("mic", packet(seq, b"opus", level=(True, 30)))
    assert plane.drain_events() == [VoiceChanged("mic", True)]


def layered(seq: int, layer: int, keyframe: bool) -> RtpPacket:
    """A packet of ``layer``: its own SSRC, sequence numbers and VP8 picture ids."""
    frame = seq // 3
    start = seq % 3 == 0
    descriptor = bytes([0x90 if start else 0x80, 0xC0, 0x80 | ((layer * 9000 + frame) >> 8) & 0x7F,
                        (layer * 9000 + frame) & 0xFF, (layer * 100 + frame) & 0xFF])
    body = bytes([0x50 if keyframe and start else 0x51]) + bytes([layer]) * 200
    return packet(layer * 20000 + seq, descriptor + body, ssrc=41 + layer, timestamp=layer * 10 ** 6 + frame * 3000,
                  marker=int(seq % 3 == 2))


def simulcast_publisher(plane) -> None:
    plane.add_publisher("cam", "video", ["l", "m", "h"])
    for layer, rid in enumerate("lmh"):
        plane.learn_ssrc("cam", 41 + layer, rid, None)
    for layer in range(3):  # each layer arrives, none with a keyframe yet
        plane.receive("cam", layered(0, layer, keyframe=False))


def test_layers_are_learnt_from_their_rids_and_packets_of_no_known_layer_are_dropped(plane, reader):
    plane.add_publisher("cam", "video", ["l", "m", "h"])
    plane.learn_ssrc("cam", 41, "l", None)
    plane.learn_ssrc("cam", 51, None, "l")  # l's retransmissions
    plane.learn_ssrc("cam", 99, "x", None)  # a RID the offer did not have
    assert plane.repaired_ssrc("cam", 51) == 41 and plane.repaired_ssrc("cam", 52) is None
    subscribe(plane, reader)
    plane.link("s", "cam")
    plane.receive("cam", layered(0, 0, keyframe=True))
    plane.receive("cam", layered(1, 0, keyframe=False))
    plane.receive("cam", packet(1, KEYFRAME, ssrc=99))
    plane.receive("cam", packet(1, KEYFRAME, ssrc=77))  # never said its RID
    stats = plane.publisher_stats("cam")
    assert stats.rids == ("l", "m", "h") and stats.layer_ssrcs == (41, None, None)
    assert stats.unknown_layer_packets == 2 and stats.unknown_rids == {"x"} and stats.packets == 4
    assert stats.layers_arriving == (True, False, False)
    assert [p.payload[-1] for p in reader.packets()] == [0, 0]  # l, the one layer there is
    plain = plane.add_publisher("mic", "audio")
    assert plain is None and plane.repaired_ssrc("mic", 51) is None and plane.publisher_stats("mic").rids == ()


def test_a_layer_switch_happens_only_at_a_keyframe_of_the_new_layer_and_the_stream_goes_on(plane, reader):
    simulcast_publisher(plane)
    subscribe(plane, reader)
    plane.link("s", "cam")  # wants h (the default), which arrives: waits for its keyframe
    assert KeyframeNeeded("cam", 43) in plane.drain_events()
    for seq in range(3, 30):
        for layer in range(3):
            plane.receive("cam", layered(seq, layer, keyframe=seq == 3 and layer == 2))
    assert plane.set_target_layer("c", "cam", "l")
    assert KeyframeNeeded("cam", 41) in plane.drain_events()
    assert plane.subscriber_stats("s").layer == "h"  # until l's keyframe
    for seq in range(30, 60):
        for layer in range(3):
            plane.receive("cam", layered(seq, layer, keyframe=seq == 45 and layer == 0))
    got = reader.packets()
    layers = [p.payload[-1] for p in got]
    assert layers == [2] * 42 + [0] * 15  # h from its keyframe to l's keyframe, then l only
    assert got[42].payload[5] == 0x50  # l's first packet is its keyframe
    seqs = [p.sequence_number for p in got]
    assert seqs == list(range(START.seq, START.seq + len(got)))
    stamps = [p.timestamp for p in got]
    assert all(0 <= (b - a) & 0xFFFFFFFF < 90000 for a, b in zip(stamps, stamps[1:]))  # forward, under 1 s
    pictures = [descriptor_fields(p.payload)[3] for p in got]
    assert pictures[42] == pictures[41] + 1  # l's first picture follows h's last
    events = plane.drain_events()
    changes = [e for e in events if isinstance(e, LayerChanged)]
    assert [(e.rid, e.reason) for e in changes] == [("l", Reason.OTHER)]
    assert (changes[0].connection_id, changes[0].subscriber_id, changes[0].publisher_id) == ("c", "s", "cam")
    assert plane.subscriber_stats("s").layer == "l" and plane.subscriber_stats("s").target == "l"


def test_a_publisher_that_turns_its_layer_off_moves_its_subscribers_down(plane, reader):
    simulcast_publisher(plane)
    subscribe(plane, reader)
    plane.link("s", "cam")
    plane.receive("cam", layered(3, 2, keyframe=True))
    assert plane.subscriber_stats("s").layer == "h"
    assert plane.enable_layer("cam", "h", False)
    assert not plane.enable_layer("cam", "x", False)
    assert plane.publisher_stats("cam").layers_enabled == (True, True, False)
    plane.receive("cam", layered(3, 1, keyframe=True))
    assert plane.subscriber_stats("s").layer == "m"
    assert [(e.rid, e.reason) for e in plane.drain_events() if isinstance(e, LayerChanged)] == \
        [("h", Reason.OTHER), ("m", Reason.ENCODING_INACTIVE)]


def test_a_nack_is_answered_over_rtx_from_the_history(plane, reader):
    plane.add_publisher("cam", "video")
    subscribe(plane, reader)
    plane.link("s", "cam")
    plane.receive("cam", packet(1, KEYFRAME))
    for seq in range(2, 10):
        plane.receive("cam", packet(seq, DELTA))
    sent = reader.packets()
    plane.nack("s", [sent[2].sequence_number, sent[5].sequence_number, 4000])  # 4000: never sent
    again = reader.packets()
    assert [p.ssrc for p in again] == [12, 12] and {p.payload_type for p in again} == {101}
    assert [int.from_bytes(p.payload[:2], "big") for p in again] == [sent[2].sequence_number, sent[5].sequence_number]
    assert [p.payload[2:] for p in again] == [sent[2].payload, sent[5].payload]
    assert [p.sequence_number for p in again] == [START.rtx_seq, START.rtx_seq + 1]
    assert plane.counters.packets_retransmitted == 2


def test_a_nack_across_the_sequence_number_wrap_with_every_bit_set_is_answered_once_for_each_packet_sent(plane,
                                                                                                          reader):
    plane.add_publisher("cam", "video")
    subscribe(plane, reader, start=replace(START, seq=65530))
    plane.link("s", "cam")
    plane.receive("cam", packet(1, KEYFRAME))
    for seq in range(2, 13):
        plane.receive("cam", packet(seq, DELTA))
    sent = reader.packets()
    assert [p.sequence_number for p in sent] == [*range(65530, 65536), *range(0, 6)]
    # As a browser sends it: a PID 16 before the wrap with every bit set names 65520..65535 and 0,
    # the next one 1..17 (aiortc reads the first one's last bit as 65536).
    fci = struct.pack("!HH", 65520, 0xFFFF) + struct.pack("!HH", 1, 0xFFFF)
    (nack,) = RtcpPacket.parse(rtp_datagrams.rtcp(205, 1, struct.pack("!II", 1, VIDEO.ssrc) + fci))
    assert 65536 in nack.lost
    plane.nack("s", nack.lost)
    again = reader.packets()
    assert [int.from_bytes(p.payload[:2], "big") for p in again] == [p.sequence_number for p in sent]
    assert [p.payload[2:] for p in again] == [p.payload for p in sent]
    assert [p.sequence_number for p in again] == list(range(START.rtx_seq, START.rtx_seq + 12))
    assert plane.counters.packets_retransmitted == 12


def test_keyframe_requests_are_rate_limited_but_a_late_switch_need_not_wait_out_the_interval(plane, reader):
    import time

    plane.add_publisher("cam", "video")
    plane.receive("cam", packet(1, DELTA))

    def asked() -> int:
        return sum(isinstance(e, KeyframeNeeded) for e in plane.drain_events())

    subscribe(plane, reader)
    plane.link("s", "cam")  # starting: asks
    assert asked() == 1
    plane.keyframe_wanted("s")  # unanswered yet: the keyframe may be on its way
    assert asked() == 0
    plane.receive("cam", packet(2, KEYFRAME))
    time.sleep(gate.KEYFRAME_GAP + 0.05)
    plane.keyframe_wanted("s")  # the subscriber's own PLI: the usual wait
    assert asked() == 0
    subscribe(plane, reader, "s2", "c2")
    plane.link("s2", "cam")  # one that starts after that keyframe passed: the short wait
    assert asked() == 1


def test_a_subscriber_that_cannot_keep_up_skips_to_the_next_keyframe(plane, tmp_path):
    """A UDP socket on loopback never refuses a datagram; a Unix datagram socket whose reader
    stops does, as a real network's full send queue does."""
    reader = Reader(socket.AF_UNIX, str(tmp_path / "subscriber"))
    writer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    writer.setblocking(False)
    plane.add_publisher("cam", "video")
    subscribe(plane, reader, sock=writer)
    plane.link("s", "cam")
    seq = 1000
    plane.receive("cam", packet(seq, KEYFRAME))
    while plane.counters.packets_dropped == 0:  # the subscriber stops reading; its queue fills
        seq += 1
        assert seq < 3000, "the socket never refused a packet"
        plane.receive("cam", packet(seq, DELTA))
    assert FellBehind("s") in plane.drain_events()
    before = reader.packets()  # it catches up with what it was sent
    assert before[0].payload == KEYFRAME and len(before) == seq - 1000
    for _ in range(20):  # what follows cannot be decoded without the frame it lost
        seq += 1
        plane.receive("cam", packet(seq, DELTA))
    assert reader.packets() == []
    plane.receive("cam", packet(seq + 1, KEYFRAME))
    plane.receive("cam", packet(seq + 2, DELTA))
    after = reader.packets()
    assert [p.payload for p in after] == [KEYFRAME, DELTA]
    assert after[0].ssrc == before[-1].ssrc == 11
    # The packet that could not go left a gap of one (it is in the history, for a NACK).
    assert (after[0].sequence_number - before[-1].sequence_number) & 0xFFFF == 2
    reader.close()


def test_a_removed_publisher_leaves_its_subscribers_empty_and_removed_ones_get_nothing(plane, reader):
    plane.add_publisher("cam", "video")
    subscribe(plane, reader)
    subscribe(plane, reader, "s2", "c2", params=replace(VIDEO, ssrc=31, rtx_ssrc=32))
    plane.link("s", "cam")
    plane.link("s2", "cam")
    plane.receive("cam", packet(1, KEYFRAME))
    assert len(reader.packets()) == 2
    plane.remove_connection("c2")
    plane.receive("cam", packet(2, DELTA))
    assert len(reader.packets()) == 1
    plane.remove_publisher("cam")
    assert plane.subscriber_stats("s").publisher_id is None
    plane.add_publisher("cam", "video")  # the same id again: a new track, the slot still empty
    plane.receive("cam", packet(3, KEYFRAME))
    assert reader.packets() == []


def test_the_subscribers_remb_and_loss_come_out_as_bandwidth_events(plane, reader):
    plane.add_publisher("cam", "video")
    subscribe(plane, reader)
    plane.link("s", "cam")
    plane.remb("s", 1_000_000)
    assert Bandwidth("c", 1_000_000) in plane.drain_events()
    plane.loss("s", 0.5)  # heavy loss: the estimate is cut (reported after the report interval)
    plane.remb("s", 1_000_000)
    assert all(not isinstance(e, Bandwidth) for e in plane.drain_events())


def test_events_are_drained_in_batches_with_one_wakeup(plane, reader):
    woken = []
    plane.on_events(lambda: woken.append(1))
    plane.add_publisher("cam", "video")
    plane.receive("cam", packet(1, DELTA))
    for n in range(3):
        subscribe(plane, reader, f"s{n}", f"c{n}")
        plane.link(f"s{n}", "cam")  # the first asks for a keyframe; the others wait for it
        plane.remb(f"s{n}", 1_000_000)
    assert woken == [1]
    assert plane.drain_events() == [KeyframeNeeded("cam", 42)] + [Bandwidth(f"c{n}", 1_000_000) for n in range(3)]
    plane.remb("s0", 5_000_000)
    plane.remove_connection("c0")
    subscribe(plane, reader, "s0", "c0")
    plane.remb("s0", 2_000_000)
    assert woken == [1, 1]


@pytest.mark.parametrize("call", [
    lambda p: p.receive("nobody", packet(1, DELTA)),
    lambda p: p.remove_publisher("nobody"),
    lambda p: p.learn_ssrc("nobody", 1, "l", None),
    lambda p: p.enable_layer("nobody", "h", False),
    lambda p: p.link("nobody", "cam"),
    lambda p: p.link("s", "nobody"),
    lambda p: p.set_stream("nobody", VIDEO),
    lambda p: p.nack("nobody", [1]),
    lambda p: p.remb("nobody", 1),
    lambda p: p.loss("nobody", 0.1),
    lambda p: p.keyframe_wanted("nobody"),
    lambda p: p.remove_subscriber("nobody"),
    lambda p: p.remove_connection("nobody"),
    lambda p: p.add_subscriber("s9", "nobody", "video", None),
    lambda p: p.set_target_layer("c", "nobody", "h"),
    lambda p: p.sent_stats("nobody"),
    lambda p: p.publisher_stats("nobody"),
    lambda p: p.subscriber_stats("nobody"),
])
def test_a_call_for_an_unknown_id_is_a_clear_error_that_ends_nothing_else(plane, reader, call):
    plane.add_publisher("cam", "video")
    subscribe(plane, reader)
    plane.link("s", "cam")
    plane.receive("cam", packet(1, KEYFRAME))
    with pytest.raises(UnknownId) as raised:
        call(plane)
    assert isinstance(raised.value, KeyError) and raised.value.id == "nobody"
    assert "'nobody'" in str(raised.value)
    plane.receive("cam", packet(2, DELTA))  # the rest goes on
    assert [p.payload for p in reader.packets()] == [KEYFRAME, DELTA]
    assert plane.subscriber_stats("s").publisher_id == "cam"


def test_ids_already_there_and_kinds_that_are_none_are_refused(plane, reader):
    plane.add_publisher("cam", "video")
    subscribe(plane, reader)
    with pytest.raises(ValueError):
        plane.add_publisher("cam", "audio")
    with pytest.raises(ValueError):
        plane.add_publisher("x", "text")
    with pytest.raises(ValueError):
        plane.add_connection("c")
    with pytest.raises(ValueError):
        subscribe(plane, reader)


@pytest.mark.parametrize("name", sorted(IMPLEMENTATIONS))
def test_a_datagram_that_is_not_rtp_is_counted_and_dropped_and_the_stream_goes_on(name, reader):
    plane = IMPLEMENTATIONS[name]()
    plane.add_publisher("cam", "video")
    subscribe(plane, reader)
    plane.link("s", "cam")
    good = packet(1, KEYFRAME).serialize()
    broken = [b"", good[:11], bytes([0x8F]) + good[1:20], bytes([0x90]) + good[1:12] + b"\xbe\xde\xff\xff",
              bytes([0xA0]) + good[1:12] + b"\x00", bytes([0xA0]) + good[1:12] + b"\x01\x02\xff",
              bytes([0x40]) + good[1:]]
    assert plane.receive_datagram("cam", good, None)
    assert [plane.receive_datagram("cam", data, None) for data in broken] == [False] * len(broken)
    assert plane.receive_datagram("cam", packet(2, DELTA).serialize(), None)
    assert [p.payload for p in reader.packets()] == [KEYFRAME, DELTA]
    assert plane.packets_malformed == len(broken) and plane.counters.packets_received == 2


class ConnectingRoute(FixedRoute):
    """The Python plane's route of a connection still being set up: nothing to send on until connected."""

    connected = False

    def current(self):
        return super().current() if self.connected else None


def subscribe_connecting(plane, reader: Reader, subscriber_id="s", connection_id="c"):
    """Add a video subscriber whose connection is not up yet; returns what connects it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    plane.add_connection(connection_id)
    if isinstance(getattr(plane, "inner", plane), NativeDataPlane):
        plane.add_subscriber(subscriber_id, connection_id, "video", None, START)
        connect = lambda: plane.set_route(subscriber_id, route(plane, sock, reader.address))  # noqa: E731
    else:
        later = ConnectingRoute(srtp(Policy.SSRC_ANY_OUTBOUND), sock, reader.address)
        plane.add_subscriber(subscriber_id, connection_id, "video", later, START)
        connect = lambda: setattr(later, "connected", True)  # noqa: E731
    plane.set_stream(subscriber_id, VIDEO)
    return connect, sock


def test_a_subscriber_still_connecting_starts_with_the_keyframe_kept_for_it(plane, reader):
    plane.add_publisher("cam", "video")
    connect, sock = subscribe_connecting(plane, reader)
    plane.link("s", "cam")
    plane.receive("cam", packet(1, DELTA))  # before any keyframe: nothing to keep
    plane.receive("cam", packet(2, KEYFRAME))
    plane.receive("cam", packet(3, DELTA))
    plane.receive("cam", packet(4, DELTA))
    assert reader.packets() == []
    plane.drain_events()
    connect()
    plane.receive("cam", packet(5, DELTA))
    got = reader.packets()
    assert [p.payload for p in got] == [KEYFRAME, DELTA, DELTA, DELTA]  # at once, from the kept keyframe
    assert [p.sequence_number for p in got] == list(range(START.seq, START.seq + 4))
    assert [(p.timestamp - got[0].timestamp) & 0xFFFFFFFF for p in got] == [0, 3000, 6000, 9000]
    assert not any(isinstance(e, KeyframeNeeded) for e in plane.drain_events())  # nothing asked again
    # A new keyframe while still connecting replaces what was kept; more than the hold is dropped.
    connect2, sock2 = subscribe_connecting(plane, reader, "s2", "c2")
    plane.link("s2", "cam")
    for seq in range(6, 8 + gate.HOLD):
        plane.receive("cam", packet(seq, KEYFRAME if seq == 6 else DELTA))
    connect2()
    reader.packets()
    plane.receive("cam", packet(8 + gate.HOLD, DELTA))
    assert [p.ssrc for p in reader.packets()] == [11]  # s goes on; s2 waits for the next keyframe
    sock.close()
    sock2.close()


def rtx(media: RtpPacket, seq: int, ssrc: int) -> bytes:
    """``media`` sent again (RFC 4588): payload type 97, its own SSRC and sequence number."""
    again = RtpPacket(payload_type=97, sequence_number=seq, ssrc=ssrc, timestamp=media.timestamp, marker=media.marker,
                      payload=media.sequence_number.to_bytes(2, "big") + media.payload)
    return again.serialize()


@pytest.mark.parametrize("name", sorted(IMPLEMENTATIONS))
def test_a_retransmitted_datagram_is_forwarded_as_the_packet_it_repairs(name, reader):
    plane = IMPLEMENTATIONS[name]()
    plane.add_publisher("cam", "video")
    plane.set_receive_extensions("cam", rtx_payload_type=97)
    plane.add_publisher("sim", "video", ["l", "m", "h"])
    plane.set_receive_extensions("sim", rtx_payload_type=97)
    plane.learn_ssrc("sim", 41, "l", None)
    plane.learn_ssrc("sim", 51, None, "l")
    assert not plane.receive_datagram("cam", rtx(packet(1, KEYFRAME), 300, 43), None)  # repairs nothing known yet
    subscribe(plane, reader)
    plane.link("s", "cam")
    plane.receive_datagram("cam", packet(1, KEYFRAME).serialize(), None)
    lost = packet(2, DELTA + b"2")
    plane.receive_datagram("cam", packet(3, DELTA).serialize(), None)
    assert plane.receive_datagram("cam", rtx(lost, 301, 43), None)
    assert not plane.receive_datagram("cam", bytes([0x80, 97]) + rtx(lost, 302, 43)[2:12] + b"\x00", None)
    got = reader.packets()
    assert [p.payload for p in got] == [KEYFRAME, DELTA, lost.payload] and {p.ssrc for p in got} == {11}
    assert [p.sequence_number - START.seq for p in got] == [0, 2, 1]  # in its place in the stream
    assert (got[2].timestamp - got[0].timestamp) & 0xFFFFFFFF == 3000
    subscribe(plane, reader, "s2", "c2", params=replace(VIDEO, ssrc=31, rtx_ssrc=32))
    plane.link("s2", "sim")
    plane.receive_datagram("sim", rtx(layered(0, 0, keyframe=True), 900, 51), None)  # l's keyframe, sent again
    plane.receive_datagram("sim", rtx(layered(1, 0, keyframe=False), 901, 52), None)  # an RTX SSRC never learnt
    assert [(p.ssrc, p.payload[-1]) for p in reader.packets()] == [(31, 0)]
    assert plane.packets_malformed == 1


def test_a_nack_on_a_simulcast_source_is_answered_with_the_picture_ids_as_they_were_sent(plane, reader):
    simulcast_publisher(plane)
    subscribe(plane, reader)
    plane.link("s", "cam")
    for seq in range(3, 12):
        plane.receive("cam", layered(seq, 2, keyframe=seq == 3))
    assert plane.set_target_layer("c", "cam", "l")
    for seq in range(12, 24):
        plane.receive("cam", layered(seq, 0, keyframe=seq == 15))
    sent = reader.packets()
    assert [p.payload[-1] for p in sent] == [2] * 9 + [0] * 9
    # Of h, before the run of l began (not sent again: the decoder no longer needs it), and of l
    # after the switch, their picture ids rewritten: sent again as they were sent.
    plane.nack("s", [sent[5].sequence_number, sent[9].sequence_number, sent[16].sequence_number])
    again = reader.packets()
    assert [p.payload[2:] for p in again] == [sent[9].payload, sent[16].payload]
    assert descriptor_fields(again[0].payload[2:])[3] == descriptor_fields(sent[8].payload)[3] + 1 != 5
