"""The commands the control plane sends a media worker: one frozen dataclass each (pure data).

Each names its ``kind`` on the wire and the ``result`` type its reply carries
(checked when the reply arrives, see :func:`.codec.as_type`). Fields are plain
data only (strings, numbers, tuples, string-keyed dicts and the small
dataclasses here): no object, bound method or closure crosses the link.
A command that concerns a room names it by the key the plane gave it
(``lobby#3``), never by an object.

May import: the standard library only (pure data; no trio, asyncio or aiortc).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ...turn.relay_rules import TurnState  # the allocation state a handed TURN client carries

Address = tuple[str, int]  # (ip, port)


@dataclass(frozen=True)
class CertificatePaths:
    """A room's DTLS certificate and key, as files the worker reads."""

    cert: str
    key: str


@dataclass(frozen=True)
class Slot:
    """What one receive mid of an endpoint carries after an answer."""

    mid: str
    track_id: str | None  # None: inactive
    stream_id: str


@dataclass(frozen=True)
class MediaSocket:
    """A UDP socket the worker opened for an endpoint's media (its host candidate)."""

    host: str
    port: int


@dataclass(frozen=True)
class Answered:
    """The result of :class:`Answer`: the answer SDP and the media sockets it offers."""

    sdp: str
    sockets: tuple[MediaSocket, ...]


@dataclass(frozen=True)
class Ping:
    kind: ClassVar[str] = "ping"
    result: ClassVar[object] = None


@dataclass(frozen=True)
class OpenRoom:
    """Open room ``room``. ``udp_ports``: (FIRST, LAST) its host candidates are bound in (None:
    any); ``max_video_bitrate``: bits/s one publisher's video may use (None: no cap);
    ``silence_timeout``: seconds a connected endpoint may send nothing at all before the
    worker reports it (:class:`~.events.Silent`). ``data_plane``: ``[media] data_plane``; with
    "native" the compiled module reads each direct connection's media socket once DTLS is up."""

    kind: ClassVar[str] = "open_room"
    result: ClassVar[object] = None
    room: str
    ice_servers: tuple[str, ...]
    certificate: CertificatePaths | None
    addresses: tuple[str, ...]
    udp_ports: tuple[int, int] | None = None
    max_video_bitrate: int | None = None
    silence_timeout: float = 15.0
    data_plane: str = "python"


@dataclass(frozen=True)
class Answer:
    """Apply endpoint ``endpoint``'s offer (made on the first). ``sending``: its sending mid ->
    track id; ``slots``: what each receive mid carries; ``simulcast``: sending mid -> the RIDs
    it sends, low to high (empty: no simulcast)."""

    kind: ClassVar[str] = "answer"
    result: ClassVar[object] = Answered
    room: str
    endpoint: str
    sdp: str
    sending: dict[str, str]
    slots: tuple[Slot, ...]
    simulcast: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AddCandidate:
    kind: ClassVar[str] = "add_candidate"
    result: ClassVar[object] = None
    room: str
    endpoint: str
    candidate: str
    index: int


@dataclass(frozen=True)
class CloseEndpoint:
    kind: ClassVar[str] = "close_endpoint"
    result: ClassVar[object] = None
    room: str
    endpoint: str


@dataclass(frozen=True)
class ListEndpoints:
    """The endpoints that have a media connection in ``room``."""

    kind: ClassVar[str] = "endpoints"
    result: ClassVar[object] = tuple[str, ...]
    room: str


@dataclass(frozen=True)
class CloseRoom:
    kind: ClassVar[str] = "close_room"
    result: ClassVar[object] = None
    room: str


@dataclass(frozen=True)
class TargetLayer:
    """Subscriber ``endpoint`` wants at most layer ``layer`` of simulcast track ``track_id``;
    the result says whether the worker took it."""

    kind: ClassVar[str] = "target_layer"
    result: ClassVar[object] = bool
    room: str
    endpoint: str
    track_id: str
    layer: str


@dataclass(frozen=True)
class LayerEnabled:
    """The publisher of ``track_id`` turned its layer ``layer`` off or on; the result says
    whether the track has that layer."""

    kind: ClassVar[str] = "layer_enabled"
    result: ClassVar[object] = bool
    room: str
    track_id: str
    layer: str
    enabled: bool


@dataclass(frozen=True)
class HoldTrack:
    """Stop forwarding published track ``track_id`` to anyone (``held``), or forward it again
    (a moderator muted or stopped it); the result says whether the track is published now.
    A hold outlives the track's renegotiation: it ends only with ``held`` false or the room."""

    kind: ClassVar[str] = "hold_track"
    result: ClassVar[object] = bool
    room: str
    track_id: str
    held: bool


@dataclass(frozen=True)
class StartRecording:
    """Record every track of ``room`` into ``directory/room_id/recording_id`` (ids, never names:
    see :mod:`videoroomd.recording.recorder`) until stopped or ``quota`` bytes are written;
    ``meta`` is kept beside the tracks (``recording.json``). The result is the recording's path.
    Refused when one runs already, or the directory is missing or not writable."""

    kind: ClassVar[str] = "start_recording"
    result: ClassVar[object] = str
    room: str
    directory: str
    room_id: str
    recording_id: str
    quota: int
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordingSummary:
    """What a recording wrote: its path, track files, bytes, and why it ended."""

    recording: str
    path: str
    tracks: int
    bytes: int
    ended: str


@dataclass(frozen=True)
class StopRecording:
    """End the recording running in ``room`` (its files flushed and closed); refused when none runs."""

    kind: ClassVar[str] = "stop_recording"
    result: ClassVar[object] = RecordingSummary
    room: str


@dataclass(frozen=True)
class HandedAllocation:
    """A TURN client's allocation, as the worker that relays for it needs it. ``bandwidth``:
    the relays' byte budget per second; ``leftover``: bytes (hex) read from a TCP client but
    not yet framed."""

    relay: str
    transport: str          # udp or tcp
    client: Address
    relay_address: Address
    user: str
    bandwidth: float
    state: TurnState
    peers: tuple[Address, ...]
    leftover: str = ""


@dataclass(frozen=True)
class TurnHandoff:
    """A TURN client the daemon hands to the worker: its socket comes on the handoff socket
    with ``token`` (given by the side that passes the socket)."""

    kind: ClassVar[str] = "turn_handoff"
    result: ClassVar[object] = None
    token: str
    allocation: HandedAllocation


@dataclass(frozen=True)
class TurnUpdate:
    kind: ClassVar[str] = "turn_update"
    result: ClassVar[object] = None
    relay: str
    state: TurnState
    peers: tuple[Address, ...]


@dataclass(frozen=True)
class TurnSend:
    """Bytes (hex) the daemon answered a handed client with."""

    kind: ClassVar[str] = "turn_send"
    result: ClassVar[object] = None
    relay: str
    data: str


@dataclass(frozen=True)
class TurnRelease:
    kind: ClassVar[str] = "turn_release"
    result: ClassVar[object] = None
    relay: str


Command = (Ping | OpenRoom | Answer | AddCandidate | CloseEndpoint | ListEndpoints | CloseRoom | TargetLayer
           | LayerEnabled | HoldTrack | TurnHandoff | TurnUpdate | TurnSend | TurnRelease | StartRecording | StopRecording)
COMMANDS: tuple[type, ...] = Command.__args__  # type: ignore[attr-defined]
TURN_COMMANDS = (TurnHandoff, TurnUpdate, TurnSend, TurnRelease)


@dataclass(frozen=True)
class Request:
    """A command on its way, with the id its reply will carry."""

    id: int
    command: Command
