"""Open connections, counted in total and per client address, against their caps (pure code)."""

from __future__ import annotations

from collections import Counter

TOTAL = "max_connections"
PER_ADDRESS = "max_connections_per_address"


class OpenConnections:
    """The connections open now; :meth:`open` refuses one over a cap, :meth:`close` gives its place back."""

    def __init__(self) -> None:
        self.total = 0
        self._per_address: Counter[str] = Counter()

    def open(self, address: str, max_total: int, max_per_address: int) -> str | None:
        """Count a new connection from ``address``; returns None, or the cap it would pass (and counts nothing)."""
        if self.total >= max_total:
            return TOTAL
        if self._per_address[address] >= max_per_address:
            return PER_ADDRESS
        self.total += 1
        self._per_address[address] += 1
        return None

    def close(self, address: str) -> None:
        """The connection from ``address`` that :meth:`open` counted has ended."""
        self.total -= 1
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]  # an address with nothing open takes no memory

    def from_address(self, address: str) -> int:
        return self._per_address.get(address, 0)
