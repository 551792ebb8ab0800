"""Helpers for tests where one participant sends the engine what it must not crash on.

A :class:`Call` is two aiortc bots publishing video to each other; an
:class:`Intruder` is a bare Phoenix client that says only what a test makes it
say (made-up media events, mutated offers), with real offers from aiortc to start from.
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
from aiortc import RTCConfiguration, RTCPeerConnection

from testsupport.media_bot import Pattern, Tone, bot
from testsupport.phoenix import PhoenixClient, phoenix_client
from videoroomd.media.webrtc.compat.ice import limit_host_addresses

ROOMS = "[ice]\naddresses = [\"127.0.0.1\"]\n[rooms.lobby]\nmax_peers = 8\n"


@dataclass
class Call:
    daemon: object
    a: object
    b: object
    a_video: str
    b_video: str

    async def goes_on(self, frames: int = 5) -> None:
        """Both bots receive ``frames`` more video frames from each other, and the room never restarted."""
        a_seen, b_seen = self.a.received.get(self.b_video, 0), self.b.received.get(self.a_video, 0)
        await self.a.frames_from(self.b_video, at_least=a_seen + frames, timeout=20)
        await self.b.frames_from(self.a_video, at_least=b_seen + frames, timeout=20)
        state = self.daemon.rooms.entries["lobby"].state
        assert (state.status, state.crashes, state.restarts) == ("running", 0, 0), state
        assert {self.a.id, self.b.id} <= set(self.daemon.rooms.get("lobby").peers)


@asynccontextmanager
async def call(daemon, media):
    """Two bots in room lobby, each receiving the other's video."""
    async with bot(daemon, "A", media=media) as a, bot(daemon, "B", media=media) as b:
        (a_video,) = await a.publish(audio=False)
        (b_video,) = await b.publish(audio=False)
        await b.frames_from(a_video, at_least=3, timeout=30)
        await a.frames_from(b_video, at_least=3, timeout=30)
        yield Call(daemon, a, b, a_video, b_video)


class Intruder:
    def __init__(self, client: PhoenixClient):
        self.client = client
        self.id: str | None = None
        self.events: list[dict] = []
        self.tracks: dict[str, str] = {}  # mid -> track id, kept across offers

    async def send(self, event: dict) -> None:
        await self.client.media_event("lobby", event)

    async def send_text(self, text: str) -> None:
        await self.client.send("room:lobby", "mediaEvent", {"data": text}, self.client.join_ref)

    async def next(self, kinds: tuple[str, ...], timeout: float = 10.0) -> dict:
        """The next media event of one of ``kinds`` (custom ones unwrapped); others are kept in ``events``."""
        with trio.fail_after(timeout):
            while True:
                event = await self.client.next_media_event(timeout=timeout)
                if event["type"] == "custom":
                    event = event["data"]
                self.events.append(event)
                if event["type"] in kinds:
                    return event

    async def connect(self, metadata=None) -> str:
        await self.send({"type": "connect", "data": {"metadata": metadata}})
        self.id = (await self.next(("connected",)))["data"]["id"]
        return self.id

    async def offer(self, sdp: str, sending: dict[str, str]) -> dict:
        """Send an offer whose sending mids carry new tracks; the answer or the error it got."""
        mids = {mid: self.tracks.setdefault(mid, f"{self.id}:{uuid.uuid4()}") for mid in sending}
        await self.send({"type": "custom", "data": {"type": "sdpOffer", "data": {
            "sdpOffer": {"type": "offer", "sdp": sdp}, "midToTrackId": mids,
            "trackIdToTrackMetadata": {t: {"name": "intruder"} for t in mids.values()}}}})
        return await self.next(("sdpAnswer", "error"), timeout=30)

    async def closed(self, timeout: float = 5.0) -> dict:
        """The phx_close the server sent when it removed this participant."""
        with trio.fail_after(timeout):
            while True:
                for event, payload in self.client.pushes:
                    if event == "phx_close":
                        return payload
                _join_ref, _ref, _topic, event, payload = await self.client.receive(timeout)
                if event != "mediaEvent":
                    self.client.pushes.append((event, payload))


@asynccontextmanager
async def intruder(daemon, connect: bool = True):
    async with phoenix_client(daemon) as client:
        reply = await client.join("lobby", displayName="Intruder")
        assert reply["status"] == "ok", reply
        participant = Intruder(client)
        if connect:
            await participant.connect()
        yield participant


async def real_offer(media, receive_video: int = 1, data_channel: bool = False) -> tuple[str, dict[str, str]]:
    """An offer as an aiortc client makes it: audio and video sent, ``receive_video``
    video slots (and a data channel); returns (sdp, sending mid -> kind). Its connection
    is closed again."""
    async def make():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if data_channel:
            pc.createDataChannel("chat")
        pc.addTransceiver(Tone(), direction="sendonly")
        pc.addTransceiver(Pattern(), direction="sendonly")
        for _ in range(receive_video):
            pc.addTransceiver("video", direction="recvonly")
        limit_host_addresses(pc, ("127.0.0.1",))
        await pc.setLocalDescription(await pc.createOffer())
        sending = {t.mid: t.kind for t in pc.getTransceivers() if t.direction == "sendonly"}
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp, sending

    return await media.call(make)


def _lines(sdp: str) -> list[str]:
    return sdp.split("\r\n")


def _replace_attribute(prefix: str, values: list[str]):
    def mutate(lines: list[str], rng) -> list[str]:
        hits = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        if hits:
            i = rng.choice(hits)
            lines[i] = prefix + rng.choice(values)
        return lines
    return mutate


def _drop(prefix: str):
    return lambda lines, rng: [line for line in lines if not line.startswith(prefix)]


def _duplicate_media_section(lines: list[str], rng) -> list[str]:
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    if not starts:
        return lines
    k = rng.randrange(len(starts))
    end = starts[k + 1] if k + 1 < len(starts) else len(lines) - 1
    return lines[:end] + lines[starts[k]:end] + lines[end:]


def _m_line(lines: list[str], rng) -> list[str]:
    hits = [i for i, line in enumerate(lines) if line.startswith("m=")]
    if hits:
        i = rng.choice(hits)
        kind, port, proto, *formats = lines[i][2:].split(" ")
        choice = rng.randrange(4)
        if choice == 0:
            kind = rng.choice(["text", "application", "message", "", "vidéo"])
        elif choice == 1:
            port = rng.choice(["0", "65536", "99999999999999999999", "-1", "9/2", "x"])
        elif choice == 2:
            proto = rng.choice(["RTP/AVP", "TCP/DTLS/SCTP", "", "UDP/TLS/RTP/SAVPF/X"])
        else:
            formats = rng.choice([[], ["abc"], ["96"] * 50, ["-1"], ["4294967296"]])
        lines[i] = "m=" + " ".join([kind, port, proto, *formats])
    return lines


def _delete_line(lines, rng):
    if len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    return lines


def _duplicate_line(lines, rng):
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return lines


def _garbage_line(lines, rng):
    i = rng.randrange(len(lines))
    garbage = "".join(rng.choice("a=:/ 0123456789xyz\x00é\t") for _ in range(rng.randrange(1, 40)))
    lines.insert(i, rng.choice(["a=", "", "m=", "c="]) + garbage)
    return lines


def _truncate(lines, rng):
    text = "\r\n".join(lines)
    return _lines(text[:rng.randrange(len(text))])


MUTATIONS = [
    _duplicate_media_section,
    _drop("a=fingerprint:"), _drop("a=ice-pwd:"), _drop("a=mid:"), _drop("a=rtcp-mux"), _drop("a=setup:"),
    _drop("a=group:BUNDLE"), _drop("a=rtpmap:"), _drop("c="),
    _replace_attribute("a=ice-ufrag:", ["", " ", "x" * 300, "a:b", "ü"]),
    _replace_attribute("a=ice-pwd:", ["", "short", "y" * 600]),
    _replace_attribute("a=fingerprint:", ["sha-256 00", "md5 zz", "", "sha-256 " + ":".join(["GG"] * 32)]),
    _replace_attribute("a=setup:", ["passive", "holdconn", ""]),
    _replace_attribute("a=rtpmap:", ["96", "96 VP8", "abc VP8/90000", "96 VP8/x", "4294967296 opus/48000/2",
                                     "111 opus/48000/99999999999", "96 /90000", "-1 H264/90000"]),
    _replace_attribute("a=fmtp:", ["96", "96 apt=abc", "97 apt=999999999999", "x profile-level-id=zz"]),
    _replace_attribute("a=ssrc:", ["abc cname:x", "99999999999999 cname:x", "-5 msid:a b", "1", "1 cname"]),
    _replace_attribute("a=ssrc-group:", ["FID", "FID 1", "FID a b", "FID 99999999999 1"]),
    _replace_attribute("a=rtcp-fb:", ["96", "* nack", "abc goog-remb"]),
    _replace_attribute("a=extmap:", ["x urn:ietf", "99999999 urn:x", "1/garbage urn:y", ""]),
    _replace_attribute("a=candidate:", ["x", "1 1 udp 1 999.1.1.1 9 typ host", "1 1 udp x 127.0.0.1 99999 typ host",
                                        "1 1 tcp 1 ::1 9 typ relay", "1 99999999 udp 1 a.local 1 typ srflx"]),
    _replace_attribute("a=group:BUNDLE ", ["0 0", "", "9", "0 1 2 3 4 5"]),
    _replace_attribute("a=mid:", ["", "0", "x" * 100, "a b"]),
    _replace_attribute("c=", ["IN IP4", "IN IP6 ::::", "garbage"]),
    _replace_attribute("a=msid:", ["", "a", "a b c d"]),
    _replace_attribute("a=sendonly", ["x", ""]),
    _m_line, _delete_line, _duplicate_line, _garbage_line, _truncate,
]


def mutate_offer(sdp: str, rng) -> str:
    """``sdp`` after one to three mutations picked with ``rng`` (a seeded random.Random)."""
    lines = _lines(sdp)
    for _ in range(rng.randint(1, 3)):
        lines = rng.choice(MUTATIONS)(lines, rng)
    return "\r\n".join(lines)
