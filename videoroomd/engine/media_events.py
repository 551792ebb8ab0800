"""The Membrane RTC Engine media events, as ``WebRTCEndpoint`` 0.7.1 speaks them (pure code).

Every event is ``{"type": T, "data": D}``; "custom" events are wrapped once
more, ``{"type": "custom", "data": {"type": T, "data": D}}``. The client
accepts any server event bare or wrapped except ``connected``, which must be
bare. docs/media-events.md has every shape and the reasons behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import json_limits

# What a non-simulcast track says of its encodings (the reference engine's value).
NO_SIMULCAST = {"enabled": False, "activeEncodings": ["h"], "disabledEncodings": []}
CLIENT_EVENTS = frozenset({
    "connect", "disconnect", "updateEndpointMetadata", "updateTrackMetadata",
    "enableTrackEncoding", "disableTrackEncoding",
    # custom:
    "renegotiateTracks", "sdpOffer", "candidate", "trackVariantBitrates", "setTargetTrackVariant", "recording",
})
MAX_METADATA_BYTES = 4096  # encoded size of one endpoint's or one track's metadata, sent to every other client
CUSTOM = frozenset({"renegotiateTracks", "sdpOffer", "candidate", "trackVariantBitrates", "setTargetTrackVariant",
                    "recording"})  # recording: the page's, see recording_side.py


class MediaEventError(Exception):
    """A media event that is not JSON, not an event, or not one we know; the text says which."""


@dataclass(frozen=True)
class ClientEvent:
    type: str
    data: Any  # dict, or None for events without data


def parse(text: str) -> ClientEvent:
    """Unwrap one client event; raises MediaEventError (and nothing else) saying what is wrong."""
    if not isinstance(text, str):
        raise MediaEventError("a media event is JSON text")
    try:
        value = json_limits.loads(text)
    except json_limits.JsonError as error:
        raise MediaEventError(f"media event is not JSON: {error}") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise MediaEventError('a media event is {"type": ..., "data": ...}')
    kind, data = value["type"], value.get("data")
    if kind == "custom":
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise MediaEventError('a custom media event is {"type": "custom", "data": {"type": ..., "data": ...}}')
        kind, data = data["type"], data.get("data")
        if kind not in CUSTOM:
            raise MediaEventError(f"unknown custom media event {kind!r}")
    elif kind not in CLIENT_EVENTS or kind in CUSTOM:
        raise MediaEventError(f"unknown media event {kind!r}")
    if data is not None and not isinstance(data, dict):
        raise MediaEventError(f"{kind}: data must be an object")
    return ClientEvent(kind, data if data is not None else {})


def field(event: ClientEvent, name: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    """``event.data[name]`` checked against ``kind``; raises MediaEventError."""
    if name not in event.data or event.data[name] is None:
        if required:
            raise MediaEventError(f"{event.type}: {name} is missing")
        return None
    value = event.data[name]
    # JSON true/false are Python ints too; an index or a count is never one.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise MediaEventError(f"{event.type}: {name} has the wrong type")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def metadata(event: ClientEvent, name: str, value: Any = None, *, limit: int = MAX_METADATA_BYTES) -> Any:
    """Metadata the others will receive (``event.data[name]``, or ``value`` when given):
    any JSON, at most ``limit`` bytes once encoded; raises MediaEventError."""
    if value is None:
        value = event.data.get(name)
    size = len(_dump(value))
    if size > limit:
        raise MediaEventError(f"{event.type}: {name} is {size} bytes as JSON; at most {limit} are accepted")
    return value


def _dump(event: dict) -> str:
    return json_limits.dumps(event)


def bare(kind: str, data: Any = None) -> str:
    return _dump({"type": kind, "data": data} if data is not None else {"type": kind})


def custom(kind: str, data: Any = None) -> str:
    inner = {"type": kind, "data": data} if data is not None else {"type": kind}
    return _dump({"type": "custom", "data": inner})


def simulcast_config(rids: tuple[str, ...] | list[str], disabled: set[str] | frozenset[str] = frozenset()) -> dict:
    """A track's ``simulcastConfig``: NO_SIMULCAST without RIDs; otherwise its layers, low to
    high, split into those its publisher sends and those it turned off."""
    if not rids:
        return NO_SIMULCAST
    return {"enabled": True, "activeEncodings": [r for r in rids if r not in disabled],
            "disabledEncodings": [r for r in rids if r in disabled]}


def track_entry(metadata: Any, simulcast: dict = NO_SIMULCAST) -> dict:
    return {"metadata": metadata, "simulcastConfig": simulcast}


def connected(endpoint_id: str, others: list[dict]) -> str:
    """``others``: ``{id, type, metadata, tracks: {trackId: {metadata, simulcastConfig}}}`` each."""
    return bare("connected", {"id": endpoint_id, "otherEndpoints": others})


def endpoint_added(endpoint_id: str, metadata: Any) -> str:
    return bare("endpointAdded", {"id": endpoint_id, "type": "webrtc", "metadata": metadata})


def endpoint_updated(endpoint_id: str, metadata: Any) -> str:
    return bare("endpointUpdated", {"id": endpoint_id, "metadata": metadata})


def endpoint_removed(endpoint_id: str) -> str:
    return bare("endpointRemoved", {"id": endpoint_id})


def tracks_added(endpoint_id: str, tracks: dict[str, dict]) -> str:
    """``tracks``: {trackId: :func:`track_entry`}."""
    return bare("tracksAdded", {"endpointId": endpoint_id, "tracks": tracks})


def tracks_removed(endpoint_id: str, track_ids: list[str]) -> str:
    return bare("tracksRemoved", {"endpointId": endpoint_id, "trackIds": track_ids})


def track_updated(endpoint_id: str, track_id: str, metadata: Any) -> str:
    return bare("trackUpdated", {"endpointId": endpoint_id, "trackId": track_id, "metadata": metadata})


def offer_data(tracks_types: dict[str, int], turn_servers: list[dict]) -> str:
    return custom("offerData", {"tracksTypes": tracks_types, "integratedTurnServers": turn_servers})


def sdp_answer(sdp: str, mid_to_track_id: dict[str, str]) -> str:
    return custom("sdpAnswer", {"type": "answer", "sdp": sdp, "midToTrackId": mid_to_track_id})


def candidate(candidate_sdp: str, sdp_m_line_index: int = 0) -> str:
    return custom("candidate", {"candidate": candidate_sdp, "sdpMLineIndex": sdp_m_line_index,
                                "sdpMid": None, "usernameFragment": None})


def track_encoding(enabled: bool, endpoint_id: str, track_id: str, encoding: str) -> str:
    """``trackEncodingEnabled`` / ``trackEncodingDisabled``: a publisher turned a layer on / off."""
    return bare("trackEncodingEnabled" if enabled else "trackEncodingDisabled",
                {"endpointId": endpoint_id, "trackId": track_id, "encoding": encoding})


# The media worker's reasons for a layer switch -> the client's EncodingReason.
ENCODING_REASONS = {"other": "other", "encoding_inactive": "encodingInactive", "low_bandwidth": "lowBandwidth"}


def encoding_switched(endpoint_id: str, track_id: str, encoding: str, reason: str) -> str:
    """custom ``encodingSwitched`` (wrapped, as the reference engine sends it): the subscriber now receives ``encoding`` of ``track_id`` (published by
    ``endpoint_id``); ``reason`` is the media worker's, mapped (an unknown one becomes "other")."""
    return custom("encodingSwitched", {"endpointId": endpoint_id, "trackId": track_id, "encoding": encoding,
                                     "reason": ENCODING_REASONS.get(reason, "other")})


def bandwidth_estimation(bps: int) -> str:
    """``bandwidthEstimation``: what the server estimates it can send to this client, in bits/s."""
    return custom("bandwidthEstimation", {"estimation": bps})


def vad_notification(track_id: str, speaking: bool) -> str:
    return custom("vadNotification", {"trackId": track_id, "status": "speech" if speaking else "silence"})


def error(message: str) -> str:
    return bare("error", {"message": message})
