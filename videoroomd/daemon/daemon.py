"""The daemon's root: rooms, listener, signals, config reloads and the drain on shutdown."""

from __future__ import annotations

import logging
import signal
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import AsyncIterator

import structlog
import trio

from ..config import ClusterConfig, Config, ConfigError, Location, RoomConfig, TurnConfig, WebhooksConfig, load
from ..context import Context
from ..engine.engine import Engine
from ..engine.media_check import MediaCheck
from ..http.app import DaemonApp
from ..http.routes import route_table
from ..http.server import open_listeners, serve
from ..media.workers.client import LogSettings
from ..media.workers.plane import MediaPlane, worker_count
from ..metrics import Metrics
from ..recording.export_job import resume_exports
from ..rooms import RoomRegistry
from ..rooms.local_link import LocalRoomService
from ..turn.clients import TurnCredentials
from ..turn.peers import MediaAddresses
from ..turn.configure import call_scope, issued_servers, turn_service
from ..turn.handoff import WorkerHandoff
from ..webhooks import Webhooks
from .sdnotify import Notifier
from .supervisor import RestartPolicy
from .watch import fingerprint, watch_file

log = structlog.get_logger("videoroomd.daemon")

STOP_GRACE = 1.0  # seconds for sockets to say goodbye after rooms close
# Settings a running daemon cannot change: a reload says so instead of applying them.
RESTART_ONLY = (
    ("server", "host"), ("server", "port"), ("server", "tls_cert"), ("server", "tls_key"),
    ("ice", "addresses"), ("ice", "announced_ip"), ("ice", "udp_ports"), ("media", "workers"),
    ("media", "data_plane"), ("log", "format"), ("log", "file"),
    *(("turn", f.name) for f in fields(TurnConfig)),  # the TURN server is made once, at start
    *(("cluster", f.name) for f in fields(ClusterConfig)),  # so is the node and its Redis client
    *(("webhooks", f.name) for f in fields(WebhooksConfig)),  # and the webhooks' queues and tasks
)


def cluster_node(config: Config, counts):
    """This daemon's :class:`~videoroomd.cluster.node.ClusterNode` (imported only with [cluster])."""
    from ..cluster.node import ClusterNode

    return ClusterNode(config, counts)


class Daemon:
    """One running videoroomd: owns every task under one root nursery."""

    def __init__(
        self,
        location: Location,
        config: Config,
        *,
        notifier: Notifier | None = None,
        watch_interval: float = 1.0,
        policy: RestartPolicy = RestartPolicy(),
        engine_factory=None,
    ):
        """``engine_factory(room_config)`` makes each room's engine; by default the SFU."""
        self.location = location
        self.config = config
        self.notifier = notifier or Notifier({})
        self.watch_interval = watch_interval
        self.draining = False  # a stop has begun: no new joins, /healthz says 503
        self.forced = False
        # The media workers serve the SFU engines; engines of another kind (tests) need none.
        self.media = media_plane(config) if engine_factory is None else MediaPlane(0)
        self._ice = config.ice  # a restart-only setting: reloads do not change it
        # The media sockets relaying may reach; the engines register those their answers offer.
        self.media_addresses = MediaAddresses.for_ice(config.ice.addresses)
        # Per-join TURN credentials (integratedTurnServers); the built-in server joins once it is bound.
        self.turn_credentials = TurnCredentials((), config.turn.credential_lifetime)
        self.cluster = cluster_node(config, self._node_counts) if config.cluster.enabled else None
        where = {} if self.cluster is None else dict(  # with [cluster], rooms are claimed in Redis, and their
            directory=self.cluster.rooms, owner=self.cluster.node_id,  # calls go on while Redis is away
            lease_ttl=self.cluster.lease_ttl, ride_out=True, chat_store=self.cluster.chat)
        self.webhooks = Webhooks(config.webhooks)  # what the rooms tell of themselves goes there
        self.rooms = RoomRegistry(config, engine_factory or self._engine, policy, events=self.webhooks, **where)
        self.metrics = Metrics(self.rooms.snapshot, self.media.snapshot)
        self.metrics.registry.register(self.webhooks.collector())
        if self.cluster is not None:
            self.metrics.registry.register(self.cluster.collector())
        self.turn = turn_service(config, self.media_addresses.contains, self.media_addresses.hosts) if config.turn.enabled else None
        if self.turn is not None:
            # Relayed data moves to the media worker that carries the client's room.
            self.turn.handoff = WorkerHandoff(self.media, self.media_addresses, self.turn.worker_event)
            # It allocates only for participants in a call, and ends their allocations when they leave.
            self.turn.may_allocate = self.turn_credentials.may_allocate
            self.turn.scope = call_scope(self.turn_credentials, self.media_addresses)
            self.turn_credentials.on_revoke.append(self.turn.release_user)
            self.metrics.watch_turn(self.turn.stats)
        # The check page's peer connections: bounded on their own, never a room's participants.
        self.media_check = MediaCheck(self.media, config.ice, turn=self.turn_credentials if self.turn is not None else None,
                                      media_addresses=self.media_addresses)
        self.metrics.watch_checks(lambda: vars(self.media_check.counts))
        # What the handlers may read of the daemon; the getters follow reloads and the drain.
        self.context = Context(config=lambda: self.config, metrics=self.metrics, draining=lambda: self.draining,
                               rooms=self._room_service(), turn=self.turn_credentials,
                               media_snapshot=self.media.snapshot,
                               degraded=self.cluster.degraded if self.cluster is not None else lambda: None,
                               media_check=self.media_check.offer)
        self.app = DaemonApp(self.context, route_table(self.context))
        self.address: tuple[str, int] | None = None
        self._stop = trio.Event()
        # What the file looked like when it was loaded: a save after this is a change.
        self._loaded_fingerprint = fingerprint(location.path) if location.path is not None else None

    def _room_service(self):
        """The rooms as handlers see them: this daemon's, and with [cluster] every node's."""
        local = LocalRoomService(self.rooms)
        return local if self.cluster is None else self.cluster.room_service(local)

    @asynccontextmanager
    async def _cluster_running(self, nursery: trio.Nursery) -> AsyncIterator[None]:
        """With [cluster]: the node's Redis and heartbeat, run in ``nursery`` for the block, which the
        rooms run in; closed once the block ended (the rooms gave their leases up), however it ended."""
        if self.cluster is None:
            yield
            return
        try:
            await nursery.start(self.cluster.run)
            yield
        finally:
            self.cluster.close()

    def _node_counts(self) -> dict:
        """This daemon's load, as its cluster heartbeat publishes it."""
        return dict(workers=sum(1 for row in self.media.snapshot() if row["running"] or not row["started"]), rooms=len(self.rooms.entries),
                    participants=self.rooms.total_peers(), cpu=sum(self.media.cpu_load), draining=self.draining)

    def _engine(self, room: RoomConfig) -> Engine:
        return Engine(self.media, self._ice, room, turn=self.turn_credentials, media_addresses=self.media_addresses,
                      recording=lambda: self.config.recording)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> int:
        """Run until stopped by a signal or :meth:`shutdown`; returns the exit status.

        ``task_status.started`` gets the bound ``(host, port)``. Raises
        ListenError when the port cannot be opened.
        """
        listeners, scheme, self.address = await open_listeners(self.config.server)
        if self.turn is not None:
            await self.turn.open()
            self.turn_credentials.builtin = issued_servers(self.turn, self.config)
        async with trio.open_nursery() as outer:
            # The media workers outlive the rooms, so that their engines can close their connections.
            await outer.start(self.media.run)
            await outer.start(self.webhooks.run)  # outlives the rooms too, to tell that they ended
            async with self._cluster_running(outer):  # Redis open before the rooms claim, until they let go
                async with trio.open_nursery() as nursery:
                    await nursery.start(self._handle_signals)
                    await nursery.start(self.rooms.run)
                    await nursery.start(self.media_check.run)
                    nursery.start_soon(serve, listeners, scheme, self.app)
                    nursery.start_soon(resume_exports, self.config.recording.directory)  # cut by the last stop
                    if self.turn is not None:
                        await nursery.start(self.turn.run)
                    host = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
                    log.info("listening", address=f"{scheme}://{host}:{self.address[1]}")
                    if self.location.path is not None and self.watch_interval > 0:
                        nursery.start_soon(
                            watch_file, self.location.path, self.watch_interval, self._file_changed, self._loaded_fingerprint
                        )
                    if self.notifier.watchdog_interval:
                        nursery.start_soon(self._watchdog, self.notifier.watchdog_interval)
                    rooms = ", ".join(self.config.rooms) or "dynamic"
                    self.notifier.ready(f"serving rooms: {rooms}")
                    log.info("ready", config=self.config.source, rooms=list(self.config.rooms))
                    task_status.started(self.address)
                    await self._stop.wait()
                    nursery.cancel_scope.cancel()
            if not self.forced:  # the rooms have ended: their last events go out, a hung endpoint bounded
                await self.webhooks.flush(min(self.webhooks.config.timeout, self.config.server.drain_timeout))
            outer.cancel_scope.cancel()
        log.info("stopped", forced=self.forced)
        self.notifier.close()
        return 1 if self.forced else 0

    # -- signals -----------------------------------------------------------------------
    async def _handle_signals(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1) as signals:
            task_status.started()
            async with trio.open_nursery() as nursery:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if signum in (signal.SIGTERM, signal.SIGINT):
                        if self.draining:
                            log.warning("second stop signal: exiting now", signal=name)
                            self.forced = True
                            self._stop.set()
                        else:
                            nursery.start_soon(self.shutdown, name)
                    elif signum == signal.SIGHUP:
                        await self.reload(f"signal {name}")
                    elif signum == signal.SIGUSR1:
                        reopen_log_files()

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await trio.sleep(interval)

    # -- reload ------------------------------------------------------------------------
    async def _file_changed(self) -> None:
        await self.reload("config file changed")

    async def reload(self, why: str) -> bool:
        """Re-read the configuration and apply it; returns False (and keeps the old one) on error."""
        if self.draining:
            return False
        self.notifier.reloading()
        try:
            new = load(self.location)
        except ConfigError as error:
            log.error(
                "reload refused; still running the previous configuration",
                why=why, problems=[str(p) for p in error.problems],
            )
            self.notifier.ready("reload refused: see the log")
            return False
        old = self.config
        for section, key in RESTART_ONLY:
            if getattr(getattr(old, section), key) != getattr(getattr(new, section), key):
                log.warning("setting changed; it takes effect after a restart", key=f"{section}.{key}")
        if old.log.level != new.log.level:
            logging.getLogger().setLevel(new.log.level.upper())
        self.app.rate_limit.rate = float(new.server.connections_per_second)
        self.config = new
        try:
            summary = self.rooms.apply(new, new.server.drain_timeout)
        finally:
            self.notifier.ready(f"serving rooms: {', '.join(new.rooms) or 'dynamic'}")
        log.info(
            "configuration reloaded", why=why, added=list(summary.added), removed=list(summary.removed),
            changed=list(summary.changed), restarted=list(summary.restarted), untouched=list(summary.untouched),
        )
        return True

    # -- shutdown ----------------------------------------------------------------------
    async def shutdown(self, why: str = "requested") -> None:
        """Stop taking joins, let calls finish until ``drain_timeout``, then stop. Returns when stopped."""
        if self.draining:
            return
        self.draining = True
        self.notifier.stopping()
        reason = "the server is shutting down"
        self.rooms.refuse_all("shutting_down", reason)
        timeout = self.config.server.drain_timeout
        log.info("draining", why=why, peers=self.rooms.total_peers(), timeout_s=timeout)
        with trio.move_on_after(timeout):
            while self.rooms.total_peers():
                await trio.sleep(0.1)
        left = self.rooms.total_peers()
        if left:
            log.info("drain timeout: closing the remaining calls", peers=left)
        # Clients are told to come back: a stop is most often a restart or an upgrade.
        self.rooms.stop_all(reason, rejoin=True)
        if self.cluster is not None and self.cluster.service is not None:
            self.cluster.service.edge.end_all(reason)  # its clients in rooms elsewhere rejoin through another node
        await trio.sleep(STOP_GRACE if left else 0)
        self._stop.set()


def media_plane(config: Config) -> MediaPlane:
    """The media workers ``[media] workers`` asks for: processes, or 0 for one thread of this process."""
    count = worker_count(config.media.workers)
    settings = LogSettings(config.log.level, config.log.format, config.log.file)
    if count > 0:
        return MediaPlane(count, "process", settings, data_plane=config.media.data_plane)
    return MediaPlane(1, "thread", settings, data_plane=config.media.data_plane)


def reopen_log_files() -> None:
    """SIGUSR1: reopen every log file (for log rotation without copytruncate).

    A file that cannot be opened again (its directory gone, say) is reported and
    the old one kept: a log rotation gone wrong must not end the calls."""
    failed = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                try:
                    stream = handler._open()
                except OSError as error:
                    failed.append((handler.baseFilename, error))
                    continue
                old, handler.stream = handler.stream, stream
                if old is not None:
                    old.close()
            finally:
                handler.release()
    for path, error in failed:
        log.error("log file cannot be reopened; still writing to the one open before", file=path,
                  error=f"{type(error).__name__}: {error.strerror or error}")
    if not failed:
        log.info("log files reopened")
