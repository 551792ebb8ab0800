"""The daemon's media workers: started, kept running, and given rooms to carry.

:class:`MediaPlane` runs ``count`` workers, each under its own supervision
loop: a worker that exits, hangs or talks nonsense is restarted (with
backoff), and the rooms it carried get a ``lost`` event so that their
participants can be told to reconnect; rooms on the other workers never
notice. Which worker takes a room is the :mod:`~videoroomd.placement`
policy's choice, from each worker's load (its rooms, and the CPU it used
lately by its heartbeats); the room stays there (:class:`RoomLink`), so a
room never spans two workers.

With ``lazy`` (the daemon's way) only the first worker starts with the plane;
each further one starts when placement first puts a room on it, and that room
waits for its start (a worker process: about a second, its imports), so that
a daemon whose calls all fit on one worker does not keep idle ones in memory.
A worker once started is kept running (and restarted) as before.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import structlog
import trio

from ...backoff import Backoff, recent
from ...exception_groups import only_kind
from ...placement import Candidate, LeastLoaded, Placement
from .client import EventSink, LogSettings, MediaError, MediaWorker, TurnSink, WorkerLost
from .commands import CertificatePaths, CloseRoom, Command, LayerEnabled, OpenRoom, TargetLayer

log = structlog.get_logger("videoroomd.media")

RESTART_BACKOFF = Backoff((0.2, 1.0, 2.0, 5.0))  # seconds before restarting a worker that died, by how often it did lately
HEALTHY_AFTER = 60.0                   # seconds a worker must run before its restarts are forgotten
OPEN_TIMEOUT = 10.0                    # seconds to open a room on a worker
CPU_WINDOW = 5.0                       # seconds over which a worker's CPU use is averaged for placement


def worker_count(setting: int | str) -> int:
    """``[media] workers``: a number, or "auto" for one per core this process may use."""
    if setting == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:
            return max(1, os.cpu_count() or 1)
    return int(setting)


class RoomLink:
    """One room's way to the worker that carries it: its commands there, its events to its sink."""

    def __init__(self, worker: MediaWorker, key: str):
        self.worker = worker
        self.key = key

    @property
    def worker_name(self) -> str:
        return self.worker.name

    async def call(self, command: Command, *, timeout: float) -> Any:
        """Send ``command`` (one that names this room by :attr:`key`) and return its result;
        raises MediaError, WorkerLost or trio.TooSlowError."""
        return await self.worker.request(command, timeout=timeout)

    def counters(self) -> dict[str, int]:
        return dict(self.worker.counters.get(self.key, {}))

    async def target_layer(self, endpoint: str, track_id: str, layer: str, *, timeout: float) -> Any:
        """Subscriber ``endpoint`` wants at most ``layer`` of simulcast track ``track_id``."""
        return await self.call(TargetLayer(self.key, endpoint, track_id, layer), timeout=timeout)

    async def layer_enabled(self, track_id: str, layer: str, enabled: bool, *, timeout: float) -> Any:
        """The publisher of ``track_id`` turned its ``layer`` on or off."""
        return await self.call(LayerEnabled(self.key, track_id, layer, enabled), timeout=timeout)

    async def close(self, timeout: float) -> None:
        """Close the room on its worker (its connections end); never raises."""
        self.worker.rooms.pop(self.key, None)
        try:
            await self.call(CloseRoom(self.key), timeout=timeout)
        except (MediaError, WorkerLost, trio.TooSlowError) as error:
            log.info("closing a room's media failed", room=self.key, error=f"{type(error).__name__}: {error}")


WAITING, STARTING, RUNNING, RESTARTING = "waiting", "starting", "running", "restarting"  # a worker's state


class MediaPlane:
    """``count`` media workers (processes, or threads in tests), restarted when they die; with ``lazy``,
    every worker but the first starts when a room is first placed on it."""

    def __init__(self, count: int, mode: str = "process", log_settings: LogSettings = LogSettings(),
                 placement: Placement = LeastLoaded(), data_plane: str = "python", lazy: bool = True):
        self.count = count
        self.lazy = lazy
        self.states = [WAITING] * count  # each worker's state: WAITING (not asked to start yet), STARTING, ...
        self._wanted = [trio.Event() for _ in range(count)]  # set when a room needs the worker started
        self._placing = [0] * count  # rooms waiting for that worker to start
        self.data_plane = data_plane  # [media] data_plane, for every room opened
        self.mode = mode
        self.log_settings = log_settings
        self.placement = placement
        self.workers: list[MediaWorker | None] = [None] * count
        self.restarts = [0] * count
        self.cpu_load = [0.0] * count  # cores each worker used over the last CPU_WINDOW
        self._keys = itertools.count(1)
        self._changed = trio.Event()
        self.turn_events: TurnSink | None = None  # where the workers' TURN events go (the TURN server)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the workers (with ``lazy``, the first only) and keep them running; ``started`` once
        those have started. Never returns; raises WorkerLost when one started here cannot start at all."""
        async with trio.open_nursery() as nursery:
            for index in range(self.count):
                await nursery.start(self._keep, index)
            task_status.started(self)

    async def _keep(self, index: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        name = str(index + 1)
        crashes: list[float] = []
        first = True
        if self.lazy and index > 0:
            first = False  # the daemon runs already: a worker that cannot start is retried like a lost one
            task_status.started()
            await self._wanted[index].wait()
        self._set_state(index, STARTING)
        while True:
            delay = RESTART_BACKOFF.delay(1)
            worker = MediaWorker(name, self.mode, self.log_settings)
            worker.turn_events = self._turn_event
            started = trio.current_time()
            try:
                try:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(worker.run)
                        nursery.start_soon(self._measure_cpu, index, worker)
                        self.workers[index] = worker
                        self._set_state(index, RUNNING)
                        if first:
                            first = False
                            task_status.started()
                except BaseExceptionGroup as group:
                    raise only_kind(group, WorkerLost) or group
            except WorkerLost as error:
                if first:  # a worker that cannot start at all is the operator's to fix: say so and stop
                    raise WorkerLost(f"media worker {name} could not start: {error}") from None
                self.restarts[index] += 1
                now = trio.current_time()
                crashes = recent(crashes, now, HEALTHY_AFTER)
                delay = RESTART_BACKOFF.delay(len(crashes))
                log.error("media worker lost; restarting it", worker=name, error=str(error),
                          ran_s=round(now - started, 1), restart_in_s=delay)
            finally:
                if self.workers[index] is worker:
                    self.workers[index] = None
                    self.cpu_load[index] = 0.0
                self._set_state(index, RESTARTING)
            await trio.sleep(delay)

    async def _measure_cpu(self, index: int, worker: MediaWorker) -> None:
        """Keep ``cpu_load[index]`` at what ``worker`` used over the last CPU_WINDOW; never returns."""
        before, since = worker.cpu_seconds, trio.current_time()
        while True:
            await trio.sleep(CPU_WINDOW)
            now = trio.current_time()
            self.cpu_load[index] = max(0.0, worker.cpu_seconds - before) / (now - since)
            before, since = worker.cpu_seconds, now

    def _turn_event(self, worker: str, message: dict) -> None:
        if self.turn_events is not None:
            self.turn_events(worker, message)

    def running(self, name: str) -> MediaWorker | None:
        """The worker called ``name`` if it is running now."""
        for worker in self.workers:
            if worker is not None and worker.name == name and worker.alive:
                return worker
        return None

    def _set_state(self, index: int, state: str) -> None:
        self.states[index] = state
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def open_room(self, name: str, sink: EventSink, *, ice_servers: list[str], certificate: CertificatePaths | None,
                        addresses: list[str], udp_ports: list[int] | None = None,
                        max_video_bitrate: int | None = None, silence_timeout: float = 15.0,
                        may_start: bool = True) -> RoomLink:
        """Place room ``name`` on the least busy running worker and open it there.

        ``udp_ports``: [FIRST, LAST], the ports the room's host candidates are bound on
        (None: any). ``max_video_bitrate``: bits/s one publisher's video may use, all its
        layers together (None: no cap). ``silence_timeout``: seconds a connected endpoint may send
        nothing before the worker reports it. ``sink`` gets the room's events (:mod:`.events`, and
        RoomLost when the worker goes). A worker not started yet that placement picks is started, and
        the room waits for it (its start is bounded by the worker's own start timeout); with ``may_start``
        false (a room too small to be worth a process) only running workers are candidates. Raises WorkerLost
        when no worker runs or can start within OPEN_TIMEOUT, MediaError when the worker cannot open the room.
        """
        worker = await self._placed(trio.current_time() + OPEN_TIMEOUT, may_start)
        if worker is None:
            raise WorkerLost("no media worker is running")
        key = f"{name}#{next(self._keys)}"
        worker.rooms[key] = sink
        link = RoomLink(worker, key)
        try:
            await link.call(OpenRoom(key, tuple(ice_servers), certificate, tuple(addresses),
                                     (udp_ports[0], udp_ports[1]) if udp_ports else None, max_video_bitrate,
                                     silence_timeout, self.data_plane), timeout=OPEN_TIMEOUT)
        except BaseException:
            worker.rooms.pop(key, None)
            raise
        return link

    async def _placed(self, deadline: float, may_start: bool = True) -> MediaWorker | None:
        """The running worker the placement policy picks for a new room, started first if it was
        waiting; None when none runs or can start by ``deadline``. A start under way is waited for
        past ``deadline``: the worker's own start timeout bounds it (then it counts as lost)."""
        while True:
            index = self._pick(may_start)
            if index is None:
                with trio.move_on_at(deadline):
                    await self._changed.wait()
                if trio.current_time() >= deadline:
                    return None
                continue
            if self.workers[index] is None:  # not started yet: start it, and the room waits for it
                self._wanted[index].set()
                self._placing[index] += 1
                try:
                    while self.states[index] in (WAITING, STARTING):
                        await self._changed.wait()
                finally:
                    self._placing[index] -= 1
            worker = self.workers[index]
            if worker is not None:  # None: its first start failed; it is retried, and the room placed again
                return worker

    def _pick(self, may_start: bool = True) -> int | None:
        """The index of the worker the placement policy picks for a new room; None when none runs or
        can start. A worker not started yet counts with the rooms waiting for it (without ``may_start``,
        not at all)."""
        candidates = []
        for index, worker in enumerate(self.workers):
            if worker is not None:
                candidates.append(Candidate(worker.name, rooms=len(worker.rooms), cpu=self.cpu_load[index],
                                            alive=worker.alive))
            elif may_start and self.states[index] in (WAITING, STARTING):
                candidates.append(Candidate(str(index + 1), rooms=self._placing[index]))
        chosen = self.placement.pick(candidates)
        return None if chosen is None else int(chosen.name) - 1

    def snapshot(self) -> list[dict]:
        """Each worker, for /metrics and the admin view."""
        rows = []
        for index, worker in enumerate(self.workers):
            name = str(index + 1)
            started = self.states[index] != WAITING  # False: it starts when a room is first placed on it
            if worker is None:
                rows.append({"worker": name, "running": False, "started": started, "rooms": 0, "cpu_seconds": 0.0,
                             "packets_forwarded": 0, "restarts": self.restarts[index], "pid": None, "ports": {}})
                continue
            rows.append({
                "worker": name, "running": worker.alive, "started": True, "rooms": len(worker.rooms), "pid": worker.pid,
                "cpu_seconds": worker.cpu_seconds, "restarts": self.restarts[index],
                "packets_forwarded": sum(c.get("packets_forwarded", 0) for c in worker.counters.values()),
                "ports": dict(worker.port_counters),
            })
        return rows
