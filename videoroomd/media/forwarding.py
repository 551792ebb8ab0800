"""RTP from one publisher to many subscribers, packet by packet, never decoded: the wiring (asyncio side).

Each datagram of a publisher's RTP is decrypted and parsed as it arrives
(:func:`receive_at_once`); its receiver keeps the statistics for its RTCP
receiver reports, NACKs what the publisher lost, feeds REMB and unwraps
retransmissions, and then hands the packet to its
:class:`.publisher.PublishedTrack` instead of reassembling frames
(:func:`attach_publisher`; nothing is depayloaded or decoded). The published track sends it at once through every
subscriber's :class:`.subscriber.ForwardedTrack`, which rewrites it into the
subscriber's own stream and sends it; :mod:`.gate` decides when a
subscriber may start or switch a source and when a keyframe is asked for.

aiortc's own sender stays in place for RTCP (sender reports, which read the
counters kept by the forwarded track) and for its RTP task, which waits on
an idle track. Each subscriber's NACKs are answered from its history, its
PLI/FIR passed on to the publisher. What this needs of aiortc's, aioice's
and asyncio's internals it gets through :mod:`.aiortc_compat.rtp`.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from aiortc.rtp import (RTCP_PSFB_APP, RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRrPacket, RtcpRtpfbPacket,
                        RtcpSrPacket, unpack_remb_fci)

from .aiortc_compat import rtp as compat

RTCP_PSFB_FIR = 4


class Published(Protocol):
    """What the hooks below ask of a published track (:class:`.publisher.PublishedTrack`);
    a protocol, so that the publisher, which imports this module, is not imported back."""

    layers: Any

    def on_packet(self, packet) -> None: ...

    def log_error(self) -> None: ...


class Forwarded(Protocol):
    """What the hooks below ask of a forwarded track (:class:`.subscriber.ForwardedTrack`)."""

    kind: str
    owner: Any

    def configure(self, parameters) -> None: ...

    def ask_keyframe(self, starting: bool) -> None: ...

    def retransmit(self, sequence_numbers) -> None: ...


class MediaCounters:
    """What a room's forwarding did, since its engine started (read by /metrics from
    another thread: plain integers, each written by the media thread only)."""

    def __init__(self):
        self.packets_received = 0     # RTP packets from publishers (retransmissions included)
        self.packets_forwarded = 0    # RTP packets sent to subscribers
        self.bytes_forwarded = 0      # their payload bytes
        self.packets_retransmitted = 0  # sent again over RTX on a subscriber's NACK
        self.packets_dropped = 0      # not sent: a subscriber's socket was full
        self.keyframe_requests = 0    # PLIs sent to publishers

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class ForwardingBuffer:
    """Stands in for a receiver's jitter buffer: each packet goes on at once, no frame is built."""

    def __init__(self, published: Published):
        self.published = published

    def add(self, packet) -> tuple[bool, None]:
        """(send a PLI?, complete frame): never either; the subscribers' PLIs are passed on instead."""
        self.take(packet)
        return False, None

    def take(self, packet) -> None:
        """Forward one packet; what fails is logged (now and then), the next packet goes on."""
        try:
            self.published.on_packet(packet)
        except Exception:
            self.published.log_error()


class NoDecoder:
    """Stands in for a receiver's decoder queue: its decoder thread reads ``None`` and ends at once."""

    def get(self):
        return None

    def put(self, item) -> None:
        pass


def attach_publisher(receiver, published: Published,
                     max_bitrate: Callable[[], int | None] = lambda: None) -> None:
    """Make ``receiver`` (of one of our own connections) forward each packet instead of decoding:
    kept on its way are only the receiver statistics, NACKs and REMB the publisher relies on
    (REMB at most ``max_bitrate()`` bits/s when that is not None)."""
    buffer = ForwardingBuffer(published)
    compat.hand_packets_to(receiver, buffer, NoDecoder())
    compat.receive_directly(receiver, buffer.take, published.layers, max_bitrate)


def receive_at_once(pc) -> None:
    """Make the RTP that reaches ``pc`` (one of our own connections) go to its published
    tracks as each datagram arrives, not through a queue and a task woken per datagram.
    Call after ``setRemoteDescription`` and before :func:`.aiortc_compat.ice.watch_incoming`."""
    for transceiver in pc.getTransceivers():
        compat.take_rtp_at_once(transceiver.receiver.transport)


def attach_subscriber(sender, track: Forwarded) -> None:
    """Make ``sender`` carry ``track``'s forwarded packets: learn its negotiated parameters,
    answer its subscriber's NACKs from the track's history, pass PLI/FIR on to the publisher
    (of the layer it gets), and tell the track's owner the REMB and loss its subscriber reports."""
    sender.replaceTrack(track)

    async def handle_feedback(packet, handle):
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            track.ask_keyframe(False)
            return
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            track.retransmit(packet.lost)
            return
        owner = track.owner
        if owner is not None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, _ = unpack_remb_fci(packet.fci)
                except ValueError:
                    bitrate = None  # not a REMB: aiortc's handler below ignores it too
                if bitrate is not None:
                    owner.remb_arrived(bitrate)
            elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)) and track.kind == "video":
                ssrc = compat.sender_ssrcs(sender)[0]
                for report in packet.reports:
                    if report.ssrc == ssrc:
                        owner.loss_reported(report.fraction_lost / 256)
        await handle(packet)

    compat.intercept_sender(sender, track.configure, handle_feedback)
