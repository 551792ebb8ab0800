"""The participant link's contract, for every implementation of it: the rooms of this process, and a
room on another node reached over Redis (two nodes in this process, on the test run's Redis).

A socket handler joins through a ``RoomService`` and then speaks only to its
``ParticipantLink``: what it sends reaches the room, what the room sends comes
out of the link in order, and the link says why it was closed. An
implementation is added by adding a harness below; every test here must then
pass against it unchanged.

The rooms run an echo engine: a media event goes to every other "rtc"
participant, and the event ``"drop me"`` makes the engine let go of its
sender as a broken media path would.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from testsupport.daemon import config_text
from videoroomd.config import parse
from videoroomd.rooms import JoinRefused, RoomRegistry
from videoroomd.rooms.link import (ChannelPush, ChatPost, ChatRefused, Closure, MediaEvent, ParticipantLink,
                                   PeerJoined, PeerLeft, RelaySend, RelayText, RoomService)
from videoroomd.rooms.local_link import LocalRoomService
from videoroomd.rooms.room import OUTBOX_SIZE

ROOMS = "[rooms.lobby]\nmax_peers = 2\nsimulcast = false\n[rooms.locked]\npassword = 'sesame'\n[rooms.layers]\nsimulcast = true\n"
DROP_ME = "drop me"


class EchoEngine:
    """A room's engine that hands each media event to the room's other participants."""

    async def run(self, room, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.room = room
        task_status.started()
        await trio.sleep_forever()

    def peer_joined(self, peer) -> None:
        pass

    def peer_left(self, peer) -> None:
        pass

    def media_event(self, peer, data: str) -> None:
        if data == DROP_ME:
            self.room.leave(peer, "media connection failed", retry=True)
            return
        for other in list(self.room.peers.values()):
            if other is not peer and other.kind == "rtc":
                other.deliver(data)


class LocalHarness:
    """The rooms of this process, and what a test does to them from outside the link."""

    def __init__(self, registry: RoomRegistry):
        self.registry = registry
        self.service: RoomService = LocalRoomService(registry)

    def stop_room(self, name: str, reason: str) -> None:
        """The room closes under its participants (a reload changed its settings)."""
        self.registry.get(name).stop(reason, rejoin=True)

    def break_link(self, link: ParticipantLink) -> None:
        """The way from the room to ``link`` breaks: nothing more can be put on it."""
        room = self.registry.get(link.settings.name)
        room.peers[link.id].outbox.close()


@asynccontextmanager
async def local_rooms(tmp_path: Path):
    config = parse(config_text(ROOMS, server="dynamic_rooms = false"), "test.toml", tmp_path)
    registry = RoomRegistry(config, lambda _room: EchoEngine())
    async with trio.open_nursery() as nursery:
        await nursery.start(registry.run)
        yield LocalHarness(registry)
        nursery.cancel_scope.cancel()


class RedisHarness(LocalHarness):
    """Node A's room service, every room held by node B: each link crosses Redis. The test acts on the
    rooms where they run, on node B."""

    def __init__(self, registry: RoomRegistry, service: RoomService):
        self.registry = registry
        self.service = service


@asynccontextmanager
async def redis_rooms(tmp_path: Path, redis_server, prefix: str):
    from videoroomd.cluster.cluster_service import ClusterRoomService
    from videoroomd.cluster.link_bus import LinkBus
    from videoroomd.cluster.redis_client import open_redis
    from videoroomd.cluster.redis_directory import RedisRoomDirectory

    config = parse(config_text(ROOMS, server="dynamic_rooms = false"), "test.toml", tmp_path)
    async with open_redis(redis_server.url) as client_a, open_redis(redis_server.url) as client_b:
        async with trio.open_nursery() as nursery:
            services = {}
            for node, client in (("node-b", client_b), ("node-a", client_a)):  # node-b first: it claims the rooms
                directory = RedisRoomDirectory(client, prefix=prefix)
                registry = RoomRegistry(config, lambda _room: EchoEngine(), directory=directory, owner=node)
                await nursery.start(registry.run)
                services[node] = ClusterRoomService(LocalRoomService(registry), directory,
                                                    LinkBus(client, node, prefix=prefix))
                await nursery.start(services[node].run)
                with trio.fail_after(5):
                    await services[node].bus.subscribed.wait()
            assert services["node-a"].local.registry.get("lobby") is None  # node-a runs none of them
            yield RedisHarness(services["node-b"].local.registry, services["node-a"])
            nursery.cancel_scope.cancel()


@pytest.fixture(params=["local", "redis"])
async def rooms(request, tmp_path):
    if request.param == "local":
        async with local_rooms(tmp_path) as harness:
            yield harness
        return
    redis_server, prefix = request.getfixturevalue("redis_server"), request.getfixturevalue("redis_prefix")
    async with redis_rooms(tmp_path, redis_server, prefix) as harness:
        yield harness


def is_plain(value) -> bool:
    """Whether ``value`` is plain data (what JSON can carry): what crosses the link must be,
    so that an implementation can carry it between processes."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def plain(item):
    """``item`` rebuilt from its fields after a trip through JSON (lists stand for tuples)."""
    assert dataclasses.is_dataclass(item) and is_plain(dataclasses.asdict(item))
    fields = json.loads(json.dumps(dataclasses.asdict(item)))
    return type(item)(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


async def received(link: ParticipantLink, count: int = 1, timeout: float = 5.0) -> list:
    """The next ``count`` things the room sent over ``link``."""
    items = []
    with trio.fail_after(timeout):
        async for item in link:
            assert plain(item) == item
            items.append(item)
            if len(items) == count:
                break
    return items


async def nothing_more(link: ParticipantLink) -> None:
    with trio.move_on_after(0.2):
        item = await received(link)
        raise AssertionError(f"unexpected {item}")


async def ended(link: ParticipantLink, timeout: float = 5.0) -> Closure:
    """Wait for the link's stream to end; returns why it was closed."""
    with trio.fail_after(timeout):
        async for _ in link:
            pass
    assert link.closed is not None
    return link.closed


async def test_a_join_gives_the_participant_an_id_and_the_rooms_settings(rooms):
    link = await rooms.service.join("layers", "Ann", None, kind="rtc", address="10.0.0.1")
    assert link.id and link.kind == "rtc" and link.closed is None
    assert (link.settings.name, link.settings.simulcast) == ("layers", True)
    other = await rooms.service.join("lobby", "Bob", None, kind="rtc", address="10.0.0.1")
    assert other.id != link.id and other.settings.simulcast is False
    assert rooms.service.people("layers") == 1 and rooms.service.people("nowhere") == 0


@pytest.mark.parametrize("event", [MediaEvent('{"type": "join"}'), ChatPost("hi"), RelaySend("{}", ("a", "b")),
                                   RelaySend("{}", None)])
def test_what_a_participant_sends_is_plain_data(event):
    sent = plain(event)
    assert sent == event and type(sent) is type(event)


async def test_a_media_event_reaches_the_room_and_the_others_receive_it(rooms):
    ann = await rooms.service.join("lobby", "Ann", None, kind="rtc", address="10.0.0.1")
    bob = await rooms.service.join("lobby", "Bob", None, kind="rtc", address="10.0.0.2")
    assert await ann.send(MediaEvent('{"type": "custom"}')) is None
    assert await received(bob) == [MediaEvent('{"type": "custom"}')]
    await nothing_more(ann)


async def test_a_chat_message_reaches_everyone_and_its_sender_gets_its_id(rooms):
    ann = await rooms.service.join("lobby", "Ann", None, kind="rtc", address="10.0.0.1")
    bob = await rooms.service.join("lobby", "Bob", None, kind="rtc", address="10.0.0.2")
    message_id = await ann.send(ChatPost("  hello\tthere "))
    for link in (ann, bob):
        (push,) = await received(link)
        assert isinstance(push, ChannelPush) and push.event == "chat"
        assert (push.payload["id"], push.payload["from"], push.payload["name"], push.payload["text"]) == \
            (message_id, ann.id, "Ann", "hello there")
    # someone who joins later gets the history first
    ann.leave("left")
    bob.leave("left")
    carol = await rooms.service.join("lobby", "Carol", None, kind="rtc", address="10.0.0.3")
    (history,) = await received(carol)
    assert history.event == "chat_history" and [m["text"] for m in history.payload["messages"]] == ["hello there"]


async def test_a_chat_message_the_room_refuses_raises_with_a_reason(rooms):
    ann = await rooms.service.join("lobby", "Ann", None, kind="rtc", address="10.0.0.1")
    with pytest.raises(ChatRefused) as refused:
        await ann.send(ChatPost("   "))
    assert (refused.value.code, refused.value.reason) == ("empty", "the message is empty")
    ann.leave("left")
    with pytest.raises(ChatRefused) as refused:
        await ann.send(ChatPost("still there?"))
    assert refused.value.code == "not_joined"


async def test_relay_messages_are_routed_by_the_room(rooms):
    ann = await rooms.service.enter("lobby", "ann", None, kind="relay")
    bob = await rooms.service.enter("lobby", "bob", None, kind="relay")
    carol = await rooms.service.enter("layers", "carol", None, kind="relay")  # another room: hears nothing
    rtc = await rooms.service.join("lobby", "Dan", None, kind="rtc", address="10.0.0.4")  # another kind: neither
    assert await received(ann) == [PeerJoined(bob.id)]
    await ann.send(RelaySend("to bob", (bob.id, ann.id, "nobody")))
    await ann.send(RelaySend("to all", None))
    assert await received(bob, 2) == [RelayText("to bob"), RelayText("to all")]
    await nothing_more(ann)
    await nothing_more(carol)
    await nothing_more(rtc)


async def test_leaving_ends_the_stream_and_the_others_hear_of_it(rooms):
    ann = await rooms.service.enter("lobby", "ann", None, kind="relay")
    bob = await rooms.service.enter("lobby", "bob", None, kind="relay")
    bob.leave("connection closed")
    bob.leave("connection closed")  # twice is harmless, and announced once
    assert await ended(bob) == Closure("connection closed")
    assert await received(ann, 2) == [PeerJoined(bob.id), PeerLeft(bob.id)]
    await nothing_more(ann)
    await bob.send(RelaySend("too late", None))  # dropped, not an error
    await nothing_more(ann)
    # its place is free again
    assert await rooms.service.enter("lobby", "dan", None, kind="relay")


async def test_a_room_closing_tells_every_participant_why_and_to_rejoin(rooms):
    ann = await rooms.service.join("layers", "Ann", None, kind="rtc", address="10.0.0.1")
    bob = await rooms.service.enter("layers", "bob", None, kind="relay")
    rooms.stop_room("layers", "room settings changed; please rejoin")
    for link in (ann, bob):
        assert await ended(link) == Closure("room settings changed; please rejoin", rejoin=True)


async def test_a_broken_media_path_closes_with_retry(rooms):
    ann = await rooms.service.join("lobby", "Ann", None, kind="rtc", address="10.0.0.1")
    bob = await rooms.service.join("lobby", "Bob", None, kind="rtc", address="10.0.0.2")
    await ann.send(MediaEvent(DROP_ME))
    assert await ended(ann) == Closure("media connection failed", retry=True)
    assert bob.closed is None and rooms.service.people("lobby") == 1


async def test_a_participant_that_leaves_its_stream_unread_is_cut_off_and_only_it(rooms):
    ann = await rooms.service.enter("lobby", "ann", None, kind="relay")
    slow = await rooms.service.enter("lobby", "slow", None, kind="relay")
    for number in range(OUTBOX_SIZE + 10):
        await ann.send(RelaySend(f"message {number}", (slow.id,)))
    closure = await ended(slow)  # at once: what was queued is not handed out any more
    assert closure.cut_off and closure.reason == f"too slow: {OUTBOX_SIZE} messages left unread"
    assert ann.closed is None
    await ann.send(RelaySend("still here", None))
    assert await received(ann) == [PeerJoined(slow.id)]


async def test_a_link_that_breaks_mid_event_ends_only_that_participant(rooms):
    ann = await rooms.service.join("lobby", "Ann", None, kind="rtc", address="10.0.0.1")
    bob = await rooms.service.join("lobby", "Bob", None, kind="rtc", address="10.0.0.2")
    rooms.break_link(ann)
    await bob.send(ChatPost("anyone?"))  # the fan-out meets the broken link on its way
    assert await ended(ann) == Closure("connection closed")
    (push,) = await received(bob)
    assert push.payload["text"] == "anyone?"
    assert bob.closed is None and rooms.service.people("lobby") == 1
    assert await bob.send(ChatPost("still here")) is not None


@pytest.mark.parametrize(("room", "password", "code", "reason"), [
    ("nowhere", None, "unknown_room", "there is no room called 'nowhere'"),
    ("locked", None, "wrong_password", "this room needs a password"),
    ("locked", "guess", "wrong_password", "wrong password"),
    ("../x", None, "bad_room_name", "'../x' is not a room name"),
])
async def test_a_refused_join_says_why(rooms, room, password, code, reason):
    with pytest.raises(JoinRefused) as refused:
        await rooms.service.join(room, "Ann", password, kind="rtc", address="10.0.0.1")
    assert refused.value.code == code and refused.value.reason.startswith(reason)
    with pytest.raises(JoinRefused):
        rooms.service.admit(room, password, "10.0.0.1")


async def test_a_full_room_refuses_the_next_join_and_takes_one_again_after_a_leave(rooms):
    ann = await rooms.service.join("lobby", "Ann", None, kind="rtc", address="10.0.0.1")
    await rooms.service.join("lobby", "Bob", None, kind="rtc", address="10.0.0.2")
    with pytest.raises(JoinRefused) as refused:
        await rooms.service.join("lobby", "Carol", None, kind="rtc", address="10.0.0.3")
    assert (refused.value.code, refused.value.reason) == ("room_full", "room 'lobby' is full (2 people)")
    ann.leave("left")
    assert (await rooms.service.join("lobby", "Carol", None, kind="rtc", address="10.0.0.3")).closed is None


async def test_a_password_opens_a_locked_room(rooms):
    rooms.service.admit("locked", "sesame", "10.0.0.1")
    link = await rooms.service.join("locked", "Ann", "sesame", kind="rtc", address="10.0.0.1")
    assert link.closed is None
    assert {row["name"]: row["peers"] for row in rooms.service.snapshot()}["locked"] == 1
