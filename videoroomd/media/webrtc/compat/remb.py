"""A cheaper incoming-bitrate counter for aiortc 1.16's REMB estimator, with the same figures.

aiortc's ``RemoteBitrateEstimator`` counts a video publisher's incoming bytes
in a ``RateCounter`` of one-millisecond buckets over a one-second window,
and to age it walks the buckets one millisecond at a time: a thousand steps
of Python a second for every video publisher, whether a packet came in them
or not, on top of the estimator's own work per packet. :class:`WindowRate`
keeps only the milliseconds in which something arrived and drops them when
they leave the window; its ``rate`` is aiortc's, figure for figure, as long
as time does not go back (arrival times come from one clock, in order).
:func:`lighten` puts one in a receiver's estimator (that receiver's only).
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from aiortc.rate import BandwidthUsage


class WindowRate:
    """``aiortc.rate.RateCounter(window_size, scale)``'s ``add``, ``rate`` and ``reset``, without
    its millisecond buckets."""

    def __init__(self, window_size: int, scale: int = 8000) -> None:
        self._window_size = window_size
        self._scale = scale
        self.reset()

    def reset(self) -> None:
        self._entries: deque[list[int]] = deque()  # [ms, count, value] for each ms something arrived in
        self._origin_ms: Optional[int] = None       # the oldest ms the window holds
        self._count = 0
        self._value = 0

    def add(self, value: int, now_ms: int) -> None:
        if self._origin_ms is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
        entries = self._entries
        if entries and entries[-1][0] == now_ms:
            entries[-1][1] += 1
            entries[-1][2] += value
        else:
            entries.append([now_ms, 1, value])
        self._count += 1
        self._value += value

    def rate(self, now_ms: int) -> Optional[int]:
        if self._origin_ms is not None:
            self._erase_old(now_ms)
            active_window_size = now_ms - self._origin_ms + 1
            if self._count > 0 and active_window_size > 1:
                return round(self._scale * self._value / active_window_size)
        return None

    def _erase_old(self, now_ms: int) -> None:
        new_origin_ms = now_ms - self._window_size + 1
        if self._origin_ms >= new_origin_ms:
            return
        entries = self._entries
        while entries and entries[0][0] < new_origin_ms:
            _, count, value = entries.popleft()
            self._count -= count
            self._value -= value
        self._origin_ms = new_origin_ms


def lighten(receiver) -> None:
    """Give the REMB estimator of ``receiver`` (one of our own connections; a video receiver has
    one) a :class:`WindowRate` for its incoming bitrate; before its first packet."""
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    if estimator is not None and not isinstance(estimator.incoming_bitrate, WindowRate):
        counter = estimator.incoming_bitrate
        estimator.incoming_bitrate = WindowRate(counter._window_size, counter._scale)


def lighten_receivers(pc) -> None:
    """:func:`lighten` every video receiver of ``pc`` (one of our own connections). aiortc gives
    each video transceiver's receiver an estimator, the receivers of the tracks we only send
    too, and each estimator's ``RateCounter`` holds a thousand bucket objects (about 56 KiB,
    3 MiB for a room of 8 with video): for life, though most of those receivers never see a
    packet. Call after each remote description has made the transceivers."""
    for transceiver in pc.getTransceivers():
        lighten(transceiver.receiver)


# The REMB a publisher is sent when the room sets no max_video_bitrate. A browser takes
# REMB as the most it may send, not as what to send: its own estimator (loss-based,
# ramping up gradually) still decides. So this is only a ceiling, and it must be high
# enough for the page's three 720p layers together (150 + 500 + 2500 kbit/s = 3.15
# Mbit/s) with room left for retransmissions and the browser's probing.
DEFAULT_CEILING = 4_000_000
# After the estimator last saw overuse, the publisher keeps getting its (lower) estimate
# this long, so a congested path is not told "the ceiling" between two overuse signals.
CONGESTION_HOLD_MS = 2000


class PublisherRemb:
    """What REMB to send a publisher, from aiortc's ``RemoteBitrateEstimator``.

    aiortc's rate control never lets its estimate climb above about 1.5 times what
    arrives (plus 10 kbit/s): sent as is, a publisher that fell back to its lowest
    simulcast layer (~150 kbit/s) is told ~235 kbit/s for ever, below what the browser
    needs before it turns its next layer back on. So while the estimator sees no
    overuse the publisher is sent the ceiling (the room's cap, else
    :data:`DEFAULT_CEILING`), and only when the estimator sees delay growing (overuse)
    and for :data:`CONGESTION_HOLD_MS` after, its estimate (capped too), so the
    browser still backs off on a congested path. Sent at the estimator's pace: at
    once on overuse, otherwise every half second or so."""

    def __init__(self, estimator) -> None:
        self._estimator = estimator
        self._last_overuse_ms: Optional[int] = None

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int,
            cap: Optional[int]) -> Optional[tuple[int, list[int]]]:
        """Feed one packet to the estimator; returns ``(bitrate, ssrcs)`` when a REMB is due, else None."""
        estimator = self._estimator
        remb = estimator.add(abs_send_time=abs_send_time, arrival_time_ms=arrival_time_ms,
                             payload_size=payload_size, ssrc=ssrc)
        if estimator.detector.state() is BandwidthUsage.OVERUSING:
            self._last_overuse_ms = arrival_time_ms
        if remb is None:
            return None
        estimate, ssrcs = remb
        return self.bitrate(estimate, arrival_time_ms, cap), ssrcs

    def estimated(self, taken: tuple[int, int, Optional[int], list[int]],
                  cap: Optional[int]) -> tuple[int, list[int]]:
        """The REMB to send for what a compiled estimator (``_native.Remb.take()``) made due:
        ``(estimate, at_ms, last_overuse_ms or None, ssrcs)``; returns ``(bitrate, ssrcs)``."""
        estimate, at_ms, overuse_ms, ssrcs = taken
        if overuse_ms is not None and (self._last_overuse_ms is None or overuse_ms > self._last_overuse_ms):
            self._last_overuse_ms = overuse_ms
        return self.bitrate(estimate, at_ms, cap), ssrcs

    def bitrate(self, estimate: int, now_ms: int, cap: Optional[int]) -> int:
        """The REMB to send now, given the estimator's ``estimate`` and the room's ``cap`` (or None)."""
        ceiling = cap if cap is not None else DEFAULT_CEILING
        congested = self._last_overuse_ms is not None and now_ms - self._last_overuse_ms < CONGESTION_HOLD_MS
        return min(estimate, ceiling) if congested else ceiling
