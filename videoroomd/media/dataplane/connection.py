"""One client's connection as the data plane sees it: what its subscribers share (pure).

The bandwidth estimate from its subscribers' REMB and loss, what is sent to
it lately, and the layers its client asked for. Imports :mod:`.gate` and the
interface's events only; its subscribers are described by what it reads of them.
"""

from __future__ import annotations

from typing import Any, Protocol

from .gate import BandwidthEstimate
from .interface import Bandwidth

SEND_RATE_WINDOW = 1.0    # seconds over which what is sent to a client is measured, at the least


class Subscribed(Protocol):
    """What a connection reads of each of its subscribers (:class:`.subscriber.Subscriber`)."""

    kind: str
    feed: Any
    sent: Any


class Connection:
    """One client's connection: its subscribers, what can be sent to it, the layers it wants."""

    def __init__(self, connection_id: str, targets: dict[str, str]):
        self.connection_id = connection_id
        self.targets = targets            # publisher id -> the highest layer (RID) it wants of it
        self.subscribers: dict[str, Subscribed] = {}
        self.bandwidth = BandwidthEstimate()
        self._send_sample: tuple[float | None, int] = (None, 0)  # (when, octets sent by then)
        self._send_rate: float | None = None

    def layer_budget(self) -> int | None:
        """Each video slot's share of what can be sent to this client (bits/s), None when unknown."""
        estimate = self.bandwidth.estimate()
        if estimate is None:
            return None
        videos = sum(1 for s in self.subscribers.values() if s.kind == "video" and s.feed is not None)
        return estimate // max(1, videos)

    def congested(self, now: float) -> bool:
        return self.bandwidth.congested(now)

    def sending_rate(self, now: float) -> float | None:
        """Bits/s sent to this client lately (payload), None until measured over SEND_RATE_WINDOW.

        The subscribers' counters are read only when a sample is taken (a REMB comes about once a
        second from each video a client receives; reading them is a call into the plane each)."""
        stamp, counted = self._send_sample
        if stamp is None:
            self._send_sample = (now, self._octets_sent())
        elif now - stamp >= SEND_RATE_WINDOW:
            octets = self._octets_sent()
            self._send_rate = max(0, octets - counted) * 8 / (now - stamp)
            self._send_sample = (now, octets)
        return self._send_rate

    def _octets_sent(self) -> int:
        return sum(s.sent.octets for s in self.subscribers.values())

    def remb_arrived(self, bps: int, now: float) -> Bandwidth | None:
        """A subscriber's REMB (what its receiver can take, bits/s); the event to tell when the
        estimate moved noticeably, else None."""
        self.bandwidth.remb_arrived(bps, now, self.sending_rate(now))
        return self._bandwidth_news(now)

    def loss_reported(self, fraction: float, now: float) -> Bandwidth | None:
        """A receiver report's lost fraction (0..1); the event to tell, as for :meth:`remb_arrived`."""
        self.bandwidth.loss_reported(fraction, now)
        return self._bandwidth_news(now)

    def _bandwidth_news(self, now: float) -> Bandwidth | None:
        value = self.bandwidth.report(now)
        return None if value is None else Bandwidth(self.connection_id, value)
