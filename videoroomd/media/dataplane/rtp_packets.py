"""RTP packets as the forwarder writes them (RFC 3550, RFC 8285 one-byte extensions): pure functions.

A forwarded packet keeps the publisher's payload and marker and gets the
subscriber's own header: its payload type, SSRC, sequence number and
timestamp (rebased per subscriber), and the header extensions the
subscriber negotiated.
"""

from __future__ import annotations

import struct

RTP_VERSION_BITS = 0x80
PADDING_BIT = 0x20
EXTENSION_BIT = 0x10
ONE_BYTE_PROFILE = 0xBEDE
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970

_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


def one_byte_element(ext_id: int, value: bytes) -> bytes:
    """One RFC 8285 one-byte header extension element (id 1..14, 1..16 bytes of value)."""
    if not 1 <= ext_id <= 14:
        raise ValueError(f"one-byte header extension id must be 1..14, not {ext_id}")
    if not 1 <= len(value) <= 16:
        raise ValueError(f"one-byte header extension value must be 1..16 bytes, not {len(value)}")
    return bytes([(ext_id << 4) | (len(value) - 1)]) + value


def extension_block(elements: bytes) -> bytes:
    """The extension header and its elements, padded to 32 bits (empty when there are none)."""
    if not elements:
        return b""
    padded = elements + b"\x00" * (-len(elements) % 4)
    return _EXTENSION_HEADER.pack(ONE_BYTE_PROFILE, len(padded) // 4) + padded


def abs_send_time(unix_time: float) -> int:
    """The abs-send-time extension's value: 6.18 fixed-point seconds, wrapping every 64 s.

    (NTP time shifted by 14 bits; the NTP epoch offset is a multiple of 64 s.)
    """
    return int(unix_time * (1 << 18)) & 0xFFFFFF


def ntp_time(unix_time: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) for a Unix time, as sender reports carry it."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def rtp_packet(payload_type: int, marker: int, sequence_number: int, timestamp: int, ssrc: int,
               extensions: bytes, payload: bytes, padding: int = 0) -> bytes:
    """A serialized RTP packet. ``extensions`` comes from :func:`extension_block`;
    ``padding`` bytes (at most 255) follow the payload, the last one holding their count."""
    first = RTP_VERSION_BITS
    if extensions:
        first |= EXTENSION_BIT
    tail = b""
    if padding:
        first |= PADDING_BIT
        tail = b"\x00" * (padding - 1) + bytes([padding])
    header = _HEADER.pack(first, (marker << 7) | payload_type, sequence_number, timestamp, ssrc)
    return header + extensions + payload + tail


def vp8_starts_keyframe(payload: bytes) -> bool:
    """Whether an RTP VP8 payload is the first packet of a key frame (RFC 7741 section 4).

    That is: the payload descriptor has S=1 and partition index 0, and the
    VP8 payload header after it has P=0 (key frame, RFC 6386 section 9.1).
    """
    size = len(payload)
    if size < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S bit, PID
        return False
    offset = 1
    if first & 0x80:  # X: an extension byte follows
        extended = payload[1]
        offset = 2
        if extended & 0x80:  # I: picture id, 7 or 15 bits
            if offset >= size:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if extended & 0x40:  # L: TL0PICIDX
            offset += 1
        if extended & 0x30:  # T or K: one byte with TID/Y/KEYIDX
            offset += 1
    return offset < size and not payload[offset] & 0x01
