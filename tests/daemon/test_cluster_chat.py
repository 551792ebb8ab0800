"""A room's chat history lives in Redis with the room: bounded, expiring, seen through any node and
after the room's node died."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.cluster_nodes import cluster_daemons
from testsupport.phoenix import phoenix_client
from videoroomd.cluster.redis_chat import RedisChatStore
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_directory import CHAT_GRACE, RedisRoomDirectory
from videoroomd.rooms.chat import HISTORY, ChatMessage

LOBBY = "[rooms.lobby]\nmax_peers = 8\n"


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'


def message(n: int) -> ChatMessage:
    return ChatMessage(f"id-{n}", "peer", "Ann", f"message {n}", "2026-12-06T11:00:00.000Z")


async def chat_frames(client, event: str, timeout: float = 5.0) -> dict:
    """The payload of the next push ``event`` on ``client``, skipping what comes before it."""
    with trio.fail_after(timeout):
        while True:
            frame = await client.receive(timeout)
            if frame[3] == event:
                return frame[4]


async def say(client, room: str, text: str) -> None:
    ref = await client.send(f"room:{room}", "chat", {"text": text}, client.join_ref)
    assert (await client.reply_to(ref))["status"] == "ok"


async def test_the_history_in_redis_is_bounded_expires_and_drops_what_is_not_a_message(redis_server, redis_prefix):
    async with open_redis(redis_server.url) as client, trio.open_nursery() as nursery:
        store = RedisChatStore(client, lease_ttl=3, prefix=redis_prefix)
        await nursery.start(store.run)
        for n in range(HISTORY + 20):
            store.record("lobby", message(n))
        with trio.fail_after(5):
            while store.written < HISTORY + 20:
                await trio.sleep(0.02)
        assert [m.text for m in await store.restore("lobby")] == [f"message {n}" for n in range(20, HISTORY + 20)]
        assert await client.llen(store.key("lobby")) == HISTORY
        assert 0 < await client.pttl(store.key("lobby")) <= (3 + CHAT_GRACE) * 1000
        await client.rpush(store.key("lobby"), [b"not json", b'{"v": 1, "id": 3}', b"x" * 100_000])
        restored = await store.restore("lobby")  # the last HISTORY records, less the three that are not messages
        assert len(restored) == HISTORY - 3 and restored[-1].text == f"message {HISTORY + 19}" and store.malformed == 3
        # a room that ended drops its history, unless another lease holds the room by then
        lease = await RedisRoomDirectory(client, prefix=redis_prefix).claim("lobby", "node-b")
        store.forget("lobby", lease.token - 1)
        store.forget("other", 1)
        with trio.fail_after(5):
            while store.written < HISTORY + 22:
                await trio.sleep(0.02)
        assert len(await store.restore("lobby")) == HISTORY - 3  # kept: the room runs under another lease
        store.forget("lobby", lease.token)
        with trio.fail_after(5):
            while await store.restore("lobby"):
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()


async def test_a_late_joiner_through_a_third_node_sees_the_history(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons = await cluster_daemons(stack, tmp_path, ("node-a", "node-b", "node-c"),
                                        lambda node: cluster(redis_server.url, node) + LOBBY)
        home = next(d for d in daemons if d.rooms.get("lobby") is not None)
        ann_node, late_node = [d for d in daemons if d is not home]
        async with phoenix_client(ann_node) as ann:
            assert (await ann.join("lobby", displayName="Ann"))["status"] == "ok"
            for text in ("first", "second"):
                await say(ann, "lobby", text)
            async with phoenix_client(late_node) as late:
                assert (await late.join("lobby", displayName="Late"))["status"] == "ok"
                history = (await chat_frames(late, "chat_history"))["messages"]
        assert [(m["text"], m["name"]) for m in history] == [("first", "Ann"), ("second", "Ann")]
        async with open_redis(redis_server.url) as client:  # kept in Redis beside the room's lease
            assert await client.llen(home.cluster.chat.key("lobby")) == 2


@pytest.mark.slow
async def test_the_history_survives_the_death_of_the_rooms_node(start_daemon, redis_server):
    redis_server.command("FLUSHALL")
    daemons = {node: start_daemon(rooms=cluster(redis_server.url, node) + LOBBY, name=f"{node}.toml")
               for node in ("node-a", "node-b", "node-c")}
    async with open_redis(redis_server.url) as client:
        owner = (await RedisRoomDirectory(client).lookup("lobby")).owner
    survivor = next(d for node, d in daemons.items() if node != owner)
    async with phoenix_client(_port(survivor)) as ann:
        assert (await ann.join("lobby", displayName="Ann"))["status"] == "ok"
        await say(ann, "lobby", "said before the crash")
        async with open_redis(redis_server.url) as client:  # the room's node writes it after the reply
            store = RedisChatStore(client, lease_ttl=3)
            with trio.fail_after(5):
                while [m.text for m in await store.restore("lobby")] != ["said before the crash"]:
                    await trio.sleep(0.05)
        daemons[owner].proc.kill()  # SIGKILL: the room is placed again once its lease lapsed
        with trio.fail_after(8):
            while (await chat_frames(ann, "phx_close", timeout=8)) is None:
                pass
    async with phoenix_client(_port(survivor)) as late:
        with trio.fail_after(10):
            while (await late.join("lobby", displayName="Late"))["status"] != "ok":
                await trio.sleep(0.2)
        history = (await chat_frames(late, "chat_history"))["messages"]
    assert [m["text"] for m in history] == ["said before the crash"]
    async with open_redis(redis_server.url) as client:
        assert (await RedisRoomDirectory(client).lookup("lobby")).owner != owner


class _port:
    """A DaemonProcess as phoenix_client wants it."""

    def __init__(self, daemon):
        self.port = daemon.port
