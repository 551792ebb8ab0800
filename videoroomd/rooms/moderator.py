"""What a moderation request does to a room: who may ask, what changes, and who is told.

:func:`moderate` is a participant's request (from its Phoenix channel):
anyone may unmute themselves (unless a moderator muted them in a room whose
``self_unmute`` is false); everything else needs the ``moderate`` grant, and a
refusal is logged (throttled: a client can cause it). :func:`carry_out` is
the request once allowed, also what the server API asks for (no acting
participant). Mutes and stops go through the engine's holds: its media
worker stops forwarding the tracks. The person concerned gets a ``moderated``
push saying what happened and who did it; a lock or the end of the meeting
is pushed to everyone. See docs/moderation.md.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from ..logs.ratelimit import ThrottledLog
from .link import MODERATED, ChannelPush
from .moderation import ModerationRefused, ModerationRequest, RoomModeration
from .room import Peer, Room

log = structlog.get_logger("videoroomd.moderation")
throttled = ThrottledLog(log)  # refusals a client can cause

SERVER = "the server"  # who acted, as people are told, when the server API asked


class Holds(Protocol):
    """The engine's side of a mute or stop (:class:`videoroomd.engine.holds.Holds`)."""

    async def hold(self, endpoint_id: str, source: str, *, block: bool) -> list[str]: ...

    async def release(self, endpoint_id: str, source: str, *, granted: frozenset[str]) -> list[str]: ...


async def moderate(room: Room, actor: Peer, request: ModerationRequest) -> dict[str, Any]:
    """Carry out ``request`` from participant ``actor``; returns what was done (JSON-ready, for its reply).
    Raises ModerationRefused (not_joined, not_moderator, no_such_peer, self_target, not_allowed, not_here,
    failed)."""
    if room.peers.get(actor.id) is not actor:
        raise ModerationRefused("not_joined", f"you are not in room '{room.name}'")
    if request.action == "unmute" and request.peer == actor.id:
        return await _unmute_self(room, actor, request.unmuted)
    if not actor.grants.moderate:
        throttled.warning("moderation refused: not a moderator", room=room.name, peer=actor.id, action=request.action)
        raise ModerationRefused("not_moderator", f"only a moderator may {request.action.replace('_', ' ')} "
                                                 "in this room")
    if request.peer == actor.id:
        raise ModerationRefused("self_target", f"a moderator cannot {request.action.replace('_', ' ')} themselves; "
                                               "use your own controls (or leave)")
    return await carry_out(room, request, by=actor.name, by_peer=actor.id)


async def carry_out(room: Room, request: ModerationRequest, *, by: str = SERVER,
                    by_peer: str | None = None) -> dict[str, Any]:
    """Carry out an allowed ``request`` in ``room``, done by ``by`` (a moderator's name, or the server);
    returns what was done. Raises ModerationRefused (no_such_peer, not_here, failed)."""
    log.info("moderation", room=room.name, action=request.action, target=request.peer, by=by_peer or "api")
    if request.action in ("lock", "unlock"):
        room.moderation.locked = request.action == "lock"
        room.broadcast(ChannelPush(MODERATED, {"action": request.action, "by": by}), kind="rtc")
        return {"action": request.action, "locked": room.moderation.locked}
    if request.action == "end":
        reason = f"the meeting was ended by {by}" + (f": {request.reason}" if request.reason else "")
        room.broadcast(ChannelPush(MODERATED, {"action": "end", "by": by, "reason": request.reason}), kind="rtc")
        room.stop(reason)
        return {"action": "end", "peers": room.peer_count("rtc")}
    if request.action in ("admit", "decline"):
        name = room.waiting.decide(request.peer or "", request.action == "admit", request.reason)
        return {"action": request.action, "peer": request.peer, "name": name}
    target = _target(room, request.peer)
    if request.action == "remove":
        return _remove(room, target, request, by)
    if request.action == "unmute":
        room.moderation.unblock(_who(target), request.unmuted)
        room.unicast(target.id, ChannelPush(MODERATED, {"action": "allow_unmute", "source": request.unmuted, "by": by}),
                     kind="rtc")
        return {"action": "unmute", "peer": target.id}
    return await _hold(room, target, request, by)


def _who(peer: Peer) -> str:
    return RoomModeration.key(peer.identity, peer.id)


def _target(room: Room, peer_id: str | None) -> Peer:
    target = room.peers.get(peer_id or "")
    if target is None or target.kind != "rtc":
        raise ModerationRefused("no_such_peer", f"there is no participant {str(peer_id)[:64]!r} in room "
                                                f"'{room.name}'; they may have left")
    return target


def _holds(room: Room) -> Holds:
    holds = getattr(room.engine, "holds", None)
    if holds is None:
        raise ModerationRefused("not_here", f"room '{room.name}' carries no media here to mute or stop")
    return holds


async def _hold(room: Room, target: Peer, request: ModerationRequest, by: str) -> dict[str, Any]:
    """A mute or a stop: the worker stops forwarding the target's tracks of that source."""
    source = request.source
    assert source is not None
    block = not room.config.self_unmute
    held = await _call(_holds(room).hold(target.id, source, block=block))
    if block:
        room.moderation.block(_who(target), source)
    room.unicast(target.id, ChannelPush(MODERATED, {"action": request.action, "source": source, "by": by,
                                                    "may_unmute": not block}), kind="rtc")
    return {"action": request.action, "peer": target.id, "tracks": len(held)}


async def _unmute_self(room: Room, peer: Peer, source: str) -> dict[str, Any]:
    """A participant takes its microphone (camera, screen) back, unless a moderator muted it for good."""
    if room.moderation.is_blocked(_who(peer), source):
        raise ModerationRefused("not_allowed", "a moderator muted you; you may unmute once a moderator allows it")
    released = await _call(_holds(room).release(peer.id, source, granted=peer.grants.publish))
    return {"action": "unmute", "peer": peer.id, "source": source, "tracks": len(released)}


def _remove(room: Room, target: Peer, request: ModerationRequest, by: str) -> dict[str, Any]:
    ban_until = None
    if request.ban_seconds and target.identity is not None:
        ban_until = room.moderation.ban(target.identity, request.ban_seconds)
    room.unicast(target.id, ChannelPush(MODERATED, {"action": "remove", "by": by, "reason": request.reason,
                                                    "ban_until": ban_until}), kind="rtc")
    room.leave(target, f"removed by {by}" + (f": {request.reason}" if request.reason else ""))
    return {"action": "remove", "peer": target.id, "ban_until": ban_until}


async def _call(coroutine) -> list[str]:
    """The holds' answer; their HoldFailed as ModerationRefused (failed)."""
    try:
        return await coroutine
    except Exception as error:  # HoldFailed: the engine's type, not imported here (rooms import no engine)
        reason = getattr(error, "reason", None)
        if reason is None:
            raise
        raise ModerationRefused("failed", reason) from None
