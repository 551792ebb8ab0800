"""One benchmark participant in Janus's VideoRoom, run as its own process: ``python -m bench.janus_bot URL ROOM NAME CLIP``.

The same participant as :mod:`bench.bot` (the clip's VP8 video and Opus
audio, packed and never encoded; receivers that count packets and frames and
never decode), speaking Janus's API over its WebSocket transport
(:mod:`.janus_api`) with the VideoRoom plugin's multistream API (Janus 1.x):
a publisher handle and connection that publish both tracks, and one
subscriber handle and connection that receives every other publisher's
streams, extended (``subscribe``, then an updated offer from Janus) as
publishers arrive. So a participant has two connections where a videoroomd
participant has one (Janus's model); the media it sends and receives are the
same. ``ROOM`` is the VideoRoom's number. Commands on stdin and JSON lines on
stdout as :mod:`bench.bot`: ``join``, ``snap``, ``quit``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import structlog
import trio
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from testsupport.asyncio_thread import AsyncioThread
from videoroomd.media.webrtc.compat.ice import limit_host_addresses
from videoroomd.media.webrtc.connections import codec_preferences

from . import clip as clips
from .bot import emit, stdin_lines
from .janus_api import JanusHandle, open_session
from .processes import participant_arguments
from .tracks import ClipAudioTrack, ClipVideoTrack, ReceiveCounter, SenderWatch, send_audio_level

PLUGIN = "janus.plugin.videoroom"
STEP_TIMEOUT = 15.0  # seconds for one answer of Janus's


def configuration() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class JanusParticipant:
    """Publishes the clip and subscribes to everyone else; its aiortc objects live on ``media``."""

    def __init__(self, clip: clips.Clip, media: AsyncioThread, name: str, address: str):
        self.clip = clip
        self.hosts = (address,)  # the one address our connections gather on
        self.media = media
        self.name = name
        self.publisher_pc: RTCPeerConnection | None = None
        self.subscriber_pc: RTCPeerConnection | None = None
        self.local: list = []
        self.watches: dict[str, SenderWatch] = {}
        self.receivers: dict[int, tuple[object, ReceiveCounter]] = {}  # id(transceiver) -> (it, counter)
        self.subscribed: set[int] = set()  # feeds (publishers' ids) asked for
        self.states: list[tuple[float, str]] = []
        self.problems: list[str] = []
        self.negotiating = trio.Lock()  # one offer/answer at a time on the subscriber connection

    # -- media thread -------------------------------------------------------------------
    async def _offer(self) -> str:
        self.publisher_pc = pc = RTCPeerConnection(configuration())
        pc.on("connectionstatechange", lambda: self.states.append((time.monotonic(), "pub-" + pc.connectionState)))
        self.local = [ClipAudioTrack(self.clip), ClipVideoTrack(self.clip)]
        for track in self.local:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(codec_preferences(track.kind))
            self.watches[track.kind] = SenderWatch(transceiver.sender, track)
            if track.kind == "audio":
                send_audio_level(transceiver.sender)
        limit_host_addresses(pc, self.hosts)
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def _published(self, sdp: str) -> None:
        await self.publisher_pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def _answer(self, sdp: str) -> str:
        """Our answer to Janus's offer of the streams we subscribed to; each new receiver counted."""
        if self.subscriber_pc is None:
            self.subscriber_pc = pc = RTCPeerConnection(configuration())
            pc.on("connectionstatechange",
                  lambda: self.states.append((time.monotonic(), "sub-" + pc.connectionState)))
        pc = self.subscriber_pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        for transceiver in pc.getTransceivers():
            if id(transceiver) not in self.receivers:
                kind = transceiver.kind
                self.receivers[id(transceiver)] = (transceiver, ReceiveCounter(transceiver.receiver, kind))
        limit_host_addresses(pc, self.hosts)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def _counts(self) -> dict:
        received = {}
        for transceiver, counter in self.receivers.values():
            if transceiver.mid is not None:
                received[transceiver.mid] = counter.counts()
        sent = {track.kind: {"frames": track.sent, **self.watches[track.kind].counts()} for track in self.local}
        return {"received": received, "sent": sent, "states": self.states}

    async def _close(self) -> None:
        for pc in (self.publisher_pc, self.subscriber_pc):
            if pc is not None:
                await pc.close()

    # -- trio side ---------------------------------------------------------------------
    async def snapshot(self) -> dict:
        counts = await self.media.call(self._counts)
        return {"event": "snap", "t": time.monotonic(), "cpu": time.process_time(),
                "problems": self.problems[-10:], **counts}

    async def call(self, url: str, room: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Join, publish, subscribe to every publisher there is and comes; until cancelled."""
        t_join = time.monotonic()
        async with trio.open_nursery() as nursery:
            session = await open_session(url, nursery, STEP_TIMEOUT)
            publisher = await session.attach(PLUGIN, STEP_TIMEOUT)
            subscriber = await session.attach(PLUGIN, STEP_TIMEOUT)
            joined, _ = await publisher.message({"request": "join", "ptype": "publisher", "room": room,
                                                 "display": self.name}, STEP_TIMEOUT)
            offer = await self.media.call(self._offer)
            _, answer = await publisher.message({"request": "publish", "audio": True, "video": True}, STEP_TIMEOUT,
                                                jsep={"type": "offer", "sdp": offer, "trickle": False})
            await self.media.call(self._published, answer["sdp"])
            feeds_send, feeds = trio.open_memory_channel(100)
            nursery.start_soon(self._subscriptions, room, joined["id"], subscriber, feeds)
            feeds_send.send_nowait([p["id"] for p in joined.get("publishers", [])])
            nursery.start_soon(self._notices, publisher, feeds_send)
            nursery.start_soon(self._updates, subscriber)
            emit({"event": "joined", "id": joined["id"], "t_join": t_join, "tracks": {}})
            task_status.started()

    async def _notices(self, publisher: JanusHandle, feeds: trio.MemorySendChannel) -> None:
        """Passes on the publishers Janus announces to the publisher handle."""
        async for event in publisher.events:
            data = event.get("plugindata", {}).get("data", {})
            if data.get("publishers"):
                await feeds.send([p["id"] for p in data["publishers"]])

    async def _updates(self, subscriber: JanusHandle) -> None:
        """Answers the offers Janus makes unasked on the subscriber handle (a publisher gone)."""
        async for event in subscriber.events:
            offer = event.get("jsep")
            if offer is not None and offer.get("type") == "offer":
                async with self.negotiating:
                    answer = await self.media.call(self._answer, offer["sdp"])
                    await subscriber.message({"request": "start"}, STEP_TIMEOUT, jsep={"type": "answer", "sdp": answer})

    async def _subscriptions(self, room: int, own: int, subscriber: JanusHandle,
                             feeds: trio.MemoryReceiveChannel) -> None:
        """Subscribe to each new feed: join the first time, ``subscribe`` after; answer each offer."""
        async for ids in feeds:
            new = [feed for feed in ids if feed != own and feed not in self.subscribed]
            if not new:
                continue
            self.subscribed.update(new)
            streams = [{"feed": feed} for feed in new]
            if len(self.subscribed) == len(new):
                body = {"request": "join", "ptype": "subscriber", "room": room, "streams": streams}
            else:
                body = {"request": "subscribe", "streams": streams}
            async with self.negotiating:
                _, offer = await subscriber.message(body, STEP_TIMEOUT)
                if offer is None:
                    self.problems.append(f"no offer for {body['request']} {new}")
                    continue
                answer = await self.media.call(self._answer, offer["sdp"])
                await subscriber.message({"request": "start"}, STEP_TIMEOUT, jsep={"type": "answer", "sdp": answer})


async def main(args: argparse.Namespace) -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout carries JSON only
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    media = AsyncioThread("bot-media")
    media.start()
    participant = JanusParticipant(clips.load(args.clip), media, args.name, args.address)
    try:
        with trio.move_on_after(args.lifetime):
            async with trio.open_nursery() as nursery:
                emit({"event": "ready"})
                async for command in stdin_lines():
                    if command == "join":
                        await nursery.start(participant.call, args.url, int(args.room))
                    elif command == "snap":
                        emit(await participant.snapshot())
                    elif command == "quit":
                        break
                nursery.cancel_scope.cancel()
        return 0
    finally:
        with trio.move_on_after(5) as cleanup:
            cleanup.shield = True
            await media.call(participant._close)
        media.stop()


def parse(argv: list[str]) -> argparse.Namespace:
    return participant_arguments("python -m bench.janus_bot", __doc__.split("\n")[0], argv,
                                 url_help="ws://127.0.0.1:PORT/ (Janus's WebSocket API)",
                                 clip_help="a clip file written by bench.clip",
                                 more=lambda parser: parser.add_argument(
                                     "--address", default="127.0.0.1",
                                     help="the address our connections gather on (Janus's media address)"))


if __name__ == "__main__":
    try:
        sys.exit(trio.run(main, parse(sys.argv[1:])))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # one line for the harness, the traceback on stderr
        emit({"event": "error", "error": f"{type(error).__name__}: {error}"})
        raise
