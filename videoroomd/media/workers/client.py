"""The control plane's side of the message boundary: one media worker, seen from trio.

A :class:`MediaWorker` starts its worker (a process of its own, or a thread
of this process), sends it commands and waits for their replies, hands its
events to the rooms placed on it, and watches its heartbeat. It is gone
(:class:`WorkerLost`) when the process exits, the link closes, a message
cannot be read, or no heartbeat came for ``HEARTBEAT_TIMEOUT`` seconds; then
every pending command fails with WorkerLost and every room on it gets a
:class:`~.events.RoomLost` event. Commands and events are the dataclasses of
:mod:`.commands` and :mod:`.events`, checked by :mod:`.codec` as they arrive.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Union

import structlog
import trio

from ...exception_groups import only_cancelled, only_kind
from .codec import Decoder, MessageError, as_type, encode
from .commands import Command, HandedAllocation, Request, TurnHandoff
from .events import ROOM_EVENTS, Reply, RoomEvent, RoomLost, Stats, TurnClosed, TurnControl, TurnEvent, TurnLost

log = structlog.get_logger("videoroomd.media")

HEARTBEAT_TIMEOUT = 5.0   # seconds without a stats event before a worker counts as hung
START_TIMEOUT = 20.0      # seconds a worker may take to send its first heartbeat
STOP_TIMEOUT = 5.0        # seconds a worker may take to close its rooms and exit

EventSink = Callable[[Union[RoomEvent, RoomLost]], None]
TurnSink = Callable[[str, TurnEvent], None]  # (worker name, the event)
TURN_POST_TIMEOUT = 5.0   # seconds for the worker to take a TURN update


class WorkerLost(Exception):
    """The media worker is gone; the text says how."""


class MediaError(Exception):
    """The media worker could not do what it was asked; the text says why."""


@dataclass(frozen=True)
class LogSettings:
    """How a worker process logs: as the daemon does."""

    level: str = "info"
    format: str = "auto"
    file: Path | None = None


@dataclass(eq=False)
class _Pending:
    done: trio.Event = field(default_factory=trio.Event)
    result_type: Any = None   # what the command's result must be
    reply: Reply | None = None
    result: Any = None
    lost: str | None = None


class MediaWorker:
    """One media worker: a process (``mode="process"``) or a thread (``mode="thread"``)."""

    def __init__(self, name: str, mode: str = "process", log_settings: LogSettings = LogSettings()):
        self.name = name
        self.mode = mode
        self.log_settings = log_settings
        self.rooms: dict[str, EventSink] = {}         # room key -> where its events go
        self.counters: dict[str, dict[str, int]] = {}  # room key -> forwarding counters, from the heartbeat
        self.cpu_seconds = 0.0
        self.port_counters: dict[str, int] = {}  # the compiled module's media sockets, summed, from the heartbeat
        self.pid: int | None = None
        self.alive = False
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._stream: trio.SocketStream | None = None
        self._send_lock = trio.Lock()
        self._beat = trio.Event()
        # The TURN clients handed to this worker: their sockets go over ``_handoff``, the
        # events their requests cause to ``turn_events``; the heartbeat brings the counters.
        self.turn_events: TurnSink | None = None
        self.turn_counters: dict = {}
        self._handoff: socket.socket | None = None
        self._handoff_theirs: socket.socket | None = None
        self._tokens = itertools.count(1)
        self._posts_in, self._posts_out = trio.open_memory_channel(1024)

    # -- running -----------------------------------------------------------------------------
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the worker and serve it until it is gone; raises WorkerLost saying how.

        ``task_status.started`` once its first heartbeat has come. Cancelled, it
        stops the worker (closing its rooms) within STOP_TIMEOUT, killing it after.
        """
        ours, theirs = socket.socketpair()
        self._handoff, self._handoff_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._handoff.setblocking(False)
        why = "stopped"
        try:
            try:
                async with self._launch(theirs) as exited:
                    self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._read)
                        nursery.start_soon(self._post_turn_loop)
                        nursery.start_soon(self._exit_watch, exited)
                        with trio.move_on_after(START_TIMEOUT):
                            await self._beat.wait()
                        if not self._beat.is_set():
                            raise WorkerLost(f"media worker {self.name} sent no heartbeat within {START_TIMEOUT:.0f} s")
                        self.alive = True
                        log.info("media worker started", worker=self.name, pid=self.pid, mode=self.mode)
                        nursery.start_soon(self._heartbeat_watch)
                        task_status.started(self)
            except BaseExceptionGroup as group:
                raise only_kind(group, WorkerLost) or group
        except WorkerLost as error:
            why = str(error)
            raise
        finally:
            self.alive = False
            for pending in self._pending.values():
                pending.lost = why
                pending.done.set()
            for sink in list(self.rooms.values()):
                sink(RoomLost(why))
            self.rooms.clear()
            if self.turn_events is not None:
                self.turn_events(self.name, TurnLost(why, self.turn_counters))
                self.turn_counters = {}  # counted as the retired worker's from now on
            ours.close()
            self._handoff.close()
            self._handoff_theirs.close()

    @asynccontextmanager
    async def _launch(self, theirs: socket.socket) -> AsyncIterator[trio.Event]:
        """Start the worker on ``theirs`` (and the handoff socket); yields an event set when it has exited. Stops it on exit."""
        exited = trio.Event()
        handoff = self._handoff_theirs
        assert handoff is not None
        if self.mode == "thread":
            from . import event_loop
            from .server import serve  # aiortc is imported by the process that runs the media only

            def run_thread() -> None:
                try:
                    event_loop.run(serve(theirs, time.thread_time, handoff=handoff))
                finally:
                    theirs.close()

            thread = threading.Thread(target=run_thread, name=f"media-{self.name}", daemon=True)
            thread.start()
            self.pid = os.getpid()
            try:
                yield exited
            finally:
                if self._stream is not None:
                    with trio.move_on_after(STOP_TIMEOUT) as cleanup:
                        cleanup.shield = True
                        await self._stream.aclose()  # the end of the link closes the thread's rooms
                        await trio.to_thread.run_sync(thread.join, STOP_TIMEOUT, abandon_on_cancel=True)
            return
        settings = self.log_settings
        argv = [sys.executable, "-m", "videoroomd.media.workers.process", "--fd", str(theirs.fileno()), "--parent", str(os.getpid()),
                "--handoff-fd", str(handoff.fileno()), "--name", self.name, "--log-level", settings.level, "--log-format", settings.format]
        if settings.file is not None:
            argv += ["--log-file", str(settings.file)]
        # Started from this (trio's) thread, not a helper thread: the worker's parent-death
        # signal fires when the thread that forked it ends, and this one lives as long as
        # the daemon (trio's thread cache lets an idle helper thread go after 10 s).
        process = subprocess.Popen(argv, pass_fds=(theirs.fileno(), handoff.fileno()), start_new_session=True, stdin=subprocess.DEVNULL)
        theirs.close()
        handoff.close()
        self.pid = process.pid
        pidfd = os.pidfd_open(process.pid)

        async def wait() -> None:
            await trio.lowlevel.wait_readable(pidfd)  # readable once the process has ended
            process.wait()
            exited.set()

        async def reap() -> None:
            # Polled rather than waited for through the pidfd: ``wait`` may still be on it.
            while process.poll() is None:
                await trio.sleep(0.05)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                graceful = True  # a stop, rather than a worker that died, hung or spoke nonsense
                try:
                    yield exited
                except BaseException as error:
                    graceful = only_cancelled(error)
                    raise
                finally:
                    if graceful:
                        with trio.move_on_after(STOP_TIMEOUT) as cleanup:
                            cleanup.shield = True
                            if self._stream is not None:
                                await self._stream.aclose()  # the worker closes its rooms and exits
                            await reap()  # (the task that sets ``exited`` may be cancelled by now)
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    await reap()
            os.close(pidfd)

    async def _exit_watch(self, exited: trio.Event) -> None:
        await exited.wait()
        raise WorkerLost(f"media worker {self.name} exited")

    async def _heartbeat_watch(self) -> None:
        while True:
            with trio.move_on_after(HEARTBEAT_TIMEOUT):
                await self._beat.wait()
                self._beat = trio.Event()
                continue
            raise WorkerLost(f"media worker {self.name} sent no heartbeat for {HEARTBEAT_TIMEOUT:.0f} s")

    async def _read(self) -> None:
        assert self._stream is not None
        decoder = Decoder()
        while True:
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                raise WorkerLost(f"media worker {self.name} closed its link")
            try:
                for message in decoder.feed(data):
                    self._dispatch(message)
            except MessageError as error:
                log.error("media worker sent what is not a message; giving it up", worker=self.name, error=str(error))
                raise WorkerLost(f"media worker {self.name} sent a malformed message: {error}") from None

    def _dispatch(self, message: Any) -> None:
        """Hand one decoded message to whom it concerns; raises MessageError for a command."""
        if isinstance(message, Reply):
            pending = self._pending.get(message.id)
            if pending is not None:
                if message.ok:  # a result of another type is as bad as a malformed message
                    pending.result = as_type(message.result, pending.result_type, f"reply {message.id}: result")
                pending.reply = message
                pending.done.set()
        elif isinstance(message, Stats):
            self.cpu_seconds = message.cpu_seconds
            self.counters = message.rooms
            self.turn_counters = message.turn
            self.port_counters = message.ports
            self._beat.set()
        elif isinstance(message, (TurnControl, TurnClosed)):
            if self.turn_events is not None:
                self.turn_events(self.name, message)
        elif isinstance(message, ROOM_EVENTS):
            sink = self.rooms.get(message.room)
            if sink is not None:
                sink(message)
        else:
            raise MessageError(f"{message.command.kind} is a command, not an event")

    # -- commands ----------------------------------------------------------------------------
    async def request(self, command: Command, *, timeout: float) -> Any:
        """Send ``command`` and return its result, of the command's ``result`` type.

        Raises MediaError when the worker refused or failed it, WorkerLost when the
        worker is gone or its result is not of that type, and trio.TooSlowError when
        no reply came within ``timeout``.
        """
        if not self.alive or self._stream is None:
            raise WorkerLost(f"media worker {self.name} is not running")
        request_id = next(self._ids)
        pending = self._pending[request_id] = _Pending(result_type=type(command).result)
        try:
            with trio.fail_after(timeout):
                async with self._send_lock:
                    try:
                        await self._stream.send_all(encode(Request(request_id, command)))
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        raise WorkerLost(f"media worker {self.name} closed its link") from None
                await pending.done.wait()
        finally:
            del self._pending[request_id]
        if pending.lost is not None:
            raise WorkerLost(pending.lost)
        assert pending.reply is not None
        if not pending.reply.ok:
            raise MediaError(pending.reply.error or "failed")
        return pending.result

    # -- TURN clients handed to this worker ----------------------------------------------------
    async def hand_turn(self, fd: int, allocation: HandedAllocation, *, timeout: float) -> None:
        """Pass the socket ``fd`` (a duplicate: the caller closes its own) and its TURN
        ``allocation`` to the worker, which relays for it from now on.

        Raises MediaError, WorkerLost, trio.TooSlowError, or OSError when the socket
        could not be passed."""
        if not self.alive or self._handoff is None:
            raise WorkerLost(f"media worker {self.name} is not running")
        token = str(next(self._tokens))
        socket.send_fds(self._handoff, [token.encode()], [fd])
        await self.request(TurnHandoff(token, allocation), timeout=timeout)

    def post_turn(self, command: Command) -> None:
        """Send TURN ``command`` without waiting; commands posted go in order. A worker
        that cannot take it is logged: its relayed clients end with it anyway."""
        try:
            self._posts_in.send_nowait(command)
        except trio.WouldBlock:
            log.warning("too many TURN updates waiting for a media worker; one dropped", worker=self.name,
                        command=command.kind)

    async def _post_turn_loop(self) -> None:
        async for command in self._posts_out:
            try:
                await self.request(command, timeout=TURN_POST_TIMEOUT)
            except (MediaError, trio.TooSlowError) as error:
                log.info("a TURN command to a media worker failed", worker=self.name, command=command.kind,
                         error=f"{type(error).__name__}: {error}")
            except WorkerLost:
                return
