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
