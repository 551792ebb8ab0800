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

from media_bot import Pattern, Tone, bot
from signalling_helpers import PhoenixClient, phoenix_client
from videoroomd.engine.rtc import limit_host_addresses

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
        mids = {mid: f"{self.id}:{uuid.uuid4()}" for mid in sending}
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


async def real_offer(media, receive_video: int = 1) -> tuple[str, dict[str, str]]:
    """An offer as an aiortc client makes it: audio and video sent, ``receive_video``
    video slots; returns (sdp, sending mid -> kind). Its connection is closed again."""
    async def make():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
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
