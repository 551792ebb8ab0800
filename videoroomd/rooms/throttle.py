"""Wrong-password attempts per client address and room: a burst, then one every few seconds (pure code).

Once an address has used up its attempts on a room, every join it makes
there is refused until the bucket refills, even with the right password:
otherwise a guesser would learn the password from the one join that is
let through.
"""

from __future__ import annotations

import ipaddress
import math

from ..token_buckets import TokenBuckets

BURST = 5             # wrong passwords an address may give a room in a row
SECONDS_PER_TRY = 2.0  # then one more each this many seconds


class PasswordThrottle:
    """Counts wrong passwords by ``(address, room)`` and says how long a throttled address must wait."""

    def __init__(self, burst: int = BURST, seconds_per_try: float = SECONDS_PER_TRY, max_tracked: int | None = None):
        kwargs = {} if max_tracked is None else {"max_tracked": max_tracked}
        self._buckets = TokenBuckets(1.0 / seconds_per_try, burst, **kwargs)

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, address: str, room: str, now: float) -> int:
        """Whole seconds ``address`` must wait before trying ``room`` again (0: it may try now)."""
        return math.ceil(self._buckets.wait((client(address), room), now))

    def wrong(self, address: str, room: str, now: float) -> None:
        """``address`` gave ``room`` a wrong password."""
        self._buckets.take((client(address), room), now)


def client(address: str) -> str:
    """Who is guessing: an IPv4 address, or the /64 of an IPv6 one (a single
    host is commonly given a whole /64, so its addresses are not separate clients)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
