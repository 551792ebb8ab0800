"""One client's connection as the data plane sees it: what its subscribers share (pure).

The bandwidth estimate from its subscribers' REMB and loss, what is sent to
it lately, and the layers its client asked for. Imports :mod:`.gate` only;
its subscribers are described by what it reads of them.
"""

from __future__ import annotations

from typing import Any, Protocol

from .gate import BandwidthEstimate

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
        """Bits/s sent to this client lately (payload), None until measured over SEND_RATE_WINDOW."""
        octets = sum(s.sent.octets for s in self.subscribers.values())
        stamp, counted = self._send_sample
        if stamp is None:
            self._send_sample = (now, octets)
        elif now - stamp >= SEND_RATE_WINDOW:
            self._send_rate = max(0, octets - counted) * 8 / (now - stamp)
            self._send_sample = (now, octets)
        return self._send_rate
