"""This daemon as one node of a cluster: its Redis client, the directories on it, and its heartbeat.

Made only when the config has a ``[cluster]`` table. The daemon hands the
room directory to its room registry (``rooms``, ``node_id`` as the lease
owner) and runs :meth:`ClusterNode.run` for as long as its rooms run.
"""

from __future__ import annotations

import secrets
import socket
import time
from typing import Callable

import structlog
import trio

from ..config import Config
from ..config.redis_url import masked
from ..rooms.local_link import LocalRoomService
from .heartbeat import NodeHeartbeat
from .metrics import ClusterCollector
from .records import NodeLoad
from .cluster_service import ClusterRoomService
from .link_bus import LinkBus
from .redis_client import make_client, opened
from .redis_chat import RedisChatStore
from .room_view import ClusterRoomView
from .redis_directory import RedisRoomDirectory
from .redis_nodes import RedisNodeDirectory

log = structlog.get_logger("videoroomd.cluster")


def node_id(config: Config) -> str:
    """``[cluster] node_id``, else the host name."""
    return config.cluster.node_id or socket.gethostname()


def advertised_address(config: Config) -> str:
    """Where others reach this node: ``[cluster] advertise``, else ``[ice] announced_ip``, else the listen address."""
    return config.cluster.advertise or config.ice.announced_ip or config.server.listen


class ClusterNode:
    """The node's Redis and what lives there. ``load()`` gives this node's counts for its heartbeat:
    a dict of NodeLoad's workers, rooms, participants, cpu and draining."""

    def __init__(self, config: Config, counts: Callable[[], dict]):
        assert config.cluster.redis is not None, "a ClusterNode needs [cluster] redis"
        self.node_id = node_id(config)
        self.advertise = advertised_address(config)
        self.lease_ttl = config.cluster.lease_ttl
        self.incarnation = secrets.token_hex(8)  # this run of the node
        self._url = config.cluster.redis
        self._counts = counts
        self.client = make_client(self._url)
        self.rooms = RedisRoomDirectory(self.client)
        self.nodes = RedisNodeDirectory(self.client)
        self.chat = RedisChatStore(self.client, self.lease_ttl)
        self.heartbeat = NodeHeartbeat(self.nodes, self.load, config.cluster.heartbeat)
        self.bus = LinkBus(self.client, self.node_id)
        self.service: ClusterRoomService | None = None
        self.view: ClusterRoomView | None = None
        self._scope: trio.CancelScope | None = None
        self._closed = False

    def stats(self) -> dict:
        """What /metrics shows of the cluster (:class:`~.metrics.ClusterCollector`)."""
        return {"redis_up": self.heartbeat.connected, "heartbeat_failures": self.heartbeat.failures,
                "malformed": {"lease": self.rooms.malformed, "node": self.nodes.malformed, "link": self.bus.malformed,
                              "chat": self.chat.malformed},
                "chat_dropped": self.chat.dropped, "link_overrun": self.bus.overrun,
                "joins_refused": self.service.refused_no_directory if self.service is not None else 0,
                "api_calls": {"timeout": self.service.calls.timed_out if self.service is not None else 0,
                              "busy": self.service.calls.refused if self.service is not None else 0}}

    def degraded(self) -> str | None:
        """What this node cannot do now, for /healthz; None when Redis answers."""
        if self.heartbeat.connected:
            return None
        return ("Redis does not answer: calls in progress go on; joins of rooms that do not run on this node "
                "are refused until it answers")

    def room_service(self, local: LocalRoomService) -> ClusterRoomService:
        """The daemon's room service: ``local``'s rooms, and those of the other nodes over Redis."""
        self.view = ClusterRoomView(self.nodes, self.node_id, local.snapshot, self.heartbeat.interval)
        self.service = ClusterRoomService(local, self.rooms, self.bus, nodes=self.nodes, view=self.view)
        return self.service

    def collector(self) -> ClusterCollector:
        """A Prometheus collector of :meth:`stats`, for the daemon's registry."""
        return ClusterCollector(self.stats)

    def load(self) -> NodeLoad:
        return NodeLoad(self.node_id, self.advertise, at=time.time(), incarnation=self.incarnation, **self._counts())

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Open the Redis client and beat until :meth:`close` (then withdraw the node); ``started`` after
        the first beat, whether Redis answered or not: a node starts without Redis, and says so.

        Shielded: a cancellation of the daemon does not close Redis under the
        rooms, which give their leases up on their way out; the daemon calls
        :meth:`close` once they did, and the withdrawal and the closing are bounded."""
        log.info("cluster node", node=self.node_id, advertise=self.advertise, redis=masked(self._url))
        with trio.CancelScope(shield=True):
            async with opened(self.client):
                async with trio.open_nursery() as nursery:
                    self._scope = nursery.cancel_scope
                    if self._closed:
                        nursery.cancel_scope.cancel()
                    await nursery.start(self.heartbeat.run)
                    await nursery.start(self.chat.run)
                    if self.service is not None:
                        await nursery.start(self.service.run)
                    if self.view is not None:
                        await nursery.start(self.view.run)
                    if not self.heartbeat.connected:
                        log.warning("cluster: Redis does not answer; rooms cannot start until it does",
                                    redis=masked(self._url))
                    task_status.started()
                    await trio.sleep_forever()

    def close(self) -> None:
        """End :meth:`run`: the rooms have let go of their leases (or never will)."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
