"""A room's SFU engine: the trio task between the Room's peers and their media connections.

It speaks the media-event protocol through :class:`~.session.Session`
(pure), and drives one aiortc connection per endpoint on the media thread
(:mod:`.rtc`, through :mod:`.bridge`). Events are handled one at a time
from a bounded inbox, so the session never sees two changes at once.
"""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable

import structlog
import trio
from aiortc import RTCIceServer
from aiortc.rtcdtlstransport import RTCCertificate

from ..certs import pem
from ..config import IceConfig, RoomConfig
from ..rooms.room import Peer, Room
from . import media_events as ev
from .bridge import AsyncioThread, BridgeClosed
from .media_events import MediaEventError
from .rate import PeerRate
from .rtc import EndpointConnection, RoomMedia, SlotPlan
from .sdp import MAX_MEDIA_LINES, SdpError
from .sdp import parse as parse_sdp
from .session import Session, SessionError

log = structlog.get_logger("videoroomd.engine")

INBOX_SIZE = 1024            # media-thread reports waiting for the engine, besides the peers' shares
PEER_QUEUE = 128             # events of one peer waiting for the engine; a peer sending faster is cut off
SILENCE_TIMEOUT = 15.0       # seconds a connected client may send nothing at all before it is removed
SILENCE_CHECK_INTERVAL = 2.0  # seconds between two looks for silent clients
MEDIA_CALL_TIMEOUT = 15.0    # seconds an answer may take on the media thread
CLOSE_TIMEOUT = 5.0          # seconds to close a room's connections when it stops
MAX_CANDIDATES = 64          # trickled candidates kept before the first offer, and added per offer
MAX_CANDIDATE_LENGTH = 1024  # characters of one candidate line
ANNOUNCE_RATE = 2.0          # connects, metadata updates and renegotiations a peer may ask for per second...
ANNOUNCE_BURST = 20          # ...after a burst of this many (each reaches every other client)
# Offers are counted only when unasked for: the one answering our offerData is the protocol.
ANNOUNCED = frozenset({"connect", "updateEndpointMetadata", "updateTrackMetadata", "renegotiateTracks"})
MAX_REASON = 200             # characters of the reason a removed participant's channel is closed with
IGNORED = frozenset({"enableTrackEncoding", "disableTrackEncoding", "trackVariantBitrates", "setTargetTrackVariant"})
_CANDIDATE_ADDRESS = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host)", re.MULTILINE)


def announce_address(sdp: str, address: str | None) -> str:
    """Put ``address`` in place of the host candidates' addresses (a server behind 1:1 NAT)."""
    if not address:
        return sdp
    return _CANDIDATE_ADDRESS.sub(lambda m: f"{m.group(1)}{address}{m.group(3)}", sdp)


def turn_servers_for_clients(room: RoomConfig) -> list[dict]:
    """``offerData.integratedTurnServers`` from the room's TURN servers."""
    servers = []
    for server in room.turn_servers:
        for url in server.urls:
            transport = "tls" if url.scheme == "turns" else url.transport
            servers.append({"serverAddr": url.host, "serverPort": url.port, "transport": transport,
                            "username": server.username, "password": server.credential})
    return servers


class MediaHost:
    """The media thread and the DTLS certificate shared by every room of the daemon."""

    def __init__(self, ice: IceConfig):
        self.ice = ice
        self.bridge = AsyncioThread()
        self.default_certificate: RTCCertificate | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the media thread; stops it when cancelled. Never returns otherwise."""
        self.bridge.start()
        try:
            self.default_certificate = RTCCertificate.generateCertificate()
            task_status.started(self)
            await trio.sleep_forever()
        finally:
            self.bridge.stop()

    def certificate_for(self, room: RoomConfig) -> RTCCertificate:
        if room.dtls_cert is not None and room.dtls_key is not None:
            return RTCCertificate(pem.load_private_key(room.dtls_key), pem.load_certificate(room.dtls_cert))
        assert self.default_certificate is not None
        return self.default_certificate

    def engine_for(self, room: RoomConfig) -> "Engine":
        return Engine(self, room)


class Engine:
    """The SFU of one room."""

    def __init__(self, host: MediaHost, config: RoomConfig):
        self.host = host
        self.bridge = host.bridge
        self.config = config
        self.session = Session(turn_servers_for_clients(config))
        # Room for every peer's share, and INBOX_SIZE more for what the media thread reports.
        self._send, self._inbox = trio.open_memory_channel(INBOX_SIZE + PEER_QUEUE * config.max_peers)
        self.room: Room | None = None
        self.media: RoomMedia | None = None
        self.connections: dict[str, EndpointConnection] = {}
        self._early_candidates: dict[str, list[tuple[str, int]]] = {}  # before the first offer
        self._candidates: dict[str, int] = {}  # candidates added since the last answer
        self._left: set[str] = set()  # peers that left the room, still to remove here
        self._queued: dict[str, int] = {}  # peer -> its events in the inbox
        self.failures = 0  # participants removed for an error nobody foresaw
        self._announce = PeerRate(ANNOUNCE_RATE, ANNOUNCE_BURST)

    # -- the Room's side (synchronous) ------------------------------------------------------
    def peer_joined(self, peer: Peer) -> None:
        pass  # the endpoint exists once its client sends "connect"

    def peer_left(self, peer: Peer) -> None:
        # Kept aside as well as posted: when a flood fills the inbox (and gets its sender
        # cut off), that very sender's "left" must not be the item that is lost.
        self._left.add(peer.id)
        self._post(("left", peer.id, None))

    def media_event(self, peer: Peer, data: str) -> None:
        # Each peer has its share of the inbox: one that floods it is cut off before the
        # inbox is full, so the others' events always find room.
        queued = self._queued.get(peer.id, 0)
        if queued >= PEER_QUEUE:
            if self.room is not None:
                self.room.leave(peer, "too many media events at once")
            return
        self._queued[peer.id] = queued + 1
        self._post(("event", peer.id, data), peer)

    def track_count(self) -> int:
        return self.session.track_count()

    def media_counters(self) -> dict[str, int]:
        """What this room's forwarding did so far (:class:`~.forwarding.MediaCounters`)."""
        counters = self.media.counters.as_dict() if self.media is not None else {}
        counters["participants_failed"] = self.failures
        return counters

    def _post(self, item: tuple, peer: Peer | None = None) -> None:
        # Runs in trio callbacks too (bridge.notify): it must never raise.
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            if peer is not None and self.room is not None:
                self._dequeued(peer.id)
                self.room.leave(peer, "too many media events at once")
            else:
                log.error("engine inbox full; event lost", room=self.config.name, item=item[0])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the engine has stopped

    # -- the engine task ----------------------------------------------------------------------
    async def run(self, room: Room, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve ``room`` until cancelled; closes every media connection on the way out.

        Raises only if the media thread cannot make the room's media at start: an error
        while handling one participant ends that participant (see :meth:`_handle`).
        """
        self.room = room
        structlog.contextvars.bind_contextvars(room=room.name)
        ice_servers = [RTCIceServer(urls=str(url)) for url in self.config.stun_servers]
        certificate = self.host.certificate_for(self.config)
        addresses = self.host.ice.addresses

        async def make_media() -> RoomMedia:
            return RoomMedia(ice_servers, certificate, addresses, self._from_media_thread)

        self.media = await self._call(make_media)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._watch_silence)
                task_status.started()
                async for kind, endpoint_id, payload in self._inbox:
                    if kind == "event":
                        self._dequeued(endpoint_id)
                    await self._handle(kind, endpoint_id, payload)
                    while self._left:
                        await self._handle("left", self._left.pop(), None)
        finally:
            with trio.move_on_after(CLOSE_TIMEOUT) as cleanup:
                cleanup.shield = True
                try:
                    await self.bridge.call(self.media.close)
                except BridgeClosed:
                    pass  # the daemon is stopping and the media thread went first
                except Exception:
                    log.exception("closing the room's media connections failed")

    def _dequeued(self, endpoint_id: str) -> None:
        left = self._queued.get(endpoint_id, 0) - 1
        if left > 0:
            self._queued[endpoint_id] = left
        else:
            self._queued.pop(endpoint_id, None)

    def _from_media_thread(self, kind: str, endpoint_id: str, *args: Any) -> None:
        # Runs on the asyncio thread: hop to trio, then into the inbox.
        self.bridge.notify(self._post, ("media", endpoint_id, (kind, args)))

    async def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``fn(*args)`` on the media thread; raises trio.TooSlowError after MEDIA_CALL_TIMEOUT.

        The engine handles one event at a time: an aiortc call that never returns
        would hold up every participant of the room.
        """
        with trio.fail_after(MEDIA_CALL_TIMEOUT):
            return await self.bridge.call(fn, *args)

    async def _handle(self, kind: str, endpoint_id: str, payload: Any) -> None:
        """Handle one inbox item; never raises (but trio.Cancelled).

        Every item concerns one participant. An error nobody foresaw while handling it
        ends that participant only (an ``error`` media event, then it is removed from
        the room); the engine, the room and the others go on.
        """
        try:
            if kind == "left":
                self._announce.forget(endpoint_id)
                await self._remove(endpoint_id)
            elif kind == "event":
                await self._client_event(endpoint_id, payload)
            elif kind == "media":
                await self._media_event(endpoint_id, *payload)
        except Exception as error:
            self.failures += 1
            log.exception("unexpected error; participant removed", peer=endpoint_id, item=kind)
            await self._end(endpoint_id, f"the server failed on this participant's {kind}: {type(error).__name__}")

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
        elif kind in IGNORED:
            log.debug("simulcast event ignored: simulcast is not supported", peer=peer.id, media_event=kind)

    async def _answer(self, peer: Peer, event: ev.ClientEvent) -> None:
        offer = ev.field(event, "sdpOffer", dict)
        sdp_text = offer.get("sdp")
        if offer.get("type") != "offer" or not isinstance(sdp_text, str):
            raise MediaEventError('sdpOffer: sdpOffer must be {"type": "offer", "sdp": ...}')
        mids = ev.field(event, "midToTrackId", dict, required=False) or {}
        metadata = ev.field(event, "trackIdToTrackMetadata", dict, required=False) or {}
        for track_id, value in metadata.items():
            ev.metadata(event, f"trackIdToTrackMetadata[{track_id[:40]!r}]", value)
        plan = self.session.plan(peer.id, parse_sdp(sdp_text), mids, metadata)
        slots = [SlotPlan(mid, slot.track_id, slot.stream_id) for mid, slot in plan.forward.items()]
        assert self.media is not None
        started = trio.current_time()
        try:
            connection = self.connections.get(peer.id)
            if connection is None:
                media = self.media

                async def make() -> EndpointConnection:
                    return media.connection(peer.id)

                connection = self.connections[peer.id] = await self._call(make)
            answer = await self._call(connection.answer, sdp_text, plan.sending, slots)
        except Exception as error:  # aiortc raises many kinds for offers it cannot take
            # The error ends this participant's media session only; the room and the others go on.
            log.warning("negotiation failed; endpoint removed", peer=peer.id, error=f"{type(error).__name__}: {error}")
            await self._end(peer.id, f"the server could not accept this offer: {type(error).__name__}: {error}")
            return
        log.debug("offer answered", peer=peer.id, ms=round((trio.current_time() - started) * 1000),
                  receiving=len(slots), publishing=len(plan.sending))
        answer = announce_address(answer, self.host.ice.announced_ip)
        self._deliver([(peer.id, ev.sdp_answer(answer, plan.mid_to_track_id))])
        self._candidates[peer.id] = 0
        for candidate, index in self._early_candidates.pop(peer.id, []):
            if self.connections.get(peer.id) is not connection:
                return  # ended while adding them
            await self._add_candidate(connection, peer.id, candidate, index)
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
        connection = self.connections.get(peer.id)
        if connection is None:
            early = self._early_candidates.setdefault(peer.id, [])
            if len(early) >= MAX_CANDIDATES:
                raise MediaEventError(f"candidate: more than {MAX_CANDIDATES} candidates before the first offer")
            early.append((candidate, index))
            return
        added = self._candidates.get(peer.id, 0)
        if added >= MAX_CANDIDATES:
            raise MediaEventError(f"candidate: more than {MAX_CANDIDATES} candidates for one offer")
        self._candidates[peer.id] = added + 1
        await self._add_candidate(connection, peer.id, candidate, index)

    async def _add_candidate(self, connection: EndpointConnection, endpoint_id: str, candidate: str, index: int) -> None:
        try:
            await self._call(connection.add_candidate, candidate, index)
        except trio.TooSlowError:
            # Whatever holds up its connection would hold up the whole room next time.
            await self._end(endpoint_id, f"the server's media connection did not take a candidate within {MEDIA_CALL_TIMEOUT:g} s")
        except Exception as error:  # a malformed candidate ends nothing
            log.info("candidate refused", peer=endpoint_id, error=f"{type(error).__name__}: {error}")
            self._deliver([(endpoint_id, ev.error(f"candidate refused: {type(error).__name__}: {error}"))])

    # -- media events ------------------------------------------------------------------------
    async def _media_event(self, endpoint_id: str, kind: str, args: tuple) -> None:
        assert self.room is not None
        peer = self.room.peers.get(endpoint_id)
        if kind == "vad":
            track_id, speaking = args
            self._deliver(self.session.voice_activity(track_id, speaking))
        elif kind == "state":
            (state,) = args
            if peer is None:
                return
            log.info("media connection", peer=endpoint_id, state=state)
            if state == "connected":
                self._deliver(self.session.media_connected(endpoint_id))
            elif state in ("failed", "closed") and endpoint_id in self.connections:  # not closed by us
                # "closed" without us closing it: aioice gave up (consent to send expired).
                self.room.leave(peer, "media connection failed" if state == "failed" else "media connection lost",
                                retry=True)
        elif kind == "silent":
            if peer is not None and endpoint_id in self.connections:
                log.info("media connection silent", peer=endpoint_id, seconds=SILENCE_TIMEOUT)
                self.room.leave(peer, "media connection lost", retry=True)

    async def _watch_silence(self) -> None:
        """Every SILENCE_CHECK_INTERVAL, hand the clients that went silent to the inbox.

        aiortc never reports "disconnected", and its consent checks take ~30 s to give
        up on a client whose network is gone; others would watch a frozen tile that long.
        """
        media = self.media

        async def silent() -> list[str]:
            return media.silent(SILENCE_TIMEOUT)

        while True:
            await trio.sleep(SILENCE_CHECK_INTERVAL)
            if self.connections:
                try:
                    quiet = await self._call(silent)
                except BridgeClosed:
                    return  # the daemon is stopping
                except Exception:
                    log.exception("looking for silent media connections failed")
                    continue
                for endpoint_id in quiet:
                    self._post(("media", endpoint_id, ("silent", ())))

    async def _remove(self, endpoint_id: str) -> None:
        """Forget the endpoint and close its media connection. Never raises (but trio.Cancelled):
        a connection that fails to close (an offer aiortc half-applied) is logged and dropped."""
        self._early_candidates.pop(endpoint_id, None)
        self._candidates.pop(endpoint_id, None)
        try:
            self._deliver(self.session.remove(endpoint_id))
        except Exception:
            log.exception("removing an endpoint from the session failed", peer=endpoint_id)
        connection = self.connections.pop(endpoint_id, None)
        if connection is not None and self.media is not None:
            try:
                await self._call(self.media.close_endpoint, endpoint_id)
            except BridgeClosed:
                pass  # the daemon is stopping
            except Exception as error:
                log.warning("media connection did not close cleanly; dropped", peer=endpoint_id,
                            error=f"{type(error).__name__}: {error}")
