"""What the cluster stores in Redis, as text: encoded here, and checked when read back (pure code).

Another node, another version or a person with ``redis-cli`` may have
written any key, so every read is checked: a record of the wrong type,
too large or of an unknown version raises :class:`MalformedRecord`, which
the reader counts and drops; nothing read from Redis reaches the rest of
the daemon unchecked.

A room's lease is ``"TOKEN JSON"``: the fencing token in front, so that
the Lua scripts compare it as text without decoding JSON, and the rest
(owner, worker, expiry) as a JSON object. A node's load is a JSON object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from ..rooms.chat import MAX_TEXT, ChatMessage
from ..rooms.directory import Lease

VERSION = 1
MAX_RECORD = 4096           # bytes: a record larger than this is not ours
MAX_TOKEN_DIGITS = 19       # an int64
MAX_ROOMS_LISTED = 2000     # rooms one node's room list carries at most (the rest are left out)
MAX_ROOMS_RECORD = MAX_ROOMS_LISTED * 512  # bytes
ROOM_STATUSES = ("starting", "running", "backoff", "failed", "stopped")  # a supervised task's
MAX_CHAT_RECORD = 4 * MAX_TEXT + 1024  # bytes: a message of MAX_TEXT characters, each up to 4 bytes of UTF-8
_NAME_LIMIT = 256


class MalformedRecord(ValueError):
    """A record read from Redis that is not one this version wrote; the text says what is wrong."""


@dataclass(frozen=True)
class NodeLoad:
    """One node as it last published itself: where it is reached and how loaded it is."""

    node: str
    advertise: str = ""         # HOST or HOST:PORT other nodes and the media reach it at
    workers: int = 0            # media workers running
    rooms: int = 0
    participants: int = 0
    cpu: float = 0.0            # cores its media workers used lately, summed
    draining: bool = False      # shutting down: no new rooms go there
    at: float = 0.0             # when it was published, on the publisher's wall clock
    incarnation: str = ""       # this run of the node's process: two at once under one node id is a mistake


def encode_lease(lease: Lease) -> tuple[str, str]:
    """(token, body): the lease's record is ``token + " " + body`` (the claim script adds the token)."""
    body = {"v": VERSION, "owner": lease.owner, "expires": lease.expires, "worker": lease.worker}
    return str(lease.token), orjson.dumps(body).decode()


def decode_lease(room: str, raw: bytes | str) -> Lease:
    """The lease of ``room`` stored as ``raw``; raises MalformedRecord."""
    text = _text(raw)
    token, space, body = text.partition(" ")
    if not space or not token.isdigit() or len(token) > MAX_TOKEN_DIGITS:
        raise MalformedRecord("a lease record starts with its token and a space")
    data = _object(body)
    owner, expires, worker = data.get("owner"), data.get("expires"), data.get("worker")
    if not _name(owner):
        raise MalformedRecord("a lease record needs its owner")
    if not _number(expires):
        raise MalformedRecord("a lease record needs its expiry, a number")
    if worker is not None and not _name(worker):
        raise MalformedRecord("a lease record's worker is a name or null")
    return Lease(room, owner, int(token), float(expires), worker)


def encode_node(load: NodeLoad) -> str:
    """The record a node publishes."""
    return orjson.dumps({
        "v": VERSION, "node": load.node, "advertise": load.advertise, "workers": load.workers,
        "rooms": load.rooms, "participants": load.participants, "cpu": load.cpu,
        "draining": load.draining, "at": load.at, "incarnation": load.incarnation,
    }).decode()


def decode_node(raw: bytes | str) -> NodeLoad:
    """The load a node published as ``raw``; raises MalformedRecord."""
    data = _object(_text(raw))
    node, advertise = data.get("node"), data.get("advertise")
    if not _name(node) or not isinstance(advertise, str) or len(advertise) > _NAME_LIMIT:
        raise MalformedRecord("a node record needs its node id and address")
    counts = [data.get(key) for key in ("workers", "rooms", "participants")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1 << 31 for n in counts):
        raise MalformedRecord("a node record's workers, rooms and participants are counts")
    cpu, at, draining = data.get("cpu"), data.get("at"), data.get("draining")
    if not _number(cpu) or cpu < 0 or not _number(at) or not isinstance(draining, bool):
        raise MalformedRecord("a node record's cpu and time are numbers, draining a boolean")
    incarnation = data.get("incarnation", "")
    if not isinstance(incarnation, str) or len(incarnation) > 64:
        raise MalformedRecord("a node record's incarnation is a short string")
    return NodeLoad(node, advertise, *counts, cpu=float(cpu), draining=draining, at=float(at), incarnation=incarnation)


@dataclass(frozen=True)
class RoomRow:
    """One room as its node lists it for the operators of every node."""

    name: str
    node: str
    status: str
    dynamic: bool
    peers: int          # "rtc" participants
    relay_peers: int
    tracks: int
    worker: str | None


def encode_rooms(node: str, rows: list[RoomRow]) -> str:
    """The record of the rooms running on ``node`` (at most MAX_ROOMS_LISTED of them)."""
    return orjson.dumps({"v": VERSION, "node": node, "rooms": [
        [row.name, row.status, row.dynamic, row.peers, row.relay_peers, row.tracks, row.worker]
        for row in rows[:MAX_ROOMS_LISTED]]}).decode()


def decode_rooms(raw: bytes | str) -> list[RoomRow]:
    """The rooms a node listed as ``raw``; raises MalformedRecord."""
    data = _object(_text(raw, MAX_ROOMS_RECORD))
    node, rooms = data.get("node"), data.get("rooms")
    if not _name(node) or not isinstance(rooms, list) or len(rooms) > MAX_ROOMS_LISTED:
        raise MalformedRecord(f"a room list names its node and at most {MAX_ROOMS_LISTED} rooms")
    rows = []
    for room in rooms:
        if not (isinstance(room, list) and len(room) == 7 and _name(room[0]) and room[1] in ROOM_STATUSES
                and isinstance(room[2], bool) and all(_count(n) for n in room[3:6])
                and (room[6] is None or _name(room[6]))):
            raise MalformedRecord("a room list's room is [name, status, dynamic, peers, relay peers, tracks, worker]")
        rows.append(RoomRow(room[0], node, *room[1:]))
    return rows


def encode_chat(message: ChatMessage) -> str:
    """The record of one chat message in its room's history."""
    return orjson.dumps({"v": VERSION, **message.payload()}).decode()


def decode_chat(raw: bytes | str) -> ChatMessage:
    """The chat message stored as ``raw``; raises MalformedRecord."""
    data = _object(_text(raw, MAX_CHAT_RECORD))
    fields = [data.get(key) for key in ("id", "from", "name", "text", "at")]
    if not all(isinstance(value, str) for value in fields):
        raise MalformedRecord("a chat record's id, from, name, text and at are strings")
    if not all(0 < len(value) <= _NAME_LIMIT for value in (*fields[:3], fields[4])) or len(fields[3]) > MAX_TEXT:
        raise MalformedRecord(f"a chat record's text is at most {MAX_TEXT} characters, its other fields short")
    return ChatMessage(*fields)


def _text(raw: bytes | str, limit: int = MAX_RECORD) -> str:
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, bytes):
        raise MalformedRecord(f"a record is a string, got {type(raw).__name__}")
    if len(raw) > limit:
        raise MalformedRecord(f"a record is at most {limit} bytes, got {len(raw)}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRecord("a record is UTF-8 text") from None


def _object(body: str) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedRecord("a record's body is JSON") from None
    if not isinstance(data, dict):
        raise MalformedRecord("a record's body is a JSON object")
    if data.get("v") != VERSION:
        raise MalformedRecord(f"unknown record version {data.get('v')!r} (this node reads {VERSION})")
    return data


def _name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _NAME_LIMIT


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 31


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
