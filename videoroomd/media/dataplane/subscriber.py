"""One subscriber's stream in the Python data plane: the RTP of its current source, rewritten, sent, and sent again on NACK.

Each packet its feed (:mod:`.feeds`) hands it is rewritten into the
subscriber's own stream (payload type, SSRC, sequence number and
timestamp rebased by :class:`.stream_rewrite.StreamRewriter`, negotiated
header extensions), encrypted with the SRTP session of its route and
written to the route's socket. The payload is the publisher's, untouched,
but for the VP8 picture ids of a simulcast source
(:class:`.vp8_rewrite.Vp8Rewriter`).

It keeps the last packets it sent, to answer NACKs with retransmissions
over RTX within a budget. When it may start a source, and what happens
while it is still connecting or after its full socket dropped a packet, is
decided by :class:`.gate.StartGate`.
"""

from __future__ import annotations

import struct
import time
from itertools import islice
from typing import TYPE_CHECKING, Callable

import pylibsrtp

from .interface import FellBehind, LayerChanged, MediaCounters, RewriteStart, SendRoute, SentStats, StreamParams
from .feeds import LayeredFeed, PlainFeed
from .gate import Reason, Start, StartGate
from .rtp_packets import abs_send_time, extension_block, one_byte_element, rtp_packet
from .stream_rewrite import StreamRewriter
from .vp8_rewrite import Vp8Rewriter

if TYPE_CHECKING:
    from .connection import Connection
    from .publisher import Source

HISTORY = 512                # packets a video subscriber can have retransmitted
# Packets one subscriber's NACKs may have sent again, per second after a burst. One NACK of
# 1.4 kB can name thousands of packets: unbounded, a subscriber asking again and again would
# take the media thread (all rooms' forwarding) and the uplink for itself.
RETRANSMIT_RATE = 300.0
RETRANSMIT_BURST = HISTORY
RETRANSMIT_SHARE = 0.25      # of a simulcast subscriber's estimated bandwidth its retransmissions may take
RETRANSMIT_RATE_MIN = 20.0   # packets a second it may always have sent again


class SendParameters:
    """What one subscriber's stream looks like on the wire, ready to write."""

    def __init__(self, params: StreamParams):
        self.payload_type = params.payload_type
        self.clock_rate = params.clock_rate
        self.rtx_payload_type = params.rtx_payload_type
        self.ssrc = params.ssrc
        self.rtx_ssrc = params.rtx_ssrc
        mid = params.mid
        self.mid_element = one_byte_element(params.mid_id, mid.encode()) if params.mid_id and mid else b""
        self.abs_send_time_id = bytes([(params.abs_send_time_id << 4) | 2]) if params.abs_send_time_id else b""
        self.audio_level_id = params.audio_level_id
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


class Subscriber:
    """One receive slot: a stream with its own SSRC, sequence numbers and timestamps for life,
    whatever source it carries (:meth:`link`)."""

    def __init__(self, subscriber_id: str, connection: Connection, kind: str, route: SendRoute,
                 counters: MediaCounters, emit: Callable[[object], None], start: RewriteStart):
        self.subscriber_id = subscriber_id
        self.connection = connection
        self.kind = kind
        self.route = route
        self.counters = counters
        self.emit = emit
        self.feed: PlainFeed | LayeredFeed | None = None
        self.layered = False          # the feed is layered: picture ids are rewritten
        self.vp8: Vp8Rewriter | None = None  # made at the first layered source, kept: ids go on across sources
        self.parameters: SendParameters | None = None
        self.sent = SentStats()
        self.gate = StartGate(kind)
        self._stream = StreamRewriter(start.seq, start.timestamp)
        self._history: list[tuple | None] = [None] * HISTORY if kind == "video" else []
        self._rtx_seq = start.rtx_seq
        self._retransmit_budget = float(RETRANSMIT_BURST)
        self._retransmit_stamp = time.monotonic()
        # Of a simulcast source: the first sequence number of the current run (a slow subscriber's
        # NACKs of the layer it left would only add to what its link cannot carry).
        self._run_first_seq: int | None = None

    @property
    def source(self) -> Source | None:
        return self.feed.source if self.feed is not None else None

    def link(self, source: Source | None) -> None:
        """Carry ``source`` from now on (None: nothing), starting at its next keyframe."""
        if self.source is source:
            return
        if self.feed is not None:
            self.feed.source.subscribers.discard(self.feed)
        self.gate.switched()
        self.feed, self.layered = None, False
        if source is None:
            return
        if source.layered:
            if self.vp8 is None:
                self.vp8 = Vp8Rewriter()
            rid = self.connection.targets.get(source.publisher_id)
            feed: PlainFeed | LayeredFeed = LayeredFeed(self, source, None if rid is None else source.layer_index(rid))
        else:
            feed = PlainFeed(self, source)
        self.feed, self.layered = feed, feed.layered
        source.subscribers.add(feed)
        feed.start()

    def configure(self, params: StreamParams) -> None:
        """The negotiated stream (the first one is kept for good, as aiortc's sender does)."""
        if self.parameters is None:
            self.parameters = SendParameters(params)

    def layer_changed(self, source: Source, layer: int, reason: Reason) -> None:
        self.emit(LayerChanged(self.connection.connection_id, self.subscriber_id, source.publisher_id,
                               source.layers.rids[layer], reason))

    def ask_keyframe(self, starting: bool) -> None:
        """Ask the source for a keyframe (of the layer this subscriber is on or changes to)."""
        if self.feed is not None:
            self.feed.ask_keyframe(starting)

    def close(self) -> None:
        self.link(None)

    # -- sending ---------------------------------------------------------------------------

    def forward(self, packet, layer: int, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None:
        """Send one packet of the source (``keyframe``: it starts one; ``send_time``: the
        abs-send-time value, ``ntp``: ``now`` as an NTP timestamp)."""
        if not self.gate.running:
            self._between_runs(packet, keyframe, now, send_time, ntp)
            return
        self._send_packet(packet, now, send_time, ntp)

    def _between_runs(self, packet, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None:
        decision, packets = self.gate.admit(packet, keyframe, self._writable())
        if decision is Start.GO:
            if self.layered:
                self._run_first_seq = self._stream.next_seq
                self.vp8.start_run()
            self._stream.start_run(packets[0].sequence_number, packets[0].timestamp, now,
                                   self.parameters.clock_rate)
            for start in packets:
                self._send_packet(start, now, send_time, ntp)
        elif decision is not Start.HELD:
            # Rate-limited; also covers a lost request. Only a new source gets the short wait:
            # a subscriber that keeps falling behind must not make the publisher send keyframes.
            self.ask_keyframe(decision is Start.ASK_STARTING)

    def _send_packet(self, packet, now: float, send_time: bytes, ntp: int) -> None:
        mapped = self._stream.map(packet.sequence_number, packet.timestamp)
        if mapped is None:
            return
        seq, timestamp = mapped
        parameters = self.parameters
        payload = packet.payload
        if self.layered:
            payload = self.vp8.rewrite(payload)
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
        stats = self.sent  # what the RTCP sender reports say
        if newest:
            stats.ntp, stats.rtp = ntp, timestamp
        stats.octets += len(payload)
        stats.packets += 1
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
        rate = RETRANSMIT_RATE
        if self.layered:
            # On a simulcast source the subscriber's estimate is known: resending more than a
            # share of it would congest the link that lost the packets (and lose more).
            estimate = self.connection.bandwidth.estimate()
            if estimate is not None:
                rate = min(RETRANSMIT_RATE, max(RETRANSMIT_RATE_MIN, RETRANSMIT_SHARE * estimate / (8 * 1200)))
        self._retransmit_budget = min(float(RETRANSMIT_BURST),
                                      self._retransmit_budget + (now - self._retransmit_stamp) * rate)
        self._retransmit_stamp = now
        first = self._run_first_seq
        # No more than a history holds: a NACK naming thousands asks for nothing more.
        for seq in islice(sequence_numbers, HISTORY):
            seq &= 0xFFFF  # a PID near the wrap names its bits past 65535 (as aiortc parses them)
            if self._retransmit_budget < 1.0:
                return  # the rest stays lost; a PLI from the subscriber brings a keyframe
            if first is not None and (seq - first) & 0xFFFF >= 0x8000:
                continue  # before the keyframe its layer started at: the decoder no longer needs it
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

    def _writable(self) -> bool:
        return self.parameters is not None and self.route.current() is not None

    def _send(self, data: bytes) -> bool:
        """Encrypt and send one RTP packet; False if it could not go."""
        if self.parameters is None:
            return False
        route = self.route.current()
        if route is None:
            return False
        srtp, sock, address = route
        try:
            sock.sendto(srtp.protect(data), address)
        except BlockingIOError:  # the socket's send buffer is full: this subscriber cannot keep up
            self._fell_behind()
            return False
        except (OSError, pylibsrtp.Error):
            return False
        return True

    def _fell_behind(self) -> None:
        self.counters.packets_dropped += 1
        if self.gate.fell_behind():
            self.emit(FellBehind(self.subscriber_id))
            self.ask_keyframe(False)  # the usual wait: it may keep falling behind
