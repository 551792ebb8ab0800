"""Where a room's chat history lives beyond this process: the seam, and how a room is tied to it.

A room keeps its last messages in memory (:class:`~.chat.ChatLog`); with
several daemons sharing the rooms, the room's history must outlive the
node it runs on, so that a room placed again after its node died shows
late joiners what was said. A :class:`ChatStore` keeps each room's history
(bounded as the room's own, expiring with the room); :func:`tie` fills a
new room's log from it and records every later message there.
"""

from __future__ import annotations

from typing import Protocol

import structlog
import trio

from .chat import ChatLog, ChatMessage

log = structlog.get_logger("videoroomd.rooms")

RESTORE_TIMEOUT = 1.0  # seconds a room waits for its history before it opens without it


class ChatStore(Protocol):
    """The rooms' chat histories outside this process (the cluster's is on Redis)."""

    async def restore(self, room: str) -> list[ChatMessage]:
        """Returns room ``room``'s remembered messages, oldest first (at most the history's length);
        raises what its transport raises."""
        ...

    def record(self, room: str, message: ChatMessage) -> None:
        """Remember ``message`` as the newest of room ``room``'s; never waits (dropped when it cannot keep up)."""
        ...

    def forget(self, room: str, token: int) -> None:
        """Drop room ``room``'s history (the room ended for good), unless a lease other than ``token`` holds it now."""
        ...


async def tie(store: ChatStore, room: str, chat: ChatLog) -> None:
    """Fill ``chat`` with ``room``'s stored history (within RESTORE_TIMEOUT; without it, logged, when the
    store does not answer) and record its later messages in ``store``. Never raises."""
    restored: list[ChatMessage] = []
    with trio.move_on_after(RESTORE_TIMEOUT) as deadline:
        try:
            restored = await store.restore(room)
        except Exception as error:  # the store's transport: the room opens with no history
            log.warning("room opens without its chat history: the store did not answer", room=room, why=repr(error))
    if deadline.cancelled_caught:
        log.warning("room opens without its chat history: the store did not answer in time", room=room)
    chat.messages.extend(restored)
    chat.on_post = lambda message: store.record(room, message)
