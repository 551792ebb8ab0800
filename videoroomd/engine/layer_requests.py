"""What clients ask of simulcast layers: checked, rate-limited, told to the others and to the media worker.

A publisher turns one of its layers on or off (``enableTrackEncoding`` /
``disableTrackEncoding``); a subscriber asks for at most one layer of a track
(``setTargetTrackVariant``); ``trackVariantBitrates`` is checked and not
used. The session (pure) decides what changes and what the others hear; the
media worker gets :class:`~videoroomd.media.workers.commands.LayerEnabled` and
:class:`~videoroomd.media.workers.commands.TargetLayer` through the room's link.

May import: videoroomd.media (client, plane), and this package's session, media_events, rate, media_side.
"""

from __future__ import annotations

from typing import Callable

import structlog
import trio

from ..media.workers.client import MediaError
from ..token_buckets import TokenBuckets
from . import media_events as ev
from .media_events import MediaEventError
from .media_side import MediaSide, describe
from .session import Session

log = structlog.get_logger("videoroomd.engine")

MAX_VARIANT_BITRATES = 8     # entries of one trackVariantBitrates (one per layer)


class LayerRequests:
    """The layer changes and requests of one room's clients."""

    def __init__(self, session: Session, media: MediaSide, announce: TokenBuckets, targets: TokenBuckets,
                 deliver: Callable[[list[tuple[str, str]]], None], call_timeout: float):
        """``announce`` limits what reaches every other client (layer changes count against it),
        ``targets`` a subscriber's layer requests; ``deliver`` sends media events to clients;
        ``call_timeout``: seconds the media worker may take to take a change or request."""
        self.session = session
        self.media = media
        self.announce = announce
        self.targets = targets
        self.deliver = deliver
        self.call_timeout = call_timeout

    async def track_encoding(self, peer_id: str, event: ev.ClientEvent, enabled: bool) -> None:
        """A publisher turns one layer of its track on or off: the media worker stops (or may
        again) choose it, the others hear it, and late joiners see it in simulcastConfig.

        Repeats and tracks the room took as one stream change nothing and say nothing (the
        client re-sends every disabled layer after each answer); changes count against the
        announce rate, as they reach every other client. Raises MediaEventError for a malformed
        event or past that rate; a media worker that refuses the change is only logged."""
        track_id = ev.field(event, "trackId", str)
        encoding = ev.field(event, "encoding", str)
        if not self.session.encoding_changes(peer_id, track_id, encoding, enabled):
            log.debug("layer change without effect", peer=peer_id, track=track_id[:80], encoding=encoding[:20])
            return
        if not self.announce.take(peer_id, trio.current_time()):
            raise MediaEventError(f"{event.type}: too many layer changes; at most {self.announce.burst:g} at once, "
                                  f"then {self.announce.rate:g} a second")
        _, out = self.session.set_encoding(peer_id, track_id, encoding, enabled)
        assert self.media.link is not None
        try:
            await self.media.link.layer_enabled(track_id, encoding, enabled, timeout=self.call_timeout)
        except (MediaError, trio.TooSlowError) as error:
            log.warning("the media worker did not take a layer change", peer=peer_id, error=describe(error))
        log.info("layer turned " + ("on" if enabled else "off"), peer=peer_id, track=track_id, encoding=encoding)
        self.deliver(out)

    async def target_variant(self, peer_id: str, event: ev.ClientEvent) -> None:
        """A subscriber asks for at most one layer of a remote track.

        A request that cannot be met (a track just removed, one sent as one stream, a layer
        it does not have) or that comes too fast is dropped with a log line only: an
        ``error`` would make the client disconnect over a picture size. Raises MediaEventError
        only for a malformed event."""
        track_id = ev.field(event, "trackId", str)
        variant = ev.field(event, "variant", str)
        if not self.targets.take(peer_id, trio.current_time()):
            log.info("layer request dropped: too many", peer=peer_id, rate=self.targets.rate, burst=self.targets.burst)
            return
        problem = self.session.target(peer_id, track_id, variant)
        if problem is not None:
            log.info("layer request ignored", peer=peer_id, track=track_id[:80], variant=variant[:20], why=problem)
            return
        assert self.media.link is not None
        try:
            await self.media.link.target_layer(peer_id, track_id, variant, timeout=self.call_timeout)
        except (MediaError, trio.TooSlowError) as error:
            log.warning("the media worker did not take a layer request", peer=peer_id, error=describe(error))


def variant_bitrates(event: ev.ClientEvent) -> None:
    """``trackVariantBitrates``: checked, then not used (layers are chosen from what arrives);
    raises MediaEventError for a malformed one."""
    ev.field(event, "trackId", str)
    bitrates = ev.field(event, "variantBitrates", (dict, int, float))
    if isinstance(bitrates, dict):
        if len(bitrates) > MAX_VARIANT_BITRATES:
            raise MediaEventError(f"trackVariantBitrates: at most {MAX_VARIANT_BITRATES} variants")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in bitrates.values()):
            raise MediaEventError("trackVariantBitrates: each variant's bit rate must be a number >= 0")
    elif bitrates < 0:
        raise MediaEventError("trackVariantBitrates: the bit rate must be a number >= 0")
