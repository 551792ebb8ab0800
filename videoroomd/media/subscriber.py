"""One subscriber's stream: the RTP of its current source, rewritten, sent, and sent again on NACK (asyncio side).

Each packet its source (:class:`.publisher.PublishedTrack`) hands it is
rewritten into the subscriber's own stream (payload type, SSRC, sequence
number and timestamp rebased by :class:`.stream_rewrite.StreamRewriter`,
negotiated header extensions), encrypted with the subscriber's SRTP context
and written to its UDP socket (through :mod:`.aiortc_compat.rtp`). The
payload is the publisher's, untouched.

It keeps the last packets it sent, to answer NACKs with retransmissions
over RTX within a budget. When it may start a source, and what happens
while it is still connecting or after its full socket dropped a packet, is
decided by :class:`.gate.StartGate`.

Of a simulcast source it sends one layer: :class:`.gate.LayerSelector`
chooses which (now and then, asked by the source), :class:`.gate.LayerSwitch`
changes to it at a keyframe of that layer, and the VP8 picture ids are
rewritten (:class:`.vp8_rewrite.Vp8Rewriter`) so that the subscriber sees
one stream whatever the layer.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING

import pylibsrtp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.utils import random16, random32

from .aiortc_compat import rtp as compat
from .forwarding import MediaCounters
from .gate import LayerSelector, LayerSwitch, Reason, Start, StartGate
from .rtp_packets import abs_send_time, extension_block, one_byte_element, rtp_packet
from .stream_rewrite import StreamRewriter
from .vp8_rewrite import Vp8Rewriter

if TYPE_CHECKING:
    from .publisher import PublishedTrack

HISTORY = 512                # packets a video subscriber can have retransmitted
# Packets one subscriber's NACKs may have sent again, per second after a burst. One NACK of
# 1.4 kB can name thousands of packets: unbounded, a subscriber asking again and again would
# take the media thread (all rooms' forwarding) and the uplink for itself.
RETRANSMIT_RATE = 300.0
RETRANSMIT_BURST = HISTORY
RETRANSMIT_SHARE = 0.25      # of a simulcast subscriber's estimated bandwidth its retransmissions may take
RETRANSMIT_RATE_MIN = 20.0   # packets a second it may always have sent again

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


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

    def __init__(self, kind: str, sender, counters: MediaCounters | None = None, owner=None):
        super().__init__()
        # The subscriber's connection (``.rtc.EndpointConnection``): its bandwidth, its layer
        # requests, where layer changes are told. None: no simulcast (tests).
        self.owner = owner
        self.selector: LayerSelector | None = None   # set while the source is simulcast
        self.layer_switch: LayerSwitch | None = None
        self.vp8: Vp8Rewriter | None = None
        self._layer_reason = Reason.OTHER
        self.kind = kind
        self.sender = sender
        self.counters = counters or MediaCounters()
        self.source: PublishedTrack | None = None
        self.parameters: SendParameters | None = None
        self._stopped = asyncio.get_running_loop().create_future()
        self.gate = StartGate(kind)
        # Sequence numbers start in the low half: no SRTP rollover surprises at the start.
        self._stream = StreamRewriter(random16() % 32768, random32())
        self._history: list[tuple | None] = [None] * HISTORY if kind == "video" else []
        self._dtls = None
        self._pair = None             # the candidate pair the cached socket and address belong to
        self._socket = None
        self._address = None
        self._rtx_seq = random16() % 32768
        self._retransmit_budget = float(RETRANSMIT_BURST)
        # Of a simulcast source: the first sequence number of the current run (a slow subscriber's
        # NACKs of the layer it left would only add to what its link cannot carry).
        self._run_first_seq: int | None = None
        self._retransmit_stamp = time.monotonic()

    # -- the slot --------------------------------------------------------------------------

    def switch(self, source: "PublishedTrack | None") -> None:
        """Carry ``source`` from now on (None: nothing), starting at its next keyframe."""
        if self.source is source:
            return
        if self.source is not None:
            self.source.subscribers.discard(self)
        self.source = source
        self.gate.switched()
        self.selector = self.layer_switch = None
        if source is not None and source.layers is not None:
            self.selector = LayerSelector(len(source.layers.rids))
            self.layer_switch = LayerSwitch()
            if self.vp8 is None:
                self.vp8 = Vp8Rewriter()  # kept for the slot's life: picture ids go on across sources
            target = self.owner.target_for(source.track_id) if self.owner is not None else None
            if target is not None and source.layer_index(target) is not None:
                self.selector.set_target(source.layer_index(target))
        if source is not None:
            source.subscribers.add(self)
            if self.selector is not None:
                self.choose_layer(time.monotonic())
            else:
                source.request_keyframe(starting=True)

    # -- simulcast ---------------------------------------------------------------------------

    def set_target(self, layer: int) -> None:
        """The subscriber wants ``layer`` of its simulcast source at most."""
        if self.selector is not None:
            self.selector.set_target(layer)
            self.choose_layer(time.monotonic())

    def choose_layer(self, now: float) -> None:
        """Choose the layer to send (monotonic ``now``), and ask for a keyframe of it while
        the switch to it waits for one."""
        source, selector = self.source, self.selector
        if source is None or selector is None:
            return
        owner = self.owner
        budget = owner.layer_budget() if owner is not None else None
        congested = owner.congested(now) if owner is not None else False
        meter = source.meter
        decision = selector.choose(now, meter.usable(now), meter.arriving_since, meter.bitrate, budget, congested)
        if decision is not None:
            self._layer_reason = decision[1]
            self.layer_switch.want(decision[0])
        if self.layer_switch.pending is not None:
            source.request_keyframe(starting=True, layer=self.layer_switch.pending)

    def forward_layer(self, packet, layer: int, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None:
        """A packet of ``layer`` of the simulcast source: sent when it is of the layer this
        subscriber is on, or a keyframe of the one it changes to (which starts a new run)."""
        switch = self.layer_switch
        if switch is None:
            return
        verdict = switch.admit(layer, keyframe)
        if not verdict:
            return
        if verdict == 2:
            first = self.gate.new_source and not self.gate.running  # nothing sent of this source yet
            self.gate.switched()
            if self.owner is not None:
                reason = Reason.OTHER if first else self._layer_reason
                self.owner.layer_changed(self.source.track_id, self.source.layers.rids[layer], reason)
        self.forward(packet, keyframe, now, send_time, ntp)

    def ask_keyframe(self, starting: bool) -> None:
        """Ask the source for a keyframe (of the layer this subscriber is on or changes to)."""
        source = self.source
        if source is None:
            return
        if self.layer_switch is not None:
            layer = self.layer_switch.pending if self.layer_switch.pending is not None else self.layer_switch.current
            source.request_keyframe(starting=starting, layer=layer)
        else:
            source.request_keyframe(starting=starting)

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
        if not self.gate.running:
            decision, packets = self.gate.admit(packet, keyframe, self._writable())
            if decision is Start.GO:
                if self.layer_switch is not None:
                    self._run_first_seq = self._stream.next_seq
                self._stream.start_run(packets[0].sequence_number, packets[0].timestamp, now,
                                       self.parameters.clock_rate)
                if self.vp8 is not None:
                    self.vp8.start_run()
                for start in packets:
                    self._send_packet(start, now, send_time, ntp)
            elif decision is not Start.HELD:
                # Rate-limited; also covers a lost request. Only a new source gets the short wait:
                # a subscriber that keeps falling behind must not make the publisher send keyframes.
                self.ask_keyframe(decision is Start.ASK_STARTING)
            return
        self._send_packet(packet, now, send_time, ntp)

    def _send_packet(self, packet, now: float, send_time: bytes, ntp: int) -> None:
        mapped = self._stream.map(packet.sequence_number, packet.timestamp)
        if mapped is None:
            return
        seq, timestamp = mapped
        parameters = self.parameters
        payload = packet.payload
        if self.layer_switch is not None:
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
        rate = RETRANSMIT_RATE
        if self.layer_switch is not None and self.owner is not None:
            # On a simulcast source the subscriber's estimate is known: resending more than a
            # share of it would congest the link that lost the packets (and lose more).
            estimate = self.owner.estimate()
            if estimate is not None:
                rate = min(RETRANSMIT_RATE, max(RETRANSMIT_RATE_MIN, RETRANSMIT_SHARE * estimate / (8 * 1200)))
        self._retransmit_budget = min(float(RETRANSMIT_BURST),
                                      self._retransmit_budget + (now - self._retransmit_stamp) * rate)
        self._retransmit_stamp = now
        first = self._run_first_seq
        for seq in sequence_numbers:
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
        if self.gate.fell_behind():
            self.ask_keyframe(False)  # the usual wait: it may keep falling behind
