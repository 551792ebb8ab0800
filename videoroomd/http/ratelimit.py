"""New connections per second per client address: a token bucket each (pure code)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_TRACKED = 10000  # addresses remembered at once; the stalest are forgotten first


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class ConnectionRateLimit:
    """Allows ``rate`` new connections per second per address, in bursts of up to ``2 * rate``."""

    def __init__(self, rate: float):
        self.rate = float(rate)
        self._buckets: dict[str, _Bucket] = {}

    @property
    def burst(self) -> float:
        return max(1.0, 2.0 * self.rate)

    def allow(self, address: str, now: float) -> bool:
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        self._buckets[address] = bucket  # re-insert: dict order is least recently used first
        while len(self._buckets) > MAX_TRACKED:
            del self._buckets[next(iter(self._buckets))]
        return allowed
