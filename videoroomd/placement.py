"""Placement: which of several candidates takes a new room (pure, synchronous).

The same policy picks a media worker for a room inside a daemon today and
will pick a node for a room among several daemons tomorrow, so it sits at
the top of the package, imports nothing from it, and knows candidates only
by name and load. The caller turns what it knows (worker heartbeats, a
node's published load) into :class:`Candidate` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Candidate:
    """One place a room could run, and its load as last reported."""

    name: str
    rooms: int = 0           # rooms it carries now
    cpu: float = 0.0         # CPU it used lately, in cores (1.0: one core busy)
    alive: bool = True       # False: it is not running, or its heartbeat stopped
    age: float = 0.0         # seconds since its load was reported


class Placement(Protocol):
    """A policy: the candidate a new room goes to, or None when none may take it."""

    def pick(self, candidates: Sequence[Candidate]) -> Candidate | None: ...


@dataclass(frozen=True)
class LeastLoaded:
    """The live candidate with the fewest rooms; among equals, the one using the least CPU, then the first.

    Rooms come first because a room's cost arrives with its participants, after
    placement: ranked by CPU alone, a burst of new rooms would all land on the
    candidate that is idle at that instant. ``max_age``: a candidate whose load
    is older than this many seconds counts as dead (None: any age will do).
    """

    max_age: float | None = None

    def pick(self, candidates: Sequence[Candidate]) -> Candidate | None:
        live = [c for c in candidates if c.alive and (self.max_age is None or c.age <= self.max_age)]
        return min(live, key=lambda c: (c.rooms, c.cpu), default=None)  # min keeps the first of equals
