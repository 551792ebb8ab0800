"""The engine's side of its room's recording: the page's requests in, what everyone is told out (trio side).

The decisions are :class:`videoroomd.recording.room_control.RoomRecording`'s;
this module connects it to one engine: the worker link, the connected
endpoints (media events), the room's chat (a line from the server), and
the custom media event ``recording`` a page sends::

    {"type": "custom", "data": {"type": "recording", "data": {"action": "start" | "stop", "password": "..."}}}

answered, when refused, with ``recordingRefused`` ``{"reason": ...}`` to that
participant alone (an ``error`` event would make the official client
disconnect).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Protocol

import structlog

from ..config.schema import RecordingConfig
from ..media.workers.events import RecordingEnded
from ..recording.export_job import run_export
from ..recording.room_control import OPERATOR, RecordingRefused, RoomRecording
from ..rooms.chat import ChatMessage, utc_now
from ..rooms.link import CHAT, ChannelPush
from ..rooms.moderation import ModerationRefused
from . import media_events as ev

log = structlog.get_logger("videoroomd.engine.recording")

CALL_TIMEOUT = 15.0          # seconds a start or stop may take on the worker
WEBHOOK_EVENTS = {"recordingStarted": "recording.started", "recordingStopped": "recording.stopped"}
SERVER_NAME = "videoroomd"   # who the chat shows as saying the recording lines
ACTIONS = ("start", "stop")
MAX_PASSWORD = 256


class Engine(Protocol):
    """What of its engine the recording uses (the engine imports this module, not the other way)."""

    config: Any
    media: Any     # its MediaSide: ``key``, ``call``
    session: Any   # its Session: ``endpoints``
    room: Any      # its Room, once it runs

    def _deliver(self, out: list[tuple[str, str]]) -> None: ...


def _no_settings() -> RecordingConfig:
    return RecordingConfig()


class RecordingSide:
    """One engine's recording; ``settings()`` is the daemon's ``[recording]`` now (reloads replace it)."""

    def __init__(self, engine: Engine, settings: Callable[[], RecordingConfig] | None):
        self.engine = engine
        self.control = RoomRecording(engine.config, settings or _no_settings, self._call, lambda: engine.media.key,
                                     self._tell, self._chat_line, export=self._export)

    def _export(self, path: str) -> None:
        """Make the recording's WebM files in a process of its own (lowest priority), in the engine's
        nursery: a room that stops kills it, leaving the tracks to export again (CLI)."""
        nursery = getattr(self.engine, "_nursery", None)
        if nursery is not None:
            nursery.start_soon(self._run_export, path)

    async def _run_export(self, path: str) -> None:
        status = await run_export(path)
        log.info("recording exported" if status == 0 else "exporting the recording failed", path=path, status=status)
        if status == 0:
            self._emit("recording.ready", recording=Path(path).name)

    async def _call(self, command: object) -> object:
        return await self.engine.media.call(command, CALL_TIMEOUT)

    def _tell(self, kind: str, data: dict) -> None:
        self.engine._deliver([(endpoint_id, ev.custom(kind, data)) for endpoint_id in self.engine.session.endpoints])
        if kind in WEBHOOK_EVENTS:  # and the app, through the room's events (webhooks)
            self._emit(WEBHOOK_EVENTS[kind], **data)

    def _emit(self, event: str, **fields) -> None:
        room = self.engine.room
        if room is not None:
            room.events.emit(event, room.name, **fields)

    def _chat_line(self, text: str) -> None:
        room = self.engine.room
        if room is None:
            return
        message = ChatMessage(str(uuid.uuid4()), "", SERVER_NAME, text, utc_now())
        room.chat_log.messages.append(message)
        room.broadcast(ChannelPush(CHAT, message.payload()), kind="rtc")

    # -- the engine's hooks --------------------------------------------------------------------
    async def opened(self) -> None:
        """The room's media is open (at start, or again after its worker was lost): an ``always``
        room starts recording. A refusal (directory missing, quota) is logged; the call goes on."""
        if self.control.mode != "always" or self.control.running is not None:
            return
        try:
            await self.control.start("the server", operator=True)
        except RecordingRefused as refused:
            log.error("this room records always, but its recording could not start", reason=str(refused))

    def connected(self, endpoint_id: str) -> None:
        """A participant connected: told at once when a recording runs (its page shows the mark)."""
        state = self.control.state()
        if state is not None:
            self.engine._deliver([(endpoint_id, ev.custom("recordingStarted", state))])

    def ended(self, event: RecordingEnded) -> None:
        self.control.ended(event)

    def lost(self) -> None:
        """The room's worker is gone: so is its recording; an ``always`` room starts a new one once
        its media is open again (``opened``, by the engine)."""
        self.control.lost()

    async def client_event(self, peer, event: ev.ClientEvent) -> None:
        """A page's ``recording`` request; refused (to that participant) unless its access token grants
        ``record`` or the password is right."""
        action = ev.field(event, "action", str)
        password = ev.field(event, "password", str, required=False)
        if action not in ACTIONS:
            raise ev.MediaEventError(f"recording: action must be one of {', '.join(ACTIONS)}")
        try:
            if not peer.grants.record and (password is None or len(password) > MAX_PASSWORD
                                           or not self.control.password_ok(password)):
                raise RecordingRefused("wrong recording password" if self.control.config.recording_password
                                       else "only the operator, or an access token granting record, may start or "
                                            "stop this room's recording")
            if action == "start":
                await self.control.start(peer.name)
            else:
                await self.control.stop(peer.name)
        except RecordingRefused as refused:
            log.info("recording request refused", peer=peer.id, action=action, reason=str(refused))
            self.engine._deliver([(peer.id, ev.custom("recordingRefused", {"action": action, "reason": str(refused)}))])

    async def operator(self, action: str) -> str:
        """The operator starts or stops the recording (server API, CLI); returns the recording id.
        Raises ModerationRefused ``recording_refused`` saying why (none to stop, one runs, no directory...)."""
        try:
            if action == "start":
                return await self.control.start(OPERATOR, operator=True)
            return await self.control.stop(OPERATOR, operator=True)
        except RecordingRefused as refused:
            raise ModerationRefused("recording_refused", str(refused)) from None
