"""A room's SFU engine: the trio task between the Room's peers and their media connections.

It speaks the media-event protocol through :class:`~.session.Session` (pure), and has the room's media worker
(:mod:`videoroomd.media`) drive one aiortc connection per endpoint, through the typed commands and events of
:mod:`videoroomd.media.workers.commands` and :mod:`videoroomd.media.workers.events`. Those events, and what the peers
send, are handled one at a time from a bounded inbox, so the session never sees two changes at once. An endpoint is
removed one way only: room → engine → worker (the worker reports, the engine decides). When the worker is lost, the
room's participants are told to reconnect and the room's media is opened again on a worker that runs.
"""

from __future__ import annotations

import structlog
import trio

from ..backoff import Backoff, retry
from ..config import IceConfig, RoomConfig
from ..logs.ratelimit import ThrottledLog
from ..media.workers.client import MediaError, WorkerLost
from ..media.workers.commands import AddCandidate, Answer, Answered, CloseEndpoint, Command, Slot
from ..media.workers.events import Bandwidth, EndpointState, LayerSwitched, RecordingEnded, RoomEvent, RoomLost, Silent, Vad
from ..media.workers.plane import MediaPlane, RoomLink
from ..rooms.room import Peer, Room
from ..sdp.candidates import announce_address
from ..sdp.offer import MAX_MEDIA_LINES, SdpError
from ..sdp.offer import parse as parse_sdp
from ..sdp.offer import simulcast_rids
from ..sdp.offer_checks import check_candidate, check_offer
from ..token_buckets import TokenBuckets
from ..turn.clients import TurnCredentials
from ..turn.peers import MediaAddresses
from . import media_events as ev
from .holds import Holds
from .inbox import Item as _Item, PeerEvent as _PeerEvent, PeerLeft as _PeerLeft
from .layer_requests import LayerRequests, variant_bitrates
from .media_events import MediaEventError
from .media_side import MediaSide, describe
from .recording_side import RecordingSide
from .session import ANSWER_SETTLE, Session, SessionError
from .track_news import TrackNews

log = structlog.get_logger("videoroomd.engine")
throttled = ThrottledLog(log)  # for the lines a client causes

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
ANNOUNCED = frozenset({"connect", "updateEndpointMetadata", "updateTrackMetadata", "renegotiateTracks", "recording"})
REOPEN_BACKOFF = Backoff((0.5, 1.0, 2.0))  # seconds between tries to open the room's media again
REOPEN_TRIES = 4
WORKER_LOST = "the media server restarted; reconnecting"
MAX_REASON = 200             # characters of the reason a removed participant's channel is closed with
TARGET_RATE = 10.0           # setTargetTrackVariant a subscriber may send per second...
TARGET_BURST = 30            # ...after a burst of this many (a page re-laid out at once asks for each tile)


class Engine:
    """The SFU of one room."""

    def __init__(self, plane: MediaPlane, ice: IceConfig, config: RoomConfig, *,
                 turn: TurnCredentials = TurnCredentials(), media_addresses: MediaAddresses | None = None, recording=None):
        """``turn`` makes each client's ``integratedTurnServers``; ``media_addresses`` is told of
        every media socket the room's answers offer (the built-in TURN server relays only there);
        ``recording()`` is the daemon's ``[recording]`` (recording_side.py)."""
        self.ice = ice
        self.config = config
        self.session = Session(lambda endpoint_id: turn.for_peer(config, endpoint_id))
        self.turn = turn
        self.media = MediaSide(plane, ice, config, media_addresses, self._from_worker)
        # Room for every peer's share, and INBOX_SIZE more for what the media worker reports.
        self._send, self._inbox = trio.open_memory_channel(INBOX_SIZE + PEER_QUEUE * config.max_peers)
        self.room: Room | None = None
        self._early_candidates: dict[str, list[tuple[str, int]]] = {}  # before the first offer
        self._candidates: dict[str, int] = {}  # candidates added since the last answer
        self._left: set[str] = set()  # peers that left the room, still to remove here
        self._queued: dict[str, int] = {}  # peer -> its events in the inbox
        self.failures = 0  # participants removed for an error nobody foresaw
        self.track_news = TrackNews()  # what the room's listeners (webhooks) were told of its tracks
        self._announce = TokenBuckets(ANNOUNCE_RATE, ANNOUNCE_BURST)  # per peer id
        self._targets = TokenBuckets(TARGET_RATE, TARGET_BURST)
        self.layers = LayerRequests(self.session, self.media, self._announce, self._targets, self._deliver,
                                    MEDIA_CALL_TIMEOUT)
        self.holds = Holds(self.session, self.media, MEDIA_CALL_TIMEOUT)  # a moderator's (rooms.moderation)
        self.recording = RecordingSide(self, recording)

    # -- the Room's side (synchronous) ------------------------------------------------------
    def peer_joined(self, peer: Peer) -> None:
        pass  # the endpoint exists once its client sends "connect"

    def peer_left(self, peer: Peer) -> None:
        # Kept aside as well as posted: when a flood fills the inbox (and gets its sender
        # cut off), that very sender's "left" must not be the item that is lost.
        self._left.add(peer.id)
        self._post(_PeerLeft(peer.id))
        self.track_news.left(self.room, peer)

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
        return {**self.media.counters(), "participants_failed": self.failures}

    def media_worker(self) -> str | None:
        """The name of the media worker that carries this room."""
        return self.media.worker_name()

    @property
    def link(self) -> RoomLink | None:
        """The room's way to its media worker (None while none carries it)."""
        return self.media.link

    @property
    def connections(self) -> set[str]:
        """The endpoints with a media connection on the worker."""
        return self.media.connections

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

        Raises only if no media worker can open the room's media at start (WorkerLost, MediaError): an error while
        handling one participant ends that participant (see :meth:`_handle`)."""
        self.room = room
        structlog.contextvars.bind_contextvars(room=room.name)
        await self.media.open(SILENCE_TIMEOUT)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                nursery.start_soon(self.recording.opened)
                async for item in self._inbox:
                    if isinstance(item, _PeerEvent):
                        self._dequeued(item.endpoint)
                    await self._handle(item)
                    while self._left:
                        await self._handle(_PeerLeft(self._left.pop()))
        finally:
            for endpoint_id in list(self.session.endpoints):
                self.turn.revoke(endpoint_id)  # the call is over: so are its TURN allocations
            await self.media.close(CLOSE_TIMEOUT)

    def _dequeued(self, endpoint_id: str) -> None:
        left = self._queued.get(endpoint_id, 0) - 1
        if left > 0:
            self._queued[endpoint_id] = left
        else:
            self._queued.pop(endpoint_id, None)

    def _from_worker(self, event: RoomEvent | RoomLost) -> None:
        # Called by the worker's reader task for this room's events: into the inbox, as they are.
        self._post(event)

    async def _call(self, command: Command) -> object:
        """Send ``command`` (one for this room) to its worker and return its result; raises
        MediaError, WorkerLost, or trio.TooSlowError after MEDIA_CALL_TIMEOUT.

        The engine handles one event at a time: a command that never returns would hold
        up every participant of the room.
        """
        return await self.media.call(command, MEDIA_CALL_TIMEOUT)

    async def _handle(self, item: _Item) -> None:
        """Handle one inbox item; never raises (but trio.Cancelled), except for a lost worker whose room cannot be
        opened again (see :meth:`_worker_lost`).

        Every other item concerns one participant. An error nobody foresaw while handling it ends that participant
        only (an ``error`` media event, then it is removed from the room); the engine, the room and the others go on.
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
            throttled.info("media event refused", peer=endpoint_id, media_event=event_type, error=str(error))
            if event_type == "sdpOffer":
                # Its negotiation cannot go on: the others would wait for it for ever.
                await self._end(endpoint_id, f"offer refused: {error}")
            else:
                self._deliver([(endpoint_id, ev.error(str(error)))])

    async def _dispatch(self, peer: Peer, event: ev.ClientEvent) -> None:
        kind = event.type
        counted = kind in ANNOUNCED or (kind == "sdpOffer" and not self.session.expects_offer(peer.id))
        if counted and not self._announce.take(peer.id, trio.current_time()):
            raise MediaEventError(f"{kind}: too many connects, metadata updates and renegotiations; at most "
                                  f"{ANNOUNCE_BURST:g} at once, then {ANNOUNCE_RATE:g} a second")
        if kind == "connect":
            self._deliver(self.session.connect(peer.id, ev.metadata(event, "metadata"), grants=peer.grants,
                                               name=peer.name if peer.identity is not None else None))
            self.recording.connected(peer.id)
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
            await self.layers.track_encoding(peer.id, event, kind == "enableTrackEncoding")
        elif kind == "setTargetTrackVariant":
            await self.layers.target_variant(peer.id, event)
        elif kind == "trackVariantBitrates":
            variant_bitrates(event)
        elif kind == "recording":
            await self.recording.client_event(peer, event)

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
        check_offer(sdp_text)  # what aiortc would trip on, named (SdpError)
        # A room without simulcast takes each track as one stream: the answer does not accept the
        # layers, and the client then sends only its first encoding (docs/media-events.md).
        rids = simulcast_rids(sdp_text) if self.config.simulcast else {}
        plan = self.session.plan(peer.id, offered, mids, metadata, rids)
        simulcast = {mid: rids[mid] for mid in plan.sending if mid in rids}
        slots = tuple(Slot(mid, slot.track_id, slot.stream_id) for mid, slot in plan.forward.items())
        started = trio.current_time()
        self.connections.add(peer.id)  # the worker makes it with the first answer, even one that fails
        try:
            answered = await self._call(Answer(self.media.key, peer.id, sdp_text, dict(plan.sending), slots,
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
        self.media.offered(peer.id, answered.sockets)
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
            self.track_news.answered(self.room, peer, plan)
        self._deliver(self.session.answered(plan))
        self._nursery.start_soon(self._settle, peer.id, self.session.endpoints[peer.id].answers)

    async def _settle(self, endpoint_id: str, answer: int) -> None:
        await trio.sleep(ANSWER_SETTLE)
        self._deliver(self.session.settled(endpoint_id, answer))

    async def _candidate(self, peer: Peer, event: ev.ClientEvent) -> None:
        candidate = ev.field(event, "candidate", str)
        index = ev.field(event, "sdpMLineIndex", int, required=False) or 0
        if not 0 <= index < MAX_MEDIA_LINES:
            raise MediaEventError(f"candidate: sdpMLineIndex {index} is not an m-line index (0 to {MAX_MEDIA_LINES - 1})")
        if len(candidate) > MAX_CANDIDATE_LENGTH:
            raise MediaEventError(f"candidate: candidate is {len(candidate)} characters; at most {MAX_CANDIDATE_LENGTH}")
        check_candidate(candidate)  # what aiortc would trip on, named (SdpError)
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
            await self._call(AddCandidate(self.media.key, endpoint_id, candidate, index))
        except WorkerLost:
            raise
        except trio.TooSlowError:
            # Whatever holds up its connection would hold up the whole room next time.
            await self._end(endpoint_id, f"the server's media connection did not take a candidate within {MEDIA_CALL_TIMEOUT:g} s")
        except Exception as error:  # a malformed candidate ends nothing
            throttled.info("candidate refused", peer=endpoint_id, error=describe(error))
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
            case RecordingEnded():
                self.recording.ended(event)
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
        self.turn.revoke(endpoint_id)  # its TURN allocations end with it
        self.media.offered(endpoint_id)
        if endpoint_id in self.connections and self.link is not None:
            self.connections.discard(endpoint_id)
            try:
                await self._call(CloseEndpoint(self.media.key, endpoint_id))
            except WorkerLost:
                pass  # its connection went with the worker
            except Exception as error:
                log.warning("media connection did not close cleanly; dropped", peer=endpoint_id, error=describe(error))

    async def _worker_lost(self, reason: str) -> None:
        """The worker that carried this room is gone, and every media connection with it.

        Its participants are told to reconnect (``phx_close`` with ``retry``: the page joins again by itself, with a
        new connection); the room's media is opened again on a running worker. Raises WorkerLost or MediaError when
        that keeps failing (the room is then restarted by its supervisor)."""
        assert self.room is not None
        peers = [p for p in self.room.peers.values() if p.kind == "rtc"]
        log.warning("media worker lost; participants told to reconnect", reason=reason, peers=len(peers))
        self.media.lost()
        self.recording.lost()
        self._early_candidates.clear()
        self._candidates.clear()
        for peer in peers:
            self.room.leave(peer, WORKER_LOST, retry=True)  # their "left" items follow

        def failed(error: Exception, delay: float) -> None:
            log.warning("opening the room's media again failed; trying again", error=describe(error), retry_in_s=delay)

        link = await retry(lambda: self.media.open(SILENCE_TIMEOUT), REOPEN_BACKOFF, tries=REOPEN_TRIES,
                           retry_on=(WorkerLost, MediaError), on_retry=failed)
        log.info("room media opened again", worker=link.worker_name)
        self._nursery.start_soon(self.recording.opened)
