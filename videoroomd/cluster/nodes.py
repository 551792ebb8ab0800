"""The nodes of a cluster: each publishes its load with a lifetime, and the live ones are listed.

:class:`NodeDirectory` is the seam; :class:`LocalNodeDirectory` keeps the
nodes of one process (tests, a daemon alone), :class:`~.redis_nodes.RedisNodeDirectory`
those sharing a Redis. A node that stops publishing drops out of the list
once its last publication's ``ttl`` has passed. :func:`pick_node` places a
new room on a node with the package's placement policy.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Protocol, Sequence

import trio

from ..placement import Candidate, LeastLoaded, Placement
from .records import NodeLoad


class NodeDirectory(Protocol):
    """The live nodes and their load. Every implementation passes ``tests/test_node_directory.py``.

    Each call may wait on the network and may raise what its transport raises."""

    async def publish(self, load: NodeLoad, *, ttl: float) -> NodeLoad | None:
        """Record ``load`` as its node's, live for ``ttl`` seconds (a node's later publication replaces it);
        returns the live load it replaced (None when there was none, or it was not a load)."""
        ...

    async def withdraw(self, node: str) -> None:
        """Remove ``node`` from the list now (a node that shuts down); returns also when it was not listed."""
        ...

    async def nodes(self) -> list[NodeLoad]:
        """Returns the live nodes' last loads, sorted by node id."""
        ...

    async def place(self, loads: Sequence[NodeLoad], *, ttl: float) -> NodeLoad | None:
        """The node of ``loads`` (as :meth:`nodes` gave them) a new room goes to, by :func:`pick_node` with
        the rooms placed on each that its publications do not count yet (a publication takes off the rooms
        its node gained since the one before; all are forgotten ``ttl`` seconds after the last placement
        there); None when every node drains."""
        ...


class LocalNodeDirectory:
    """The nodes of one process, each with the expiry of its last publication on ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._nodes: dict[str, tuple[NodeLoad, float]] = {}
        self._placed: dict[str, tuple[int, float]] = {}  # rooms placed since a node's publication, and until when

    async def publish(self, load: NodeLoad, *, ttl: float) -> NodeLoad | None:
        await trio.lowlevel.checkpoint()
        previous = self._nodes.get(load.node)
        self._nodes[load.node] = (load, self._clock() + ttl)
        count, until = self._placed.get(load.node, (0, 0.0))
        gained = load.rooms - (previous[0].rooms if previous is not None else 0)  # placed rooms that arrived
        if count - max(0, gained) > 0:
            self._placed[load.node] = (count - max(0, gained), until)
        else:
            self._placed.pop(load.node, None)
        return previous[0] if previous is not None and previous[1] > self._clock() else None

    async def withdraw(self, node: str) -> None:
        await trio.lowlevel.checkpoint()
        self._nodes.pop(node, None)

    async def nodes(self) -> list[NodeLoad]:
        await trio.lowlevel.checkpoint()
        now = self._clock()
        for node in [node for node, (_, expires) in self._nodes.items() if expires <= now]:
            del self._nodes[node]
        return [load for _, (load, _) in sorted(self._nodes.items())]


    async def place(self, loads: Sequence[NodeLoad], *, ttl: float) -> NodeLoad | None:
        await trio.lowlevel.checkpoint()
        now = self._clock()
        placed = {node: count for node, (count, until) in self._placed.items() if until > now}
        picked = pick_node([replace(load, rooms=load.rooms + placed.get(load.node, 0)) for load in loads])
        if picked is not None:
            self._placed[picked.node] = (placed.get(picked.node, 0) + 1, now + ttl)
            picked = next(load for load in loads if load.node == picked.node)
        return picked


def candidates(nodes: Sequence[NodeLoad]) -> list[Candidate]:
    """The nodes as placement sees them: a node's CPU counts per worker, so that a node with more cores
    takes more rooms; a node that drains takes none."""
    return [Candidate(load.node, rooms=load.rooms, cpu=load.cpu / max(load.workers, 1), alive=not load.draining)
            for load in nodes]


def pick_node(nodes: Sequence[NodeLoad], placement: Placement = LeastLoaded()) -> NodeLoad | None:
    """The node a new room goes to, by ``placement``; None when every node drains (or there is none).

    A node's CPU counts per worker, so that a node with more cores takes more rooms."""
    by_name = {load.node: load for load in nodes}
    picked = placement.pick(candidates(nodes))
    return None if picked is None else by_name[picked.name]
