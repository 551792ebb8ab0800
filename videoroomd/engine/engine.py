"""A room's SFU engine: the trio task between the Room's peers and their media connections.

It speaks the media-event protocol through :class:`~.session.Session`
(pure), and has the room's media worker (:mod:`videoroomd.media`) drive one
aiortc connection per endpoint, through the typed commands and events of
:mod:`videoroomd.media.commands` and :mod:`videoroomd.media.events`. Those
events, and what the peers send, are handled one at a time from a bounded
inbox, so the session never sees two changes at once. An endpoint is removed
one way only: room → engine → worker (the worker reports, the engine
decides). When the worker is lost, the room's participants are told to
reconnect and the room's media is opened again on a worker that runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog
import trio

from ..config import IceConfig, RoomConfig
from ..media.client import MediaError, WorkerLost
from ..media.commands import AddCandidate, Answer, Answered, CertificatePaths, CloseEndpoint, Command, Slot
from ..media.events import Bandwidth, EndpointState, LayerSwitched, RoomEvent, RoomLost, Silent, Vad
from ..media.plane import MediaPlane, RoomLink
from ..rooms.room import Peer, Room
from ..turn.clients import TurnCredentials
from ..turn.peers import MediaAddresses
from . import media_events as ev
from .media_events import MediaEventError
from .rate import PeerRate
from .sdp import MAX_MEDIA_LINES, SdpError
from .sdp import parse as parse_sdp
from .sdp import simulcast_rids
from .session import Session, SessionError

log = structlog.get_logger("videoroomd.engine")

INBOX_SIZE = 1024            # media-worker reports waiting for the engine, besides the peers' shares
PEER_QUEUE = 128             # events of one peer waiting for the engine; a peer sending faster is cut off
SILENCE_TIMEOUT = 15.0       # seconds a connected client may send nothing at all before it is removed
MEDIA_CALL_TIMEOUT = 15.0    # seconds an answer may take on the media worker
CLOSE_TIMEOUT = 5.0          # seconds to close a room's connections when it stops
MAX_CANDIDATES = 64          # trickled candidates kept before the first offer, and added per offer
MAX_CANDIDATE_LENGTH = 1024  # characters of one candidate line
ANNOUNCE_RATE = 2.0          # connects, metadata updates and renegotiations a peer may ask for per second...
ANNOUNCE_BURST = 20          # ...after a burst of this many (each reaches every other client)
# Offers are counted only when unasked for: the one answering our offerData is the protocol.
ANNOUNCED = frozenset({"connect", "updateEndpointMetadata", "updateTrackMetadata", "renegotiateTracks"})
REOPEN_DELAYS = (0.5, 1.0, 2.0, 5.0)  # seconds between tries to open the room's media again
WORKER_LOST = "the media server restarted; reconnecting"
MAX_REASON = 200             # characters of the reason a removed participant's channel is closed with
TARGET_RATE = 10.0           # setTargetTrackVariant a subscriber may send per second...
TARGET_BURST = 30            # ...after a burst of this many (a page re-laid out at once asks for each tile)
MAX_VARIANT_BITRATES = 8     # entries of one trackVariantBitrates (one per layer)
_CANDIDATE_ADDRESS = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)", re.MULTILINE)


def announce_address(sdp: str, address: str | None) -> str:
    """Put ``address`` in place of the host candidates' addresses (a server behind 1:1 NAT)."""
    if not address:
        return sdp
    return _CANDIDATE_ADDRESS.sub(lambda m: f"{m.group(1)}{address}{m.group(3)}", sdp)


@dataclass(frozen=True)
class _PeerLeft:
    endpoint: str


@dataclass(frozen=True)
class _PeerEvent:
    endpoint: str
    data: str


# What waits in the engine's inbox: what a peer did, or what the room's media worker reported.
_Item = _PeerLeft | _PeerEvent | RoomEvent | RoomLost


class Engine:
    """The SFU of one room."""

    def __init__(self, plane: MediaPlane, ice: IceConfig, config: RoomConfig, *,
                 turn: TurnCredentials = TurnCredentials(), media_addresses: MediaAddresses | None = None):
        """``turn`` makes each client's ``integratedTurnServers``; ``media_addresses`` is told of
        every media socket the room's answers offer (the built-in TURN server relays only there)."""
        self.plane = plane
        self.ice = ice
        self.config = config
        self.session = Session(lambda endpoint_id: turn.for_peer(config, endpoint_id))
        self.media_addresses = media_addresses
        self._sockets: dict[str, list[tuple[str, int]]] = {}  # endpoint -> media sockets its answers offered
        # Room for every peer's share, and INBOX_SIZE more for what the media worker reports.
        self._send, self._inbox = trio.open_memory_channel(INBOX_SIZE + PEER_QUEUE * config.max_peers)
        self.room: Room | None = None
        self.link: RoomLink | None = None  # the room's way to its media worker
        self.connections: set[str] = set()  # endpoints with a media connection on the worker
        self._early_candidates: dict[str, list[tuple[str, int]]] = {}  # before the first offer
        self._candidates: dict[str, int] = {}  # candidates added since the last answer
        self._left: set[str] = set()  # peers that left the room, still to remove here
        self._queued: dict[str, int] = {}  # peer -> its events in the inbox
        self.failures = 0  # participants removed for an error nobody foresaw
        self._announce = PeerRate(ANNOUNCE_RATE, ANNOUNCE_BURST)
        self._targets = PeerRate(TARGET_RATE, TARGET_BURST)

    # -- the Room's side (synchronous) ------------------------------------------------------
    def peer_joined(self, peer: Peer) -> None:
        pass  # the endpoint exists once its client sends "connect"

    def peer_left(self, peer: Peer) -> None:
        # Kept aside as well as posted: when a flood fills the inbox (and gets its sender
        # cut off), that very sender's "left" must not be the item that is lost.
        self._left.add(peer.id)
        self._post(_PeerLeft(peer.id))

    def media_event(self, peer: Peer, data: str) -> None:
        # Each peer has its share of the inbox: one that floods it is cut off before the
        # inbox is full, so the others' events always find room.
        queued = self._queued.get(peer.id, 0)
        if queued >= PEER_QUEUE:
            if self.room is not None:
                self.room.leave(peer, "too many media events at once")
            return
        self._queued[peer.id] = queued + 1
        self._post(_PeerEvent(peer.id, data), peer)

    def track_count(self) -> int:
        return self.session.track_count()

    def media_counters(self) -> dict[str, int]:
        """What this room's forwarding did so far (:class:`~.forwarding.MediaCounters`), as of
        the worker's last heartbeat."""
        counters = self.link.counters() if self.link is not None else {}
        counters["participants_failed"] = self.failures
        return counters

    def media_worker(self) -> str | None:
        """The name of the media worker that carries this room."""
        return self.link.worker_name if self.link is not None else None

    def _post(self, item: _Item, peer: Peer | None = None) -> None:
        # Runs in the media worker's reader task too: it must never raise.
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            if peer is not None and self.room is not None:
                self._dequeued(peer.id)
                self.room.leave(peer, "too many media events at once")
            else:
                log.error("engine inbox full; event lost", room=self.config.name, item=type(item).__name__)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the engine has stopped

    # -- the engine task ----------------------------------------------------------------------
    async def run(self, room: Room, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve ``room`` until cancelled; closes every media connection on the way out.

        Raises only if no media worker can open the room's media at start (WorkerLost,
        MediaError): an error while handling one participant ends that participant (see
        :meth:`_handle`).
        """
        self.room = room
        structlog.contextvars.bind_contextvars(room=room.name)
        self.link = await self._open_media()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                async for item in self._inbox:
                    if isinstance(item, _PeerEvent):
                        self._dequeued(item.endpoint)
                    await self._handle(item)
                    while self._left:
                        await self._handle(_PeerLeft(self._left.pop()))
        finally:
            for endpoint_id in list(self._sockets):
                self._offered(endpoint_id, [])
            if self.link is not None:
                with trio.CancelScope(shield=True):
                    await self.link.close(CLOSE_TIMEOUT)

    def _dequeued(self, endpoint_id: str) -> None:
        left = self._queued.get(endpoint_id, 0) - 1
        if left > 0:
            self._queued[endpoint_id] = left
        else:
            self._queued.pop(endpoint_id, None)

    async def _open_media(self) -> RoomLink:
        """Open this room's media on the least busy worker; raises WorkerLost or MediaError."""
        certificate = None
        if self.config.dtls_cert is not None and self.config.dtls_key is not None:
            certificate = CertificatePaths(str(self.config.dtls_cert), str(self.config.dtls_key))
        return await self.plane.open_room(self.config.name, self._from_worker,
                                          ice_servers=[str(url) for url in self.config.stun_servers],
                                          certificate=certificate, addresses=list(self.ice.addresses),
                                          udp_ports=list(self.ice.udp_ports) if self.ice.udp_ports else None,
                                          max_video_bitrate=self.config.max_video_bitrate,
                                          silence_timeout=SILENCE_TIMEOUT)

    def _from_worker(self, event: RoomEvent | RoomLost) -> None:
        # Called by the worker's reader task for this room's events: into the inbox, as they are.
        self._post(event)

    async def _call(self, command: Command) -> object:
        """Send ``command`` (one for this room) to its worker and return its result; raises
        MediaError, WorkerLost, or trio.TooSlowError after MEDIA_CALL_TIMEOUT.

        The engine handles one event at a time: a command that never returns would hold
        up every participant of the room.
        """
        assert self.link is not None
        return await self.link.call(command, timeout=MEDIA_CALL_TIMEOUT)

    async def _handle(self, item: _Item) -> None:
        """Handle one inbox item; never raises (but trio.Cancelled), except for a lost worker
        whose room cannot be opened again (see :meth:`_worker_lost`).

        Every other item concerns one participant. An error nobody foresaw while handling
        it ends that participant only (an ``error`` media event, then it is removed from
        the room); the engine, the room and the others go on.
        """
        if isinstance(item, RoomLost):  # not one participant's: when this fails, the room is restarted
            await self._worker_lost(item.reason)
            return
        endpoint_id = getattr(item, "endpoint", "")
        try:
            if isinstance(item, _PeerLeft):
                self._announce.forget(endpoint_id)
                self._targets.forget(endpoint_id)
                await self._remove(endpoint_id)
            elif isinstance(item, _PeerEvent):
                await self._client_event(endpoint_id, item.data)
            else:
                await self._media_event(item)
        except WorkerLost:
            pass  # RoomLost follows: every participant of the room is told to reconnect
        except Exception as error:
            self.failures += 1
            what = {_PeerLeft: "left", _PeerEvent: "event"}.get(type(item), "media")
            log.exception("unexpected error; participant removed", peer=endpoint_id, item=what)
            await self._end(endpoint_id, f"the server failed on this participant's {what}: {type(error).__name__}")

    async def _end(self, endpoint_id: str, message: str) -> None:
        """Tell the participant why (an ``error`` media event), then remove it from the
        session, its media connection and the room. Never raises."""
        try:
            self._deliver([(endpoint_id, ev.error(message))])
            assert self.room is not None
            peer = self.room.peers.get(endpoint_id)
            if peer is not None:
                self.room.leave(peer, message[:MAX_REASON])
        except Exception:
            log.exception("removing a participant failed", peer=endpoint_id)
        await self._remove(endpoint_id)

    def _deliver(self, out: list[tuple[str, str]]) -> None:
        assert self.room is not None
        for endpoint_id, text in out:
            self.room.unicast(endpoint_id, text, kind="rtc")

    # -- client events ----------------------------------------------------------------------
    async def _client_event(self, endpoint_id: str, data: str) -> None:
        assert self.room is not None
        peer = self.room.peers.get(endpoint_id)
        if peer is None:
            return
        event_type = None
        try:
            event = ev.parse(data)
            event_type = event.type
            await self._dispatch(peer, event)
        except (MediaEventError, SessionError, SdpError) as error:
            # The client waits for an answer: it hears what was wrong (and then, as the
            # client library does after an error, it disconnects).
            log.info("media event refused", peer=endpoint_id, media_event=event_type, error=str(error))
            if event_type == "sdpOffer":
                # Its negotiation cannot go on: the others would wait for it for ever.
                await self._end(endpoint_id, f"offer refused: {error}")
            else:
                self._deliver([(endpoint_id, ev.error(str(error)))])

    async def _dispatch(self, peer: Peer, event: ev.ClientEvent) -> None:
        kind = event.type
        counted = kind in ANNOUNCED or (kind == "sdpOffer" and not self.session.expects_offer(peer.id))
        if counted and not self._announce.allow(peer.id, trio.current_time()):
            raise MediaEventError(f"{kind}: too many connects, metadata updates and renegotiations; at most "
                                  f"{ANNOUNCE_BURST:g} at once, then {ANNOUNCE_RATE:g} a second")
        if kind == "connect":
            self._deliver(self.session.connect(peer.id, ev.metadata(event, "metadata")))
        elif kind == "disconnect":
            await self._remove(peer.id)
        elif kind == "updateEndpointMetadata":
            self._deliver(self.session.update_endpoint_metadata(peer.id, ev.metadata(event, "metadata")))
        elif kind == "updateTrackMetadata":
            track_id = ev.field(event, "trackId", str)
            self._deliver(self.session.update_track_metadata(peer.id, track_id, ev.metadata(event, "trackMetadata")))
        elif kind == "renegotiateTracks":
            self._deliver(self.session.renegotiate_tracks(peer.id))
        elif kind == "sdpOffer":
            await self._answer(peer, event)
        elif kind == "candidate":
            await self._candidate(peer, event)
        elif kind in ("enableTrackEncoding", "disableTrackEncoding"):
            await self._track_encoding(peer, event, kind == "enableTrackEncoding")
        elif kind == "setTargetTrackVariant":
            await self._target_variant(peer, event)
        elif kind == "trackVariantBitrates":
            self._variant_bitrates(event)

    # -- simulcast ----------------------------------------------------------------------------
    async def _track_encoding(self, peer: Peer, event: ev.ClientEvent, enabled: bool) -> None:
        """A publisher turns one layer of its track on or off: the media worker stops (or may
        again) choose it, the others hear it, and late joiners see it in simulcastConfig.

        Repeats and tracks the room took as one stream change nothing and say nothing (the
        client re-sends every disabled layer after each answer); changes count against the
        announce rate, as they reach every other client. Raises MediaEventError for a malformed
        event or past that rate; a media worker that refuses the change is only logged."""
        track_id = ev.field(event, "trackId", str)
        encoding = ev.field(event, "encoding", str)
        if not self.session.encoding_changes(peer.id, track_id, encoding, enabled):
            log.debug("layer change without effect", peer=peer.id, track=track_id[:80], encoding=encoding[:20])
            return
        if not self._announce.allow(peer.id, trio.current_time()):
            raise MediaEventError(f"{event.type}: too many layer changes; at most {ANNOUNCE_BURST:g} at once, "
                                  f"then {ANNOUNCE_RATE:g} a second")
        _, out = self.session.set_encoding(peer.id, track_id, encoding, enabled)
        assert self.link is not None
        try:
            await self.link.layer_enabled(track_id, encoding, enabled, timeout=MEDIA_CALL_TIMEOUT)
        except (MediaError, trio.TooSlowError) as error:
            log.warning("the media worker did not take a layer change", peer=peer.id, error=describe(error))
        log.info("layer turned " + ("on" if enabled else "off"), peer=peer.id, track=track_id, encoding=encoding)
        self._deliver(out)

    async def _target_variant(self, peer: Peer, event: ev.ClientEvent) -> None:
        """A subscriber asks for at most one layer of a remote track.

        A request that cannot be met (a track just removed, one sent as one stream, a layer
        it does not have) or that comes too fast is dropped with a log line only: an
        ``error`` would make the client disconnect over a picture size. Raises MediaEventError
        only for a malformed event."""
        track_id = ev.field(event, "trackId", str)
        variant = ev.field(event, "variant", str)
        if not self._targets.allow(peer.id, trio.current_time()):
            log.info("layer request dropped: too many", peer=peer.id, rate=TARGET_RATE, burst=TARGET_BURST)
            return
        problem = self.session.target(peer.id, track_id, variant)
        if problem is not None:
            log.info("layer request ignored", peer=peer.id, track=track_id[:80], variant=variant[:20], why=problem)
            return
        assert self.link is not None
        try:
            await self.link.target_layer(peer.id, track_id, variant, timeout=MEDIA_CALL_TIMEOUT)
        except (MediaError, trio.TooSlowError) as error:
            log.warning("the media worker did not take a layer request", peer=peer.id, error=describe(error))

    @staticmethod
    def _variant_bitrates(event: ev.ClientEvent) -> None:
        """``trackVariantBitrates``: checked, then not used (layers are chosen from what arrives)."""
        ev.field(event, "trackId", str)
        bitrates = ev.field(event, "variantBitrates", (dict, int, float))
        if isinstance(bitrates, dict):
            if len(bitrates) > MAX_VARIANT_BITRATES:
                raise MediaEventError(f"trackVariantBitrates: at most {MAX_VARIANT_BITRATES} variants")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in bitrates.values()):
                raise MediaEventError("trackVariantBitrates: each variant's bit rate must be a number >= 0")
        elif bitrates < 0:
            raise MediaEventError("trackVariantBitrates: the bit rate must be a number >= 0")

    async def _answer(self, peer: Peer, event: ev.ClientEvent) -> None:
        offer = ev.field(event, "sdpOffer", dict)
        sdp_text = offer.get("sdp")
        if offer.get("type") != "offer" or not isinstance(sdp_text, str):
            raise MediaEventError('sdpOffer: sdpOffer must be {"type": "offer", "sdp": ...}')
        mids = ev.field(event, "midToTrackId", dict, required=False) or {}
        metadata = ev.field(event, "trackIdToTrackMetadata", dict, required=False) or {}
        for track_id, value in metadata.items():
            ev.metadata(event, f"trackIdToTrackMetadata[{track_id[:40]!r}]", value)
        offered = parse_sdp(sdp_text)
        # A room without simulcast takes each track as one stream: the answer does not accept the
        # layers, and the client then sends only its first encoding (docs/media-events.md).
        rids = simulcast_rids(sdp_text) if self.config.simulcast else {}
        plan = self.session.plan(peer.id, offered, mids, metadata, rids)
        simulcast = {mid: rids[mid] for mid in plan.sending if mid in rids}
        slots = tuple(Slot(mid, slot.track_id, slot.stream_id) for mid, slot in plan.forward.items())
        started = trio.current_time()
        self.connections.add(peer.id)  # the worker makes it with the first answer, even one that fails
        try:
            answered = await self._call(Answer(self.link.key, peer.id, sdp_text, dict(plan.sending), slots,
                                               {mid: tuple(r) for mid, r in simulcast.items()}))
            assert isinstance(answered, Answered)
        except WorkerLost:
            raise  # everyone of the room is told to reconnect (see _worker_lost)
        except Exception as error:  # aiortc raises many kinds for offers it cannot take
            # The error ends this participant's media session only; the room and the others go on.
            log.warning("negotiation failed; endpoint removed", peer=peer.id, error=describe(error))
            await self._end(peer.id, f"the server could not accept this offer: {describe(error)}")
            return
        log.debug("offer answered", peer=peer.id, ms=round((trio.current_time() - started) * 1000),
                  receiving=len(slots), publishing=len(plan.sending))
        self._offered(peer.id, [(s.host, s.port) for s in answered.sockets])
        answer = announce_address(answered.sdp, self.ice.announced_ip)
        self._deliver([(peer.id, ev.sdp_answer(answer, plan.mid_to_track_id))])
        self._candidates[peer.id] = 0
        for candidate, index in self._early_candidates.pop(peer.id, []):
            if peer.id not in self.connections:
                return  # ended while adding them
            await self._add_candidate(peer.id, candidate, index)
        if plan.publish or plan.unpublish:
            log.info("tracks changed", peer=peer.id, published=[t.id for t in plan.publish],
                     unpublished=[t.id for t in plan.unpublish])
        self._deliver(self.session.answered(plan))

    async def _candidate(self, peer: Peer, event: ev.ClientEvent) -> None:
        candidate = ev.field(event, "candidate", str)
        index = ev.field(event, "sdpMLineIndex", int, required=False) or 0
        if not 0 <= index < MAX_MEDIA_LINES:
            raise MediaEventError(f"candidate: sdpMLineIndex {index} is not an m-line index (0 to {MAX_MEDIA_LINES - 1})")
        if len(candidate) > MAX_CANDIDATE_LENGTH:
            raise MediaEventError(f"candidate: candidate is {len(candidate)} characters; at most {MAX_CANDIDATE_LENGTH}")
        if peer.id not in self.connections:
            early = self._early_candidates.setdefault(peer.id, [])
            if len(early) >= MAX_CANDIDATES:
                raise MediaEventError(f"candidate: more than {MAX_CANDIDATES} candidates before the first offer")
            early.append((candidate, index))
            return
        added = self._candidates.get(peer.id, 0)
        if added >= MAX_CANDIDATES:
            raise MediaEventError(f"candidate: more than {MAX_CANDIDATES} candidates for one offer")
        self._candidates[peer.id] = added + 1
        await self._add_candidate(peer.id, candidate, index)

    async def _add_candidate(self, endpoint_id: str, candidate: str, index: int) -> None:
        try:
            await self._call(AddCandidate(self.link.key, endpoint_id, candidate, index))
        except WorkerLost:
            raise
        except trio.TooSlowError:
            # Whatever holds up its connection would hold up the whole room next time.
            await self._end(endpoint_id, f"the server's media connection did not take a candidate within {MEDIA_CALL_TIMEOUT:g} s")
        except Exception as error:  # a malformed candidate ends nothing
            log.info("candidate refused", peer=endpoint_id, error=describe(error))
            self._deliver([(endpoint_id, ev.error(f"candidate refused: {describe(error)}"))])

    # -- media events ------------------------------------------------------------------------
    async def _media_event(self, event: RoomEvent) -> None:
        """What the room's media worker reported; an endpoint it names that has gone is no news."""
        assert self.room is not None
        endpoint_id = getattr(event, "endpoint", "")
        peer = self.room.peers.get(endpoint_id)
        match event:
            case Vad(track=track_id, speaking=speaking):
                self._deliver(self.session.voice_activity(track_id, speaking))
            case EndpointState(state=state) if peer is not None:
                log.info("media connection", peer=endpoint_id, state=state)
                if state == "connected":
                    self._deliver(self.session.media_connected(endpoint_id))
                elif state in ("failed", "closed") and endpoint_id in self.connections:  # not closed by us
                    # "closed" without us closing it: aioice gave up (consent to send expired).
                    self.room.leave(peer, "media connection failed" if state == "failed" else "media connection lost",
                                    retry=True)
            case LayerSwitched(track_id=track_id, layer=layer, reason=reason):
                self._deliver(self.session.encoding_switched(endpoint_id, track_id, layer, reason))
            case Bandwidth(bps=bps):
                self._deliver(self.session.bandwidth(endpoint_id, bps))
            case Silent(seconds=seconds) if peer is not None and endpoint_id in self.connections:
                # aiortc never reports "disconnected", and its consent checks take ~30 s to give up.
                log.info("media connection silent", peer=endpoint_id, seconds=seconds)
                self.room.leave(peer, "media connection lost", retry=True)

    async def _remove(self, endpoint_id: str) -> None:
        """Forget the endpoint and close its media connection. Never raises (but trio.Cancelled):
        a connection that fails to close (an offer aiortc half-applied) is logged and dropped."""
        self._early_candidates.pop(endpoint_id, None)
        self._candidates.pop(endpoint_id, None)
        try:
            self._deliver(self.session.remove(endpoint_id))
        except Exception:
            log.exception("removing an endpoint from the session failed", peer=endpoint_id)
        self._offered(endpoint_id, [])
        if endpoint_id in self.connections and self.link is not None:
            self.connections.discard(endpoint_id)
            try:
                await self._call(CloseEndpoint(self.link.key, endpoint_id))
            except WorkerLost:
                pass  # its connection went with the worker
            except Exception as error:
                log.warning("media connection did not close cleanly; dropped", peer=endpoint_id, error=describe(error))

    def _offered(self, endpoint_id: str, sockets: list[tuple[str, int]]) -> None:
        """Tell the media-address registry that ``endpoint_id``'s connection offers ``sockets``
        now (none once it is closed): the built-in TURN server relays to these only."""
        if self.media_addresses is None:
            return
        for ip, port in self._sockets.pop(endpoint_id, []):
            self.media_addresses.remove(ip, port)
        if sockets:
            self._sockets[endpoint_id] = sockets
            owner = self.link.worker_name if self.link is not None else None
            for ip, port in sockets:
                self.media_addresses.add(ip, port, owner)

    async def _worker_lost(self, reason: str) -> None:
        """The worker that carried this room is gone, and every media connection with it.

        Its participants are told to reconnect (``phx_close`` with ``retry``: the page
        joins again by itself, with a new connection); the room's media is opened again
        on a running worker. Raises WorkerLost or MediaError when that keeps failing (the
        room is then restarted by its supervisor).
        """
        assert self.room is not None
        peers = [p for p in self.room.peers.values() if p.kind == "rtc"]
        log.warning("media worker lost; participants told to reconnect", reason=reason, peers=len(peers))
        self.link = None
        for endpoint_id in list(self._sockets):
            self._offered(endpoint_id, [])
        self.connections.clear()
        self._early_candidates.clear()
        self._candidates.clear()
        for peer in peers:
            self.room.leave(peer, WORKER_LOST, retry=True)  # their "left" items follow
        for attempt, delay in enumerate(REOPEN_DELAYS):
            try:
                self.link = await self._open_media()
                log.info("room media opened again", worker=self.link.worker_name)
                return
            except (WorkerLost, MediaError) as error:
                if attempt == len(REOPEN_DELAYS) - 1:
                    raise
                log.warning("opening the room's media again failed; trying again", error=describe(error), retry_in_s=delay)
                await trio.sleep(delay)


def describe(error: BaseException) -> str:
    """What went wrong, for a log line or a client: a worker's refusal names its own error type."""
    return str(error) if isinstance(error, MediaError) else f"{type(error).__name__}: {error}"
