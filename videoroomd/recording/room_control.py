"""A room's recording as its engine runs it: who may start and stop it, and what everyone is told (trio side).

One :class:`RoomRecording` per engine. It decides; the media worker records
(``StartRecording``/``StopRecording``, :mod:`videoroomd.media.workers.commands`).
Everyone connected hears of each start and stop through a custom media event
(``recordingStarted`` / ``recordingStopped``: the official client logs
unknown custom events and ignores them) and a line in the chat with who did
it; a participant who connects while it runs is told at once.

Who may: in a ``manual`` room, whoever sends the room's ``recording_password``
(custom media event ``recording``), and the operator; in an ``always`` room
nobody stops it (it starts with the room's media and ends with the room).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import structlog
import trio

from ..config.schema import RecordingConfig, RoomConfig
from ..media.workers.commands import StartRecording, StopRecording
from ..media.workers.events import RecordingEnded
from .store import reap_and_measure

log = structlog.get_logger("videoroomd.recording")

MIB = 1024 * 1024
OPERATOR = "the operator"
REASONS = {"quota": "the recording quota was reached", "error": "writing the recording failed",
           "lost": "the media server restarted", "closed": "the room closed"}


class RecordingRefused(Exception):
    """A start or stop that may not happen now; the text says why, for the person who asked."""


@dataclass
class Running:
    recording: str
    by: str
    started: float
    path: str = ""


def room_dir_id(room_name: str) -> str:
    """The directory id of a room's recordings: a digest of its name, never the name itself."""
    return "r" + hashlib.sha256(room_name.encode()).hexdigest()[:20]


def new_recording_id(now: float) -> str:
    """A recording's id: its UTC start time and a random suffix (sorts by time, never guessed)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(4)


class RoomRecording:
    """The recording of one room: ``call`` sends a worker command for the room (its key given by
    ``key()``); ``tell`` sends a media event to every connected endpoint; ``chat_line`` posts a
    line in the room's chat."""

    def __init__(self, config: RoomConfig, settings: Callable[[], RecordingConfig],
                 call: Callable[[object], Awaitable[object]], key: Callable[[], str],
                 tell: Callable[[str, dict], None], chat_line: Callable[[str], None],
                 clock: Callable[[], float] = time.time, export: Callable[[str], None] = lambda path: None):
        self.config = config
        self.settings = settings
        self.call = call
        self.key = key
        self.tell = tell
        self.chat_line = chat_line
        self.clock = clock
        self.export = export  # starts the export of a recording that ended (its path)
        self.running: Running | None = None
        self._busy = trio.Lock()  # a start and a stop one after the other, never two at once

    @property
    def mode(self) -> str:
        return self.config.recording

    def password_ok(self, given: object) -> bool:
        wanted = self.config.recording_password
        return (wanted is not None and isinstance(given, str)
                and hmac.compare_digest(given.encode("utf-8", "replace"), wanted.encode()))

    async def start(self, by: str, *, operator: bool = False) -> str:
        """Start recording (``by``: who, as everyone sees it); returns the recording id. Raises
        RecordingRefused (off, one runs already, the directory missing or not writable, ...)."""
        if self.mode == "off":
            raise RecordingRefused(f"room '{self.config.name}' does not record (recording = \"off\")")
        if self.mode == "always" and not operator and self.running is None:
            raise RecordingRefused("this room records always; its recording starts by itself")
        async with self._busy:
            if self.running is not None:
                raise RecordingRefused(f"a recording runs already (started by {self.running.by})")
            settings = self.settings()
            if settings.directory is None:
                raise RecordingRefused("no [recording] directory is configured")
            now = self.clock()
            recording_id = new_recording_id(now)
            used = await trio.to_thread.run_sync(reap_and_measure, settings.directory, settings.keep_days, now)
            left = settings.quota * MIB - used
            if left <= 0:
                raise RecordingRefused(f"the recording quota of {settings.quota} MiB is used up")
            try:
                path = await self.call(StartRecording(self.key(), str(settings.directory), room_dir_id(self.config.name),
                                               recording_id, left, {"room": self.config.name, "by": by}))
            except Exception as error:  # the worker's refusal says what (directory missing, not writable)
                log.warning("recording could not start", room=self.config.name, error=str(error))
                raise RecordingRefused(f"the recording could not start: {_short(error)}") from None
            self.running = Running(recording_id, by, now, str(path))
        log.info("recording started", room=self.config.name, recording=recording_id, by=by)
        self.tell("recordingStarted", {"recording": recording_id, "by": by})
        self.chat_line(f"{by} started recording this call.")
        return recording_id

    async def stop(self, by: str, *, operator: bool = False) -> str:
        """Stop the running recording; returns its id. Raises RecordingRefused when none runs or,
        in an ``always`` room, for anyone but the operator."""
        if self.mode == "always" and not operator:
            raise RecordingRefused("this room records always; nobody on the page may stop it")
        async with self._busy:
            running = self.running
            if running is None:
                raise RecordingRefused("no recording runs in this room")
            self.running = None
            try:
                await self.call(StopRecording(self.key()))
            except Exception as error:  # gone with its worker: the files are whole up to the last flush
                log.info("stopping the recording on the worker failed", error=str(error))
        self._stopped(running, by, "stopped")
        return running.recording

    def ended(self, event: RecordingEnded) -> None:
        """The worker ended the recording by itself (quota, a write that failed)."""
        running = self.running
        if running is None or running.recording != event.recording:
            return
        self.running = None
        log.warning("recording ended", room=self.config.name, recording=event.recording, reason=event.reason,
                    detail=event.detail)
        self._stopped(running, "", event.reason)

    def lost(self) -> None:
        """The room's worker is gone, and the recording with it (its files whole to the last flush)."""
        if self.running is not None:
            running, self.running = self.running, None
            self._stopped(running, "", "lost")

    def _stopped(self, running: Running, by: str, reason: str) -> None:
        if running.path:
            self.export(running.path)
        self.tell("recordingStopped", {"recording": running.recording, "by": by, "reason": reason})
        if reason == "stopped":
            self.chat_line(f"{by} stopped the recording.")
        else:
            self.chat_line(f"The recording stopped: {REASONS.get(reason, reason)}.")

    def state(self) -> dict | None:
        """What a newly connected participant is told (None: nothing records)."""
        if self.running is None:
            return None
        return {"recording": self.running.recording, "by": self.running.by}


def _short(error: Exception) -> str:
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith(("RecordingError: ", "NotHere: ")) else text
