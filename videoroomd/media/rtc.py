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

from ..sdp.candidates import candidate_host, candidate_ufrag
from ..sdp.sections import answer_with_bandwidth, answer_with_layers, offered_extension_ids
from .aiortc_compat import rtp as compat
from .aiortc_compat.ice import (bind_host_ports, keep_consent, limit_host_addresses, local_address, media_protocols,
                                media_skips_stun_check, remote_username, watch_incoming)
from .aiortc_compat.ice_restart import handle_remote_ice_restart
from .aiortc_compat.rtcp import report_together
from .aiortc_compat.simulcast import negotiate_stream_ids
from .candidates import reachable, without_unreachable
from .forwarding import MediaCounters, attach_publisher, attach_subscriber, receive_at_once
from .gate import BandwidthEstimate, Reason
from .publisher import PublishedTrack
from .subscriber import ForwardedTrack
from .vad import VoiceActivity

log = structlog.get_logger("videoroomd.media.rtc")

SEND_RATE_WINDOW = 1.0  # seconds over which what is sent to a client is measured, at the least

# Forwarding needs one codec per kind across publishers and subscribers.
PREFERRED = {"audio": "audio/opus", "video": "video/VP8"}


@dataclass(frozen=True)
class SlotPlan:
    mid: str
    track_id: str | None  # None: inactive
    stream_id: str


def codec_preferences(kind: str) -> list:
    capabilities = RTCRtpSender.getCapabilities(kind)
    wanted = PREFERRED[kind].lower()
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() == wanted]
    if kind == "video":
        codecs += [c for c in capabilities.codecs if c.mimeType.lower() == "video/rtx"]
    return codecs


class RoomMedia:
    """The published tracks of one room, by track id, and the settings every connection uses."""

    def __init__(self, ice_servers: list[RTCIceServer], certificate: RTCCertificate, addresses: tuple[str, ...],
                 on_event: Callable[..., None], udp_ports: tuple[int, int] | None = None,
                 max_video_bitrate: int | None = None):
        self.ice_servers = ice_servers
        self.udp_ports = udp_ports  # (FIRST, LAST) the host candidates are bound in; None: any port
        self.certificate = certificate
        self.addresses = addresses
        self.on_event = on_event  # (kind, endpoint_id, *args) -> None; called on the media thread
        self.max_video_bitrate = max_video_bitrate  # bits/s the REMB to each video publisher allows at most
        self.published: dict[str, PublishedTrack] = {}
        self.connections: dict[str, "EndpointConnection"] = {}
        # endpoint -> {simulcast track id -> the highest layer (RID) it wants of it}; kept here,
        # not on the connection, so that a request made before the endpoint's answer holds.
        self.layer_targets: dict[str, dict[str, str]] = {}
        self.counters = MediaCounters()

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
        for endpoint_id, connection in self.connections.items():
            if (connection.pc.connectionState == "connected" and now - connection.last_heard > timeout
                    and connection.silence_named != connection.last_heard):
                connection.silence_named = connection.last_heard
                silent.append(endpoint_id)
        return silent

    def set_target(self, endpoint_id: str, track_id: str, rid: str) -> bool:
        """``endpoint_id`` wants layer ``rid`` of ``track_id`` at most; False (and nothing changes)
        when that is not a simulcast track of the room with such a layer."""
        source = self.published.get(track_id)
        layer = source.layer_index(rid) if source is not None else None
        if layer is None:
            return False
        targets = self.layer_targets.setdefault(endpoint_id, {})
        for gone in [t for t in targets if t not in self.published]:
            del targets[gone]  # bounded by the room's tracks, however many requests come
        targets[track_id] = rid
        connection = self.connections.get(endpoint_id)
        if connection is not None:
            for forwarded in connection.forwarded.values():
                if forwarded.source is source:
                    forwarded.set_target(layer)
        return True

    async def close_endpoint(self, endpoint_id: str) -> None:
        self.layer_targets.pop(endpoint_id, None)
        connection = self.connections.pop(endpoint_id, None)
        if connection is not None:
            await connection.close()

    async def close(self) -> None:
        for endpoint_id in list(self.connections):
            await self.close_endpoint(endpoint_id)


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
        self.published: dict[str, PublishedTrack] = {}  # mid -> track published on it
        self.forwarded: dict[str, ForwardedTrack] = {}  # mid -> track sent on it
        self.last_heard = time.monotonic()  # when the client last sent us anything
        self.silence_named: float | None = None  # last_heard when its silence was last reported
        self.bandwidth = BandwidthEstimate()  # what can be sent to this client
        self._send_sample: tuple[float | None, int] = (None, 0)  # (when, octets sent by then)
        self._send_rate: float | None = None
        self.pc.on("connectionstatechange", self._state_changed)

    def _heard(self) -> None:
        self.last_heard = time.monotonic()

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        self.room.on_event("state", self.endpoint_id, state)

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
        watch_incoming(self.pc, self._heard)
        keep_consent(self.pc)
        by_mid = {t.mid: t for t in self.pc.getTransceivers()}
        for transceiver in by_mid.values():
            if transceiver.kind in PREFERRED:
                transceiver.setCodecPreferences(codec_preferences(transceiver.kind))
        # Simulcast: the mids whose layers the answer accepts (video, with RIDs the offer can tag).
        layered: dict[str, list[str]] = {}
        if simulcast:
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
        # What the client publishes.
        for mid, track_id in sending.items():
            transceiver = by_mid[mid]
            transceiver.direction = "recvonly"
            if mid not in self.published:
                published = PublishedTrack(track_id, transceiver.kind, transceiver.receiver,
                                           self._level_reporter(track_id) if transceiver.kind == "audio" else None,
                                           self.room.counters, layered.get(mid))
                cap = (lambda: self.room.max_video_bitrate) if transceiver.kind == "video" else (lambda: None)
                attach_publisher(transceiver.receiver, published, cap)
                self.published[mid] = published
                self.room.published[track_id] = published
        for mid in [m for m in self.published if m not in sending]:
            gone = self.published.pop(mid)
            self.room.published.pop(gone.track_id, None)
            gone.close()
            by_mid[mid].direction = "inactive"
        # What the client receives: each slot keeps one track for life, whose source switches.
        for slot in slots:
            transceiver = by_mid[slot.mid]
            source = self.room.published.get(slot.track_id) if slot.track_id else None
            forwarded = self.forwarded.get(slot.mid)
            if forwarded is None:
                forwarded = ForwardedTrack(transceiver.kind, transceiver.sender, self.room.counters, self)
                self.forwarded[slot.mid] = forwarded
                attach_subscriber(transceiver.sender, forwarded)
            forwarded.switch(source)
            if source is None:
                transceiver.direction = "inactive"
            else:
                compat.set_stream_id(transceiver.sender, slot.stream_id)
                transceiver.direction = "sendonly"
        self._limit_addresses()
        report_together(self.pc)  # one RTCP timer for the connection, not one per sender and receiver
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        media_skips_stun_check(self.pc)
        # A track keeps what it was made with: a mid first published as one stream gets no
        # layers later (its track could not tell them apart), nor new RIDs.
        accepted = {mid: self.published[mid].layers.rids for mid in layered
                    if mid in self.published and self.published[mid].layers is not None}
        answer = answer_with_layers(self.pc.localDescription.sdp, accepted)
        if self.room.max_video_bitrate is not None:
            videos = {mid for mid, track in self.published.items() if track.kind == "video"}
            answer = answer_with_bandwidth(answer, videos, self.room.max_video_bitrate)
        return answer

    def sockets(self) -> list[tuple[str, int]]:
        """(ip, port) of each UDP socket this connection's ICE opened: its host candidates."""
        return [address for protocol in media_protocols(self.pc) if (address := local_address(protocol)) is not None]

    # -- as a subscriber of simulcast tracks (asked by its forwarded tracks) -----------------

    def target_for(self, track_id: str) -> str | None:
        """The highest layer (RID) this client asked for of ``track_id``, None when it did not."""
        return self.room.layer_targets.get(self.endpoint_id, {}).get(track_id)

    def layer_budget(self) -> int | None:
        """Each video slot's share of what can be sent to this client (bits/s), None when unknown."""
        estimate = self.bandwidth.estimate()
        if estimate is None:
            return None
        videos = sum(1 for f in self.forwarded.values() if f.kind == "video" and f.source is not None)
        return estimate // max(1, videos)

    def estimate(self) -> int | None:
        """What can be sent to this client (bits/s), None before its first REMB."""
        return self.bandwidth.estimate()

    def congested(self, now: float) -> bool:
        return self.bandwidth.congested(now)

    def layer_changed(self, track_id: str, rid: str, reason: Reason) -> None:
        self.room.on_event("layer", self.endpoint_id, track_id, rid, reason.value)

    def remb_arrived(self, bps: int) -> None:
        now = time.monotonic()
        self.bandwidth.remb_arrived(bps, now, self._sending_rate(now))
        self._report_bandwidth(now)

    def _sending_rate(self, now: float) -> float | None:
        """Bits/s sent to this client lately (payload, from the senders' own counts), None
        until measured over SEND_RATE_WINDOW."""
        octets = sum(compat.sent_octets(f.sender) for f in self.forwarded.values())
        stamp, counted = self._send_sample
        if stamp is None:
            self._send_sample = (now, octets)
        elif now - stamp >= SEND_RATE_WINDOW:
            self._send_rate = max(0, octets - counted) * 8 / (now - stamp)
            self._send_sample = (now, octets)
        return self._send_rate

    def loss_reported(self, fraction: float) -> None:
        now = time.monotonic()
        self.bandwidth.loss_reported(fraction, now)
        self._report_bandwidth(now)

    def _report_bandwidth(self, now: float) -> None:
        value = self.bandwidth.report(now)
        if value is not None:
            self.room.on_event("bandwidth", self.endpoint_id, value)

    def _level_reporter(self, track_id: str) -> Callable[[int], None]:
        detector = VoiceActivity()

        def report(level: int) -> None:
            change = detector.feed(level, time.monotonic())
            if change is not None:
                self.room.on_event("vad", self.endpoint_id, track_id, change)

        return report

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
        for published in self.published.values():
            self.room.published.pop(published.track_id, None)
        forwarded, published = list(self.forwarded.values()), list(self.published.values())
        self.forwarded.clear()
        self.published.clear()
        try:
            for track in forwarded:
                track.stop()
            for track in published:
                track.close()
        finally:
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
