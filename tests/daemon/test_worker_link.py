"""The worker link's contract, on both backends (a worker thread and a worker process).

What the control plane may rely on whichever worker it talks to: a message
that does not decode ends that worker only (restarted, with a log line that
says why); a command for a room or endpoint the worker does not have gets an
error that names it and changes nothing; an answer names the media sockets
it opened; a connected endpoint gone silent is reported once, and stays
until the control plane closes it.
"""

from __future__ import annotations

import os
import re
import socket

import orjson
import pytest
import structlog
import trio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from testsupport.media_bot import Muted, Tone, media_thread
from videoroomd.media.workers import plane as plane_module
from videoroomd.media.webrtc.compat.ice import ice_connections, limit_host_addresses
from videoroomd.media.workers.client import MediaError, MediaWorker
from videoroomd.media.workers.commands import (AddCandidate, Answer, CloseEndpoint, ListEndpoints, MediaSocket, Ping, Slot,
                                       TargetLayer)
from videoroomd.media.workers.events import EndpointState, RoomLost, Silent
from videoroomd.media.workers.plane import MediaPlane

BACKENDS = ["thread", "process"]


async def open_room(plane: MediaPlane, name: str, events: list, silence_timeout: float = 15.0):
    return await plane.open_room(name, events.append, ice_servers=[], certificate=None, addresses=["127.0.0.1"],
                                 silence_timeout=silence_timeout)


class _Tap:
    """The worker's end of the link as the client reads it, with bytes slipped in after what came."""

    def __init__(self, stream):
        self.stream = stream
        self.slipped = b""

    async def receive_some(self, max_bytes: int) -> bytes:
        if self.slipped:
            data, self.slipped = self.slipped, b""
            return data
        return await self.stream.receive_some(max_bytes)

    def __getattr__(self, name):
        return getattr(self.stream, name)


class TappedWorker(MediaWorker):
    """A real worker (thread or process) whose link the test can slip a message into."""

    @property
    def _stream(self):
        return self.__dict__.get("_tap")

    @_stream.setter
    def _stream(self, stream):
        self.__dict__["_tap"] = _Tap(stream) if stream is not None else None


@pytest.mark.parametrize("mode", BACKENDS)
async def test_a_worker_message_that_fails_to_decode_ends_only_that_worker_which_restarts(mode, monkeypatch):
    monkeypatch.setattr(plane_module, "MediaWorker", TappedWorker)
    plane = MediaPlane(2, mode)
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        doomed_events, kept_events = [], []
        doomed = await open_room(plane, "doomed", doomed_events)
        kept = await open_room(plane, "kept", kept_events)
        assert doomed.worker is not kept.worker
        pid = doomed.worker.pid
        body = orjson.dumps({"type": "state", "room": doomed.key, "endpoint": 7, "state": "connected"})
        index = plane.workers.index(doomed.worker)
        with structlog.testing.capture_logs() as logs:
            doomed.worker._stream.slipped = len(body).to_bytes(4, "big") + body
            with trio.fail_after(5):
                while not doomed_events:
                    await trio.sleep(0.05)
            with trio.fail_after(10):  # restarted
                while not (plane.workers[index] is not None and plane.workers[index].alive):
                    await trio.sleep(0.05)
        (lost,) = doomed_events
        assert isinstance(lost, RoomLost)
        assert lost.reason == f"media worker {doomed.worker.name} sent a malformed message: state: endpoint must be str, not int"
        said = [(e["event"], e["error"]) for e in logs if e["log_level"] == "error" and e.get("worker") == doomed.worker.name]
        assert said == [("media worker sent what is not a message; giving it up", "state: endpoint must be str, not int"),
                        ("media worker lost; restarting it", lost.reason)]
        await kept.call(Ping(), timeout=5)  # the other worker and its room never noticed
        assert kept_events == [] and kept.worker.alive
        assert plane.restarts[index] == 1 and plane.restarts[index ^ 1] == 0
        again = await open_room(plane, "again", [])
        await again.call(Ping(), timeout=5)
        nursery.cancel_scope.cancel()
    if mode == "process":
        assert not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("mode", BACKENDS)
async def test_a_command_for_an_unknown_room_or_endpoint_is_refused_by_name_and_changes_nothing(mode):
    plane = MediaPlane(1, mode)
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        events = []
        link = await open_room(plane, "lobby", events)
        worker = link.worker
        with pytest.raises(MediaError, match="NotHere: no room 'nowhere#9' on this worker"):
            await worker.request(CloseEndpoint("nowhere#9", "e1"), timeout=5)
        with pytest.raises(MediaError, match="NotHere: no room 'nowhere#9' on this worker"):
            await worker.request(Answer("nowhere#9", "e1", "v=0\r\n", {}, (Slot("1", None, "s"),)), timeout=5)
        with pytest.raises(MediaError, match="NotHere: no media connection for endpoint 'nobody' yet"):
            await link.call(AddCandidate(link.key, "nobody", "candidate:1 1 udp 1 127.0.0.1 9 typ host", 0), timeout=5)
        # a layer request is a client's wish: refused quietly, as False
        assert await worker.request(TargetLayer("nowhere#9", "e1", "t", "h"), timeout=5) is False
        assert await link.call(ListEndpoints(link.key), timeout=5) == ()
        await link.call(Ping(), timeout=5)
        assert worker.alive and plane.workers[0] is worker and plane.restarts == [0]
        assert events == []
        nursery.cancel_scope.cancel()


def host_candidates(sdp: str) -> set[MediaSocket]:
    return {MediaSocket(m.group(1), int(m.group(2)))
            for m in re.finditer(r"^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", sdp, re.MULTILINE | re.IGNORECASE)}


def bound(port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


async def connected_client(media, link, endpoint: str, events: list):
    """An aiortc client sending audio to ``endpoint`` of ``link``'s room, once its connection is up;
    returns (its peer connection, the worker's Answered)."""
    async def offer():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(Tone(), direction="sendonly")
        limit_host_addresses(pc, ("127.0.0.1",))
        await pc.setLocalDescription(await pc.createOffer())
        return pc, pc.localDescription.sdp, pc.getTransceivers()[0].mid

    pc, sdp, mid = await media.call(offer)
    answered = await link.call(Answer(link.key, endpoint, sdp, {mid: f"{endpoint}:audio"}, ()), timeout=10)
    await media.call(pc.setRemoteDescription, RTCSessionDescription(answered.sdp, "answer"))
    with trio.fail_after(10):
        while EndpointState(link.key, endpoint, "connected") not in events:
            await trio.sleep(0.05)
    return pc, answered


@pytest.mark.parametrize("mode", BACKENDS)
async def test_an_answer_reports_the_media_sockets_the_worker_opened(mode):
    plane = MediaPlane(1, mode)
    async with trio.open_nursery() as nursery, media_thread() as media:
        await nursery.start(plane.run)
        events = []
        link = await open_room(plane, "lobby", events)
        pc, answered = await connected_client(media, link, "e1", events)
        assert answered.sockets and set(answered.sockets) == host_candidates(answered.sdp)
        assert all(s.host == "127.0.0.1" and bound(s.port) for s in answered.sockets)
        await link.call(CloseEndpoint(link.key, "e1"), timeout=5)
        assert not any(bound(s.port) for s in answered.sockets)  # closed with the endpoint
        await media.call(pc.close)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("mode", BACKENDS)
async def test_a_connected_endpoint_gone_silent_is_reported_once_and_kept_until_closed(mode):
    plane = MediaPlane(1, mode)
    async with trio.open_nursery() as nursery, media_thread() as media:
        await nursery.start(plane.run)
        events = []
        link = await open_room(plane, "lobby", events, silence_timeout=1.0)
        pc, _ = await connected_client(media, link, "e1", events)
        await trio.sleep(2.5)
        assert not [e for e in events if isinstance(e, Silent)]  # a client that sends is never silent

        async def mute():
            for connection in ice_connections(pc):
                for protocol in connection._protocols:
                    if protocol.transport is not None:
                        protocol.transport = Muted(protocol.transport)

        await media.call(mute)
        with trio.fail_after(5):
            while not [e for e in events if isinstance(e, Silent)]:
                await trio.sleep(0.05)
        await trio.sleep(2.5)  # a few more of the worker's looks
        assert [e for e in events if isinstance(e, Silent)] == [Silent(link.key, "e1", 1.0)]
        assert await link.call(ListEndpoints(link.key), timeout=5) == ("e1",)  # the control plane decides
        await link.call(CloseEndpoint(link.key, "e1"), timeout=5)
        assert await link.call(ListEndpoints(link.key), timeout=5) == ()
        await media.call(pc.close)
        nursery.cancel_scope.cancel()
