"""Hundreds of thousands of broken datagrams through the compiled parsers and SRTP: each call answers or
raises ParseError / SrtpError, nothing crashes, and the process's memory stays flat (C allocations are
not in tracemalloc: resident memory is read from /proc). Under .ci/sanitize.sh the same run is checked by
AddressSanitizer and UndefinedBehaviorSanitizer for any read or write out of bounds."""

from __future__ import annotations

import os
import random
import struct

import pytest

from testsupport.rtp_datagrams import browser_rtp, compounds, mutated, one_byte_elements, rtp, two_byte_elements
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
