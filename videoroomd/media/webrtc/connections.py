"""The aiortc side of one room: a peer connection per endpoint (runs in a media worker only).

Every object here belongs to the asyncio loop of one media worker; the trio
engine reaches them only through the worker's messages (:mod:`.server`).
Each ``RTCPeerConnection`` is owned by one :class:`EndpointConnection` and
closed by it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import structlog
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.sdp import candidate_from_sdp

from ...sdp.candidates import candidate_host, candidate_ufrag
from ...sdp.sections import answer_with_bandwidth, answer_with_layers, offered_extension_ids
from .compat import rtp as compat
from .compat.ice import (bind_host_ports, keep_consent, limit_host_addresses, local_address, media_protocols,
                                media_skips_stun_check, remote_username, watch_incoming)
from .compat.ice_restart import follow_valid_pairs, handle_remote_ice_restart
from .compat.native_port import PortTally, counters as port_counters, sync_ports, take_over
from .compat.remb import lighten_receivers
from .compat.rtcp import report_together
from .compat.simulcast import negotiate_stream_ids
from .candidates import reachable, without_unreachable
from ..dataplane.interface import DataPlane, UnknownId
from ..dataplane.native_plane import NativeDataPlane
from ..dataplane.python_plane import PythonDataPlane
from .forwarding import AiortcRoute, PlaneEvents, SlotTrack, attach_publisher, attach_subscriber, receive_at_once
from .native_routes import ConnectionRoutes
from .recording_tap import RecordingTap

log = structlog.get_logger("videoroomd.media.rtc")

# Forwarding needs one codec per kind across publishers and subscribers.
PREFERRED = {"audio": "audio/opus", "video": "video/VP8"}


@dataclass(frozen=True)
class Publication:
    """A track published in the room: its id in the room's data plane is its track id."""

    track_id: str
    kind: str
    rids: list[str] | None  # its simulcast layers, low to high (None: one stream)
    plane: DataPlane

    def set_layer_enabled(self, rid: str, enabled: bool) -> bool:
        """The publisher's client turned layer ``rid`` off or on; False when there is no such layer."""
        try:
            return self.plane.enable_layer(self.track_id, rid, enabled)
        except UnknownId:
            return False


@dataclass(frozen=True)
class SlotPlan:
    mid: str
    track_id: str | None  # None: inactive
    stream_id: str


def refuse_unplanned(by_mid: dict, sending: dict[str, str], slots: list[SlotPlan]) -> None:
    """Answer ``inactive`` every m-line that neither publishes nor receives: a send m-line the
    engine did not take (its sender may not publish that), so that nothing is sent on it."""
    planned = set(sending) | {slot.mid for slot in slots}
    for mid, transceiver in by_mid.items():
        if mid not in planned:
            transceiver.direction = "inactive"


def codec_preferences(kind: str) -> list:
    capabilities = RTCRtpSender.getCapabilities(kind)
    wanted = PREFERRED[kind].lower()
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() == wanted]
    if kind == "video":
        codecs += [c for c in capabilities.codecs if c.mimeType.lower() == "video/rtx"]
    return codecs


class RoomMedia:
    """The published tracks of one room, by track id, its data plane, and the settings every connection uses."""

    def __init__(self, ice_servers: list[RTCIceServer], certificate: RTCCertificate, addresses: tuple[str, ...],
                 on_event: Callable[..., None], udp_ports: tuple[int, int] | None = None,
                 max_video_bitrate: int | None = None, data_plane: str = "python", ports: PortTally | None = None):
        self.ice_servers = ice_servers
        self.udp_ports = udp_ports  # (FIRST, LAST) the host candidates are bound in; None: any port
        self.certificate = certificate
        self.addresses = addresses
        self.on_event = on_event  # (kind, endpoint_id, *args) -> None; called on the media thread
        self.max_video_bitrate = max_video_bitrate  # bits/s the REMB to each video publisher allows at most
        # The compiled module reads direct connections' sockets and forwards (routes: .native_routes).
        self.native_sockets = data_plane == "native"
        self.ports = ports if ports is not None else PortTally()  # the counters of those sockets (its worker's)
        self.published: dict[str, Publication] = {}
        self.held: set[str] = set()  # track ids not forwarded (a moderator's hold), published or not
        self.connections: dict[str, "EndpointConnection"] = {}
        self.plane = NativeDataPlane() if self.native_sockets else PythonDataPlane()
        self.counters = self.plane.counters
        self.events = PlaneEvents(self.plane, on_event)
        self.recording = RecordingTap(self.events.ask_keyframe,
                                      lambda recording, reason, detail: on_event("recording", "", recording, reason,
                                                                                 detail))
        self._in_plane: set[str] = set()  # endpoints with a connection in the data plane

    def plane_connection(self, endpoint_id: str) -> None:
        """Make sure ``endpoint_id`` has its connection in the data plane (a layer request may
        come before its peer connection: it holds once it subscribes)."""
        if endpoint_id not in self._in_plane:
            self.plane.add_connection(endpoint_id)
            self._in_plane.add(endpoint_id)

    def connection(self, endpoint_id: str) -> "EndpointConnection":
        existing = self.connections.get(endpoint_id)
        if existing is None:
            existing = self.connections[endpoint_id] = EndpointConnection(self, endpoint_id)
        return existing

    def newly_silent(self, timeout: float) -> list[str]:
        """The endpoints whose connection is up but from which nothing at all has come for
        ``timeout`` seconds (browsers send ICE consent checks every few seconds even without
        media; silence that long means their network is gone). Each silence is named once: an
        endpoint is named again only after it was heard from and then went silent again."""
        now = time.monotonic()
        silent = []
        ask_after = min(timeout, PORTS_ASKED_AFTER)
        for endpoint_id, connection in self.connections.items():
            if connection.pc.connectionState != "connected" or now - connection.last_heard <= ask_after:
                continue
            connection.heard_by_ports()
            if now - connection.last_heard > timeout and connection.silence_named != connection.last_heard:
                connection.silence_named = connection.last_heard
                silent.append(endpoint_id)
        return silent

    def set_target(self, endpoint_id: str, track_id: str, rid: str) -> bool:
        """``endpoint_id`` wants layer ``rid`` of ``track_id`` at most; False (and nothing changes)
        when that is not a simulcast track of the room with such a layer."""
        published = self.published.get(track_id)
        if published is None or rid not in (published.rids or ()):
            return False
        self.plane_connection(endpoint_id)
        return self.plane.set_target_layer(endpoint_id, track_id, rid)

    def refresh_routes(self) -> None:
        """Follow each connection's nominated pair with the compiled plane's routes (a restart's new pair)."""
        for connection in self.connections.values():
            if connection.routes is not None:
                connection.routes.refresh()

    async def close_endpoint(self, endpoint_id: str) -> None:
        connection = self.connections.pop(endpoint_id, None)
        try:
            if connection is not None:
                await connection.close()
        finally:
            if endpoint_id in self._in_plane:
                self._in_plane.discard(endpoint_id)
                self.plane.remove_connection(endpoint_id)

    async def close(self) -> None:
        for endpoint_id in list(self.connections):
            await self.close_endpoint(endpoint_id)
        for endpoint_id in list(self._in_plane):
            await self.close_endpoint(endpoint_id)
        self.recording.close()
        self.events.close()


# Seconds without a datagram Python saw after which a connection's compiled sockets are asked what they
# took (forwarded and RTCP done in C never reach Python): silence is then known to within this and the
# silence check's interval.
PORTS_ASKED_AFTER = 2.0


class EndpointConnection:
    """One client's RTCPeerConnection: what it publishes, and the slots it receives on."""

    def __init__(self, room: RoomMedia, endpoint_id: str):
        self.room = room
        self.endpoint_id = endpoint_id
        # max-bundle, as the clients offer it: with aiortc's default (balanced) a second
        # receive slot of a kind is tied to a transport that bundling then discards.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=room.ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        # One certificate for every connection of the daemon (configured, or made once at start).
        compat.use_certificate(self.pc, room.certificate)
        self.published: dict[str, Publication] = {}  # mid -> track published on it
        self.forwarded: dict[str, SlotTrack] = {}  # mid -> the track of the slot sent on it
        self.last_heard = time.monotonic()  # when the client last sent us anything (see heard_by_ports)
        self._port_taken = 0  # media datagrams its compiled sockets had taken when last asked
        self.silence_named: float | None = None  # last_heard when its silence was last reported
        self.socket_path: dict[str, str] | None = None  # who reads its sockets, once connected (logged)
        # Its subscribers' routes in the compiled plane (None: the Python plane, AiortcRoute per subscriber).
        self.routes = ConnectionRoutes(room.plane, endpoint_id) if room.native_sockets else None
        room.plane_connection(endpoint_id)
        self.pc.on("connectionstatechange", self._state_changed)

    def _heard(self) -> None:
        self.last_heard = time.monotonic()

    def heard_by_ports(self) -> None:
        """Count as heard what the compiled module's sockets took since this was last asked without
        telling Python (RTP forwarded and RTCP done in C): asked when Python heard nothing for a while."""
        taken = sum(counted["rtp"] + counted["rtcp"] for counted in port_counters(self.pc))
        if taken != self._port_taken:
            self._port_taken = taken
            self._heard()

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.room.native_sockets:
            self._hand_sockets()
        if self.routes is not None:
            self.routes.refresh()
        self.room.on_event("state", self.endpoint_id, state)

    def _pairs_changed(self) -> None:
        """A check succeeded or a pair was nominated: the compiled module's sockets take media from the
        validated pairs, and its sends go to the nominated one, from the next packet on."""
        sync_ports(self.pc)
        if self.routes is not None:
            self.routes.refresh()

    def _hand_sockets(self) -> None:
        """Let the compiled module read this connection's media socket (direct pairs only); say
        once which path each runs. A failure keeps aiortc's path: never the call's end."""
        try:
            path = take_over(self.pc, self.room.ports, self.room.plane.feedback(self.endpoint_id))
        except Exception as error:
            path = {"0": f"python: {type(error).__name__}: {error}"}
            log.warning("the compiled media socket could not take over", peer=self.endpoint_id, exc_info=True)
        if path != self.socket_path:
            self.socket_path = path
            log.info("media socket path", peer=self.endpoint_id, path=path)

    def _limit_addresses(self) -> None:
        if self.room.udp_ports is not None:
            bind_host_ports(self.pc, self.room.udp_ports)  # first: the address limit wraps it
        if self.room.addresses:
            limit_host_addresses(self.pc, self.room.addresses)

    async def answer(self, offer_sdp: str, sending: dict[str, str], slots: list[SlotPlan],
                     simulcast: dict[str, list[str]] | None = None) -> str:
        """Apply the client's offer and return our answer SDP.

        ``sending``: the client's sending mid -> track id (published here);
        ``slots``: what each receive mid carries after this answer;
        ``simulcast``: sending mid -> the RIDs its offer sends (low to high), for the
        mids that send layers; the answer accepts them.
        """
        offer_sdp = without_unreachable(offer_sdp, self.room.addresses)
        if handle_remote_ice_restart(self.pc, offer_sdp):
            log.debug("remote ICE restart followed", peer=self.endpoint_id)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        receive_at_once(self.pc)
        lighten_receivers(self.pc)
        watch_incoming(self.pc, self._heard)
        keep_consent(self.pc)
        if self.routes is not None:  # an ICE restart's new pair carries the compiled plane's media at once
            follow_valid_pairs(self.pc, self._pairs_changed)
        by_mid = {t.mid: t for t in self.pc.getTransceivers()}
        for transceiver in by_mid.values():
            if transceiver.kind in PREFERRED:
                transceiver.setCodecPreferences(codec_preferences(transceiver.kind))
        layered = self._layered_mids(offer_sdp, by_mid, sending, simulcast or {})
        self._publish(by_mid, sending, layered)
        self._fill_slots(by_mid, slots)
        refuse_unplanned(by_mid, sending, slots)
        self._limit_addresses()
        report_together(self.pc)  # one RTCP timer for the connection, not one per sender and receiver
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        media_skips_stun_check(self.pc)
        # A track keeps what it was made with: a mid first published as one stream gets no
        # layers later (its track could not tell them apart), nor new RIDs.
        accepted = {mid: self.published[mid].rids for mid in layered
                    if mid in self.published and self.published[mid].rids}
        answer = answer_with_layers(self.pc.localDescription.sdp, accepted)
        if self.room.max_video_bitrate is not None:
            videos = {mid for mid, track in self.published.items() if track.kind == "video"}
            answer = answer_with_bandwidth(answer, videos, self.room.max_video_bitrate)
        return answer

    def sockets(self) -> list[tuple[str, int]]:
        """(ip, port) of each UDP socket this connection's ICE opened: its host candidates."""
        return [address for protocol in media_protocols(self.pc) if (address := local_address(protocol)) is not None]

    def _layered_mids(self, offer_sdp: str, by_mid: dict, sending: dict[str, str],
                      simulcast: dict[str, list[str]]) -> dict[str, list[str]]:
        """The mids whose layers the answer accepts (video, with RIDs the offer can tag) -> RIDs."""
        layered: dict[str, list[str]] = {}
        if not simulcast:
            return layered
        offered = offered_extension_ids(offer_sdp)
        for mid, rids in simulcast.items():
            transceiver = by_mid.get(mid)
            if mid not in sending or transceiver is None or transceiver.kind != "video" or not rids:
                log.info("simulcast for a mid that sends no video ignored", peer=self.endpoint_id, mid=mid)
            elif negotiate_stream_ids(transceiver, offered.get(mid, {})):
                layered[mid] = rids
            else:
                log.info("simulcast offered without the rtp-stream-id extension; taken as one layer",
                         peer=self.endpoint_id, mid=mid)
        return layered

    def _publish(self, by_mid: dict, sending: dict[str, str], layered: dict[str, list[str]]) -> None:
        """Add what the client publishes now to the room's data plane, remove what it stopped."""
        room, plane = self.room, self.room.plane
        for mid, track_id in sending.items():
            transceiver = by_mid[mid]
            transceiver.direction = "recvonly"
            if mid in self.published:
                continue
            kind, rids = transceiver.kind, layered.get(mid) if transceiver.kind == "video" else None
            if track_id in room.published:  # the same track id from elsewhere: the newest wins
                self._unpublish(room.published[track_id])
            plane.add_publisher(track_id, kind, rids)
            room.events.publisher(track_id, transceiver.receiver, self.endpoint_id)
            cap = (lambda: room.max_video_bitrate) if kind == "video" else (lambda: None)
            room.recording.publisher(track_id, kind, self.endpoint_id, rids)
            attach_publisher(transceiver.receiver, plane, track_id, bool(rids), cap, held=room.held, tap=room.recording)
            self.published[mid] = room.published[track_id] = Publication(track_id, kind, rids, plane)
        for mid in [m for m in self.published if m not in sending]:
            self._unpublish(self.published.pop(mid))
            by_mid[mid].direction = "inactive"

    def _unpublish(self, publication: Publication) -> None:
        if self.room.published.get(publication.track_id) is publication:
            del self.room.published[publication.track_id]
            self.room.events.publisher_gone(publication.track_id)
            self.room.recording.publisher_gone(publication.track_id)
            self.room.plane.remove_publisher(publication.track_id)

    def _fill_slots(self, by_mid: dict, slots: list[SlotPlan]) -> None:
        """What the client receives: each slot keeps one stream for life, whose source is linked."""
        plane = self.room.plane
        for slot in slots:
            transceiver = by_mid[slot.mid]
            source = slot.track_id if slot.track_id in self.room.published else None
            subscriber_id = f"{self.endpoint_id}/{slot.mid}"
            if slot.mid not in self.forwarded:
                route = AiortcRoute() if self.routes is None else self.routes
                plane.add_subscriber(subscriber_id, self.endpoint_id, transceiver.kind,
                                     route if self.routes is None else self.routes.route)
                if self.routes is not None:
                    self.routes.add(subscriber_id)
                self.forwarded[slot.mid] = attach_subscriber(transceiver.sender, plane, subscriber_id,
                                                             transceiver.kind, route)
            plane.link(subscriber_id, source)
            if source is None:
                transceiver.direction = "inactive"
            else:
                compat.set_stream_id(transceiver.sender, slot.stream_id)
                transceiver.direction = "sendonly"

    async def add_candidate(self, candidate: str, sdp_m_line_index: int) -> None:
        text = candidate.split(":", 1)[1] if candidate.startswith("candidate:") else candidate
        if not text.strip():
            return
        if not reachable(candidate_host(text) or "", self.room.addresses):
            return  # our sockets cannot reach it (loopback against the rest): checks would only go astray
        ufrag = candidate_ufrag(text)
        current = remote_username(self.pc)
        if ufrag is not None and current is not None and ufrag != current:
            return  # a late candidate of an ICE generation the client has restarted away from
        parsed = candidate_from_sdp(text)
        parsed.sdpMLineIndex = sdp_m_line_index
        await self.pc.addIceCandidate(parsed)

    async def close(self) -> None:
        """Stop forwarding and close the peer connection; raises what ``pc.close()`` raised
        (an offer aiortc half-applied), after closing its ICE sockets another way."""
        forwarded, published = dict(self.forwarded), list(self.published.values())
        self.forwarded.clear()
        self.published.clear()
        try:
            for mid, track in forwarded.items():
                self.room.plane.remove_subscriber(f"{self.endpoint_id}/{mid}")
                track.stop()
            for publication in published:
                self._unpublish(publication)
        finally:
            if self.routes is not None:
                self.routes.close()
            try:
                await self.pc.close()
            except Exception:
                await _stop_transports(self.pc)  # its sockets, at least, are released
                raise


async def _stop_transports(pc: RTCPeerConnection) -> None:
    """Stop every DTLS and ICE transport ``pc`` still has, one by one, whatever state
    a half-applied offer left them in (``pc.close()`` stops at the first that fails)."""
    transports = [t.receiver.transport for t in pc.getTransceivers()] + [t.sender.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    for dtls in {id(d): d for d in transports if d is not None}.values():
        for transport in (dtls, getattr(dtls, "transport", None)):
            if transport is None:
                continue
            try:
                await transport.stop()
            except Exception as error:
                log.debug("stopping a transport failed", error=f"{type(error).__name__}: {error}")
