"""Moderation: what a moderator may ask of a room, read with limits, and what a room remembers of it (pure).

A moderator (a token with the ``moderate`` grant, or the room's
``moderator_password`` given at join) sends a :class:`ModerationRequest`:
mute someone's microphone, stop their camera or screen, remove them (with a
reason, and for a token holder a ban until some time), lock or unlock the room
to new joins, or end the meeting. A participant sends ``unmute`` for itself.
:func:`parse_request` reads one from a client's JSON with limits; each refusal
is a :class:`ModerationRefused` with a code and a reason a person can read.
:class:`RoomModeration` is one room's state: locked or not, the bans and the
sources someone may not take back by themselves, each bounded.
What a request does to the room is :mod:`.moderator`'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..auth.tokens import SOURCES, AccessToken, Grants
from .admission import JoinRefused

TARGETED = {"mute": "audio", "stop_video": "video", "stop_screen": "screen", "unmute": "audio", "remove": None,
            "admit": None, "decline": None}  # admit, decline: "peer" is the id of someone in the waiting room
ROOM_ACTIONS = ("lock", "unlock", "end")
ACTIONS = (*TARGETED, *ROOM_ACTIONS)
MAX_REASON = 200          # characters of the reason a removed person (or everyone, at the end) reads
MAX_BAN = 7 * 86400       # seconds a removal may ban a token's identity for
MAX_BANS = 1000           # banned identities one room remembers; the soonest to end goes first
MAX_BLOCKED = 1000        # people one room remembers as muted without the right to unmute
MAX_PEER_ID = 64          # characters of a peer id (ours are UUIDs)


class ModerationRefused(Exception):
    """A moderation request the room will not carry out; ``reason`` is for the person who sent it."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code      # malformed, not_moderator, no_such_peer, self_target, not_here, failed
        self.reason = reason


@dataclass(frozen=True)
class ModerationRequest:
    """One request, checked: ``peer`` for the targeted actions, None for the room's."""

    action: str
    peer: str | None = None
    reason: str = ""
    ban_seconds: int = 0
    unmuted: str = "audio"  # what an unmute is about: audio (the microphone), video or screen

    @property
    def source(self) -> str | None:
        """The source a mute, unmute or stop is about (None for the others)."""
        return self.unmuted if self.action == "unmute" else TARGETED.get(self.action)


def parse_request(payload: Any) -> ModerationRequest:
    """``payload`` (a client's JSON object) as a request; raises ModerationRefused (malformed) saying
    which field is wrong and how."""
    if not isinstance(payload, dict):
        raise ModerationRefused("malformed", 'moderate: the payload must be an object {"action": ..., "peer": ...}')
    unknown = sorted(set(payload) - {"action", "peer", "reason", "ban_seconds", "source"})
    if unknown:
        raise ModerationRefused("malformed", f"moderate: unknown field {str(unknown[0])[:32]!r}; the fields are "
                                             "action, peer, reason, ban_seconds, source")
    action = payload.get("action")
    if action not in ACTIONS:
        raise ModerationRefused("malformed", f"moderate: action must be one of {', '.join(ACTIONS)}")
    peer = payload.get("peer")
    if action in TARGETED:
        if not isinstance(peer, str) or not 0 < len(peer) <= MAX_PEER_ID:
            raise ModerationRefused("malformed", f"moderate: {action} needs peer, the id of a participant "
                                                 f"(a string of at most {MAX_PEER_ID} characters)")
    elif peer is not None:
        raise ModerationRefused("malformed", f"moderate: {action} is for the whole room; it takes no peer")
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ModerationRefused("malformed", f"moderate: reason must be a string of at most {MAX_REASON} characters")
    ban = payload.get("ban_seconds", 0)
    if not isinstance(ban, int) or isinstance(ban, bool) or not 0 <= ban <= MAX_BAN:
        raise ModerationRefused("malformed", f"moderate: ban_seconds must be a whole number from 0 to {MAX_BAN}")
    if ban and action != "remove":
        raise ModerationRefused("malformed", "moderate: ban_seconds goes only with remove")
    source = payload.get("source", "audio")
    if source not in SOURCES or ("source" in payload and action != "unmute"):
        raise ModerationRefused("malformed", f"moderate: source goes only with unmute, and is one of "
                                             f"{', '.join(SOURCES)}")
    return ModerationRequest(action, peer, " ".join(reason.split()), ban, source)


@dataclass
class RoomModeration:
    """What one room remembers of its moderators' actions."""

    wall_clock: Callable[[], float] = time.time
    locked: bool = False
    bans: dict[str, float] = field(default_factory=dict)          # identity -> Unix time its ban ends
    blocked: dict[str, frozenset[str]] = field(default_factory=dict)  # who -> sources it may not take back

    def check_join(self, name: str, ticket: AccessToken | None, *, moderator: bool) -> None:
        """Raises JoinRefused (banned, room_locked) for a join this room's moderators shut out.
        A moderator may join a locked room; a ban holds against the token's identity."""
        identity = ticket.identity if ticket is not None else None
        until = self.bans.get(identity) if identity is not None else None
        now = self.wall_clock()
        if until is not None:
            if until > now:
                raise JoinRefused("banned", f"you were removed from room '{name}' and may not join again for "
                                            f"{max(1, int(until - now))} s")
            del self.bans[identity]
        if self.locked and not moderator:
            raise JoinRefused("room_locked", f"room '{name}' is locked: a moderator shut it to new joins")

    def ban(self, identity: str, seconds: int) -> float:
        """Ban ``identity`` for ``seconds``; returns when the ban ends (Unix time)."""
        now = self.wall_clock()
        self.bans = {who: until for who, until in self.bans.items() if until > now}
        if identity not in self.bans and len(self.bans) >= MAX_BANS:
            del self.bans[min(self.bans, key=self.bans.__getitem__)]
        self.bans[identity] = until = now + seconds
        return until

    def block(self, who: str, source: str) -> None:
        """``who`` (an identity, or a peer id) may not take ``source`` back by itself."""
        if who not in self.blocked and len(self.blocked) >= MAX_BLOCKED:
            del self.blocked[next(iter(self.blocked))]
        self.blocked[who] = self.blocked.get(who, frozenset()) | {source}

    def unblock(self, who: str, source: str) -> None:
        left = self.blocked.get(who, frozenset()) - {source}
        if left:
            self.blocked[who] = left
        else:
            self.blocked.pop(who, None)

    def is_blocked(self, who: str, source: str) -> bool:
        return source in self.blocked.get(who, frozenset())

    @staticmethod
    def key(identity: str | None, peer_id: str) -> str:
        """What a block is kept under: the token's identity (it holds across rejoins), else the peer id."""
        return f"id:{identity}" if identity is not None else f"peer:{peer_id}"

    def grants_for(self, identity: str | None, grants: Grants) -> Grants:
        """``grants`` less what ``identity`` (rejoining with its token) may not take back."""
        blocked = self.blocked.get(self.key(identity, ""), frozenset()) if identity is not None else frozenset()
        return replace(grants, publish=grants.publish - blocked) if blocked else grants
