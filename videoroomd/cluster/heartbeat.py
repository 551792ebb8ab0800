"""This node's heartbeat: its load published every interval, so that the others see it alive.

A node starts, and keeps serving its calls, while Redis is away: a
publication that fails is logged once (and again once they work), counted,
and tried again at the next beat. On the way out the node withdraws itself,
so that no room is placed on it while its last publication would still live.
"""

from __future__ import annotations

from typing import Callable

import structlog
import trio

from .nodes import NodeDirectory
from .records import NodeLoad

log = structlog.get_logger("videoroomd.cluster")

LIVES = 3  # a publication lives this many intervals: one late beat does not drop a node
WITHDRAW_TIMEOUT = 2.0


class NodeHeartbeat:
    """Publishes ``load()`` on ``directory`` every ``interval`` seconds while :meth:`run` runs.

    ``failures``: publications that failed; ``connected``: whether the last one went through."""

    def __init__(self, directory: NodeDirectory, load: Callable[[], NodeLoad], interval: float):
        self.directory = directory
        self.load = load
        self.interval = interval
        self.failures = 0
        self.connected = False
        self.beats = 0          # publications that went through
        self.twin_seen = False  # another process published under this node id (logged once)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Beat until cancelled, then withdraw the node (within WITHDRAW_TIMEOUT); never returns otherwise.

        Signals ``started`` after the first beat, whether it went through or not."""
        node = self.load().node
        try:
            await self.beat()
            task_status.started()
            while True:
                await trio.sleep(self.interval)
                await self.beat()
        finally:
            with trio.move_on_after(WITHDRAW_TIMEOUT, shield=True):
                try:
                    await self.directory.withdraw(node)
                except Exception as error:  # its last publication will lapse on its own
                    log.info("node not withdrawn; it drops out when its last load expires", node=node, why=repr(error))

    async def beat(self) -> bool:
        """Publish the load once; returns whether it went through (a failure is logged when the first of a run)."""
        load = self.load()
        try:
            with trio.fail_after(self.interval):
                replaced = await self.directory.publish(load, ttl=self.interval * LIVES)
        except Exception as error:  # Redis away or slow: the calls go on, the next beat tries again
            self.failures += 1
            if self.connected or self.failures == 1:
                log.warning("cluster: cannot publish this node's load; trying again every beat",
                            why="no answer in time" if isinstance(error, trio.TooSlowError) else repr(error))
            self.connected = False
            return False
        if not self.connected and self.failures:
            log.info("cluster: publishing this node's load again")
        self.connected = True
        # At the first beat, another incarnation is this node's previous run, gone; later, a live twin.
        if self.beats and replaced is not None and replaced.incarnation != load.incarnation and not self.twin_seen:
            self.twin_seen = True
            log.error("cluster: another daemon publishes as this node; give each node its own [cluster] node_id",
                      node=load.node, other=replaced.advertise)
        self.beats += 1
        return True
