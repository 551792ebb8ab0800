"""A moderator's holds on what a participant publishes: the media worker stops forwarding the tracks.

A hold names a participant and a source (audio, video or screen). Each of the
participant's published tracks of that source is held on the room's media
worker (:class:`~videoroomd.media.workers.commands.HoldTrack`): its packets go
to nobody, whatever the participant's page does. When the participant may
not take the source back by itself, the source also leaves what the session
lets it publish, so that a new track of that source is refused in the next
answer as a track without the grant would be. A release undoes both (the
source comes back only where the participant's grants have it).

May import: videoroomd.media (client, commands), this package's session and media_side.
"""

from __future__ import annotations

import structlog
import trio

from ..media.workers.client import MediaError, WorkerLost
from ..media.workers.commands import HoldTrack
from .media_side import MediaSide, describe
from .session import Session, is_screen

log = structlog.get_logger("videoroomd.engine")


class HoldFailed(Exception):
    """The media worker did not take a hold; ``reason`` is for the moderator."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def source_of(kind: str, metadata: object) -> str:
    """What a track publishes, as a grant names it: audio, video or screen."""
    return "screen" if is_screen(metadata) else kind


class Holds:
    """The holds of one room's engine."""

    def __init__(self, session: Session, media: MediaSide, call_timeout: float):
        self.session = session
        self.media = media
        self.call_timeout = call_timeout

    def tracks(self, endpoint_id: str, source: str) -> list[str]:
        """The ids of the tracks ``endpoint_id`` publishes now from ``source``."""
        endpoint = self.session.endpoints.get(endpoint_id)
        if endpoint is None:
            return []
        return [t.id for t in endpoint.tracks.values() if source_of(t.kind, t.metadata) == source]

    async def hold(self, endpoint_id: str, source: str, *, block: bool) -> list[str]:
        """Stop forwarding ``endpoint_id``'s tracks of ``source``; ``block``: it may not publish
        that source again until released. Returns the track ids held; raises HoldFailed."""
        endpoint = self.session.endpoints.get(endpoint_id)
        if block and endpoint is not None:
            endpoint.publish = endpoint.publish - {source}
        held = self.tracks(endpoint_id, source)
        await self._tell(held, True)
        log.info("tracks held by a moderator", peer=endpoint_id, source=source, tracks=held, blocked=block)
        return held

    async def release(self, endpoint_id: str, source: str, *, granted: frozenset[str]) -> list[str]:
        """Forward ``endpoint_id``'s tracks of ``source`` again, and let it publish ``source``
        again when ``granted`` (its grants) has it. Returns the track ids; raises HoldFailed."""
        endpoint = self.session.endpoints.get(endpoint_id)
        if endpoint is not None and source in granted:
            endpoint.publish = endpoint.publish | {source}
        released = self.tracks(endpoint_id, source)
        await self._tell(released, False)
        return released

    async def _tell(self, track_ids: list[str], held: bool) -> None:
        if not track_ids or self.media.link is None:
            return
        try:
            for track_id in track_ids:
                await self.media.call(HoldTrack(self.media.key, track_id, held), self.call_timeout)
        except (MediaError, WorkerLost, trio.TooSlowError) as error:
            log.warning("the media worker did not take a hold", error=describe(error))
            raise HoldFailed(f"the media server did not take it ({describe(error)}); try again") from None
