"""STUN/TURN messages on the wire, on top of aioice's codec (pure code).

aioice parses and builds the messages; this module adds what a server
needs besides: the checks aioice leaves out (magic cookie, attributes that
run past the end, too many attributes), the list of comprehension-required
attributes nobody here understands (answered with 420), the raw values of
the TURN attributes aioice has no entry for, and responses that carry such
attributes, signed with MESSAGE-INTEGRITY and FINGERPRINT.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from aioice import stun

HEADER_LENGTH = stun.HEADER_LENGTH
MAX_MESSAGE = 4096      # bytes: a TURN request is small; anything larger is refused unread
MAX_ATTRIBUTES = 32     # a request needs a handful

# Attribute types aioice has no entry for (RFC 8656 §18, RFC 8489 §18.3).
UNKNOWN_ATTRIBUTES = 0x000A
XOR_PEER_ADDRESS = 0x0012
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
DONT_FRAGMENT = 0x001A
RESERVATION_TOKEN = 0x0022
ADDITIONAL_ADDRESS_FAMILY = 0x8000
# Understood although aioice does not parse them; their raw values are kept.
RAW_UNDERSTOOD = frozenset({REQUESTED_ADDRESS_FAMILY, DONT_FRAGMENT, EVEN_PORT})

ERROR_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 420: "Unknown Attribute",
    437: "Allocation Mismatch", 438: "Stale Nonce", 440: "Address Family not Supported",
    441: "Wrong Credentials", 442: "Unsupported Transport Protocol", 486: "Allocation Quota Reached",
    500: "Server Error", 508: "Insufficient Capacity",
}


class Malformed(Exception):
    """Bytes that are not a STUN message this server can read; they are dropped."""


@dataclass
class Decoded:
    message: stun.Message
    unknown: tuple[int, ...] = ()      # comprehension-required attribute types not understood
    raw: dict[int, bytes] = field(default_factory=dict)  # values of the RAW_UNDERSTOOD attributes
    peers: tuple[tuple[str, int], ...] = ()  # every XOR-PEER-ADDRESS (aioice keeps only the last)


def looks_like_stun(data: bytes) -> bool:
    """Whether ``data`` starts like a STUN message (two zero bits, then the magic cookie)."""
    return len(data) >= HEADER_LENGTH and data[0] & 0xC0 == 0 and data[4:8] == struct.pack("!I", stun.COOKIE)


def decode(data: bytes) -> Decoded:
    """Parse one whole STUN message; raises :class:`Malformed` saying why not."""
    if len(data) > MAX_MESSAGE:
        raise Malformed(f"{len(data)} bytes, more than {MAX_MESSAGE}")
    if not looks_like_stun(data):
        raise Malformed("not a STUN message (no magic cookie)")
    (length,) = struct.unpack("!H", data[2:4])
    if length % 4 or HEADER_LENGTH + length != len(data):
        raise Malformed("the length field does not match the message")
    unknown: list[int] = []
    raw: dict[int, bytes] = {}
    peer_values: list[bytes] = []
    pos, count = HEADER_LENGTH, 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise Malformed("an attribute header runs past the end")
        kind, size = struct.unpack("!HH", data[pos:pos + 4])
        if pos + 4 + size > len(data):
            raise Malformed(f"attribute 0x{kind:04x} runs past the end")
        count += 1
        if count > MAX_ATTRIBUTES:
            raise Malformed(f"more than {MAX_ATTRIBUTES} attributes")
        if kind == XOR_PEER_ADDRESS:
            peer_values.append(data[pos + 4:pos + 4 + size])
        elif kind in RAW_UNDERSTOOD:
            raw.setdefault(kind, data[pos + 4:pos + 4 + size])
        elif kind not in stun.ATTRIBUTES_BY_TYPE and kind < 0x8000:
            unknown.append(kind)
        pos += 4 + size + stun.padding_length(size)
    try:
        message = stun.parse_message(data)
        peers = tuple(stun.unpack_xor_address(value, message.transaction_id) for value in peer_values)
    except Exception as error:  # aioice raises ValueError, struct.error, UnicodeDecodeError...: all mean malformed
        raise Malformed(f"unreadable: {error}") from None
    return Decoded(message, tuple(unknown), raw, peers)


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + bytes(stun.padding_length(len(value)))


def encode(message: stun.Message, key: bytes | None = None, extra: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """The bytes of ``message`` plus ``extra`` raw attributes, signed with ``key`` if given, with FINGERPRINT."""
    attributes = {k: v for k, v in message.attributes.items() if k not in ("MESSAGE-INTEGRITY", "FINGERPRINT")}
    body = bytes(stun.Message(message.message_method, message.message_class, message.transaction_id, attributes))
    body += b"".join(_attribute(kind, value) for kind, value in extra)
    if key is not None:
        body = stun.set_body_length(body, len(body) - HEADER_LENGTH)
        body += _attribute(0x0008, stun.message_integrity(body, key))
    body = stun.set_body_length(body, len(body) - HEADER_LENGTH)
    fingerprint = stun.message_fingerprint(body)
    body += _attribute(0x8028, struct.pack("!I", fingerprint))
    return stun.set_body_length(body, len(body) - HEADER_LENGTH)


def response(request: stun.Message, attributes: dict[str, Any] | None = None) -> stun.Message:
    """A success response to ``request``."""
    return stun.Message(request.message_method, stun.Class.RESPONSE, request.transaction_id, dict(attributes or {}))


def error(request: stun.Message, code: int, reason: str | None = None, attributes: dict[str, Any] | None = None) -> stun.Message:
    """An error response to ``request`` with ``code`` and a reason saying what was wrong."""
    attrs = {"ERROR-CODE": (code, reason or ERROR_REASONS.get(code, "Error"))}
    attrs.update(attributes or {})
    return stun.Message(request.message_method, stun.Class.ERROR, request.transaction_id, attrs)


def unknown_attributes_value(kinds: tuple[int, ...]) -> bytes:
    """The UNKNOWN-ATTRIBUTES value listing ``kinds`` (RFC 8489 §14.9)."""
    return b"".join(struct.pack("!H", kind) for kind in kinds[:16])


def requested_family(raw: dict[int, bytes]) -> int | None:
    """The family a REQUESTED-ADDRESS-FAMILY asks for (1 IPv4, 2 IPv6), None if absent; raises Malformed."""
    value = raw.get(REQUESTED_ADDRESS_FAMILY)
    if value is None:
        return None
    if len(value) != 4:
        raise Malformed("REQUESTED-ADDRESS-FAMILY is not 4 bytes")
    return value[0]
