"""Hundreds of thousands of broken datagrams through the compiled parsers and SRTP: each call answers or
raises ParseError / SrtpError, nothing crashes, and the process's memory stays flat (C allocations are
not in tracemalloc: resident memory is read from /proc). The same for the compiled plane's forwarding
core: broken RTP (and RTX) datagrams into publishers of every kind, with NACKs, keyframe requests and
layer changes between them, dropped or forwarded; and the REMB estimator fed absurd arrivals. Under
.ci/sanitize.sh the same run is checked by AddressSanitizer and UndefinedBehaviorSanitizer for any read or
write out of bounds."""

from __future__ import annotations

import contextlib
import os
import random
import struct

import pytest

from testsupport.rtp_datagrams import browser_rtp, compounds, feedback_compounds, mutated, one_byte_elements, rtp, two_byte_elements
from videoroomd.media.dataplane.native_module import load

native = load()

KEY, SALT = bytes(range(16)), bytes(range(50, 64))
ROUNDS = int(os.environ.get("VIDEOROOMD_FUZZ_ROUNDS", "50000"))  # each round: six datagrams, 10 calls each
EXPECTED = (native.ParseError, native.SrtpError)
PROFILES = ((native.AES_CM_128_HMAC_SHA1_80, 14), (native.AEAD_AES_128_GCM, 12))


def resident_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def session(profile: int, salt_len: int):
    return native.SrtpSession(profile, KEY, SALT[:salt_len])


def seeds(rng: random.Random) -> list[bytes]:
    """Real shapes to break: RTP of every header form, RTCP compounds, and their SRTP/SRTCP forms."""
    plain = [browser_rtp(seq, rng) for seq in range(5)] + [
        rtp(9, csrcs=(1, 2, 3), padding=7, extension=two_byte_elements({200: b"x" * 40, 3: b""})),
        rtp(10, extension=one_byte_elements({1: b"\xff", 14: bytes(16)}), payload=b""),
        rtp(11, padding=255, payload=bytes(3)),
    ] + compounds()
    secured = []
    for profile in PROFILES:
        sender = session(*profile)
        secured += [sender.protect(p) for p in plain[:8]] + [sender.protect_rtcp(c) for c in compounds()]
    return plain + secured


def poke(receivers, data: bytes) -> None:
    """Every entry point on one datagram; only the documented errors may come out."""
    native.demux(data)
    calls = [native.parse_rtp, native.walk_rtcp]
    for receiver in receivers:
        calls += [receiver.unprotect, receiver.unprotect_rtcp]
    for call in calls:
        try:
            call(data)
        except EXPECTED:
            pass
    try:
        native.rtp_extension(data, data[-1] if data else 1)
    except EXPECTED:
        pass


def round_trip(sender, receiver, shape: bytes, count: int) -> bool:
    """A broken RTP header that still parses, with a valid tag: the decrypt path sees it too. Its sequence
    number and SSRC are set so that each is new (16 streams, rolling over); True when it came back whole."""
    if len(shape) >= 12:
        shape = shape[:2] + struct.pack("!H", count & 0xFFFF) + shape[4:8] + \
            struct.pack("!I", 0x5EED0000 + count % 16) + shape[12:]
    try:
        protected = sender.protect(shape)
    except native.SrtpError:
        return False
    try:
        return receiver.unprotect(protected) == shape
    except native.SrtpError as error:
        assert error.args[1] in ("replayed", "behind the replay window"), error
        return False


def run(rounds: int, rng: random.Random, base: list[bytes], pairs, first: int = 0) -> int:
    receivers = [receiver for _, receiver in pairs]
    answered = 0
    for count in range(first, first + rounds):
        for data in (mutated(rng.choice(base), rng), mutated(mutated(rng.choice(base), rng), rng),
                     rng.randbytes(rng.choice([0, 1, 12, 64, 1500]))):
            poke(receivers, data)
        for sender, receiver in pairs:
            answered += round_trip(sender, receiver, mutated(rng.choice(base[:8]), rng), count)
        if rng.random() < 0.002:
            poke(receivers, rng.randbytes(65535))
    return answered


@pytest.mark.slow
def test_broken_datagrams_are_answered_or_refused_and_memory_stays_flat():
    rng = random.Random(int(os.environ.get("VIDEOROOMD_FUZZ_SEED", "18")))
    base = seeds(rng)
    pairs = [(session(*profile), session(*profile)) for profile in PROFILES]
    run(ROUNDS // 10, rng, base, pairs)  # warm up: the SSRC tables and Python's own caches grow
    before = resident_kib()
    answered = run(ROUNDS, rng, base, pairs, first=ROUNDS // 10)
    grown = resident_kib() - before
    assert answered > ROUNDS // 10  # the decrypt path really ran, on many shapes
    if not os.environ.get("VIDEOROOMD_SANITIZED"):  # AddressSanitizer holds freed memory back on purpose
        assert grown < 4096, f"resident memory grew by {grown} KiB over {ROUNDS} rounds"
    for sender, receiver in pairs:
        # No state for a datagram that did not authenticate: the 16 streams of the shapes, and the seeds'
        # own two SSRCs (RTP and SR, RR) when a mutation happened to leave one of them whole.
        assert sender.streams == 16 and 16 <= receiver.streams <= 18


def plane_with_everything():
    """A compiled plane with a publisher of each kind (plain VP8, simulcast, H.264, audio with levels)
    and a subscriber on each, sending over SRTP into Unix datagram sockets nobody reads at first
    (they fill, so that the falling-behind path runs too); (plane, publisher ids, the reading ends)."""
    import socket

    from videoroomd.media.dataplane.interface import NativeRoute, RewriteStart, StreamParams
    from videoroomd.media.dataplane.native_plane import NativeDataPlane

    plane = NativeDataPlane(choice_interval=0.0)  # a layer choice before every simulcast packet
    publishers = {"cam": ("video", None, "vp8"), "sim": ("video", ["l", "m", "h"], "vp8"),
                  "h264": ("video", None, "h264"), "mic": ("audio", None, "vp8")}
    readers = []
    for n, (publisher_id, (kind, rids, codec)) in enumerate(publishers.items()):
        plane.add_publisher(publisher_id, kind, rids)
        plane.set_receive_extensions(publisher_id, audio_level_id=5, codec=codec, rtx_payload_type=97)
        plane.add_connection(f"c{n}")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setblocking(False)
        theirs.setblocking(False)
        readers.append(theirs)
        plane.add_subscriber(f"s{n}", f"c{n}", kind, NativeRoute(ours, None, native.AES_CM_128_HMAC_SHA1_80, KEY,
                                                                  SALT), RewriteStart(100, 1000, 200))
        plane.set_stream(f"s{n}", StreamParams(100, 90000 if kind == "video" else 48000, 11 + n, 21 + n, 101, "0",
                                               4, 3, 5 if kind == "audio" else None))
        plane.link(f"s{n}", publisher_id)
    for layer, rid in enumerate("lmh"):
        plane.learn_ssrc("sim", 0x1234ABCD + layer, rid, None)
        plane.learn_ssrc("sim", 0x5678 + layer, None, rid)
    return plane, list(publishers), readers


def feed_plane(plane, publishers, readers, rounds: int, rng: random.Random, base: list[bytes]) -> int:
    """Mutated datagrams into every publisher, NACKs of random sequence numbers, layer targets
    changed, events drained; returns how many datagrams were read as RTP."""
    read = 0
    for count in range(rounds):
        for publisher_id in publishers:
            data = mutated(rng.choice(base), rng) if rng.random() < 0.9 else rng.choice(base)
            read += plane.receive_datagram(publisher_id, data, 0.0)
        if rng.random() < 0.001:
            plane.receive_datagram("sim", rng.randbytes(65535), 0.0)
        if count % 50 == 0:
            plane.nack(f"s{rng.randrange(4)}", [rng.randrange(65536) for _ in range(rng.randrange(600))])
            plane.set_target_layer("c1", "sim", rng.choice("lmh"))
            plane.keyframe_wanted(f"s{rng.randrange(4)}")
            plane.drain_events()
        if count % 500 == 0:
            empty(readers)
    return read


def empty(readers) -> None:
    """Read what the subscribers' sockets hold, so that the plane's sends go on."""
    for reader in readers:
        with contextlib.suppress(BlockingIOError):
            while reader.recv(70000):
                pass


@pytest.mark.slow
def test_broken_datagrams_through_the_compiled_plane_are_dropped_or_forwarded_and_memory_stays_flat():
    rng = random.Random(int(os.environ.get("VIDEOROOMD_FUZZ_SEED", "18")))
    base = [browser_rtp(seq, rng) for seq in range(5)] + [
        rtp(9, csrcs=(1, 2, 3), padding=7, extension=two_byte_elements({200: b"x" * 40, 5: b""})),
        rtp(10, extension=one_byte_elements({5: b"\xff", 14: bytes(16)}), payload=b""),
        rtp(11, padding=255, payload=bytes(3)),
        rtp(12, payload=bytes([0x90, 0xE0, 0x80, 0x01, 0x02, 0x03, 0x50]) + bytes(100)),  # VP8 keyframe, all ids
        rtp(13, payload=bytes([0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x65])),  # H.264 STAP-A: SPS, IDR
        rtp(14, payload=bytes([0x7C, 0x85]) + bytes(50)),  # H.264 FU-A start of an IDR
        rtp(15, pt=97, ssrc=0x5678, payload=b"\x00\x0c" + bytes([0x90, 0xE0, 0x80, 0x01, 0x02, 0x03, 0x50])),  # RTX
        rtp(16, pt=97, payload=b"\x00"),  # RTX too short to name what it repairs
    ] + compounds()
    plane, publishers, readers = plane_with_everything()
    rounds = ROUNDS // 2
    feed_plane(plane, publishers, readers, rounds // 10, rng, base)  # warm up
    before = resident_kib()
    read = feed_plane(plane, publishers, readers, rounds, rng, base)
    grown = resident_kib() - before
    counters = plane.counters
    assert read > rounds and counters.packets_malformed > rounds  # both paths ran, often
    assert counters.packets_forwarded > rounds // 10 and counters.packets_retransmitted > 0
    if not os.environ.get("VIDEOROOMD_SANITIZED"):
        assert grown < 4096, f"resident memory grew by {grown} KiB over {rounds} rounds"
    for reader in readers:
        reader.close()


def test_the_remb_estimator_takes_absurd_arrivals_without_overflow():
    """Arrival times jumping by years either way, abs-send-times anywhere, sizes up to 4 GiB: the estimator
    (csrc/remb.c) answers each with a REMB or nothing, a bitrate that is a number, never a crash (and under
    .ci/sanitize.sh, no overflow UBSan sees)."""
    rng = random.Random(18)
    edges = [0, 1, 5, 499, 501, 3001, 1 << 31, 1 << 40, 1 << 52]
    remb, now, answered = native.Remb(), 0, 0
    for n in range(ROUNDS):
        if n % 5000 == 0:
            remb, now = native.Remb(), rng.choice([0, 1 << 52, -(1 << 52), 3_900_000_000_000])
        step = rng.choice(edges) * rng.choice((1, -1)) if rng.random() < 0.05 else rng.randint(-5, 40)
        now = max(-(1 << 52), min(1 << 52, now + step))
        size = rng.choice((0, 1, 1200, 0xFFFFFFFF)) if rng.random() < 0.1 else rng.randint(0, 1500)
        result = remb.add(now, rng.getrandbits(24), size, rng.getrandbits(32))
        if result is not None:
            answered += 1
            assert isinstance(result[0], int) and 1 <= len(result[1]) <= 16
        if n % 97 == 0:
            taken = remb.take()
            assert taken is None or isinstance(taken[0], int)
    assert answered > 0


@pytest.mark.slow
def test_broken_rtcp_through_each_connections_feedback_table_is_done_or_handed_up_and_memory_stays_flat():
    """A client's RTCP about the streams it receives, broken every way, into each connection's Feedback
    (csrc/feedback.c) while the plane forwards: each compound is done in C, handed up in part, or handed up
    whole; NACKs of real history are answered; nothing crashes and memory stays flat."""
    rng = random.Random(int(os.environ.get("VIDEOROOMD_FUZZ_SEED", "18")))
    plane, publishers, readers = plane_with_everything()
    tables = [plane.feedback(f"c{n}").table for n in range(len(publishers))]
    shapes = [feedback_compounds(11 + n) for n in range(len(publishers))]
    media = [rtp(seq, payload=bytes([0x90, 0xE0, 0x80, 0x01, 0x02, 0x03, 0x50]) + bytes(100)) for seq in range(20)]

    def feed(rounds: int) -> None:
        for count in range(rounds):
            for publisher_id in publishers:
                plane.receive_datagram(publisher_id, media[count % 20], 0.0)
            for table, base in zip(tables, shapes):
                data = rng.choice(base)
                for _ in range(rng.choice([0, 1, 1, 2])):
                    data = mutated(data, rng)
                result = table.feed(data)
                assert result is None or isinstance(result, bytes) and len(result) <= len(data)
                if rng.random() < 0.1:
                    table.take()
            if rng.random() < 0.001:
                tables[0].feed(rng.randbytes(65535))
            if count % 50 == 0:
                plane.drain_events()
            if count % 500 == 0:
                empty(readers)

    rounds = ROUNDS // 2
    feed(rounds // 10)  # warm up
    before = resident_kib()
    feed(rounds)
    grown = resident_kib() - before
    totals = {name: sum(t.counters[name] for t in tables) for name in ("taken", "passed", "whole", "nacks")}
    assert all(value > rounds // 20 for value in totals.values()), totals
    assert plane.counters.packets_retransmitted > 100  # (the subscribers' retransmission budgets bound it)
    if not os.environ.get("VIDEOROOMD_SANITIZED"):
        assert grown < 4096, f"resident memory grew by {grown} KiB over {rounds} rounds"
    for reader in readers:
        reader.close()
