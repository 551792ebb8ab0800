"""ChannelData messages (RFC 8656 §12.4): a 4-byte header instead of a STUN indication (pure code)."""

from __future__ import annotations

import struct

from .messages import Malformed

FIRST_CHANNEL = 0x4000
# RFC 8656 narrows channels to 0x4FFF, but RFC 5766 allowed up to 0x7FFE and clients still
# use them (libwebrtc, coturn's own client): refusing those would break their calls.
LAST_CHANNEL = 0x7FFE
HEADER_LENGTH = 4


def looks_like_channel_data(data: bytes) -> bool:
    """Whether ``data`` starts like ChannelData (the first two bits are 01)."""
    return len(data) >= 1 and data[0] & 0xC0 == 0x40


def is_channel_number(number: int) -> bool:
    return FIRST_CHANNEL <= number <= LAST_CHANNEL


def parse(data: bytes) -> tuple[int, bytes]:
    """``(channel, payload)`` of one ChannelData message; raises :class:`Malformed`.

    Bytes after the announced length are padding (over TCP) and are ignored.
    """
    if len(data) < HEADER_LENGTH:
        raise Malformed("ChannelData shorter than its header")
    channel, length = struct.unpack("!HH", data[:HEADER_LENGTH])
    if not is_channel_number(channel):
        raise Malformed(f"channel number 0x{channel:04x} outside 0x4000-0x7ffe")
    if HEADER_LENGTH + length > len(data):
        raise Malformed("ChannelData shorter than its length field says")
    return channel, data[HEADER_LENGTH:HEADER_LENGTH + length]


def build(channel: int, payload: bytes, *, pad: bool = False) -> bytes:
    """A ChannelData message; ``pad`` rounds it up to 4 bytes, as TCP framing requires (§12.5)."""
    if not is_channel_number(channel):
        raise ValueError(f"channel number 0x{channel:04x} outside 0x4000-0x7ffe")
    if len(payload) > 0xFFFF:
        raise ValueError("a ChannelData payload is at most 65535 bytes")
    data = struct.pack("!HH", channel, len(payload)) + payload
    if pad and len(data) % 4:
        data += bytes(4 - len(data) % 4)
    return data
