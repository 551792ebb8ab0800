"""Who publishes what, who receives what, and when each client must renegotiate (pure code).

One :class:`Session` per room. Its methods take what a client said and
return the media events to send, as ``(endpoint_id, text)`` pairs; they
never touch a socket or a peer connection. The rules come from the
client's code (docs/media-events.md, "Server checklist"):

- one negotiation in flight per client: ``offerData`` is sent when the
  client is idle, otherwise a renegotiation is marked pending;
- every ``tracksAdded``/``tracksRemoved`` is followed by a renegotiation;
- no ``offerData`` until the client has had ``ANSWER_SETTLE`` seconds to apply
  the last answer: the official client (0.7.1) applies it asynchronously, and
  an ``offerData`` that arrives meanwhile never gets its ``sdpOffer``;
- ``tracksTypes`` never goes below the receive slots a client already has;
- a freed receive slot is answered ``inactive`` once before it is reused;
- ``tracksRemoved`` only for tracks that were mapped in an answer to that
  client, always before ``endpointRemoved``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from . import media_events as ev
from ..auth.tokens import EVERYONE, Grants
from ..sdp.offer import MAX_MEDIA_LINES, SessionDescription

Outbox = list[tuple[str, str]]
KINDS = ("audio", "video")
# Distinct mids one client's offers may bring in all: the server keeps a transceiver for each
# mid it was ever offered, and offers with fresh mids every time would add up for good.
MAX_MIDS = 2 * MAX_MEDIA_LINES
MAX_SCREENS = 1  # shared screens per person (a video track whose metadata has "type": "screen")
ANSWER_SETTLE = 0.25  # seconds after an answer before the next offerData to that client (see the rules above)


def is_screen(metadata: Any) -> bool:
    """Whether a track's metadata says it is a shared screen, window or tab."""
    return isinstance(metadata, dict) and metadata.get("type") == "screen"


def _named(metadata: Any, name: str | None) -> Any:
    """``metadata`` with ``displayName`` set to ``name`` (an access token's: the client cannot show
    another); unchanged when ``name`` is None."""
    if name is None:
        return metadata
    return {**metadata, "displayName": name} if isinstance(metadata, dict) else {"displayName": name}


def _source(kind: str, metadata: Any) -> str:
    """What a track publishes, as a grant names it: audio, video or screen."""
    return "screen" if is_screen(metadata) else kind


@dataclass
class Track:
    id: str
    endpoint_id: str
    kind: str
    metadata: Any
    mid: str  # the publisher's m-line
    speaking: bool = False
    rids: tuple[str, ...] = ()  # its simulcast layers, low to high; () when it sends one stream
    disabled: set[str] = field(default_factory=set)  # layers its publisher turned off

    @property
    def simulcast(self) -> dict:
        return ev.simulcast_config(self.rids, self.disabled)

    def entry(self) -> dict:
        return ev.track_entry(self.metadata, self.simulcast)


@dataclass
class Slot:
    """A receive m-line of one client, and the remote track it carries now (if any)."""

    kind: str
    track_id: str | None = None
    stream_id: str = ""


@dataclass
class Endpoint:
    id: str
    metadata: Any = None
    tracks: dict[str, Track] = field(default_factory=dict)   # published, in order
    slots: dict[str, Slot] = field(default_factory=dict)     # mid -> receive slot
    announced: set[str] = field(default_factory=set)         # remote tracks this client knows of
    negotiated: set[str] = field(default_factory=set)        # remote tracks mapped in an answer to it
    negotiating: bool = False
    pending: bool = False
    answered_once: bool = False
    media_up: bool = False  # its connection reached "connected" at least once
    answers: int = 0        # answers sent to it
    settling: int = 0       # the answer it may still be applying (its number; 0: none)
    mids: set[str] = field(default_factory=set)  # every mid its answered offers had
    targets: dict[str, str] = field(default_factory=dict)  # simulcast track -> the layer it asked for
    publish: frozenset[str] = EVERYONE.publish  # what it may publish (its grants): its other send m-lines are refused
    subscribe: bool = True             # whether it may receive the others' tracks
    name: str | None = None            # the display name its access token gave: its metadata always says it


@dataclass(frozen=True)
class Plan:
    """What answering one offer does: the engine makes the SDP answer from it, then calls ``answered``."""

    endpoint_id: str
    publish: tuple[Track, ...]           # tracks new in this offer
    unpublish: tuple[Track, ...]         # tracks this offer no longer sends
    sending: dict[str, str]              # the client's sending mid -> its track id
    forward: dict[str, Slot]             # the client's receive mid -> the slot after this answer
    inactive: tuple[str, ...]            # receive mids that carry nothing this time
    mids: frozenset[str] = frozenset()   # every mid of the offer

    @property
    def mid_to_track_id(self) -> dict[str, str]:
        mapping = dict(self.sending)
        mapping.update({mid: slot.track_id for mid, slot in self.forward.items() if slot.track_id})
        return mapping


class SessionError(Exception):
    """A client asked for something that does not fit the session (e.g. an offer before connect)."""


class Session:
    def __init__(self, turn_servers: list[dict] | Callable[[str], list[dict]] | None = None):
        """``turn_servers``: ``offerData.integratedTurnServers`` for every client, or a function
        making them for one client (credentials of its own)."""
        if callable(turn_servers):
            self.turn_servers = turn_servers
        else:
            servers = list(turn_servers or [])
            self.turn_servers = lambda _endpoint_id: servers
        self.endpoints: dict[str, Endpoint] = {}

    # -- helpers ---------------------------------------------------------------------
    def tracks(self) -> dict[str, Track]:
        return {t.id: t for e in self.endpoints.values() for t in e.tracks.values()}

    def track_count(self) -> int:
        return sum(len(e.tracks) for e in self.endpoints.values())

    def _others(self, endpoint_id: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.id != endpoint_id]

    def _endpoint(self, endpoint_id: str) -> Endpoint:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise SessionError("send connect first")
        return endpoint

    def expects_offer(self, endpoint_id: str) -> bool:
        """Whether the endpoint was sent ``offerData`` and has not been answered since."""
        endpoint = self.endpoints.get(endpoint_id)
        return endpoint is not None and endpoint.negotiating

    def tracks_types(self, endpoint: Endpoint) -> dict[str, int]:
        wanted = {kind: 0 for kind in KINDS}
        for other in self._others(endpoint.id) if endpoint.subscribe else ():
            for track in other.tracks.values():
                if track.kind in wanted:
                    wanted[track.kind] += 1
        have = {kind: sum(1 for s in endpoint.slots.values() if s.kind == kind) for kind in KINDS}
        return {kind: max(wanted[kind], have[kind]) for kind in KINDS}

    def _renegotiate(self, endpoint: Endpoint) -> Outbox:
        # Wait for the answer in flight, and after the first answer for the connection to
        # come up: the client restarts ICE with every offer, and a restart while the
        # first checks still run can leave it with no working path at all.
        if endpoint.negotiating or endpoint.settling or (endpoint.answered_once and not endpoint.media_up):
            endpoint.pending = True
            return []
        endpoint.negotiating = True
        endpoint.pending = False
        return [(endpoint.id, ev.offer_data(self.tracks_types(endpoint), self.turn_servers(endpoint.id)))]

    # -- what clients say --------------------------------------------------------------
    def connect(self, endpoint_id: str, metadata: Any, *, grants: Grants = EVERYONE, name: str | None = None) -> Outbox:
        """A client connects; ``grants``: what it may publish (audio, video, screen) and whether it
        may receive; ``name``: the display name its access token gave, which its metadata keeps."""
        if endpoint_id in self.endpoints:
            raise SessionError("already connected")
        others = list(self.endpoints.values())
        endpoint = Endpoint(endpoint_id, _named(metadata, name), publish=grants.publish, subscribe=grants.subscribe,
                            name=name)
        out: Outbox = [(endpoint_id, ev.connected(endpoint_id, [
            {"id": o.id, "type": "webrtc", "metadata": o.metadata,
             "tracks": {t.id: t.entry() for t in o.tracks.values()}}
            for o in others
        ]))]
        endpoint.announced = {t.id for o in others for t in o.tracks.values()}
        self.endpoints[endpoint_id] = endpoint
        out += [(o.id, ev.endpoint_added(endpoint_id, endpoint.metadata)) for o in others]
        if endpoint.announced and endpoint.subscribe:
            out += self._renegotiate(endpoint)
        return out

    def renegotiate_tracks(self, endpoint_id: str) -> Outbox:
        return self._renegotiate(self._endpoint(endpoint_id))

    def update_endpoint_metadata(self, endpoint_id: str, metadata: Any) -> Outbox:
        endpoint = self._endpoint(endpoint_id)
        endpoint.metadata = metadata = _named(metadata, endpoint.name)
        return [(o.id, ev.endpoint_updated(endpoint_id, metadata)) for o in self._others(endpoint_id)]

    def update_track_metadata(self, endpoint_id: str, track_id: str, metadata: Any) -> Outbox:
        endpoint = self._endpoint(endpoint_id)
        track = endpoint.tracks.get(track_id)
        if track is None:
            raise SessionError(f"no published track {track_id!r}")
        if is_screen(metadata) and "screen" not in endpoint.publish:
            raise SessionError("you may not share a screen in this room")
        if is_screen(metadata) and any(is_screen(t.metadata) for t in endpoint.tracks.values() if t is not track):
            raise SessionError(f"one shared screen per person: {track_id!r} cannot be a second one")
        track.metadata = metadata
        return [(o.id, ev.track_updated(endpoint_id, track_id, metadata))
                for o in self._others(endpoint_id) if track_id in o.announced]

    def plan(self, endpoint_id: str, offer: SessionDescription, mid_to_track_id: dict[str, str],
             metadata: dict[str, Any], simulcast: dict[str, list[str]] | None = None) -> Plan:
        """Decide what answering ``offer`` means; nothing changes until :meth:`answered`.

        ``simulcast``: {mid -> RIDs} of the offer's simulcast m-lines (:func:`~videoroomd.sdp.offer.simulcast_rids`),
        empty when the room takes one stream per track; a track published now keeps its RIDs."""
        simulcast = simulcast or {}
        endpoint = self._endpoint(endpoint_id)
        lines = {m.mid: m for m in offer.media if m.mid is not None}
        if len(endpoint.mids | set(lines)) > MAX_MIDS:
            raise SessionError(f"the offers of one connection may bring at most {MAX_MIDS} mids in all")
        for line in offer.media:
            # Nothing here reads data channels, and each one a client opens would be kept.
            if line.kind not in KINDS and line.port != 0:
                raise SessionError(f"m-line {line.index}: {line.kind[:20]!r} m-lines are not served (audio and video only)")
        sending: dict[str, str] = {}
        publish: list[Track] = []
        for mid, track_id in mid_to_track_id.items():
            line = lines.get(mid)
            if line is None or line.kind not in KINDS or line.direction not in ("sendonly", "sendrecv"):
                raise SessionError(f"midToTrackId names mid {mid!r}, which the offer does not send on")
            if not isinstance(track_id, str) or not track_id.startswith(endpoint_id + ":"):
                raise SessionError(f"track id {track_id!r} must be \"{endpoint_id}:<uuid>\"")
            if track_id in sending.values():
                raise SessionError(f"midToTrackId names track {track_id!r} for two mids")
            published = endpoint.tracks.get(track_id)
            if published is not None and published.mid != mid:
                raise SessionError(f"track {track_id!r} is published on mid {published.mid!r}, not {mid!r}")
            if published is None and _source(line.kind, metadata.get(track_id)) not in endpoint.publish:
                continue  # not granted: the track is not published, and its m-line is answered inactive
            sending[mid] = track_id
            if track_id not in endpoint.tracks:
                publish.append(Track(track_id, endpoint_id, line.kind, metadata.get(track_id), mid,
                                     rids=tuple(simulcast.get(mid, ()))))
        unpublish = tuple(t for t in endpoint.tracks.values() if t.id not in sending.values())
        kept = [t for t in endpoint.tracks.values() if t.id in sending.values()]
        screens = sum(1 for t in (*kept, *publish) if is_screen(t.metadata))
        if screens > MAX_SCREENS:
            raise SessionError(f"one shared screen per person: this offer sends {screens}")

        live = {t.id: t for o in self._others(endpoint_id) for t in o.tracks.values()}
        forward: dict[str, Slot] = {}
        inactive: list[str] = []
        free: dict[str, list[str]] = {kind: [] for kind in KINDS}
        for line in offer.media:
            if line.mid is None or line.kind not in KINDS or line.direction != "recvonly":
                continue
            slot = endpoint.slots.get(line.mid, Slot(line.kind))
            if slot.track_id is not None and slot.track_id in live:
                forward[line.mid] = slot
            elif slot.track_id is not None:
                inactive.append(line.mid)  # freed now: answered inactive once before reuse
                forward[line.mid] = Slot(line.kind)
            else:
                free[line.kind].append(line.mid)
                forward[line.mid] = Slot(line.kind)
        carried = {s.track_id for s in forward.values() if s.track_id}
        for track in live.values() if endpoint.subscribe else ():
            if track.id in carried or track.id not in endpoint.announced:
                continue
            if free[track.kind]:
                mid = free[track.kind].pop(0)
                forward[mid] = Slot(track.kind, track.id, str(uuid.uuid4()))
        inactive += [mid for kind in KINDS for mid in free[kind]]
        return Plan(endpoint_id, tuple(publish), unpublish, sending, forward, tuple(inactive), frozenset(lines))

    def answered(self, plan: Plan) -> Outbox:
        """Apply ``plan`` once its answer went out: announce tracks, and renegotiate who must."""
        endpoint = self.endpoints.get(plan.endpoint_id)
        if endpoint is None:
            return []
        for track in plan.unpublish:
            del endpoint.tracks[track.id]
        for track in plan.publish:
            endpoint.tracks[track.id] = track
        endpoint.slots = dict(plan.forward)
        endpoint.mids |= plan.mids
        before = endpoint.negotiated
        endpoint.negotiated = {s.track_id for s in plan.forward.values() if s.track_id}
        out: Outbox = []
        # A track that is speaking already says so to whoever starts receiving it.
        tracks = self.tracks()
        out += [(endpoint.id, ev.vad_notification(t, True)) for t in endpoint.negotiated - before
                if t in tracks and tracks[t].speaking]
        for other in self._others(endpoint.id):
            changed = False
            gone = [t.id for t in plan.unpublish if t.id in other.negotiated]
            other.announced -= {t.id for t in plan.unpublish}
            for track in plan.unpublish:
                other.targets.pop(track.id, None)
            if gone:
                out.append((other.id, ev.tracks_removed(endpoint.id, gone)))
                changed = True
            if plan.publish:
                out.append((other.id, ev.tracks_added(endpoint.id, {t.id: t.entry() for t in plan.publish})))
                other.announced |= {t.id for t in plan.publish}
                changed = True
            # One who may not receive has nothing to negotiate for the others' tracks.
            if other.subscribe and (changed or any(t.id in {s.track_id for s in other.slots.values()}
                                                   for t in plan.unpublish)):
                out += self._renegotiate(other)
        endpoint.negotiating = False
        endpoint.answered_once = True
        endpoint.answers += 1
        endpoint.settling = endpoint.answers  # a renegotiation it waits for goes with settled()
        return out

    def settled(self, endpoint_id: str, answer: int) -> Outbox:
        """``ANSWER_SETTLE`` seconds after its answer number ``answer``: the client has applied it, so a
        renegotiation held meanwhile may go (unless a later answer is settling now)."""
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None or endpoint.settling != answer:
            return []
        endpoint.settling = 0
        return self._renegotiate(endpoint) if endpoint.pending else []

    def media_connected(self, endpoint_id: str) -> Outbox:
        """The client's media connection is up: renegotiations held back may go now."""
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None or endpoint.media_up:
            return []
        endpoint.media_up = True
        return self._renegotiate(endpoint) if endpoint.pending else []

    def remove(self, endpoint_id: str) -> Outbox:
        """The client left: the others lose its tracks, then hear it is gone."""
        endpoint = self.endpoints.pop(endpoint_id, None)
        if endpoint is None:
            return []
        out: Outbox = []
        for other in self.endpoints.values():
            gone = [t for t in endpoint.tracks if t in other.negotiated]
            if gone:
                out.append((other.id, ev.tracks_removed(endpoint_id, gone)))
            other.announced -= set(endpoint.tracks)
            for track_id in endpoint.tracks:
                other.targets.pop(track_id, None)
            out.append((other.id, ev.endpoint_removed(endpoint_id)))
            if any(s.track_id in endpoint.tracks for s in other.slots.values()):
                out += self._renegotiate(other)
        return out

    def voice_activity(self, track_id: str, speaking: bool) -> Outbox:
        track = self.tracks().get(track_id)
        if track is not None:
            track.speaking = speaking
        return [(o.id, ev.vad_notification(track_id, speaking)) for o in self.endpoints.values() if track_id in o.negotiated]

    # -- simulcast -----------------------------------------------------------------------
    def encoding_changes(self, endpoint_id: str, track_id: str, encoding: str, enabled: bool) -> bool:
        """Whether :meth:`set_encoding` with these would change anything; raises SessionError before connect."""
        track = self._endpoint(endpoint_id).tracks.get(track_id)
        return track is not None and encoding in track.rids and (encoding in track.disabled) == enabled

    def set_encoding(self, endpoint_id: str, track_id: str, encoding: str, enabled: bool) -> tuple[bool, Outbox]:
        """The publisher turned layer ``encoding`` of its ``track_id`` on or off. Returns whether
        that changed anything, and the ``trackEncodingEnabled``/``Disabled`` for the others.

        Nothing changes (and nothing is said) for a track that is not its own simulcast track or
        a layer the track does not have: the client re-sends ``disableTrackEncoding`` after every
        answer, also for tracks the room took as one stream. Raises SessionError before connect.
        """
        if not self.encoding_changes(endpoint_id, track_id, encoding, enabled):
            return False, []
        track = self.endpoints[endpoint_id].tracks[track_id]
        if enabled:
            track.disabled.discard(encoding)
        else:
            track.disabled.add(encoding)
        return True, [(o.id, ev.track_encoding(enabled, endpoint_id, track_id, encoding)) for o in self._others(endpoint_id)]

    def target(self, endpoint_id: str, track_id: str, variant: str) -> str | None:
        """Subscriber ``endpoint_id`` asks for layer ``variant`` of ``track_id``. Returns why that
        is ignored (unknown or non-simulcast track, a layer it does not have, the layer it already
        asked for) or None when the media worker is to be told; records it then."""
        endpoint = self._endpoint(endpoint_id)
        track = self.tracks().get(track_id)
        if track is None or track.endpoint_id == endpoint_id or track_id not in endpoint.announced:
            return "no such remote track"
        if not track.rids:
            return "the track is not simulcast"
        if variant not in track.rids:
            return f"the track has no layer {variant[:20]!r} (it has {', '.join(track.rids)})"
        if endpoint.targets.get(track_id, track.rids[-1]) == variant:
            return "already the layer asked for"
        endpoint.targets[track_id] = variant
        return None

    def encoding_switched(self, endpoint_id: str, track_id: str, encoding: str, reason: str) -> Outbox:
        """The media worker now sends ``encoding`` of ``track_id`` to ``endpoint_id``: an
        ``encodingSwitched`` for that client, if it knows of the track (it throws otherwise)."""
        endpoint = self.endpoints.get(endpoint_id)
        track = self.tracks().get(track_id)
        if endpoint is None or track is None or track_id not in endpoint.announced:
            return []
        return [(endpoint_id, ev.encoding_switched(track.endpoint_id, track_id, encoding, reason))]

    def bandwidth(self, endpoint_id: str, bps: int) -> Outbox:
        """The media worker's estimate of what it can send to ``endpoint_id``: a ``bandwidthEstimation``."""
        if endpoint_id not in self.endpoints:
            return []
        return [(endpoint_id, ev.bandwidth_estimation(max(0, int(bps))))]
