"""Phoenix Channels, JSON serializer v2: ``[join_ref, ref, topic, event, payload]`` (pure code).

This is the framing phoenix.js speaks with ``vsn=2.0.0``. Only text frames
carry JSON; the binary variant of the serializer is not used by the clients
we serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import json_limits
from . import json_text

PHOENIX_TOPIC = "phoenix"
HEARTBEAT = "heartbeat"
JOIN = "phx_join"
LEAVE = "phx_leave"
REPLY = "phx_reply"
CLOSE = "phx_close"
ERROR = "phx_error"
ROOM_PREFIX = "room:"


class ProtocolError(Exception):
    """A frame that is not Phoenix v2; the message says what is wrong with it."""


@dataclass(frozen=True)
class Frame:
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any

    def encode(self) -> str:
        return json_limits.dumps([self.join_ref, self.ref, self.topic, self.event, self.payload])


def _ref(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"{name} must be a string or null")


def decode(text: str | bytes) -> Frame:
    """Parse one text frame; raises ProtocolError saying what is wrong."""
    value = json_text.load(text, ProtocolError, "send JSON text frames (vsn=2.0.0)")
    if not isinstance(value, list) or len(value) != 5:
        raise ProtocolError("expected [join_ref, ref, topic, event, payload]")
    join_ref, ref, topic, event, payload = value
    if not isinstance(topic, str) or not topic:
        raise ProtocolError("topic must be a non-empty string")
    if not isinstance(event, str) or not event:
        raise ProtocolError("event must be a non-empty string")
    return Frame(_ref(join_ref, "join_ref"), _ref(ref, "ref"), topic, event, payload)


def reply(frame: Frame, status: str, response: dict | None = None) -> Frame:
    """The ``phx_reply`` to ``frame``: ``{status, response}``, with its refs."""
    return Frame(frame.join_ref, frame.ref, frame.topic, REPLY, {"status": status, "response": response or {}})


def push(join_ref: str | None, topic: str, event: str, payload: Any) -> Frame:
    """A server-initiated message on a joined channel (no ref)."""
    return Frame(join_ref, None, topic, event, payload)


def room_name(topic: str) -> str | None:
    """``"room:lobby"`` → ``"lobby"``; None for other topics."""
    if topic.startswith(ROOM_PREFIX) and len(topic) > len(ROOM_PREFIX):
        return topic[len(ROOM_PREFIX):]
    return None
