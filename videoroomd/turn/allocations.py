"""The allocation table: lifetimes, permissions, channel bindings and quotas (pure code; times in seconds).

An allocation belongs to one client 5-tuple (its ``key``) and one
username; quotas count per user (the peer a REST-API username names, so
that the fresh credentials of each renegotiation do not make a new user)
and per source address (the client's IP, whoever it claims to be). It holds
permissions (peer IP -> expiry, RFC 8656 §9) and channel bindings (channel
<-> peer address, §12), each with its own lifetime. The table refuses an
allocation beyond the per-user or per-address quota; when it is full, a
newcomer takes the oldest allocation of the address holding the most, so
that one address (or a few) filling the table never locks out a new
participant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable

from ..token_buckets import TokenBuckets

DEFAULT_LIFETIME = 600.0      # seconds, when the client asks for none (§7.2)
PERMISSION_LIFETIME = 300.0   # §9
CHANNEL_LIFETIME = 600.0      # §12
MAX_PERMISSIONS = 64          # per allocation: only the daemon's media sockets are allowed anyway
MAX_CHANNELS = 64             # per allocation

Address = tuple[str, int]


@dataclass
class Allocation:
    key: Hashable
    username: str
    relay: Address
    expires: float
    transaction_id: bytes = b""   # of the Allocate that made it: a retransmission gets the same answer
    user: str = ""                # who quotas count it for; the username when not given
    source: str = ""              # the client's IP address: quotas count it too
    permissions: dict[str, float] = field(default_factory=dict)         # peer ip -> expiry
    channels: dict[int, tuple[Address, float]] = field(default_factory=dict)  # channel -> (peer, expiry)
    channel_of: dict[Address, int] = field(default_factory=dict)        # peer -> channel

    def __post_init__(self) -> None:
        self.user = self.user or self.username

    def permit(self, ip: str, now: float) -> bool:
        """Install or refresh a permission for ``ip``; False when the allocation has too many."""
        self._expire(now)
        if ip not in self.permissions and len(self.permissions) >= MAX_PERMISSIONS:
            return False
        self.permissions[ip] = now + PERMISSION_LIFETIME
        return True

    def permitted(self, ip: str, now: float) -> bool:
        return self.permissions.get(ip, 0.0) > now

    def bind(self, channel: int, peer: Address, now: float) -> str | None:
        """Bind or refresh ``channel`` to ``peer`` (and its permission); returns why not, or None (§12.2)."""
        self._expire(now)
        bound = self.channels.get(channel)
        if bound is not None and bound[0] != peer:
            return f"channel 0x{channel:04x} is bound to another peer"
        other = self.channel_of.get(peer)
        if other is not None and other != channel:
            return f"the peer is bound to channel 0x{other:04x} already"
        if bound is None and len(self.channels) >= MAX_CHANNELS:
            return f"at most {MAX_CHANNELS} channels per allocation"
        if not self.permit(peer[0], now):
            return f"at most {MAX_PERMISSIONS} permissions per allocation"
        self.channels[channel] = (peer, now + CHANNEL_LIFETIME)
        self.channel_of[peer] = channel
        return None

    def peer_of(self, channel: int, now: float) -> Address | None:
        bound = self.channels.get(channel)
        return bound[0] if bound is not None and bound[1] > now else None

    def channel_for(self, peer: Address, now: float) -> int | None:
        channel = self.channel_of.get(peer)
        if channel is None or self.channels[channel][1] <= now:
            return None
        return channel

    def _expire(self, now: float) -> None:
        for ip in [ip for ip, until in self.permissions.items() if until <= now]:
            del self.permissions[ip]
        for channel in [c for c, (_, until) in self.channels.items() if until <= now]:
            peer, _ = self.channels.pop(channel)
            self.channel_of.pop(peer, None)


class QuotaError(Exception):
    """An allocation the quotas do not allow; ``code`` is the STUN error to answer with."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class AllocationTable:
    def __init__(self, *, max_total: int, max_per_user: int, max_lifetime: float, max_per_source: int | None = None):
        self.max_total = max_total
        self.max_per_user = max_per_user
        self.max_per_source = max_total if max_per_source is None else max_per_source
        self.max_lifetime = max_lifetime
        self._by_key: dict[Hashable, Allocation] = {}
        self._per_user: dict[str, dict[Hashable, None]] = {}    # user -> its allocations' keys
        self._per_source: dict[str, dict[Hashable, None]] = {}  # source -> its keys, oldest first

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: Hashable) -> Allocation | None:
        return self._by_key.get(key)

    def lifetime(self, requested: int | None) -> float:
        """The lifetime granted for a LIFETIME of ``requested`` seconds (§7.2: default 600, at most the maximum)."""
        if requested is None:
            return min(DEFAULT_LIFETIME, self.max_lifetime)
        return float(max(0, min(requested, self.max_lifetime)))

    def check_quota(self, user: str, source: str = "") -> Hashable | None:
        """None when ``user`` at ``source`` may have one more allocation; the key of the allocation
        to end first when the table is full and ``source`` holds fewer than the address holding
        the most (its oldest is taken); raises :class:`QuotaError` when it may not."""
        if len(self._per_user.get(user, ())) >= self.max_per_user:
            raise QuotaError(486, f"at most {self.max_per_user} allocations per user")
        held = len(self._per_source.get(source, ()))
        if held >= self.max_per_source:
            raise QuotaError(486, f"at most {self.max_per_source} allocations per address")
        if len(self._by_key) < self.max_total:
            return None
        heaviest = max(self._per_source.values(), key=len, default={})
        if held + 1 < len(heaviest):
            return next(iter(heaviest))
        raise QuotaError(486, f"the server has its {self.max_total} allocations")

    def add(self, allocation: Allocation) -> None:
        """Record ``allocation`` (after :meth:`check_quota`); its key must be free."""
        assert allocation.key not in self._by_key
        self._by_key[allocation.key] = allocation
        self._per_user.setdefault(allocation.user, {})[allocation.key] = None
        self._per_source.setdefault(allocation.source, {})[allocation.key] = None

    def remove(self, key: Hashable) -> Allocation | None:
        allocation = self._by_key.pop(key, None)
        if allocation is not None:
            for index, name in ((self._per_user, allocation.user), (self._per_source, allocation.source)):
                keys = index[name]
                del keys[allocation.key]
                if not keys:
                    del index[name]
        return allocation

    def has_user(self, user: str) -> bool:
        return user in self._per_user

    def of_user(self, user: str) -> list[Hashable]:
        """The keys of ``user``'s allocations."""
        return list(self._per_user.get(user, ()))

    def per_source(self) -> dict[str, int]:
        """Allocations held now by each source address."""
        return {source: len(keys) for source, keys in self._per_source.items()}

    def expired(self, now: float) -> list[Allocation]:
        """Remove and return the allocations whose lifetime has run out."""
        gone = [a for a in self._by_key.values() if a.expires <= now]
        for allocation in gone:
            self.remove(allocation.key)
        return gone


class ByteBudget:
    """Bytes each user may relay: ``rate`` per second, a burst of one second's worth (0: no limit)."""

    def __init__(self, rate: float):
        self._buckets = TokenBuckets(rate, rate)

    @property
    def rate(self) -> float:
        return self._buckets.rate

    @rate.setter
    def rate(self, rate: float) -> None:  # the daemon told a worker (or a reload) the per-user rate
        self._buckets.rate = self._buckets.burst = float(rate)

    def spend(self, user: str, size: int, now: float) -> bool:
        """Take ``size`` bytes from ``user``'s budget; False (taking nothing) when it has not enough."""
        if self._buckets.rate <= 0:
            return True
        return self._buckets.take(user, now, size)

    def forget(self, user: str) -> None:
        self._buckets.forget(user)
