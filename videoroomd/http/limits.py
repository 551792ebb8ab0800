"""Open connections, counted in total and per client address against their caps, and what each has proven (pure code).

A connection that has proven nothing yet -- no request head, idle between
requests, or a WebSocket that has not joined a call -- holds its place only
until the house is full: then the oldest such connection gives its place to
the newcomer. A connection in a call, or one being answered, is never pushed
out, so idle connections can never lock out the people already invited or
the health check.

The server sets a connection's :class:`Slot` as :data:`current_slot` for the
task that serves it; the signalling handlers mark it joined and left through
:func:`joined` and :func:`left`.
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from typing import Callable

TOTAL = "max_connections"
PER_ADDRESS = "max_connections_per_address"

# What a connection is doing now; the first three have proven nothing yet.
NO_REQUEST = "no_request"   # accepted, no request head yet
IDLE = "idle"               # kept alive between requests
NOT_JOINED = "not_joined"   # a WebSocket (or its handshake) not in a call
SERVING = "serving"         # a request being answered
JOINED = "joined"           # a WebSocket in a call
UNPROVEN = frozenset({NO_REQUEST, IDLE, NOT_JOINED})


class Slot:
    """One open connection's place: its address, what it is doing, and how to push it out."""

    def __init__(self, owner: "OpenConnections", address: str, evict: Callable[[], None]):
        self.address = address
        self.state = NO_REQUEST
        self.evicted = False
        self._owner = owner
        self._evict = evict

    def mark(self, state: str) -> None:
        """The connection now does ``state`` (one of the names above)."""
        self._owner._moved(self, state)


class OpenConnections:
    """The connections open now; :meth:`open` refuses one over a cap, :meth:`close` gives its place back."""

    def __init__(self) -> None:
        self.total = 0
        self._per_address: Counter[str] = Counter()
        # Each in the order its connections came to it, the oldest first: those that have sent nothing
        # at all go first, then those that once sent a request (idle, or a socket not in a call).
        self._silent: dict[Slot, None] = {}
        self._unproven: dict[Slot, None] = {}

    def open(self, address: str, max_total: int, max_per_address: int,
             evict: Callable[[], None] = lambda: None) -> Slot | str:
        """Count a new connection from ``address``; returns its Slot, or the cap it would pass (and counts nothing).

        ``evict`` ends the connection; it is called when the connection is
        pushed out by :meth:`evict_oldest_unproven`.
        """
        if self._per_address[address] >= max_per_address:
            return PER_ADDRESS
        if self.total >= max_total:
            return TOTAL
        self.total += 1
        self._per_address[address] += 1
        slot = Slot(self, address, evict)
        self._silent[slot] = None
        return slot

    def evict_oldest_unproven(self) -> Slot | None:
        """Push out the connection that has proven nothing for longest, one that never sent a request
        first; None when every one has proven something.

        Its place is given back at once (the connection ends as its evict
        callback makes it); its ``state`` says what it had not done.
        """
        slot = next(iter(self._silent), None) or next(iter(self._unproven), None)
        if slot is None:
            return None
        self.close(slot)
        slot.evicted = True
        slot._evict()
        return slot

    def move(self, slot: Slot, address: str, max_per_address: int) -> bool:
        """Count ``slot`` under ``address`` from now on (a proxy named its client); False, and no change,
        when that address has ``max_per_address`` open already."""
        if slot.address == address or slot.evicted or slot._owner is not self:
            return True
        if self._per_address[address] >= max_per_address:
            return False
        self._per_address[address] += 1
        self._per_address[slot.address] -= 1
        if self._per_address[slot.address] <= 0:
            del self._per_address[slot.address]
        slot.address = address
        return True

    def close(self, slot: Slot) -> None:
        """The connection that :meth:`open` counted has ended (nothing happens a second time)."""
        if slot.evicted or slot._owner is not self:
            return
        slot._owner = _Gone()
        self._silent.pop(slot, None)
        self._unproven.pop(slot, None)
        self.total -= 1
        self._per_address[slot.address] -= 1
        if self._per_address[slot.address] <= 0:
            del self._per_address[slot.address]  # an address with nothing open takes no memory

    def from_address(self, address: str) -> int:
        return self._per_address.get(address, 0)

    @property
    def unproven(self) -> int:
        return len(self._silent) + len(self._unproven)

    def _moved(self, slot: Slot, state: str) -> None:
        slot.state = state
        self._silent.pop(slot, None)
        self._unproven.pop(slot, None)
        if state in UNPROVEN:
            self._unproven[slot] = None  # at the end: its wait starts now


class _Gone:
    """The owner of a slot whose connection has ended: what it does no longer counts."""

    def _moved(self, slot: Slot, state: str) -> None:
        slot.state = state


current_slot: ContextVar[Slot | None] = ContextVar("videoroomd_connection_slot", default=None)


def joined() -> None:
    """The connection served by this task is in a call now: it is never pushed out for a newcomer."""
    slot = current_slot.get()
    if slot is not None:
        slot.mark(JOINED)


def left() -> None:
    """The connection served by this task left its call but stays open: it has proven nothing again."""
    slot = current_slot.get()
    if slot is not None:
        slot.mark(NOT_JOINED)
