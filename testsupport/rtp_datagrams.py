"""RTP and RTCP datagrams as clients send them, and broken copies of them (pure code).

What the compiled data plane's tests feed it: RTP with CSRCs, one-byte and
two-byte header extensions and padding; RTCP compounds a browser sends
(SR + SDES, RR + REMB, NACK, PLI); and :func:`mutated`, one datagram broken
in one of the ways a hostile or faulty sender breaks them (flipped bytes,
cut short, grown, lying length fields, random bytes). Each function takes a
``random.Random`` where it draws, so a failing run replays from its seed.
"""

from __future__ import annotations

import random
import struct


def rtp(seq: int, *, ssrc: int = 0x1234ABCD, pt: int = 96, marker: bool = False, timestamp: int = 0,
        csrcs: tuple[int, ...] = (), extension: tuple[int, bytes] | None = None, padding: int = 0,
        payload: bytes = b"\x90\x80" + bytes(range(200))) -> bytes:
    """One RTP packet; ``extension`` is (profile, elements bytes), padded here to whole words."""
    first = 0x80 | len(csrcs) | (0x20 if padding else 0) | (0x10 if extension else 0)
    out = struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    out += b"".join(struct.pack("!I", c) for c in csrcs)
    if extension:
        profile, elements = extension
        elements += b"\x00" * (-len(elements) % 4)
        out += struct.pack("!HH", profile, len(elements) // 4) + elements
    out += payload
    if padding:
        out += b"\x00" * (padding - 1) + bytes([padding])
    return out


def one_byte_elements(elements: dict[int, bytes]) -> tuple[int, bytes]:
    """RFC 8285 one-byte form (ids 1-14, 1-16 bytes each)."""
    return 0xBEDE, b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements.items())


def two_byte_elements(elements: dict[int, bytes]) -> tuple[int, bytes]:
    """RFC 8285 two-byte form (ids 1-255, 0-255 bytes each)."""
    return 0x1000, b"".join(bytes([i, len(v)]) + v for i, v in elements.items())


def browser_rtp(seq: int, rng: random.Random) -> bytes:
    """A VP8 packet as Chromium sends it: mid, abs-send-time and transport-cc in one-byte extensions."""
    ext = one_byte_elements({4: b"0", 3: rng.randbytes(3), 5: rng.randbytes(2)})
    return rtp(seq, extension=ext, timestamp=seq * 3000, payload=rng.randbytes(rng.randrange(100, 1200)))


def rtcp(packet_type: int, count: int, body: bytes) -> bytes:
    """One RTCP packet: header with the length in words minus one, then ``body`` (whole words)."""
    assert len(body) % 4 == 0
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


def sender_report(ssrc: int = 0x1234ABCD) -> bytes:
    return rtcp(200, 0, struct.pack("!IQIII", ssrc, 0xE000000012345678, 90000, 100, 100000))


def sdes_cname(ssrc: int = 0x1234ABCD, cname: bytes = b"abcdefgh") -> bytes:
    chunk = struct.pack("!IBB", ssrc, 1, len(cname)) + cname + b"\x00"
    return rtcp(202, 1, chunk + b"\x00" * (-len(chunk) % 4))


def receiver_report(ssrc: int = 1, source: int = 0x1234ABCD) -> bytes:
    return rtcp(201, 1, struct.pack("!II5I", ssrc, source, 0x01000005, 1234, 20, 0, 0))


def nack(ssrc: int = 1, source: int = 0x1234ABCD, pid: int = 100, blp: int = 0b101) -> bytes:
    return rtcp(205, 1, struct.pack("!IIHH", ssrc, source, pid, blp))


def pli(ssrc: int = 1, source: int = 0x1234ABCD) -> bytes:
    return rtcp(206, 1, struct.pack("!II", ssrc, source))


def remb(ssrc: int = 1, source: int = 0x1234ABCD) -> bytes:
    return rtcp(206, 15, struct.pack("!II4sBBHI", ssrc, 0, b"REMB", 1, 0x12, 0x3456, source))


def fir(ssrc: int = 1, target: int = 0x1234ABCD) -> bytes:
    """RFC 5104's FIR: the media SSRC field 0, the target in the FCI."""
    return rtcp(206, 4, struct.pack("!II", ssrc, 0) + struct.pack("!IB3x", target, 1))


def bye(ssrc: int = 0x1234ABCD) -> bytes:
    return rtcp(203, 1, struct.pack("!I", ssrc))


def feedback_compounds(source: int) -> list[bytes]:
    """RTCP compounds a client sends about a stream ``source`` it receives (and one about its own)."""
    return [receiver_report(source=source) + remb(source=source), receiver_report(source=source) + nack(source=source),
            receiver_report(source=source) + pli(source=source) + fir(target=source),
            sender_report() + sdes_cname() + receiver_report(source=source) + nack(source=source, pid=7, blp=0xFFFF),
            bye() + sdes_cname() + remb(source=source)]


def compounds() -> list[bytes]:
    """RTCP compounds a browser sends."""
    return [sender_report() + sdes_cname(), receiver_report() + remb(), receiver_report() + nack(),
            receiver_report() + pli(), sender_report() + sdes_cname() + receiver_report() + nack() + pli()]


def mutated(data: bytes, rng: random.Random) -> bytes:
    """``data`` broken one way: bytes flipped, cut, grown, a length field lying, or random bytes in its place."""
    pick = rng.randrange(8)
    out = bytearray(data)
    if pick == 0 and out:
        for _ in range(rng.randrange(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif pick == 1:
        del out[rng.randrange(len(out) + 1):]
    elif pick == 2:
        out += rng.randbytes(rng.randrange(1, 40))
    elif pick == 3 and len(out) >= 4:
        at = rng.randrange(0, len(out) - 1)  # a 16-bit field anywhere (RTCP lengths, extension lengths, ...)
        out[at:at + 2] = rng.choice([b"\xff\xff", b"\x00\x00", b"\x7f\xff", rng.randbytes(2)])
    elif pick == 4 and out:
        out[0] = rng.choice([0x80 | rng.randrange(16), 0x90 | rng.randrange(16), 0xB0 | rng.randrange(16),
                             0xA0 | rng.randrange(32), rng.randrange(256)])  # CC, X, P as a liar sets them
    elif pick == 5 and out:
        out[-1] = rng.randrange(256)  # the padding count
    elif pick == 6:
        return rng.randbytes(rng.choice([0, 1, 2, 3, 4, 11, 12, 13, 16, 24, rng.randrange(1500)]))
    else:
        return bytes([rng.choice([0x80, 0x90, 0xA0, 0xB0, 0x81, 0x8F])]) + rng.randbytes(rng.randrange(40))
    return bytes(out)
