"""A room's waiting room (``lobby = true``): people wait at the door until a moderator admits or declines them.

Each waiting join is a :class:`Waiter` in a bounded queue. The join's own
task waits (its socket still answered meanwhile), so a person who gives up,
closing the page, is out of the queue at once, freeing the place. Nobody
waits for ever: without an answer within ``WAIT_TIMEOUT`` the join is refused,
also when no moderator is in the room to answer (the page says so). Every
change is told to the room (``on_change``), which tells its moderators.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable

import trio

from .admission import JoinRefused
from .moderation import MAX_REASON, ModerationRefused

MAX_WAITING = 50        # people one room's waiting room holds; one more is refused
WAIT_TIMEOUT = 600.0    # seconds someone waits for an answer before the join is refused


@dataclass(eq=False)
class Waiter:
    id: str
    name: str
    decided: trio.Event = field(default_factory=trio.Event)
    admitted: bool = False
    reason: str = ""


class WaitingRoom:
    """The people waiting to enter one room, in the order they came."""

    def __init__(self, room: str, on_change: Callable[[], None], timeout: float | None = None):
        """``timeout``: seconds one may wait (None: WAIT_TIMEOUT)."""
        self.room = room
        self.on_change = on_change
        self.timeout = WAIT_TIMEOUT if timeout is None else timeout
        self.waiters: dict[str, Waiter] = {}

    def listing(self) -> list[dict[str, str]]:
        """Who waits, first come first (JSON-ready, for the moderators)."""
        return [{"id": w.id, "name": w.name} for w in self.waiters.values()]

    async def wait(self, name: str, told: Callable[[dict], None] | None = None) -> None:
        """Wait until a moderator admits ``name``; ``told`` hears that (and where) it waits. Returns once
        admitted; raises JoinRefused (lobby_full, declined, lobby_timeout, closed)."""
        if len(self.waiters) >= MAX_WAITING:  # read here, so that a test may lower it
            raise JoinRefused("lobby_full", f"the waiting room of '{self.room}' is full ({MAX_WAITING} people); "
                                            "try again later")
        waiter = Waiter(str(uuid.uuid4()), name)
        self.waiters[waiter.id] = waiter
        try:
            self.on_change()
            if told is not None:
                told({"waiting": True, "id": waiter.id, "position": len(self.waiters)})
            with trio.move_on_after(self.timeout):
                await waiter.decided.wait()
        finally:
            if self.waiters.pop(waiter.id, None) is not None:
                self.on_change()
        if not waiter.decided.is_set():
            raise JoinRefused("lobby_timeout", f"nobody let you into '{self.room}' within {self.timeout / 60:g} "
                                               "minutes; try again later")
        if not waiter.admitted:
            raise JoinRefused("declined", "a moderator did not let you in" + (f": {waiter.reason}" if waiter.reason
                                                                               else ""))

    def decide(self, waiter_id: str, admit: bool, reason: str = "") -> str:
        """Admit or decline the waiting person ``waiter_id``; returns their name. Raises ModerationRefused
        (no_such_peer) when nobody with that id waits (they gave up, or were answered already)."""
        waiter = self.waiters.pop(waiter_id, None)
        if waiter is None:
            raise ModerationRefused("no_such_peer", f"nobody with id {waiter_id[:64]!r} waits to enter "
                                                    f"'{self.room}'; they may have left")
        waiter.admitted, waiter.reason = admit, reason[:MAX_REASON]
        waiter.decided.set()
        self.on_change()
        return waiter.name

    def close(self, reason: str) -> None:
        """The room ends: everyone waiting is declined with ``reason``."""
        for waiter in list(self.waiters.values()):
            waiter.reason = reason[:MAX_REASON]
            waiter.decided.set()
        self.waiters.clear()
