"""Token buckets by key, with a bound on the keys remembered (pure code).

Each key gets a bucket of ``burst`` tokens, refilled at ``rate`` tokens per
second; a take costs one token unless told otherwise (bytes, for a bandwidth
budget). Only keys that have spent a token are remembered, and at most
``max_tracked`` of them: the least recently used are forgotten first, so a
client inventing keys cannot grow the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

MAX_TRACKED = 10000


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """``burst`` tokens per key, refilled at ``rate`` per second; times are in seconds (any clock)."""

    def __init__(self, rate: float, burst: float, max_tracked: int = MAX_TRACKED, initial: float | None = None):
        """``initial``: the tokens of a key never seen (or forgotten); by default ``burst``."""
        self.rate = float(rate)
        self.burst = float(burst)
        self.initial = initial
        self.max_tracked = max_tracked
        self._buckets: dict[Hashable, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def tokens(self, key: Hashable, now: float) -> float:
        """The tokens ``key`` has at ``now``; looking does not spend or remember anything."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.burst if self.initial is None else self.initial
        return min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)

    def wait(self, key: Hashable, now: float, cost: float = 1.0) -> float:
        """Seconds until ``key`` has ``cost`` tokens (0 when it has them now)."""
        missing = cost - self.tokens(key, now)
        return missing / self.rate if missing > 0 else 0.0

    def take(self, key: Hashable, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``key``; returns False (spending nothing) when it has fewer."""
        tokens = self.tokens(key, now)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets.pop(key, None)
        self._buckets[key] = _Bucket(tokens, now)  # re-insert: dict order is least recently used first
        while len(self._buckets) > self.max_tracked:
            del self._buckets[next(iter(self._buckets))]
        return allowed

    def give(self, key: Hashable, now: float, amount: float) -> None:
        """Add ``amount`` tokens to ``key``'s bucket (never beyond ``burst``): for a budget that
        grows with what a key brings, besides (or instead of, with a rate of 0) the time passed."""
        tokens = min(self.burst, self.tokens(key, now) + amount)
        self._buckets.pop(key, None)
        self._buckets[key] = _Bucket(tokens, now)
        while len(self._buckets) > self.max_tracked:
            del self._buckets[next(iter(self._buckets))]

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s bucket (it is gone for good); a key never seen is fine."""
        self._buckets.pop(key, None)
