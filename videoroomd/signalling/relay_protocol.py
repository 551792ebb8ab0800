"""The peer-to-peer relay's messages: ``{event, data, from, to}`` (pure code).

``from`` is always set by the server; ``to`` is a list of peer ids or
``"all"`` (everyone in the room but the sender).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import json_limits
from . import json_text

ALL = "all"
INVALID_MESSAGE = "Invalid message"
COULD_NOT_JOIN = "Could not join room"
ROOM_CLOSED = "Room closed"
MAX_RECIPIENTS = 1000
# The events the server itself sends: a peer sending one could pass for the server.
SERVER_EVENTS = frozenset({"joined", "left", "authenticated", "error"})


class InvalidMessage(Exception):
    """A client message the relay cannot forward; the text is the error's ``details``."""


@dataclass(frozen=True)
class Outgoing:
    """A client's message, checked: what to send and to whom."""

    event: str
    data: Any
    to: tuple[str, ...] | None  # None: everyone but the sender


def parse(text: str | bytes) -> Outgoing:
    """Check a client's message; raises InvalidMessage saying what is wrong."""
    value = json_text.load(text, InvalidMessage, "send JSON text")
    if not isinstance(value, dict):
        raise InvalidMessage("expected a JSON object {event, data, to}")
    event = value.get("event")
    if not isinstance(event, str) or not event:
        raise InvalidMessage("event must be a non-empty string")
    if event in SERVER_EVENTS:
        raise InvalidMessage(f"event {event!r} is the server's own; peers may not send it")
    to = value.get("to")
    if to == ALL:
        recipients = None
    elif isinstance(to, list) and all(isinstance(p, str) for p in to) and len(to) <= MAX_RECIPIENTS:
        recipients = tuple(dict.fromkeys(to))
    else:
        raise InvalidMessage('to must be "all" or a list of peer ids')
    return Outgoing(event, value.get("data"), recipients)


def message(event: str, data: Any, *, sender: str | None, to: list[str] | str) -> str:
    return json_limits.dumps({"event": event, "data": data, "from": sender, "to": to})


def authenticated(peer_id: str) -> str:
    return message("authenticated", {"peer_id": peer_id}, sender=None, to=[peer_id])


def joined(peer_id: str) -> str:
    return message("joined", {"peer_id": peer_id}, sender=None, to=ALL)


def left(peer_id: str) -> str:
    return message("left", {"peer_id": peer_id}, sender=None, to=ALL)


def error(peer_id: str, description: str, details: Any) -> str:
    return message("error", {"description": description, "details": details}, sender=None, to=[peer_id])
