"""New connections per second per client address: a token bucket each (pure code)."""

from __future__ import annotations

from ..token_buckets import TokenBuckets


class ConnectionRateLimit:
    """Allows ``rate`` new connections per second per address, in bursts of up to ``2 * rate``."""

    def __init__(self, rate: float):
        self._buckets = TokenBuckets(rate, self._burst(rate))

    @staticmethod
    def _burst(rate: float) -> float:
        return max(1.0, 2.0 * float(rate))

    @property
    def rate(self) -> float:
        return self._buckets.rate

    @rate.setter
    def rate(self, rate: float) -> None:  # a reload changed [server] connections_per_second
        self._buckets.rate, self._buckets.burst = float(rate), self._burst(rate)

    @property
    def burst(self) -> float:
        return self._buckets.burst

    def allow(self, address: str, now: float) -> bool:
        return self._buckets.take(address, now)
