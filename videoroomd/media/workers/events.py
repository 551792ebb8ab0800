"""What a media worker tells the control plane: one frozen dataclass per event (pure data).

A :class:`Reply` answers each command (same id). The room events name the
room by its key and reach that room's engine as they are; :class:`Stats` is
the heartbeat; the TURN events go to the TURN server. :class:`RoomLost` and
:class:`TurnLost` never cross the link: the control plane's side of a worker
makes them when the worker is gone.

May import: the standard library only (pure data; no trio, asyncio or aiortc).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Reply:
    """The answer to command ``id``: ``ok`` with a ``result`` (any JSON, checked against the
    command's result type by the side that sent it), or not with an ``error`` text."""

    kind: ClassVar[str] = "reply"
    id: int
    ok: bool
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class EndpointState:
    """The media connection of ``endpoint`` changed state (aiortc's connectionState)."""

    kind: ClassVar[str] = "state"
    room: str
    endpoint: str
    state: str


@dataclass(frozen=True)
class Vad:
    """Voice activity on audio track ``track`` started or stopped."""

    kind: ClassVar[str] = "vad"
    room: str
    track: str
    speaking: bool


@dataclass(frozen=True)
class LayerSwitched:
    """Subscriber ``endpoint`` now receives ``layer`` of ``track_id``; reason: other,
    encoding_inactive or low_bandwidth."""

    kind: ClassVar[str] = "layer"
    room: str
    endpoint: str
    track_id: str
    layer: str
    reason: str


@dataclass(frozen=True)
class Bandwidth:
    """What the worker estimates it can send to ``endpoint``, in bits/s."""

    kind: ClassVar[str] = "bandwidth"
    room: str
    endpoint: str
    bps: int


@dataclass(frozen=True)
class Silent:
    """Nothing at all has come from connected ``endpoint`` for ``seconds`` (the room's silence
    timeout): its network is gone. Sent once per silence; the worker keeps the connection
    until the control plane closes it."""

    kind: ClassVar[str] = "silent"
    room: str
    endpoint: str
    seconds: float


@dataclass(frozen=True)
class RecordingEnded:
    """The recording ``recording`` of ``room`` ended by itself: ``reason`` quota (it reached its
    quota) or error (a write failed; ``detail`` says which). Its files are whole up to there; the
    call goes on. (A recording stopped by command is answered by its reply, not this.)"""

    kind: ClassVar[str] = "recording_ended"
    room: str
    recording: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Stats:
    """The heartbeat: CPU seconds used, each room's forwarding counters, the TURN relays', and what the
    compiled module's media sockets counted since the worker started (``Port.counters`` summed, with the
    clients' RTCP dropped unread: ``rtcp_oversized``, ``rtcp_over_budget``)."""

    kind: ClassVar[str] = "stats"
    cpu_seconds: float
    rooms: dict[str, dict[str, int]]
    turn: dict[str, Any] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnControl:
    """A handed TURN client's request (hex), for the daemon to answer."""

    kind: ClassVar[str] = "turn_control"
    relay: str
    data: str


@dataclass(frozen=True)
class TurnClosed:
    """A handed TCP client left."""

    kind: ClassVar[str] = "turn_closed"
    relay: str


@dataclass(frozen=True)
class RoomLost:
    """The worker that carried the room is gone (never on the wire)."""

    reason: str


@dataclass(frozen=True)
class TurnLost:
    """The worker that relayed for handed TURN clients is gone, with its last counters (never on the wire)."""

    reason: str
    counters: dict[str, Any]


Event = (Reply | EndpointState | Vad | LayerSwitched | Bandwidth | Silent | Stats | TurnControl | TurnClosed
         | RecordingEnded)
EVENTS: tuple[type, ...] = Event.__args__  # type: ignore[attr-defined]
RoomEvent = EndpointState | Vad | LayerSwitched | Bandwidth | Silent | RecordingEnded
ROOM_EVENTS: tuple[type, ...] = RoomEvent.__args__  # type: ignore[attr-defined]
TurnEvent = TurnControl | TurnClosed | TurnLost
