"""What happens in a room, told to whoever listens (webhooks): the :class:`RoomEvents` sink.

A room, its engine and (later) its recorder call :meth:`RoomEvents.emit`
synchronously, at the moment a thing happened, with plain data only. The
sink must never block nor raise: it queues, or drops and counts. The names
are those of ``config.schema.WEBHOOK_EVENTS``.
"""

from __future__ import annotations

from typing import Any, Protocol


class RoomEvents(Protocol):
    """Where a room's events go; ``emit`` returns at once and never raises."""

    def emit(self, event: str, room: str, **fields: Any) -> None: ...


class NoEvents:
    """Nobody listens: every event is let go (the default, and [webhooks] without urls)."""

    def emit(self, event: str, room: str, **fields: Any) -> None:
        pass


NO_EVENTS: RoomEvents = NoEvents()


class _Participant(Protocol):
    id: str
    name: str
    kind: str
    identity: str | None


def participant(peer: _Participant) -> dict[str, Any]:
    """A participant as an event names it: its id, display name, kind and (with a token) identity."""
    return {"id": peer.id, "name": peer.name, "identity": peer.identity, "kind": peer.kind}
