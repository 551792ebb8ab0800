"""How often each participant may make the others hear of it: a token bucket per peer (pure code).

Metadata updates, connects and offers that publish reach every other client
(and offers make them renegotiate). A client sending them faster than anyone
reads would fill the others' outboxes and get *them* cut off as too slow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class PeerRate:
    """``rate`` events per second per peer, in bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int):
        self.rate = float(rate)
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, peer_id: str, now: float) -> bool:
        bucket = self._buckets.setdefault(peer_id, _Bucket(self.burst, now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def forget(self, peer_id: str) -> None:
        self._buckets.pop(peer_id, None)
