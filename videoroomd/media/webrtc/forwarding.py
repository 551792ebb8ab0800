"""The aiortc side of the data plane: what feeds it packets and RTCP, and what applies its events (asyncio side).

Each datagram of a publisher's RTP is decrypted and parsed as it arrives
(:func:`receive_at_once`); its receiver keeps the statistics for its RTCP
receiver reports, NACKs what the publisher lost, feeds REMB and unwraps
retransmissions, and then hands the packet to the room's data plane
(:mod:`.dataplane`) instead of reassembling frames (:func:`attach_publisher`;
nothing is depayloaded or decoded). The plane forwards it to its
subscribers at once.

aiortc's own sender stays in place for RTCP (sender reports, which read
what the plane sent: :func:`.compat.rtp.report_sent`) and for its
RTP task, which waits on an idle track (:class:`SlotTrack`). Each
subscriber's NACKs, PLI/FIR, REMB and loss go to the plane
(:func:`attach_subscriber`), and :class:`PlaneEvents` applies what the
plane asks for: a PLI to a publisher, a layer, bandwidth or voice event
for the room. What this needs of aiortc's, aioice's and asyncio's
internals it gets through :mod:`.compat.rtp`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Container

import structlog
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import (RTCP_PSFB_APP, RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRrPacket, RtcpRtpfbPacket,
                        RtcpSrPacket, unpack_remb_fci)

from .compat import rtp as compat
from .compat.native_port import ported_route
from .compat.sender_reports import watch_sender_reports
from ..dataplane.interface import Bandwidth, DataPlane, KeyframeNeeded, LayerChanged, StreamParams, UnknownId, VoiceChanged

__all__ = ["AiortcRoute", "PlaneEvents", "SlotTrack", "attach_publisher", "attach_subscriber",
           "receive_at_once", "stream_params"]

log = structlog.get_logger("videoroomd.media.forwarding")

RTCP_PSFB_FIR = 4
ERROR_LOG_INTERVAL = 10.0  # seconds between two logged receive errors of one publisher
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def stream_params(parameters, ssrc: int, rtx_ssrc: int) -> StreamParams:
    """A subscriber's stream from aiortc's negotiated ``RTCRtpParameters`` and its sender's SSRCs."""
    codec = parameters.codecs[0]
    rtx_payload_type = None
    for other in parameters.codecs:
        if other.mimeType.lower().endswith("/rtx") and other.parameters.get("apt") == codec.payloadType:
            rtx_payload_type = other.payloadType
            break
    ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
    return StreamParams(payload_type=codec.payloadType, clock_rate=codec.clockRate, ssrc=ssrc, rtx_ssrc=rtx_ssrc,
                        rtx_payload_type=rtx_payload_type, mid=parameters.muxId or None, mid_id=ids.get(MID),
                        abs_send_time_id=ids.get(ABS_SEND_TIME), audio_level_id=ids.get(AUDIO_LEVEL))


class AiortcRoute:
    """A subscriber's route through its connection: the DTLS transport's SRTP session and the
    socket of the nominated ICE pair, while connected (:class:`.dataplane.SendRoute`)."""

    def __init__(self):
        self._dtls = None
        self._pair = None             # the candidate pair the cached socket and address belong to
        self._socket = None
        self._address = None

    def bind(self, dtls) -> None:
        """The connection's DTLS transport (bundled by the time the sender starts)."""
        self._dtls = dtls

    def current(self) -> tuple[Any, Any, Any] | None:
        """(SRTP session, socket, remote address) while the connection is up, else None.

        The socket is the plain UDP socket of the nominated candidate pair, written
        directly (no asyncio buffer that could grow); for a pair relayed through our
        own TURN allocation it is aioice's TURN transport.
        """
        if self._dtls is None:
            return None
        route = compat.nominated_route(self._dtls)
        if route is None:
            return None
        srtp, pair = route
        ported = ported_route(pair)  # the compiled module reads and writes this pair's socket
        if ported is not None:
            return ported
        if pair is not self._pair:
            socket = compat.pair_socket(pair)
            if socket is None:
                return None
            self._pair, self._socket, self._address = pair, socket, pair.remote_addr
        return srtp, self._socket, self._address


class ForwardingBuffer:
    """Stands in for a receiver's jitter buffer: each packet goes to the plane at once, no frame is built."""

    def __init__(self, plane: DataPlane, publisher_id: str, held: Container[str] = frozenset(),
                 record: Callable[[str, Any], None] | None = None):
        """``held``: the track ids not to forward now (a moderator muted or stopped them; not recorded
        either); ``record``: the room's recording tap, shown each packet before it is forwarded."""
        self.publisher_id = publisher_id
        self._receive = plane.receive
        self._held = held
        self._record = record
        self._last_error = 0.0

    def add(self, packet) -> tuple[bool, None]:
        """(send a PLI?, complete frame): never either; the subscribers' PLIs are passed on instead."""
        self.take(packet)
        return False, None

    def take(self, packet) -> None:
        """Forward one packet; what fails is logged (now and then), the next packet goes on."""
        if self.publisher_id in self._held:
            return
        if self._record is not None:
            self._record(self.publisher_id, packet)  # never raises; reads the packet before any rewrite
        try:
            self._receive(self.publisher_id, packet)
        except UnknownId:
            pass  # no longer published: its receiver still hears what was on its way
        except Exception:
            now = time.monotonic()
            if now - self._last_error >= ERROR_LOG_INTERVAL:
                self._last_error = now
                log.warning("forwarding a packet failed", track=self.publisher_id, exc_info=True)


class NativeTarget:
    """Where a Port may hand a publisher's packets in C (:mod:`.compat.native_receive`): the
    compiled plane, while the track is not held (a held track reads each packet here). A recorded
    track stays in C: the Port makes each packet a track-file record, given per batch to :meth:`record_batch`."""

    def __init__(self, plane: DataPlane, publisher_id: str, held: Container[str], tap):
        self._find = getattr(plane, "native_target", None)  # the compiled plane's alone
        self._publisher_id, self._held, self._tap = publisher_id, held, tap

    def __call__(self, ssrc: int) -> tuple[Any, int] | None:
        """(the core, the publisher's index) when ``ssrc``'s packets may be forwarded in C now, else None."""
        return self._find(self._publisher_id, ssrc) if self._find is not None and self.still() else None

    def still(self) -> bool:
        """Whether packets forwarded in C still skip nothing this side does."""
        return self._publisher_id not in self._held

    def recording_start(self) -> float | None:
        """The start (wall time) of this track's file in the room's running recording, the file made
        now if it was not; None while nothing records the track."""
        return self._tap.track_start(self._publisher_id) if self._tap is not None else None

    def record_batch(self, ssrc: int, records: bytes, count: int, keyframe: int, start_us: int) -> None:
        """``count`` track-file records of ``ssrc``'s packets the Port forwarded in C (``Port.take_records``)."""
        if self._tap is not None:
            self._tap.records(self._publisher_id, ssrc, records, count, keyframe, start_us)


class NoDecoder:
    """Stands in for a receiver's decoder queue: its decoder thread reads ``None`` and ends at once."""

    def get(self):
        return None

    def put(self, item) -> None:
        pass


class PlaneLayers:
    """What the receive path learns of a simulcast publisher's layers, told to the plane."""

    def __init__(self, plane: DataPlane, publisher_id: str, tap=None):
        self.plane = plane
        self.publisher_id = publisher_id
        self.tap = tap  # the room's recording tap, which keeps the highest layer

    def learn(self, ssrc: int, rid: str | None, repaired_rid: str | None) -> None:
        self.plane.learn_ssrc(self.publisher_id, ssrc, rid, repaired_rid)
        if self.tap is not None:
            self.tap.learn(self.publisher_id, ssrc, rid, repaired_rid)

    def repaired_ssrc(self, rtx_ssrc: int) -> int | None:
        return self.plane.repaired_ssrc(self.publisher_id, rtx_ssrc)


def attach_publisher(receiver, plane: DataPlane, publisher_id: str, layered: bool = False,
                     max_bitrate: Callable[[], int | None] = lambda: None, held: Container[str] = frozenset(),
                     tap=None) -> None:
    """Make ``receiver`` (of one of our own connections) hand each packet to ``plane`` as
    ``publisher_id``'s (added to it already) instead of decoding: kept on its way are only the
    receiver statistics, NACKs and REMB the publisher relies on (REMB at most ``max_bitrate()``
    bits/s when that is not None). ``layered``: a simulcast publisher (one SSRC per layer); ``held``:
    the track ids whose packets are dropped here for now; ``tap``: the room's
    :class:`.recording_tap.RecordingTap`, shown each packet and sender report."""
    buffer = ForwardingBuffer(plane, publisher_id, held, tap.packet if tap is not None else None)
    compat.hand_packets_to(receiver, buffer, NoDecoder())
    compat.receive_directly(receiver, buffer.take, PlaneLayers(plane, publisher_id, tap) if layered else None,
                            max_bitrate)
    receiver._videoroomd_target = NativeTarget(plane, publisher_id, held, tap)
    if tap is not None:
        watch_sender_reports(receiver, lambda ssrc, ntp, rtp: tap.sender_report(publisher_id, ssrc, ntp, rtp))


def receive_at_once(pc) -> None:
    """Make the RTP that reaches ``pc`` (one of our own connections) go to its published
    tracks as each datagram arrives, not through a queue and a task woken per datagram.
    Call after ``setRemoteDescription`` and before :func:`.compat.ice.watch_incoming`."""
    for transceiver in pc.getTransceivers():
        compat.take_rtp_at_once(transceiver.receiver.transport)


class SlotTrack(MediaStreamTrack):
    """What aiortc's sender of a receive slot holds as its track: ``recv()`` never yields (the
    plane sends the slot's packets), and raises once the slot is stopped, which ends the
    sender's RTP task."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.get_running_loop().create_future()

    async def recv(self):
        await asyncio.shield(self._stopped)
        raise MediaStreamError

    def stop(self) -> None:
        if not self._stopped.done():
            self._stopped.set_result(None)
        super().stop()


def attach_subscriber(sender, plane: DataPlane, subscriber_id: str, kind: str, route: AiortcRoute) -> SlotTrack:
    """Make ``sender`` carry what ``plane`` sends for ``subscriber_id`` (added to it with
    ``route``): tell the plane the negotiated stream, the subscriber's NACKs, PLI/FIR, REMB and
    loss, and make its sender reports count what the plane sent. Returns the sender's track."""
    track = SlotTrack(kind)
    sender.replaceTrack(track)
    compat.report_sent(sender, lambda: plane.sent_stats(subscriber_id))

    def configure(parameters) -> None:
        route.bind(sender.transport)
        try:
            plane.set_stream(subscriber_id, stream_params(parameters, *compat.sender_ssrcs(sender)))
        except UnknownId:
            pass  # the slot went while its sender started

    async def handle_feedback(packet, handle):
        try:
            taken = _feedback(plane, subscriber_id, kind, compat.sender_ssrcs(sender)[0], packet)
        except UnknownId:
            taken = False  # the slot is gone; aiortc's handler still reads what is its own
        if not taken:
            await handle(packet)

    compat.intercept_sender(sender, configure, handle_feedback)
    return track


class _RembOnce:
    """The REMB packet last taken. aiortc hands one REMB to each sender whose SSRC it names (a
    browser names every video it receives): the estimate is the client's, one for all its
    subscribers, so each packet is taken once. Kept as a reference, so that no later packet can
    be this one: a packet's parse is its connection's own."""

    last: Any = None


def _feedback(plane: DataPlane, subscriber_id: str, kind: str, ssrc: int, packet) -> bool:
    """Tell ``plane`` what one RTCP packet of a subscriber says; True when aiortc's sender is
    not to see it (PLI, FIR and NACK are the plane's alone)."""
    if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
        plane.keyframe_wanted(subscriber_id)
        return True
    if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
        plane.nack(subscriber_id, packet.lost)
        return True
    if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
        if packet is _RembOnce.last:
            return True  # the same REMB, handed to the next sender it names: the client's estimate is taken
        try:
            bitrate, _ = unpack_remb_fci(packet.fci)
        except ValueError:
            return False  # not a REMB: aiortc's handler ignores it too
        plane.remb(subscriber_id, bitrate)  # raises UnknownId for a slot gone: the next sender takes it
        _RembOnce.last = packet
        return True  # aiortc's sender only logs it (it has no encoder to tell)
    elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)) and kind == "video":
        for report in packet.reports:
            if report.ssrc == ssrc:
                plane.loss(subscriber_id, report.fraction_lost / 256)
    return False


class PlaneEvents:
    """Applies a room's data-plane events, drained in batches on the loop: PLIs to publishers,
    layer and bandwidth changes and voice activity to the room (``on_event``)."""

    def __init__(self, plane: DataPlane, on_event: Callable[..., None]):
        self.plane = plane
        self.on_event = on_event  # (kind, endpoint_id, *args) -> None
        self._publishers: dict[str, tuple[Any, str]] = {}  # id -> (its receiver, its endpoint)
        self._tasks: set[asyncio.Future] = set()
        self._scheduled = False
        plane.on_events(self._wake)

    def publisher(self, publisher_id: str, receiver, endpoint_id: str) -> None:
        """Where ``publisher_id``'s PLIs go, and whose voice it is."""
        self._publishers[publisher_id] = (receiver, endpoint_id)

    def publisher_gone(self, publisher_id: str) -> None:
        self._publishers.pop(publisher_id, None)

    def ask_keyframe(self, publisher_id: str, ssrc: int) -> None:
        """Send ``publisher_id``'s publisher a PLI for ``ssrc`` (nothing if it is gone)."""
        known = self._publishers.get(publisher_id)
        if known is not None:
            task = asyncio.ensure_future(compat.send_pli(known[0], ssrc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _wake(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.apply)

    def apply(self) -> None:
        """Apply every event queued by now."""
        self._scheduled = False
        for event in self.plane.drain_events():
            try:
                self._apply(event)
            except Exception:
                log.warning("a data-plane event could not be applied", event=repr(event), exc_info=True)

    def _apply(self, event) -> None:
        if isinstance(event, KeyframeNeeded):
            known = self._publishers.get(event.publisher_id)
            if known is not None:
                task = asyncio.ensure_future(compat.send_pli(known[0], event.ssrc))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif isinstance(event, VoiceChanged):
            known = self._publishers.get(event.publisher_id)
            if known is not None:
                self.on_event("vad", known[1], event.publisher_id, event.speaking)
        elif isinstance(event, LayerChanged):
            self.on_event("layer", event.connection_id, event.publisher_id, event.rid, event.reason.value)
        elif isinstance(event, Bandwidth):
            self.on_event("bandwidth", event.connection_id, event.bps)

    def close(self) -> None:
        self.plane.on_events(None)
        for task in self._tasks:
            task.cancel()
