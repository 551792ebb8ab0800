"""Thousands of malformed inputs against a running daemon while two calls go on.

A real `videoroomd serve` process hosts a call of two aiortc participants in
`other` and one in `lobby`. Meanwhile seeded fuzzers throw malformed Phoenix
frames (without joining), media events and mutated offers (as a participant
of `lobby`, the same room as one of the calls), relay messages and broken
HTTP requests at it. Afterwards the daemon still runs, neither room ever
crashed, both calls' frame counters kept rising, and a newcomer still joins.
Replay a failure with FUZZ_SEED=<seed>.
"""

from __future__ import annotations

import json
import os
import random
import socket
import urllib.request
import uuid
from collections import Counter

import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from testsupport import fuzz_inputs as fz
from testsupport.engine_attack import real_offer
from testsupport.media_bot import bot, media_thread

SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
ROOMS = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\nmax_peers = 8\n[rooms.other]\nmax_peers = 4\n'
SERVER = "connections_per_second = 2000\n"
PHOENIX_FRAMES = 1500
MEDIA_EVENTS = 1200
OFFERS = 120
RELAY_MESSAGES = 600
HTTP_REQUESTS = 200

pytestmark = pytest.mark.slow


async def _drain(websocket) -> None:
    try:
        while True:
            await websocket.get_message()
    except ConnectionClosed:
        pass


async def _socket(daemon, path: str):
    return open_websocket_url(f"ws://127.0.0.1:{daemon.port}{path}", connect_timeout=5, disconnect_timeout=2)


async def phoenix_garbage(daemon, rng: random.Random, sent: Counter) -> None:
    """Malformed frames from sockets that never join; each socket is used until the server closes it."""
    while sent["phoenix"] < PHOENIX_FRAMES:
        async with await _socket(daemon, "/socket/websocket?vsn=2.0.0") as websocket, trio.open_nursery() as nursery:
            nursery.start_soon(_drain, websocket)
            try:
                for _ in range(rng.randrange(5, 40)):
                    await websocket.send_message(fz.garbage_text(rng))
                    sent["phoenix"] += 1
            except ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()


async def participant_garbage(daemon, offer: str, rng: random.Random, sent: Counter) -> None:
    """A participant of `lobby` sending mutated media events and offers; it joins again whenever it is removed."""
    while sent["media_event"] < MEDIA_EVENTS or sent["offer"] < OFFERS:
        async with await _socket(daemon, "/socket/websocket?vsn=2.0.0") as websocket, trio.open_nursery() as nursery:
            await websocket.send_message(json.dumps(["1", "1", "room:lobby", "phx_join", {"displayName": "fuzz"}]))
            with trio.fail_after(10):  # a join is answered at once, even when refused
                while True:
                    reply = json.loads(await websocket.get_message())
                    if reply[3] == "phx_reply" and reply[1] == "1":
                        break
            if reply[4]["status"] != "ok":
                assert reply[4]["response"].get("code") != "room_failed", f"the room crashed (seed {SEED}):\n{crashes(daemon)}"
                sent["join_refused"] += 1
                await trio.sleep(0.2)  # the room is full of fuzzers that have not been reaped yet
                continue
            peer = reply[4]["response"]["peer_id"]
            nursery.start_soon(_drain, websocket)
            track = f"{peer}:{uuid.uuid4()}"
            valid = fz.media_events(offer)

            async def push(data: str) -> None:
                await websocket.send_message(json.dumps(["1", None, "room:lobby", "mediaEvent", {"data": data}]))

            try:
                await push(json.dumps({"type": "connect", "data": {"metadata": {"displayName": "fuzz"}}}))
                for _ in range(rng.randrange(10, 60)):
                    if rng.random() < 0.12 and sent["offer"] < OFFERS:
                        sdp = fz.mutated_offer(offer, rng)
                        await push(json.dumps({"type": "custom", "data": {"type": "sdpOffer", "data": {
                            "sdpOffer": {"type": "offer", "sdp": sdp}, "trackIdToTrackMetadata": {track: {}},
                            "trackIdToTrackBitrates": {}, "midToTrackId": {"0": track}}}}))
                        sent["offer"] += 1
                        await trio.sleep(0.05)  # an answer takes the media thread a while; do not only flood
                    else:
                        await push(fz.media_event(rng, valid).replace("me:", f"{peer}:"))
                        sent["media_event"] += 1
            except ConnectionClosed:
                pass
            nursery.cancel_scope.cancel()


async def relay_garbage(daemon, rng: random.Random, sent: Counter) -> None:
    while sent["relay"] < RELAY_MESSAGES:
        room = rng.choice(["lobby", "other"])
        try:
            async with await _socket(daemon, f"/signaling/{room}") as websocket, trio.open_nursery() as nursery:
                nursery.start_soon(_drain, websocket)
                try:
                    for _ in range(rng.randrange(5, 40)):
                        await websocket.send_message(fz.relay_message(rng))
                        sent["relay"] += 1
                except ConnectionClosed:
                    pass
                nursery.cancel_scope.cancel()
        except HandshakeError:
            sent["relay_refused"] += 1


async def http_garbage(daemon, rng: random.Random, sent: Counter) -> None:
    host = f"127.0.0.1:{daemon.port}"
    for _ in range(HTTP_REQUESTS):
        stream = await trio.open_tcp_stream("127.0.0.1", daemon.port)
        try:
            await stream.send_all(fz.http_head(rng, host))
            sent["http"] += 1
            with trio.move_on_after(0.5):
                await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        if rng.random() < 0.3:  # vanish with a reset instead of a goodbye
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await trio.aclose_forcefully(stream)


async def _progress(daemon, sent: Counter) -> None:
    while True:
        await trio.sleep(5)
        print(f"{trio.current_time():.0f}s sent {dict(sent)}, daemon exit status {daemon.proc.poll()}", flush=True)


def crashes(daemon) -> str:
    """The last lines of the tracebacks with which rooms crashed, from the daemon's JSON log."""
    found = []
    for line in daemon.log().splitlines():
        if '"crashed' in line or '"giving up' in line:
            found.append(json.loads(line).get("exception", "")[-600:])
    return "\n----\n".join(found)


def admin_rooms(daemon) -> dict[str, dict]:
    with urllib.request.urlopen(f"{daemon.url}/admin/rooms", timeout=5) as response:
        return {row["name"]: row for row in json.load(response)["rooms"]}


async def test_thousands_of_malformed_inputs_end_only_their_own_connection(start_daemon):
    daemon = start_daemon(rooms=ROOMS, server=SERVER, media="workers = 2")  # the media in worker processes
    async with media_thread() as media:
        offer, _sending = await real_offer(media)  # audio and video sent, a video received
        async with bot(daemon, "A", room="other", media=media) as a, bot(daemon, "B", room="other", media=media) as b, \
                bot(daemon, "C", room="lobby", media=media) as c, bot(daemon, "D", room="lobby", media=media) as d:
            published = {}
            for participant in (a, b, c, d):
                (published[participant.name],) = await participant.publish(audio=False)
            calls = [(a, published["B"]), (b, published["A"]), (c, published["D"]), (d, published["C"])]
            for viewer, track in calls:
                await viewer.frames_from(track, at_least=5)

            sent: Counter = Counter()
            with trio.fail_after(150):
                async with trio.open_nursery() as watching:
                    watching.start_soon(_progress, daemon, sent)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(phoenix_garbage, daemon, random.Random(SEED), sent)
                        nursery.start_soon(participant_garbage, daemon, offer, random.Random(SEED + 1), sent)
                        nursery.start_soon(relay_garbage, daemon, random.Random(SEED + 2), sent)
                        nursery.start_soon(http_garbage, daemon, random.Random(SEED + 3), sent)
                    watching.cancel_scope.cancel()
            print("sent", dict(sent))
            assert sum(sent.values()) >= 3000, sent

            assert daemon.proc.poll() is None, f"the daemon ended (seed {SEED}):\n{daemon.log()[-5000:]}"
            rooms = admin_rooms(daemon)
            for name in ("lobby", "other"):
                assert (rooms[name]["status"], rooms[name]["restarts"]) == ("running", 0), (SEED, rooms[name], crashes(daemon))
            for viewer, track in calls:  # both calls still carry video
                seen = viewer.received[track]
                await viewer.frames_from(track, at_least=seen + 15)
            async with bot(daemon, "Late", room="lobby", media=media) as late:  # the room still takes people
                connected = next(e for e in late.events if e["type"] == "connected")["data"]
                tracks = {t for endpoint in connected["otherEndpoints"] for t in endpoint["tracks"]}
                assert {published["C"], published["D"]} <= tracks
                await late.frames_from(published["C"], at_least=5)
