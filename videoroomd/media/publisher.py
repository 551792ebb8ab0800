"""What receives one published track: each packet, whether it starts a keyframe, and who gets it (asyncio side).

aiortc's receiver decrypts each packet of the publisher, and, in place of
its jitter buffer, hands it to the track's :class:`PublishedTrack`
(:mod:`.forwarding` wires this). The published track notes whether the
packet starts a keyframe and sends it at once through each of its
subscribers (:class:`.subscriber.ForwardedTrack`). Keyframes are asked of
the publisher (RTCP PLI) when a subscriber needs one, rate-limited by
:class:`.gate.KeyframeRequests`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Callable

import structlog

from .aiortc_compat import rtp as compat
from .forwarding import MediaCounters
from .gate import KeyframeRequests
from .rtp_packets import abs_send_time, ntp_time, vp8_starts_keyframe

if TYPE_CHECKING:
    from .subscriber import ForwardedTrack

log = structlog.get_logger("videoroomd.media.forwarding")

ERROR_LOG_INTERVAL = 10.0    # seconds between two logged forwarding errors of one track


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
        self.keyframes = KeyframeRequests()
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

    def log_error(self) -> None:
        """Log the exception being handled, at most once every ERROR_LOG_INTERVAL."""
        now = time.monotonic()
        if now - self._last_error >= ERROR_LOG_INTERVAL:
            self._last_error = now
            log.warning("forwarding a packet failed", track=self.track_id, kind=self.kind, exc_info=True)

    def request_keyframe(self, starting: bool = False) -> None:
        """Ask the publisher for a keyframe (RTCP PLI), as far as :class:`.gate.KeyframeRequests`
        allows; ``starting``: for a subscriber that starts on this track."""
        if self.kind != "video" or self.ssrc is None:
            return  # before the first packet: the first frames will come with a keyframe anyway
        if not self.keyframes.ask(time.monotonic(), starting):
            return
        self.counters.keyframe_requests += 1
        task = asyncio.ensure_future(compat.send_pli(self.receiver, self.ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.switch(None)  # the slot stays, empty, until its next negotiation
        for task in self._tasks:
            task.cancel()
