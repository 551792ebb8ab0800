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

from .aiortc_compat import rtp as compat
from .aiortc_compat.ice import bind_host_ports, limit_host_addresses, media_skips_stun_check, remote_username, watch_incoming
from .aiortc_compat.ice_restart import handle_remote_ice_restart
from .aiortc_compat.rtcp import report_together
from .candidates import candidate_host, reachable, without_unreachable
from .forwarding import MediaCounters, attach_publisher, attach_subscriber, receive_at_once
from .publisher import PublishedTrack
from .subscriber import ForwardedTrack
from .vad import VoiceActivity

log = structlog.get_logger("videoroomd.media.rtc")

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


def candidate_ufrag(candidate: str) -> str | None:
    """The ``ufrag`` extension attribute of an SDP candidate line, if it has one."""
    words = candidate.split()
    for name, value in zip(words[8::2], words[9::2]):
        if name == "ufrag":
            return value
    return None


class RoomMedia:
    """The published tracks of one room, by track id, and the settings every connection uses."""

    def __init__(self, ice_servers: list[RTCIceServer], certificate: RTCCertificate, addresses: tuple[str, ...],
                 on_event: Callable[..., None], udp_ports: tuple[int, int] | None = None):
        self.ice_servers = ice_servers
        self.udp_ports = udp_ports  # (FIRST, LAST) the host candidates are bound in; None: any port
        self.certificate = certificate
        self.addresses = addresses
        self.on_event = on_event  # (kind, endpoint_id, *args) -> None; called on the media thread
        self.published: dict[str, PublishedTrack] = {}
        self.connections: dict[str, "EndpointConnection"] = {}
        self.counters = MediaCounters()

    def connection(self, endpoint_id: str) -> "EndpointConnection":
        existing = self.connections.get(endpoint_id)
        if existing is None:
            existing = self.connections[endpoint_id] = EndpointConnection(self, endpoint_id)
        return existing

    def silent(self, timeout: float) -> list[str]:
        """The endpoints whose connection is up but from which nothing at all has come
        for ``timeout`` seconds (browsers send ICE consent checks every few seconds even
        without media; silence that long means their network is gone)."""
        now = time.monotonic()
        return [endpoint_id for endpoint_id, connection in self.connections.items()
                if connection.pc.connectionState == "connected" and now - connection.last_heard > timeout]

    async def close_endpoint(self, endpoint_id: str) -> None:
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

    async def answer(self, offer_sdp: str, sending: dict[str, str], slots: list[SlotPlan]) -> str:
        """Apply the client's offer and return our answer SDP.

        ``sending``: the client's sending mid -> track id (published here);
        ``slots``: what each receive mid carries after this answer.
        """
        offer_sdp = without_unreachable(offer_sdp, self.room.addresses)
        if handle_remote_ice_restart(self.pc, offer_sdp):
            log.debug("remote ICE restart followed", peer=self.endpoint_id)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        receive_at_once(self.pc)
        watch_incoming(self.pc, self._heard)
        by_mid = {t.mid: t for t in self.pc.getTransceivers()}
        for transceiver in by_mid.values():
            if transceiver.kind in PREFERRED:
                transceiver.setCodecPreferences(codec_preferences(transceiver.kind))
        # What the client publishes.
        for mid, track_id in sending.items():
            transceiver = by_mid[mid]
            transceiver.direction = "recvonly"
            if mid not in self.published:
                published = PublishedTrack(track_id, transceiver.kind, transceiver.receiver,
                                           self._level_reporter(track_id) if transceiver.kind == "audio" else None,
                                           self.room.counters)
                attach_publisher(transceiver.receiver, published)
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
                forwarded = ForwardedTrack(transceiver.kind, transceiver.sender, self.room.counters)
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
        return self.pc.localDescription.sdp

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
