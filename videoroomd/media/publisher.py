"""What receives one published track: each packet, whether it starts a keyframe, and who gets it (asyncio side).

aiortc's receiver decrypts each packet of the publisher, and, in place of
its jitter buffer, hands it to the track's :class:`PublishedTrack`
(:mod:`.forwarding` wires this). The published track notes whether the
packet starts a keyframe and sends it at once through each of its
subscribers (:class:`.subscriber.ForwardedTrack`). Keyframes are asked of
the publisher (RTCP PLI) when a subscriber needs one, rate-limited by
:class:`.gate.KeyframeRequests`.

A simulcast track (RIDs in the client's offer) arrives as one SSRC per
layer: each packet's layer comes from the :class:`.layers.RidTable` its
receiver fills, what each layer carries is measured
(:class:`.gate.LayerMeter`), keyframes are asked of each layer's SSRC on
its own, and each subscriber is handed every layer's packets and sends
those of the layer it is on (:meth:`.subscriber.ForwardedTrack.forward_layer`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Protocol

import structlog

from .aiortc_compat import rtp as compat
from .forwarding import MediaCounters
from .gate import KeyframeRequests, LayerMeter
from .layers import RidTable
from .rtp_packets import abs_send_time, ntp_time, vp8_starts_keyframe

log = structlog.get_logger("videoroomd.media.forwarding")

ERROR_LOG_INTERVAL = 10.0    # seconds between two logged forwarding errors of one track
CHOICE_INTERVAL = 0.2        # seconds between two choices of each subscriber's layer


class Subscriber(Protocol):
    """What a published track asks of each of its subscribers (:class:`.subscriber.ForwardedTrack`);
    a protocol, so that the subscriber, which names this module's track, is not imported back."""

    def forward(self, packet, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None: ...

    def choose_layer(self, now: float) -> None: ...

    def forward_layer(self, packet, layer: int, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None: ...


class PublishedTrack:
    """One incoming track and its subscribers."""

    def __init__(self, track_id: str, kind: str, receiver, on_audio_level: Callable[[int], None] | None = None,
                 counters: MediaCounters | None = None, rids: list[str] | None = None):
        self.counters = counters or MediaCounters()
        self.track_id = track_id
        self.kind = kind
        self.receiver = receiver
        self.subscribers: set[Subscriber] = set()
        self.packets = 0
        self.ssrc: int | None = None  # the publisher's media SSRC, once seen
        self.keyframes = KeyframeRequests()
        self._tasks: set[asyncio.Task] = set()
        self._on_audio_level = on_audio_level
        self._last_error = 0.0
        # Simulcast (video with RIDs only): the layers, their keyframe requests and meter.
        self.layers: RidTable | None = None
        if rids and kind == "video":
            self.layers = RidTable(rids)
            self.layer_keyframes = [KeyframeRequests() for _ in rids]
            self.meter = LayerMeter(len(rids))
            self.unknown_layer_packets = 0
            self._next_choice = 0.0
            self._unknown_logged = 0.0

    def on_packet(self, packet) -> None:
        """One RTP packet of this track arrived (retransmissions already unwrapped)."""
        if self.layers is not None:
            self._on_layer_packet(packet)
            return
        self.packets += 1
        self.counters.packets_received += 1
        self.ssrc = packet.ssrc
        if self.kind == "audio":
            level = packet.extensions.audio_level
            if level is not None and self._on_audio_level is not None:
                self._on_audio_level(level[1])
            keyframe = False  # audio needs none: the gate starts it at once
        else:
            keyframe = vp8_starts_keyframe(packet.payload)
            if keyframe:
                self.keyframes.keyframe_arrived()
        if not self.subscribers:
            return
        now = time.time()
        send_time, ntp = abs_send_time(now).to_bytes(3, "big"), ntp_time(now)
        for subscriber in tuple(self.subscribers):
            try:
                subscriber.forward(packet, keyframe, now, send_time, ntp)
            except Exception:
                self.log_error()

    def _on_layer_packet(self, packet) -> None:
        self.packets += 1
        self.counters.packets_received += 1
        layer = self.layers.layer_of(packet.ssrc)
        monotonic = time.monotonic()
        if layer is None:  # no RID seen for its SSRC yet, or one the offer did not have
            self.unknown_layer_packets += 1
            if monotonic - self._unknown_logged >= ERROR_LOG_INTERVAL:
                self._unknown_logged = monotonic
                log.info("simulcast packets of no known layer dropped", track=self.track_id, ssrc=packet.ssrc,
                         dropped=self.unknown_layer_packets, unknown_rids=sorted(self.layers.unknown_rids))
            return
        self.meter.packet(layer, len(packet.payload), monotonic)
        keyframe = vp8_starts_keyframe(packet.payload)
        if keyframe:
            self.layer_keyframes[layer].keyframe_arrived()
        if not self.subscribers:
            return
        if monotonic >= self._next_choice:
            self._next_choice = monotonic + CHOICE_INTERVAL
            for subscriber in tuple(self.subscribers):
                try:
                    subscriber.choose_layer(monotonic)
                except Exception:
                    self.log_error()
        now = time.time()
        send_time, ntp = abs_send_time(now).to_bytes(3, "big"), ntp_time(now)
        for subscriber in tuple(self.subscribers):
            try:
                subscriber.forward_layer(packet, layer, keyframe, now, send_time, ntp)
            except Exception:
                self.log_error()

    def layer_index(self, rid: str) -> int | None:
        """The layer of RID ``rid`` (0 the lowest), None when this track has no such layer."""
        if self.layers is None:
            return None
        try:
            return self.layers.rids.index(rid)
        except ValueError:
            return None

    def set_layer_enabled(self, rid: str, enabled: bool) -> bool:
        """The publisher's client turned layer ``rid`` off or on; False when there is no such layer."""
        layer = self.layer_index(rid)
        if layer is None:
            return False
        self.meter.enabled[layer] = enabled
        now = time.monotonic()
        for subscriber in tuple(self.subscribers):
            subscriber.choose_layer(now)
        return True

    def log_error(self) -> None:
        """Log the exception being handled, at most once every ERROR_LOG_INTERVAL."""
        now = time.monotonic()
        if now - self._last_error >= ERROR_LOG_INTERVAL:
            self._last_error = now
            log.warning("forwarding a packet failed", track=self.track_id, kind=self.kind, exc_info=True)

    def request_keyframe(self, starting: bool = False, layer: int | None = None) -> None:
        """Ask the publisher for a keyframe (RTCP PLI), as far as :class:`.gate.KeyframeRequests`
        allows; ``starting``: for a subscriber that starts on this track. For a simulcast
        track, of ``layer`` (None: of none; the subscriber's layer choice asks)."""
        if self.layers is not None:
            if layer is None or not 0 <= layer < len(self.layer_keyframes):
                return
            ssrc, requests = self.layers.media_ssrc[layer], self.layer_keyframes[layer]
        else:
            ssrc, requests = self.ssrc, self.keyframes
        if self.kind != "video" or ssrc is None:
            return  # before the first packet: the first frames will come with a keyframe anyway
        if not requests.ask(time.monotonic(), starting):
            return
        self.counters.keyframe_requests += 1
        task = asyncio.ensure_future(compat.send_pli(self.receiver, ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.switch(None)  # the slot stays, empty, until its next negotiation
        for task in self._tasks:
            task.cancel()
