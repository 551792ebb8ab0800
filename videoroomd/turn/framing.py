"""Cutting a TCP (or TLS) byte stream into STUN messages and ChannelData (RFC 8656 §7.4, §12.5; pure code)."""

from __future__ import annotations

import struct

from .channeldata import is_channel_number
from .messages import HEADER_LENGTH, MAX_MESSAGE, Malformed

COOKIE = b"\x21\x12\xa4\x42"

MAX_CHANNEL_FRAME = 4 + 0xFFFF + 3  # header, the largest payload, padding


def frame_length(buffer: bytes | bytearray) -> int | None:
    """The length of the frame at the start of ``buffer``, None until enough is there to say; raises Malformed.

    A STUN message is 20 bytes plus its length field; ChannelData is 4 plus its
    length, padded to a multiple of 4 on a stream.
    """
    if not buffer:
        return None
    kind = buffer[0] & 0xC0
    if kind == 0x00:
        if len(buffer) < 4:
            return None
        (length,) = struct.unpack("!H", bytes(buffer[2:4]))
        if HEADER_LENGTH + length > MAX_MESSAGE:
            raise Malformed(f"a STUN message of {HEADER_LENGTH + length} bytes, more than {MAX_MESSAGE}")
        if len(buffer) >= 8 and bytes(buffer[4:8]) != COOKIE:
            raise Malformed("a STUN message without the magic cookie (TLS on the plain port?)")
        return HEADER_LENGTH + length
    if kind == 0x40:
        if len(buffer) < 4:
            return None
        channel, length = struct.unpack("!HH", bytes(buffer[:4]))
        if not is_channel_number(channel):
            raise Malformed(f"ChannelData on channel 0x{channel:04x}, which no client may use")
        return 4 + length + (-length % 4)
    raise Malformed("neither STUN nor ChannelData: the stream is out of step")


class StreamFramer:
    """Bytes in, whole frames out; at most one frame's worth is ever buffered."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; returns the frames it completed. Raises Malformed (then drop the connection)."""
        self._buffer += data
        frames = []
        while True:
            length = frame_length(self._buffer)
            if length is None or len(self._buffer) < length:
                break
            frames.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
        if len(self._buffer) > MAX_CHANNEL_FRAME:
            raise Malformed("a frame larger than any allowed")
        return frames

    def take(self) -> bytes:
        """The bytes fed but not yet framed; the framer is empty after."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest
