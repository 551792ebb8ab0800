"""RTP from one publisher to many subscribers, packet by packet, never decoded (asyncio side).

A publisher's receiver gets a :class:`ForwardingBuffer` in place of its
jitter buffer: aiortc still decrypts each packet, keeps receiver statistics,
NACKs what the publisher lost and unwraps its retransmissions, and then
hands the packet to its :class:`PublishedTrack` instead of reassembling
frames. The published track sends it at once through every subscriber's
:class:`ForwardedTrack`, which rewrites the header into the subscriber's own
stream (payload type, SSRC, sequence number and timestamp rebased,
negotiated header extensions), encrypts it with the subscriber's SRTP
context and writes it to the subscriber's UDP socket. The payload is the
publisher's, untouched.

Each subscriber keeps the last packets it sent, to answer its NACKs with
retransmissions over RTX, and passes its PLI/FIR on to the publisher. A
subscriber starts a video source at a keyframe (one that arrives while its
connection is still being set up is kept for it); one whose socket cannot
keep up (its send buffer full) drops packets and starts again at the next
keyframe, which is asked of the publisher (RTCP PLI, rate-limited), instead
of growing memory.

aiortc's own sender stays in place for RTCP (sender reports, which read the
counters kept here) and for its RTP task, which waits on an idle track.
What it needs of aiortc's, aioice's and asyncio's internals (the receiver's
jitter buffer, the sender's counters and RTCP, the nominated pair's socket,
written directly) it gets through :mod:`.aiortc_compat.rtp`.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Callable

import pylibsrtp
import structlog
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket
from aiortc.utils import random16, random32

from .aiortc_compat import rtp as compat
from .rtp_packets import abs_send_time, extension_block, ntp_time, one_byte_element, rtp_packet, vp8_starts_keyframe
from .stream_rewrite import StreamRewriter

log = structlog.get_logger("videoroomd.media.forwarding")

KEYFRAME_INTERVAL = 0.5      # seconds before a keyframe request still unanswered is repeated
KEYFRAME_GAP = 0.15          # seconds between two keyframe requests to one publisher at the least
RTCP_PSFB_FIR = 4
HISTORY = 512                # packets a video subscriber can have retransmitted
# Packets one subscriber's NACKs may have sent again, per second after a burst. One NACK of
# 1.4 kB can name thousands of packets: unbounded, a subscriber asking again and again would
# take the media thread (all rooms' forwarding) and the uplink for itself.
RETRANSMIT_RATE = 300.0
RETRANSMIT_BURST = HISTORY
HOLD = 300                   # packets of a keyframe and what follows kept for a subscriber still connecting
ERROR_LOG_INTERVAL = 10.0    # seconds between two logged forwarding errors of one track

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


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


class SendParameters:
    """What one subscriber's stream looks like on the wire, from its negotiated parameters."""

    def __init__(self, parameters, ssrc: int, rtx_ssrc: int):
        codec = parameters.codecs[0]
        self.payload_type = codec.payloadType
        self.clock_rate = codec.clockRate
        self.rtx_payload_type = None
        for other in parameters.codecs:
            if other.mimeType.lower().endswith("/rtx") and other.parameters.get("apt") == codec.payloadType:
                self.rtx_payload_type = other.payloadType
                break
        ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
        mid = parameters.muxId
        self.mid_element = one_byte_element(ids[MID], mid.encode()) if MID in ids and mid else b""
        self.abs_send_time_id = bytes([(ids[ABS_SEND_TIME] << 4) | 2]) if ABS_SEND_TIME in ids else b""
        self.audio_level_id = ids.get(AUDIO_LEVEL)
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        # Without an audio level the extension block has one shape; only the 3 bytes of
        # send time in it change: keep what stands before and after them.
        if self.abs_send_time_id:
            block = extension_block(self.mid_element + self.abs_send_time_id + b"\x00\x00\x00")
            cut = 4 + len(self.mid_element) + 1  # block header, mid element, the send time's id byte
            self._head, self._tail = block[:cut], block[cut + 3:]
        else:
            self._head, self._tail = extension_block(self.mid_element), b""

    def extensions(self, send_time: bytes, audio_level) -> bytes:
        """The header extensions of one packet: mid, abs-send-time and the audio level (if any),
        as negotiated."""
        if audio_level is None or not self.audio_level_id:
            return self._head + send_time + self._tail if self.abs_send_time_id else self._head
        elements = self.mid_element
        if self.abs_send_time_id:
            elements += self.abs_send_time_id + send_time
        voice, level = audio_level
        elements += one_byte_element(self.audio_level_id, bytes([(0x80 if voice else 0) | level]))
        return extension_block(elements)


class ForwardedTrack(MediaStreamTrack):
    """What one receive slot of a subscriber carries: the RTP of its current source, rewritten.

    It lives as long as the slot: when the slot is freed or given another
    track, only its source switches, and the stream goes on with the same
    SSRC and unbroken sequence numbers and timestamps. aiortc's sender holds
    it as its track; ``recv()`` never yields (packets are sent from
    :meth:`forward`), and raises once the slot is stopped, which ends the
    sender's RTP task.
    """

    def __init__(self, kind: str, sender, counters: MediaCounters | None = None):
        super().__init__()
        self.kind = kind
        self.sender = sender
        self.counters = counters or MediaCounters()
        self.source: PublishedTrack | None = None
        self.parameters: SendParameters | None = None
        self._stopped = asyncio.get_running_loop().create_future()
        self._restart = True          # next packet sent starts a new run (a keyframe, for video)
        # Sequence numbers start in the low half: no SRTP rollover surprises at the start.
        self._stream = StreamRewriter(random16() % 32768, random32())
        self._history: list[tuple | None] = [None] * HISTORY if kind == "video" else []
        self._held: list | None = None  # packets from a keyframe on, kept while not connected
        self._new_source = False       # waiting to start a source just switched to (not a skip)
        self._dtls = None
        self._pair = None             # the candidate pair the cached socket and address belong to
        self._socket = None
        self._address = None
        self._rtx_seq = random16() % 32768
        self._retransmit_budget = float(RETRANSMIT_BURST)
        self._retransmit_stamp = time.monotonic()

    # -- the slot --------------------------------------------------------------------------

    def switch(self, source: "PublishedTrack | None") -> None:
        """Carry ``source`` from now on (None: nothing), starting at its next keyframe."""
        if self.source is source:
            return
        if self.source is not None:
            self.source.subscribers.discard(self)
        self.source = source
        self._restart = True
        self._new_source = True
        self._held = None
        if source is not None:
            source.subscribers.add(self)
            source.request_keyframe(starting=True)

    def configure(self, parameters) -> None:
        """The sender's negotiated parameters (aiortc keeps the first ones for good, so do we)."""
        if self.parameters is None:
            self.parameters = SendParameters(parameters, *compat.sender_ssrcs(self.sender))
            self._dtls = self.sender.transport  # bundled by now: one transport for the connection

    async def recv(self):
        await asyncio.shield(self._stopped)
        raise MediaStreamError

    def stop(self) -> None:
        """The slot is gone (its connection closes)."""
        if self.readyState == "live":
            self.switch(None)
            if not self._stopped.done():
                self._stopped.set_result(None)
        super().stop()

    # -- sending ---------------------------------------------------------------------------

    def forward(self, packet, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None:
        """Send one packet of the source to this subscriber (``keyframe``: it starts one;
        ``send_time``: the abs-send-time value, ``ntp``: ``now`` as an NTP timestamp)."""
        if self._restart:
            if not self._writable():
                self._hold(packet, keyframe)  # not connected yet: keep the latest keyframe on
                return
            held, self._held = self._held, None
            if held:
                self._start_run(held[0], now)
                for early in held:
                    self._send_packet(early, now, send_time, ntp)
            elif keyframe:
                self._start_run(packet, now)
            else:
                # Rate-limited; also covers a lost request. Only a new source gets the short wait:
                # a subscriber that keeps falling behind must not make the publisher send keyframes.
                self.source.request_keyframe(starting=self._new_source)
                return
        self._send_packet(packet, now, send_time, ntp)

    def _hold(self, packet, keyframe: bool) -> None:
        """Keep video packets from the latest keyframe on (at most HOLD packets) until the
        subscriber's connection is up, so it starts at once instead of asking again."""
        if self.kind != "video":
            return
        if keyframe:
            self._held = [packet]
        elif self._held is not None:
            if len(self._held) < HOLD:
                self._held.append(packet)
            else:
                self._held = None  # too long to catch up with: wait for the next keyframe

    def _start_run(self, packet, now: float) -> None:
        self._restart = False
        self._new_source = False
        self._stream.start_run(packet.sequence_number, packet.timestamp, now, self.parameters.clock_rate)

    def _send_packet(self, packet, now: float, send_time: bytes, ntp: int) -> None:
        mapped = self._stream.map(packet.sequence_number, packet.timestamp)
        if mapped is None:
            return
        seq, timestamp = mapped
        parameters = self.parameters
        payload = packet.payload
        audio_level = packet.extensions.audio_level if self.kind == "audio" else None
        data = rtp_packet(parameters.payload_type, packet.marker, seq, timestamp, parameters.ssrc,
                          parameters.extensions(send_time, audio_level), payload)
        if self._history:
            self._history[seq % HISTORY] = (seq, timestamp, packet.marker, payload)
        sent = self._send(data)
        # Its sequence number is used up even if it did not go: SRTP may have counted it,
        # and a NACK can still bring it from the history.
        newest = self._stream.sent(seq, timestamp, now)
        if not sent:
            return
        # What aiortc's sender puts in its RTCP sender reports.
        compat.count_sent(self.sender, len(payload), (ntp, timestamp) if newest else None)
        counters = self.counters
        counters.packets_forwarded += 1
        counters.bytes_forwarded += len(payload)

    def retransmit(self, sequence_numbers) -> None:
        """Answer a subscriber's NACK with the packets still in the history, over RTX.

        Without RTX negotiated nothing is sent again (SRTP would refuse a sequence
        number twice); the subscriber's PLI then brings a keyframe.
        """
        parameters = self.parameters
        if parameters is None or parameters.rtx_payload_type is None or not self._history:
            return
        extensions = parameters.extensions(abs_send_time(time.time()).to_bytes(3, "big"), None)
        now = time.monotonic()
        self._retransmit_budget = min(float(RETRANSMIT_BURST),
                                      self._retransmit_budget + (now - self._retransmit_stamp) * RETRANSMIT_RATE)
        self._retransmit_stamp = now
        for seq in sequence_numbers:
            if self._retransmit_budget < 1.0:
                return  # the rest stays lost; a PLI from the subscriber brings a keyframe
            entry = self._history[seq % HISTORY]
            if entry is None or entry[0] != seq:
                continue
            self._retransmit_budget -= 1.0
            _, timestamp, marker, payload = entry
            data = rtp_packet(parameters.rtx_payload_type, marker, self._rtx_seq, timestamp,
                              parameters.rtx_ssrc, extensions, struct.pack("!H", seq) + payload)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            if self._send(data):
                self.counters.packets_retransmitted += 1

    def _route(self):
        """(SRTP session, socket, remote address) while the connection is up, else None.

        The socket is the plain UDP socket of the nominated candidate pair, written
        directly (no asyncio buffer that could grow); for a pair relayed through our
        own TURN allocation it is aioice's TURN transport.
        """
        if self.parameters is None:
            return None
        route = compat.nominated_route(self._dtls)
        if route is None:
            return None
        srtp, pair = route
        if pair is not self._pair:
            socket = compat.pair_socket(pair)
            if socket is None:
                return None
            self._pair, self._socket, self._address = pair, socket, pair.remote_addr
        return srtp, self._socket, self._address

    def _writable(self) -> bool:
        return self._route() is not None

    def _send(self, data: bytes) -> bool:
        """Encrypt and send one RTP packet; False if it could not go."""
        route = self._route()
        if route is None:
            return False
        srtp, socket, address = route
        try:
            socket.sendto(srtp.protect(data), address)
        except BlockingIOError:  # the socket's send buffer is full: this subscriber cannot keep up
            self._fell_behind()
            return False
        except (OSError, pylibsrtp.Error):
            return False
        return True

    def _fell_behind(self) -> None:
        self.counters.packets_dropped += 1
        if self.kind == "video" and not self._restart:
            self._restart = True
            if self.source is not None:
                self.source.request_keyframe()  # the usual wait: it may keep falling behind


class PublishedTrack:
    """One incoming track and its subscribers."""

    def __init__(self, track_id: str, kind: str, receiver, on_audio_level: Callable[[int], None] | None = None,
                 counters: MediaCounters | None = None):
        self.counters = counters or MediaCounters()
        self.track_id = track_id
        self.kind = kind
        self.receiver = receiver
        self.subscribers: set[ForwardedTrack] = set()
        self.packets = 0
        self.ssrc: int | None = None  # the publisher's media SSRC, once seen
        self._last_keyframe_request = 0.0
        self._keyframe_since_request = True  # the last request was answered: a keyframe came after it
        self._tasks: set[asyncio.Task] = set()
        self._on_audio_level = on_audio_level
        self._last_error = 0.0

    def on_packet(self, packet) -> None:
        """One RTP packet of this track arrived (retransmissions already unwrapped)."""
        self.packets += 1
        self.counters.packets_received += 1
        self.ssrc = packet.ssrc
        if self.kind == "audio":
            level = packet.extensions.audio_level
            if level is not None and self._on_audio_level is not None:
                self._on_audio_level(level[1])
            keyframe = True
        else:
            keyframe = vp8_starts_keyframe(packet.payload)
            if keyframe:
                self._keyframe_since_request = True
        if not self.subscribers:
            return
        now = time.time()
        send_time, ntp = abs_send_time(now).to_bytes(3, "big"), ntp_time(now)
        for subscriber in tuple(self.subscribers):
            try:
                subscriber.forward(packet, keyframe, now, send_time, ntp)
            except Exception:
                self._log_error()

    def _log_error(self) -> None:
        now = time.monotonic()
        if now - self._last_error >= ERROR_LOG_INTERVAL:
            self._last_error = now
            log.warning("forwarding a packet failed", track=self.track_id, kind=self.kind, exc_info=True)

    def request_keyframe(self, starting: bool = False) -> None:
        """Ask the publisher for a keyframe (RTCP PLI).

        Rate-limited: at most one request every KEYFRAME_INTERVAL. A subscriber
        ``starting`` on this track that missed the last keyframe (it switched a moment
        too late) may ask again after KEYFRAME_GAP instead, once that keyframe came;
        its own PLIs never get the shorter wait.
        """
        if self.kind != "video" or self.ssrc is None:
            return  # before the first packet: the first frames will come with a keyframe anyway
        now = time.monotonic()
        wait = KEYFRAME_GAP if starting and self._keyframe_since_request else KEYFRAME_INTERVAL
        if now - self._last_keyframe_request < wait:
            return
        self._last_keyframe_request = now
        self._keyframe_since_request = False
        self.counters.keyframe_requests += 1
        task = asyncio.ensure_future(compat.send_pli(self.receiver, self.ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.switch(None)  # the slot stays, empty, until its next negotiation
        for task in self._tasks:
            task.cancel()


class ForwardingBuffer:
    """Stands in for a receiver's jitter buffer: each packet goes on at once, no frame is built."""

    def __init__(self, published: PublishedTrack):
        self.published = published

    def add(self, packet) -> tuple[bool, None]:
        """(send a PLI?, complete frame): never either; the subscribers' PLIs are passed on instead."""
        try:
            self.published.on_packet(packet)
        except Exception:
            self.published._log_error()
        return False, None


class NoDecoder:
    """Stands in for a receiver's decoder queue: its decoder thread reads ``None`` and ends at once."""

    def get(self):
        return None

    def put(self, item) -> None:
        pass


def attach_publisher(receiver, published: PublishedTrack) -> None:
    """Make ``receiver`` (of one of our own connections) forward each packet instead of decoding."""
    compat.hand_packets_to(receiver, ForwardingBuffer(published), NoDecoder())


def attach_subscriber(sender, track: ForwardedTrack) -> None:
    """Make ``sender`` carry ``track``'s forwarded packets: learn its negotiated parameters,
    answer its subscriber's NACKs from the track's history, and pass PLI/FIR on to the publisher."""
    sender.replaceTrack(track)

    async def handle_feedback(packet, handle):
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            if track.source is not None:
                track.source.request_keyframe()
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            track.retransmit(packet.lost)
        else:
            await handle(packet)

    compat.intercept_sender(sender, track.configure, handle_feedback)
