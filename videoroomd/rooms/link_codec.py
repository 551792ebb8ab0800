"""The participant link's events as text, for a link carried between nodes (pure, synchronous).

A message is one JSON object ``{"v": VERSION, "t": TYPE, ...}``; the
fields each type needs are listed in :data:`MESSAGES` with their types,
and an event of the link (:data:`.link.ToRoom`, :data:`.link.FromRoom`)
rides in a message's ``item`` as ``{"k": CLASS NAME, FIELD: VALUE...}``.
Another node, another version or anyone who can publish on the Redis may
have written what is read, so :func:`decode` checks everything and raises
:class:`BadMessage` (too large, not JSON, unknown version, unknown type, a
field missing or of the wrong type); the reader counts and drops it.

A moderation request rides as an item too, and is read again with the
limits of a client's request (:func:`.moderation.parse_request`): what
an edge forwards can do no more than what a client of the room's node sends.

Imports only :mod:`.link`, :mod:`.moderation` and the package's JSON limits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from .. import json_limits
from .link import ChannelPush, ChatPost, MediaEvent, PeerJoined, PeerLeft, RelaySend, RelayText
from .moderation import ModerationRefused, ModerationRequest, parse_request

VERSION = 1
MAX_MESSAGE = 1 << 20  # bytes: a media event (an SDP offer) is tens of kB; a chat history a few hundred

_TEXT, _FLAG, _NUMBER, _TEXTS, _OBJECT = "text", "flag", "number", "texts", "object"

# Each message type: the fields it carries (beyond v and t) and their kinds.
MESSAGES: dict[str, dict[str, str]] = {
    # edge node → room node
    "join": dict(link=_TEXT, origin=_TEXT, room=_TEXT, display=_TEXT, password=_TEXT, kind=_TEXT, address=_TEXT,
                 enter=_FLAG, token=_TEXT),  # token: the access token as the client gave it, checked again there
    "send": dict(link=_TEXT, req=_NUMBER, item=_OBJECT),
    "chat": dict(link=_TEXT, req=_NUMBER, text=_TEXT),
    "moderate": dict(link=_TEXT, req=_NUMBER, item=_OBJECT),  # item: a ModerationRequest
    "leave": dict(link=_TEXT, reason=_TEXT),
    # room node → edge node
    "waiting": dict(link=_TEXT, id=_TEXT, position=_NUMBER),  # the join waits in the room's waiting room
    "joined": dict(link=_TEXT, peer=_TEXT, room=_TEXT, simulcast=_FLAG, people=_NUMBER, moderator=_FLAG),
    "refused": dict(link=_TEXT, code=_TEXT, reason=_TEXT),
    "sent": dict(link=_TEXT, req=_NUMBER),  # the room dispatched a "send", and what it sent on is on its way
    "chat_ok": dict(link=_TEXT, req=_NUMBER, id=_TEXT),
    "chat_refused": dict(link=_TEXT, req=_NUMBER, code=_TEXT, reason=_TEXT),
    "moderate_ok": dict(link=_TEXT, req=_NUMBER),
    "moderate_refused": dict(link=_TEXT, req=_NUMBER, code=_TEXT, reason=_TEXT),
    "event": dict(link=_TEXT, item=_OBJECT),
    "closed": dict(link=_TEXT, reason=_TEXT, rejoin=_FLAG, retry=_FLAG, cut_off=_FLAG, people=_NUMBER),
    # every beat, the links one node holds with the other (as the edge, as the room's node); "gone": links
    # the receiver of a beat does not know
    "links_alive": dict(origin=_TEXT, links=_TEXTS),
    "endpoints_alive": dict(origin=_TEXT, links=_TEXTS),
    "gone": dict(links=_TEXTS),
    # the server API on a room of another node (cluster/room_calls.py): a request, and its one reply
    "call": dict(origin=_TEXT, req=_NUMBER, op=_TEXT, room=_TEXT, arg=_TEXT),  # op: rooms, room, record
    "call_moderate": dict(origin=_TEXT, req=_NUMBER, room=_TEXT, item=_OBJECT),  # item: a ModerationRequest
    "reply": dict(req=_NUMBER, ok=_FLAG, body=_OBJECT, code=_TEXT, reason=_TEXT),
}
OPTIONAL = {"password", "token"}  # may be null

# The events that may ride in an "item", by class name.
ITEMS = {cls.__name__: cls for cls in (MediaEvent, ChatPost, RelaySend, ChannelPush, RelayText, PeerJoined, PeerLeft,
                                       ModerationRequest)}
_ITEM_FIELDS = {
    "MediaEvent": dict(data=_TEXT), "ChatPost": dict(text=_TEXT), "RelayText": dict(text=_TEXT),
    "PeerJoined": dict(peer_id=_TEXT), "PeerLeft": dict(peer_id=_TEXT),
    "ChannelPush": dict(event=_TEXT, payload=_OBJECT), "RelaySend": dict(text=_TEXT, to=_TEXTS),
    "ModerationRequest": dict(action=_TEXT, peer=_TEXT, reason=_TEXT, ban_seconds=_NUMBER, unmuted=_TEXT),
}
_ITEM_OPTIONAL = {"to", "peer"}


class BadMessage(ValueError):
    """A message read from another node that this version does not take; the text says why."""


def encode(message_type: str, /, **fields: Any) -> bytes:
    """The message of type ``message_type`` with ``fields`` (an ``item`` given as its event object)."""
    assert message_type in MESSAGES and set(fields) == set(MESSAGES[message_type]), (message_type, sorted(fields))
    if "item" in fields:
        fields["item"] = item_fields(fields["item"])
    return orjson.dumps({"v": VERSION, "t": message_type, **fields})


def item_fields(item: Any) -> dict:
    """``item`` (an event of the link) as a plain dict with its class name under ``k``."""
    name = type(item).__name__
    if ITEMS.get(name) is not type(item):
        raise TypeError(f"not an event of the participant link: {item!r}")
    return {"k": name, **dataclasses.asdict(item)}


def decode(raw: bytes) -> tuple[str, dict[str, Any]]:
    """(type, fields) of one message, its ``item`` made an event again; raises BadMessage."""
    if not isinstance(raw, (bytes, str)):
        raise BadMessage(f"a message must be text, not {type(raw).__name__}")
    if len(raw) > MAX_MESSAGE:
        raise BadMessage(f"{len(raw)} bytes; at most {MAX_MESSAGE} are taken")
    try:
        value = json_limits.loads(raw)
    except json_limits.JsonError as error:
        raise BadMessage(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise BadMessage("a message must be a JSON object")
    if value.get("v") != VERSION:
        raise BadMessage(f"unknown version {value.get('v')!r}")
    kind = value.get("t")
    if not isinstance(kind, str) or kind not in MESSAGES:
        raise BadMessage(f"unknown message type {kind!r}")
    fields = _checked(value, MESSAGES[kind], OPTIONAL, kind)
    if "item" in fields:
        fields["item"] = _item(fields["item"])
    return kind, fields


def _item(value: dict) -> Any:
    name = value.get("k")
    if not isinstance(name, str) or name not in ITEMS:
        raise BadMessage(f"unknown event {name!r}")
    fields = _checked(value, _ITEM_FIELDS[name], _ITEM_OPTIONAL, name)
    if name == "RelaySend" and fields["to"] is not None:
        fields["to"] = tuple(fields["to"])
    if name == "ModerationRequest":
        return _moderation(fields)
    return ITEMS[name](**fields)


def _moderation(fields: dict) -> ModerationRequest:
    """The request read again as a client's would be (the same limits); raises BadMessage."""
    payload = {"action": fields["action"], "reason": fields["reason"]}
    if fields["peer"] is not None:
        payload["peer"] = fields["peer"]
    if fields["ban_seconds"]:
        payload["ban_seconds"] = fields["ban_seconds"]
    if fields["action"] == "unmute":
        payload["source"] = fields["unmuted"]
    try:
        request = parse_request(payload)
    except ModerationRefused as refused:
        raise BadMessage(f"ModerationRequest: {refused.reason}") from None
    if request != ModerationRequest(**fields):  # a reason with runs of spaces, a source beside another action
        raise BadMessage("ModerationRequest: not as a client's request would be read")
    return request


def _checked(value: dict, wanted: dict[str, str], optional: set[str], what: str) -> dict[str, Any]:
    """The ``wanted`` fields of ``value``, each of its kind; raises BadMessage."""
    fields = {}
    for name, kind in wanted.items():
        if name not in value:
            raise BadMessage(f"{what}: field {name!r} is missing")
        field = value[name]
        if not (field is None and name in optional) and not _is(kind, field):
            raise BadMessage(f"{what}: field {name!r} must be {kind}")
        fields[name] = field
    return fields


def _is(kind: str, field: Any) -> bool:
    if kind == _TEXT:
        return isinstance(field, str)
    if kind == _FLAG:
        return isinstance(field, bool)
    if kind == _NUMBER:
        return isinstance(field, int) and not isinstance(field, bool)
    if kind == _TEXTS:
        return isinstance(field, list) and all(isinstance(v, str) for v in field)
    return isinstance(field, dict)
