"""A received RTP datagram read into the fields the data plane uses (RFC 3550, RFC 8285): pure.

The Python plane's :meth:`~.python_plane.PythonDataPlane.receive_datagram` reads
decrypted datagrams with it, as the compiled plane's ``parse.c`` does: the
fixed header, CSRCs and extension block bounded by the datagram, padding
that is not longer than the payload, the audio level (RFC 6464) found by
its negotiated id in one-byte or two-byte elements; a retransmission
(RFC 4588) unwrapped into the packet it repairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class MalformedPacket(ValueError):
    """A datagram that is not an RTP packet one can trust; the message says what is wrong."""


@dataclass
class Extensions:
    audio_level: tuple[bool, int] | None = None


@dataclass
class ReceivedPacket:
    """The fields of :class:`.interface.Packet`."""

    ssrc: int
    sequence_number: int
    timestamp: int
    marker: int
    payload: bytes
    extensions: Extensions = field(default_factory=Extensions)
    payload_type: int = 0


def _element(block: bytes, profile: int, wanted: int) -> bytes | None:
    """The value of extension element ``wanted`` in an extension block's elements, if any."""
    one_byte = profile == 0xBEDE
    if not one_byte and profile & 0xFFF0 != 0x1000:
        return None
    at = 0
    while at < len(block):
        if block[at] == 0:
            at += 1
            continue
        if one_byte:
            ident, size = block[at] >> 4, (block[at] & 0x0F) + 1
            if ident == 15:
                return None
            at += 1
        else:
            if at + 2 > len(block):
                raise MalformedPacket("a two-byte extension element is cut at the block's end")
            ident, size = block[at], block[at + 1]
            at += 2
        if size > len(block) - at:
            raise MalformedPacket("an extension element runs past its block")
        if ident == wanted:
            return block[at:at + size]
        at += size
    return None


def parse(data: bytes, audio_level_id: int | None = None) -> ReceivedPacket:
    """Read one RTP datagram; raises MalformedPacket for any shape that cannot be trusted."""
    size = len(data)
    if size < 12:
        raise MalformedPacket(f"{size} bytes are shorter than an RTP header")
    if data[0] >> 6 != 2:
        raise MalformedPacket("not RTP version 2")
    header = 12 + 4 * (data[0] & 0x0F)
    if header > size:
        raise MalformedPacket("the CSRC list runs past the end")
    level = None
    if data[0] & 0x10:
        if header + 4 > size:
            raise MalformedPacket("the extension header runs past the end")
        profile, words = int.from_bytes(data[header:header + 2], "big"), int.from_bytes(data[header + 2:header + 4],
                                                                                        "big")
        block = data[header + 4:header + 4 + 4 * words]
        header += 4 + 4 * words
        if header > size:
            raise MalformedPacket("the extension block runs past the end")
        value = _element(block, profile, audio_level_id) if audio_level_id else None
        if value:
            level = (bool(value[0] & 0x80), value[0] & 0x7F)
    padding = 0
    if data[0] & 0x20:
        padding = data[-1] if size > header else 0
        if padding == 0 or padding > size - header:
            raise MalformedPacket("the padding count is 0 or longer than the payload")
    return ReceivedPacket(int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big"),
                          int.from_bytes(data[4:8], "big"), data[1] >> 7, bytes(data[header:size - padding]),
                          Extensions(level), data[1] & 0x7F)


def unwrap_rtx(packet: ReceivedPacket, media_ssrc: int) -> None:
    """Turn a retransmission (RFC 4588) into the packet it repairs, in place: ``media_ssrc`` and
    the original sequence number its payload starts with. Raises MalformedPacket when it has none."""
    if len(packet.payload) < 2:
        raise MalformedPacket("a retransmission without its original sequence number")
    packet.ssrc = media_ssrc
    packet.sequence_number = int.from_bytes(packet.payload[:2], "big")
    packet.payload = packet.payload[2:]
