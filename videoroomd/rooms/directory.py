"""Where each room runs: one lease per room name, claimed, renewed and released.

A room runs in one place at a time: one daemon today, one node of several
once rooms are shared through Redis. Whoever runs a room holds its
:class:`Lease`, the equivalent of Redis ``SET room owner NX PX ttl``: a claim
is refused while someone else's lease is live, a lease ends at ``expires``
unless renewed, and each claim carries a fencing token that grows with every
claim. A holder whose lease expired or was taken finds out at its next
:meth:`~RoomDirectory.renew` (``LeaseLost``) and must stop what it runs
under that lease; a release by an old token is refused, so a holder that
came back too late cannot free a room that runs elsewhere now.

:class:`LocalRoomDirectory` is the in-process implementation: pure and
synchronous, its clock passed in. This module imports nothing from the rest
of the package.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Callable, Protocol

LEASE_TTL = 15.0  # seconds a lease lives without a renewal


@dataclass(frozen=True)
class Lease:
    """The right to run ``room``, held by ``owner`` until ``expires`` (the directory's clock)."""

    room: str
    owner: str            # who runs the room: this daemon today, a node tomorrow
    token: int            # fencing token: larger for every later claim of any room
    expires: float
    worker: str | None = None  # where inside the owner the room's media runs, once known


class RoomTaken(Exception):
    """A claim of a room whose lease someone holds; ``holder`` is that lease."""

    def __init__(self, holder: Lease):
        super().__init__(f"room {holder.room!r} is held by {holder.owner!r} (token {holder.token})")
        self.holder = holder


class LeaseLost(Exception):
    """A renewal or release with a lease that is no longer the room's; the text says why."""

    def __init__(self, lease: Lease, why: str):
        super().__init__(why)
        self.lease = lease
        self.why = why


class RoomDirectory(Protocol):
    """Who runs which room. Every implementation passes ``tests/test_room_directory.py``."""

    def lookup(self, room: str) -> Lease | None:
        """The live lease of ``room``; None when nobody runs it."""
        ...

    def claim(self, room: str, owner: str, *, ttl: float = LEASE_TTL) -> Lease:
        """A new lease of ``room`` for ``owner``, with a fresh token; raises RoomTaken while one is live."""
        ...

    def renew(self, lease: Lease, *, ttl: float = LEASE_TTL, worker: str | None = None) -> Lease:
        """``lease`` extended by ``ttl`` from now (and its ``worker`` noted when given);
        raises LeaseLost when it expired, was released or was taken."""
        ...

    def release(self, lease: Lease) -> None:
        """Give ``room`` up; raises LeaseLost when ``lease`` is no longer the room's (a stale token)."""
        ...


class LocalRoomDirectory:
    """The rooms of one process, in a dict; ``clock`` gives seconds (trio's, or a test's)."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._leases: dict[str, Lease] = {}
        self._tokens = itertools.count(1)  # one sequence for every room: a token is never given twice

    def lookup(self, room: str) -> Lease | None:
        lease = self._leases.get(room)
        if lease is not None and lease.expires <= self._clock():
            del self._leases[room]  # expired: the room is free to claim
            return None
        return lease

    def claim(self, room: str, owner: str, *, ttl: float = LEASE_TTL) -> Lease:
        holder = self.lookup(room)
        if holder is not None:
            raise RoomTaken(holder)
        lease = Lease(room, owner, next(self._tokens), self._clock() + ttl)
        self._leases[room] = lease
        return lease

    def renew(self, lease: Lease, *, ttl: float = LEASE_TTL, worker: str | None = None) -> Lease:
        current = self._current(lease)
        renewed = replace(current, expires=self._clock() + ttl, worker=worker if worker is not None else current.worker)
        self._leases[lease.room] = renewed
        return renewed

    def release(self, lease: Lease) -> None:
        held = self._leases.get(lease.room)
        if held is None or held.token != lease.token:
            raise LeaseLost(lease, _why(lease, held))
        # Released even when it has just expired: nobody else took it, so the room is simply free.
        del self._leases[lease.room]

    def _current(self, lease: Lease) -> Lease:
        """The stored lease ``lease`` names, if it is still live; raises LeaseLost otherwise."""
        held = self.lookup(lease.room)
        if held is None or held.token != lease.token:
            raise LeaseLost(lease, _why(lease, held))
        return held


def _why(lease: Lease, held: Lease | None) -> str:
    if held is None:
        return f"the lease of room {lease.room!r} (token {lease.token}) expired or was released"
    return f"room {lease.room!r} was taken by {held.owner!r} (token {held.token} after {lease.token})"
