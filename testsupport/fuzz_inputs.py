"""Malformed input, made from a seed: what the fuzz tests throw at a running daemon (pure code).

Each generator takes a ``random.Random`` so a failing run can be replayed
from its seed. The inputs start from what real clients send (Phoenix
frames, media events, an aiortc offer, relay messages) and break them one
way at a time: wrong types, missing keys, deep nesting, huge numbers,
garbage text, cut-off or duplicated SDP lines.
"""

from __future__ import annotations

import json
import random
import string
from typing import Any, Callable

ODD_STRINGS = ["", " ", "\x00", "\u202e", "room:", "room:../etc", "phoenix", "\ud7ff" * 3, "a" * 3000, "💥" * 50,
               "null", "[]", "{}", "lobby\r\nX: y", "%00", "\\u0000"]
MEDIA_EVENT_TYPES = ["connect", "disconnect", "updateEndpointMetadata", "updateTrackMetadata", "enableTrackEncoding",
                     "disableTrackEncoding", "custom", "sdpOffer", "candidate", "renegotiateTracks",
                     "trackVariantBitrates", "setTargetTrackVariant", "nope", ""]


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any shape, now and then a nasty one."""
    pick = rng.randrange(12 if depth < 3 else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 2**31, 2**63 - 1, -2**63, 10**300, 1e308, -0.0, 0.5])
    if pick == 3:
        return rng.choice(ODD_STRINGS)
    if pick == 4:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(40)))
    if pick == 5:
        return rng.choice(MEDIA_EVENT_TYPES)
    if pick == 6:
        return nested(rng.randrange(20, 40))
    if pick == 7:
        return {"displayName": rng.choice(ODD_STRINGS)}
    if pick in (8, 9):
        return [odd_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["type", "data", "metadata", "trackId", "sdpOffer", "candidate", "x"]): odd_value(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def mutate(value: Any, rng: random.Random) -> Any:
    """``value`` with one node replaced, removed or retyped."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        copy = dict(value)
        action = rng.randrange(3)
        if action == 0:
            del copy[key]
        elif action == 1:
            copy[key] = odd_value(rng)
        else:
            copy[key] = mutate(copy[key], rng)
        return copy
    if isinstance(value, list) and value and rng.random() < 0.7:
        copy = list(value)
        index = rng.randrange(len(copy))
        copy[index] = mutate(copy[index], rng) if rng.random() < 0.5 else odd_value(rng)
        return copy
    return odd_value(rng)


def garbage_text(rng: random.Random) -> str:
    """Text that is not a valid Phoenix frame, in one of many ways."""
    pick = rng.randrange(9)
    if pick == 0:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 200)))
    if pick == 1:
        return "[" * rng.choice([100, 1000, 5000]) + "]" * rng.choice([0, 100, 1000])
    if pick == 2:
        return "1" * rng.choice([400, 4301, 5000])
    if pick == 3:
        return json.dumps(nested(rng.randrange(30, 200)))
    if pick == 4:
        return '["1","1","room:lobby","phx_join",' + "9" * 5000 + "]"
    if pick == 5:
        return json.dumps(odd_value(rng))
    if pick == 6:
        return '"\\ud800"'
    if pick == 7:
        return json.dumps([odd_value(rng) for _ in range(5)])
    return json.dumps(["1", "2", rng.choice(["phoenix", "room:lobby", "room:" + rng.choice(ODD_STRINGS)]),
                       rng.choice(["heartbeat", "phx_join", "phx_leave", "mediaEvent", "x"]), odd_value(rng)])


def media_events(offer_sdp: str) -> list[dict]:
    """Valid media events of a publishing client, to be mutated."""
    track = "me:6f1c3a52-0000-4000-8000-000000000000"
    return [
        {"type": "connect", "data": {"metadata": {"displayName": "fuzz"}}},
        {"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": "fuzz 2"}}},
        {"type": "updateTrackMetadata", "data": {"trackId": track, "trackMetadata": {"type": "camera"}}},
        {"type": "custom", "data": {"type": "renegotiateTracks"}},
        {"type": "custom", "data": {"type": "candidate", "data": {
            "candidate": "candidate:1 1 UDP 2122252543 127.0.0.1 50000 typ host", "sdpMLineIndex": 0}}},
        {"type": "custom", "data": {"type": "sdpOffer", "data": {
            "sdpOffer": {"type": "offer", "sdp": offer_sdp}, "trackIdToTrackMetadata": {track: {}},
            "trackIdToTrackBitrates": {track: 500}, "midToTrackId": {"0": track}}}},
        {"type": "enableTrackEncoding", "data": {"trackId": track, "encoding": "h"}},
        {"type": "disableTrackEncoding", "data": {"trackId": track, "encoding": "l"}},
        {"type": "custom", "data": {"type": "trackVariantBitrates", "data": {"trackId": track, "variantBitrates": {"h": 1}}}},
        {"type": "custom", "data": {"type": "setTargetTrackVariant", "data": {"trackId": track, "variant": "m"}}},
    ]


def media_event(rng: random.Random, valid: list[dict]) -> str:
    """The ``data`` string of a mediaEvent frame: a mutated event, or not an event at all."""
    pick = rng.random()
    if pick < 0.1:
        return garbage_text(rng)
    event = rng.choice(valid)
    if pick < 0.2:
        return json.dumps(event)
    for _ in range(rng.randrange(1, 4)):
        event = mutate(event, rng)
    return json.dumps(event)


SDP_EDITS: list[Callable[[list[str], random.Random], list[str]]] = []


def _edit(fn):
    SDP_EDITS.append(fn)
    return fn


@_edit
def _drop_line(lines, rng):
    del lines[rng.randrange(len(lines))]
    return lines


@_edit
def _duplicate_line(lines, rng):
    index = rng.randrange(len(lines))
    lines.insert(index, lines[index])
    return lines


@_edit
def _bad_bundle(lines, rng):
    return [("a=group:BUNDLE 0 1 7 nope" if line.startswith("a=group:BUNDLE") else line) for line in lines]


@_edit
def _bad_mid(lines, rng):
    mids = [i for i, line in enumerate(lines) if line.startswith("a=mid:")]
    if mids:
        lines[rng.choice(mids)] = "a=mid:" + rng.choice(["0", "", "x" * 300, "1 2", "🙂"])
    return lines


@_edit
def _token_garbage(lines, rng):
    index = rng.randrange(len(lines))
    parts = lines[index].split(" ")
    parts[rng.randrange(len(parts))] = rng.choice(["-1", "99999999999", "", "x", "0", "65536", "NaN", "\x7f"])
    lines[index] = " ".join(parts)
    return lines


@_edit
def _odd_m_line(lines, rng):
    lines.append(rng.choice(["m=video 0 UDP/TLS/RTP/SAVPF", "m=text 9 RTP/AVP 0", "m=audio x y z", "m=", "m=video 9 UDP/TLS/RTP/SAVPF 96"]))
    return lines


@_edit
def _long_attribute(lines, rng):
    lines.insert(rng.randrange(len(lines)), "a=" + "x" * rng.choice([5000, 60000]))
    return lines


@_edit
def _many_m_lines(lines, rng):
    block = [line for line in lines if not line.startswith("v=")][:12]
    return lines + block * rng.choice([10, 40])


@_edit
def _cut(lines, rng):
    return lines[: rng.randrange(1, len(lines))]


@_edit
def _no_fingerprint(lines, rng):
    return [line for line in lines if not line.startswith("a=fingerprint")]


@_edit
def _bad_ssrc(lines, rng):
    lines.append(rng.choice(["a=ssrc:4294967296 cname:x", "a=ssrc:-1 cname:x", "a=ssrc-group:FID 1", "a=rtpmap:96 VP8"]))
    return lines


def mutated_offer(offer_sdp: str, rng: random.Random) -> str:
    """``offer_sdp`` with one to three line edits."""
    lines = offer_sdp.strip().split("\r\n")
    for _ in range(rng.randrange(1, 4)):
        if not lines:
            break
        lines = rng.choice(SDP_EDITS)(lines, rng)
    return "\r\n".join(lines) + "\r\n"


def relay_message(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.3:
        return garbage_text(rng)
    message = {"event": rng.choice(["offer", "joined", "left", "error", "authenticated", ""]),
               "data": odd_value(rng), "to": rng.choice(["all", [], ["nobody"], ["x"] * 2000, None, 5])}
    return json.dumps(mutate(message, rng) if pick < 0.7 else message)


def http_head(rng: random.Random, host: str) -> bytes:
    """A request head that is wrong in one way, or raw bytes."""
    pick = rng.randrange(8)
    if pick == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if pick == 1:
        return b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n"
    if pick == 2:
        return (b"POST / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\nGET /admin/rooms HTTP/1.1\r\nHost: localhost\r\n\r\n")
    if pick == 3:
        return (b"GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + rng.choice([b"", b"x", b"dGhlIHNhbXBsZSBub25jZQ=="]) + b"\r\n\r\n")
    if pick == 4:
        return b"GET /signaling/lobby HTTP/1.1\r\nHost: " + host.encode() + b"\r\nCookie: credentials=" + b"[" * 3000 + b"\r\n\r\n"
    if pick == 5:
        return b"GET /" + b"%" * rng.randrange(1, 3000) + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n"
    if pick == 6:
        return b"GET / HTTP/1.1\r\n" + b"Host: a\r\n" * rng.randrange(2, 50) + b"\r\n"
    return b"GET /api/rooms HTTP/1.0\r\n\r\n" * rng.randrange(1, 30)
