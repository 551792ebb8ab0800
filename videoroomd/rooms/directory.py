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

The seam is :class:`RoomDirectory`, async because a shared directory answers
over the network: its callers bound every call with a deadline. The rules
live once, pure and synchronous, in :class:`LeaseTable` (its clock passed
in); :class:`LocalRoomDirectory` is the in-process implementation over it.
This module imports nothing from the rest of the package.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Callable, Protocol

import trio

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
    """Who runs which room. Every implementation passes ``tests/test_room_directory.py``.

    Each call may wait on the network; any of them may also raise what its
    transport raises (OSError, a client's own errors) when the directory
    cannot be reached, and callers treat that as "no answer"."""

    async def lookup(self, room: str) -> Lease | None:
        """Returns the live lease of ``room``; None when nobody runs it."""
        ...

    async def claim(self, room: str, owner: str, *, ttl: float = LEASE_TTL) -> Lease:
        """Returns a new lease of ``room`` for ``owner``, with a fresh token; raises RoomTaken while one is live."""
        ...

    async def renew(self, lease: Lease, *, ttl: float = LEASE_TTL, worker: str | None = None) -> Lease:
        """Returns ``lease`` extended by ``ttl`` from now (and its ``worker`` noted when given);
        raises LeaseLost when it expired, was released or was taken."""
        ...

    async def release(self, lease: Lease) -> None:
        """Gives ``room`` up; raises LeaseLost when ``lease`` is no longer the room's (a stale token)."""
        ...


class LeaseTable:
    """The leases of every room, in a dict: the directory's rules, pure; ``clock`` gives seconds."""

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

    def claim(self, room: str, owner: str, ttl: float) -> Lease:
        holder = self.lookup(room)
        if holder is not None:
            raise RoomTaken(holder)
        lease = Lease(room, owner, next(self._tokens), self._clock() + ttl)
        self._leases[room] = lease
        return lease

    def renew(self, lease: Lease, ttl: float, worker: str | None) -> Lease:
        current = self._current(lease)
        renewed = replace(current, expires=self._clock() + ttl, worker=worker if worker is not None else current.worker)
        self._leases[lease.room] = renewed
        return renewed

    def release(self, lease: Lease) -> None:
        held = self._leases.get(lease.room)
        if held is None or held.token != lease.token:
            raise LeaseLost(lease, lost_because(lease, held))
        # Released even when it has just expired: nobody else took it, so the room is simply free.
        del self._leases[lease.room]

    def _current(self, lease: Lease) -> Lease:
        """The stored lease ``lease`` names, if it is still live; raises LeaseLost otherwise."""
        held = self.lookup(lease.room)
        if held is None or held.token != lease.token:
            raise LeaseLost(lease, lost_because(lease, held))
        return held


class LocalRoomDirectory:
    """The rooms of one process: a :class:`LeaseTable` behind the async seam.

    Each call is a checkpoint (it may be cancelled, and lets other tasks run)
    taken before the table changes, so a cancelled call has changed nothing."""

    def __init__(self, clock: Callable[[], float] = trio.current_time):
        self.table = LeaseTable(clock)

    async def lookup(self, room: str) -> Lease | None:
        await trio.lowlevel.checkpoint()
        return self.table.lookup(room)

    async def claim(self, room: str, owner: str, *, ttl: float = LEASE_TTL) -> Lease:
        await trio.lowlevel.checkpoint()
        return self.table.claim(room, owner, ttl)

    async def renew(self, lease: Lease, *, ttl: float = LEASE_TTL, worker: str | None = None) -> Lease:
        await trio.lowlevel.checkpoint()
        return self.table.renew(lease, ttl, worker)

    async def release(self, lease: Lease) -> None:
        await trio.lowlevel.checkpoint()
        self.table.release(lease)


def lost_because(lease: Lease, held: Lease | None) -> str:
    """Why ``lease`` is no longer the room's, ``held`` being the room's lease now (None: no lease)."""
    if held is None:
        return f"the lease of room {lease.room!r} (token {lease.token}) expired or was released"
    return f"room {lease.room!r} was taken by {held.owner!r} (token {held.token} after {lease.token})"
