"""What receives one published track in the Python data plane: each packet, whether it starts a keyframe, who gets it.

The plane (:class:`.forwarder.PythonDataPlane`) hands each packet of a
publisher to its source, which notes whether it starts a keyframe and
hands it at once to the feed of each subscriber linked to it
(:mod:`.feeds`). Keyframes are asked of the publisher (a
:class:`~.dataplane.KeyframeNeeded` event) when a subscriber needs one,
rate-limited by :class:`.gate.KeyframeRequests`.

Two kinds of source, one path (:meth:`Source.receive`): a
:class:`PlainSource` is one stream (audio, or video without layers); a
:class:`LayeredSource` is simulcast video, one SSRC per layer: each
packet's layer comes from its :class:`.layers.RidTable`, what each layer
carries is measured (:class:`.gate.LayerMeter`), keyframes are asked of
each layer's SSRC on its own, and its subscribers' layer choices are
revisited every :data:`CHOICE_INTERVAL`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import structlog

from .interface import KeyframeNeeded, MediaCounters, VoiceChanged
from .gate import KeyframeRequests, LayerMeter
from .layers import RidTable
from .rtp_packets import abs_send_time, ntp_time, vp8_starts_keyframe
from .vad import VoiceActivity

log = structlog.get_logger("videoroomd.media.forwarding")


class Feed(Protocol):
    """What a source asks of each subscriber's feed (:mod:`.feeds`, which names the sources:
    a protocol here, so that the two modules import in one direction)."""

    slot: Any

    def forward(self, packet, layer: int, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None: ...

    def choose_layer(self, now: float) -> None: ...

ERROR_LOG_INTERVAL = 10.0    # seconds between two logged forwarding errors of one track
CHOICE_INTERVAL = 0.2        # seconds between two choices of each subscriber's layer
_DELTA, _KEYFRAME = (0, False), (0, True)  # what a plain source's packets are (made once)


class Source:
    """One published track and the feeds of its subscribers."""

    layered = False

    def __init__(self, publisher_id: str, kind: str, counters: MediaCounters, emit: Callable[[object], None]):
        self.publisher_id = publisher_id
        self.kind = kind
        self.counters = counters
        self.emit = emit
        self.subscribers: set[Feed] = set()
        self.packets = 0
        self._last_error = 0.0

    def receive(self, packet) -> None:
        """One RTP packet of this track (retransmissions already unwrapped): sent at once
        through each subscriber's feed."""
        self.packets += 1
        self.counters.packets_received += 1
        taken = self._classify(packet)
        if taken is None:
            return
        layer, keyframe = taken
        if not self.subscribers:
            return
        self._before_forward()
        now = time.time()
        send_time, ntp = abs_send_time(now).to_bytes(3, "big"), ntp_time(now)
        for feed in tuple(self.subscribers):
            try:
                feed.forward(packet, layer, keyframe, now, send_time, ntp)
            except Exception:
                self.log_error()

    def _classify(self, packet) -> tuple[int, bool] | None:
        """(the packet's layer, 0 for a plain source; whether it starts a keyframe, noted for the
        keyframe requests), or None when it is to be dropped."""
        raise NotImplementedError

    def _before_forward(self) -> None:
        """What to do before a packet goes to the subscribers (nothing, for a plain source)."""

    def request_keyframe(self, starting: bool = False, layer: int | None = None) -> None:
        """Ask the publisher for a keyframe (of ``layer``, for a layered source), as far as
        :class:`.gate.KeyframeRequests` allows; ``starting``: for a subscriber that starts on it."""
        raise NotImplementedError

    def _ask(self, ssrc: int | None, requests: KeyframeRequests, starting: bool) -> None:
        if self.kind != "video" or ssrc is None:
            return  # before the first packet: the first frames will come with a keyframe anyway
        if not requests.ask(time.monotonic(), starting):
            return
        self.counters.keyframe_requests += 1
        self.emit(KeyframeNeeded(self.publisher_id, ssrc))

    def layer_index(self, rid: str) -> int | None:
        """The layer of RID ``rid`` (0 the lowest), None when this track has no such layer."""
        return None

    def set_layer_enabled(self, rid: str, enabled: bool) -> bool:
        """The publisher's client turned layer ``rid`` off or on; False when there is no such layer."""
        return False

    def log_error(self) -> None:
        """Log the exception being handled, at most once every ERROR_LOG_INTERVAL."""
        now = time.monotonic()
        if now - self._last_error >= ERROR_LOG_INTERVAL:
            self._last_error = now
            log.warning("forwarding a packet failed", track=self.publisher_id, kind=self.kind, exc_info=True)

    def close(self) -> None:
        """The track is gone: its subscribers carry nothing until linked again."""
        for feed in list(self.subscribers):
            feed.slot.link(None)


class PlainSource(Source):
    """One stream: audio (its voice activity told, no keyframes), or video of one layer."""

    def __init__(self, publisher_id: str, kind: str, counters: MediaCounters, emit: Callable[[object], None]):
        super().__init__(publisher_id, kind, counters, emit)
        self.ssrc: int | None = None  # the publisher's media SSRC, once seen
        self.keyframes = KeyframeRequests()
        self.voice = VoiceActivity() if kind == "audio" else None

    def _classify(self, packet) -> tuple[int, bool]:
        self.ssrc = packet.ssrc
        if self.kind == "audio":
            level = packet.extensions.audio_level
            if level is not None:
                change = self.voice.feed(level[1], time.monotonic())
                if change is not None:
                    self.emit(VoiceChanged(self.publisher_id, change))
            return _DELTA  # audio needs no keyframe: the gate starts it at once
        if vp8_starts_keyframe(packet.payload):
            self.keyframes.keyframe_arrived()
            return _KEYFRAME
        return _DELTA

    def request_keyframe(self, starting: bool = False, layer: int | None = None) -> None:
        self._ask(self.ssrc, self.keyframes, starting)


class LayeredSource(Source):
    """Simulcast video: one SSRC per layer (RIDs, low to high)."""

    layered = True

    def __init__(self, publisher_id: str, counters: MediaCounters, emit: Callable[[object], None], rids: list[str],
                 choice_interval: float = CHOICE_INTERVAL):
        super().__init__(publisher_id, "video", counters, emit)
        self.choice_interval = choice_interval
        self.layers = RidTable(rids)
        self.layer_keyframes = [KeyframeRequests() for _ in rids]
        self.meter = LayerMeter(len(rids))
        self.unknown_layer_packets = 0
        self.next_choice = 0.0      # when the subscribers' layers are chosen again (monotonic)
        self._now = 0.0             # monotonic time of the packet being received
        self._unknown_logged = 0.0

    def _classify(self, packet) -> tuple[int, bool] | None:
        layer = self.layers.layer_of(packet.ssrc)
        monotonic = self._now = time.monotonic()
        if layer is None:  # no RID seen for its SSRC yet, or one the offer did not have
            self.unknown_layer_packets += 1
            if monotonic - self._unknown_logged >= ERROR_LOG_INTERVAL:
                self._unknown_logged = monotonic
                log.info("simulcast packets of no known layer dropped", track=self.publisher_id, ssrc=packet.ssrc,
                         dropped=self.unknown_layer_packets, unknown_rids=sorted(self.layers.unknown_rids))
            return None
        self.meter.packet(layer, len(packet.payload), monotonic)
        keyframe = vp8_starts_keyframe(packet.payload)
        if keyframe:
            self.layer_keyframes[layer].keyframe_arrived()
        return layer, keyframe

    def _before_forward(self) -> None:
        now = self._now
        if now >= self.next_choice:
            self.next_choice = now + self.choice_interval
            for feed in tuple(self.subscribers):
                try:
                    feed.choose_layer(now)
                except Exception:
                    self.log_error()

    def request_keyframe(self, starting: bool = False, layer: int | None = None) -> None:
        """Of ``layer`` only (None: of none; the subscriber's layer choice asks)."""
        if layer is None or not 0 <= layer < len(self.layer_keyframes):
            return
        self._ask(self.layers.media_ssrc[layer], self.layer_keyframes[layer], starting)

    def layer_index(self, rid: str) -> int | None:
        try:
            return self.layers.rids.index(rid)
        except ValueError:
            return None

    def set_layer_enabled(self, rid: str, enabled: bool) -> bool:
        layer = self.layer_index(rid)
        if layer is None:
            return False
        self.meter.enabled[layer] = enabled
        now = time.monotonic()
        for feed in tuple(self.subscribers):
            feed.choose_layer(now)
        return True
