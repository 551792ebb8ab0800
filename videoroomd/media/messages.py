"""The messages between the control plane and a media worker, and how they are framed (pure code).

Everything that crosses the boundary is plain data: ids, strings, numbers,
lists and dicts, as JSON, each message preceded by its length (4 bytes, big
endian). No object, bound method or closure crosses it, so the same
messages serve a media thread in the daemon's process and a worker process.

Commands (control plane → worker) carry an ``id``; the worker answers each
with a ``reply`` of the same id, ``ok`` with a ``result`` or not with an
``error`` text. Events (worker → control plane) carry no id.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import orjson

MAX_MESSAGE = 4 * 1024 * 1024  # bytes of one message; an answer SDP for a full room is ~50 KB
_LENGTH = struct.Struct(">I")

# Command → the fields it must carry, with their types (besides "type" and "id").
COMMANDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "ping": {},
    "open_room": {"room": str, "ice_servers": list, "certificate": (dict, type(None)), "addresses": list,
                  "udp_ports": (list, type(None))},
    # Optional fields: open_room "max_video_bitrate" (int bits/s or None), answer "simulcast"
    # ({sending mid -> its RIDs, low to high}; absent or empty: no simulcast).
    "answer": {"room": str, "endpoint": str, "sdp": str, "sending": dict, "slots": list},
    "add_candidate": {"room": str, "endpoint": str, "candidate": str, "index": int},
    "close_endpoint": {"room": str, "endpoint": str},
    "silent": {"room": str, "seconds": (int, float)},
    "endpoints": {"room": str},
    "close_room": {"room": str},
    # The TURN clients the daemon hands to the worker (see turn_relay): the socket comes on the
    # handoff socket with ``token``; ``state`` is the allocation's, in seconds left.
    "turn_handoff": {"token": str, "relay": str, "transport": str, "client": list, "relay_address": list,
                     "user": str, "bandwidth": (int, float), "state": dict, "peers": list},
    "turn_update": {"relay": str, "state": dict, "peers": list},
    "turn_send": {"relay": str, "data": str},
    "turn_release": {"relay": str},
    # Subscriber ``endpoint`` wants at most layer ``layer`` of simulcast track ``track_id``.
    "target_layer": {"room": str, "endpoint": str, "track_id": str, "layer": str},
    # The publisher of ``track_id`` turned its layer ``layer`` off or on.
    "layer_enabled": {"room": str, "track_id": str, "layer": str, "enabled": bool},
}
# Event → its fields.
EVENTS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "reply": {"id": int, "ok": bool},
    "state": {"room": str, "endpoint": str, "state": str},
    "vad": {"room": str, "track": str, "speaking": bool},
    # Subscriber ``endpoint`` now receives ``layer`` of ``track_id``; reason: other,
    # encoding_inactive or low_bandwidth.
    "layer": {"room": str, "endpoint": str, "track_id": str, "layer": str, "reason": str},
    # What the media worker estimates it can send to ``endpoint``, in bits/s.
    "bandwidth": {"room": str, "endpoint": str, "bps": int},
    "stats": {"cpu_seconds": (int, float), "rooms": dict},
    "turn_control": {"relay": str, "data": str},   # a handed client's request, for the daemon to answer
    "turn_closed": {"relay": str},                 # a handed TCP client left
}


class MessageError(Exception):
    """Bytes that are not a message of this protocol; the text says what is wrong."""


@dataclass
class Decoder:
    """Cuts a byte stream into messages; feed it what arrives, take what is complete."""

    buffer: bytearray

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[dict]:
        """The messages completed by ``data``; raises MessageError on a frame that cannot be one."""
        self.buffer += data
        out = []
        while len(self.buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self.buffer)
            if length > MAX_MESSAGE:
                raise MessageError(f"a message of {length} bytes; at most {MAX_MESSAGE}")
            if len(self.buffer) < _LENGTH.size + length:
                break
            body = bytes(self.buffer[_LENGTH.size:_LENGTH.size + length])
            del self.buffer[:_LENGTH.size + length]
            out.append(decode(body))
        return out


def encode(message: dict[str, Any]) -> bytes:
    """One framed message."""
    body = orjson.dumps(message)
    if len(body) > MAX_MESSAGE:
        raise MessageError(f"a message of {len(body)} bytes; at most {MAX_MESSAGE}")
    return _LENGTH.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """A message's fields, checked against its type; raises MessageError."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MessageError(f"not JSON: {error.msg}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MessageError("a message is an object with a type")
    kind = message["type"]
    fields = COMMANDS.get(kind)
    if fields is not None:
        fields = {"id": int, **fields}
    else:
        fields = EVENTS.get(kind)
    if fields is None:
        raise MessageError(f"unknown message type {kind!r}")
    for name, expected in fields.items():
        value = message.get(name)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise MessageError(f"{kind}: {name} is missing or of the wrong type")
    return message


def command(kind: str, request_id: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "id": request_id, **fields}


def reply(request_id: int, result: Any = None, error: str | None = None) -> dict[str, Any]:
    if error is not None:
        return {"type": "reply", "id": request_id, "ok": False, "error": error}
    return {"type": "reply", "id": request_id, "ok": True, "result": result}
