"""Chat over /socket/websocket with real sockets: fan-out, history, bad text, floods."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack

import trio
from trio_websocket import ConnectionClosed

from testsupport.phoenix import phoenix_client

from testsupport.signalling_helpers import running_daemon
from videoroomd.rooms.chat import HISTORY, MAX_TEXT, RATE_BURST, ChatLog

ROOMS = "[rooms.lobby]\nmax_peers = 8\n"


class Person:
    """A joined Phoenix client that keeps every frame it receives, to look for what it wants."""

    def __init__(self, client, name: str):
        self.client = client
        self.name = name
        self.frames: list[list] = []
        self.peer_id: str | None = None

    async def join(self, room: str = "lobby") -> None:
        reply = await self.client.join(room, displayName=self.name)
        assert reply["status"] == "ok", reply
        self.peer_id = reply["response"]["peer_id"]
        self.room = room

    async def say(self, text) -> str:
        return await self.client.send(f"room:{self.room}", "chat", {"text": text}, self.client.join_ref)

    async def _find(self, matches, timeout: float):
        with trio.fail_after(timeout):
            while True:
                for index, frame in enumerate(self.frames):
                    if matches(frame):
                        return self.frames.pop(index)
                self.frames.append(await self.client.receive(timeout))

    async def reply(self, ref: str, timeout: float = 5.0) -> dict:
        return (await self._find(lambda f: f[3] == "phx_reply" and f[1] == ref, timeout))[4]

    async def push(self, event: str, timeout: float = 5.0) -> dict:
        return (await self._find(lambda f: f[3] == event, timeout))[4]

    def pushes(self, event: str) -> list[dict]:
        return [f[4] for f in self.frames if f[3] == event]


async def people(stack: AsyncExitStack, daemon, *names: str) -> list[Person]:
    joined = []
    for name in names:
        person = Person(await stack.enter_async_context(phoenix_client(daemon)), name)
        await person.join()
        joined.append(person)
    return joined


async def test_a_message_reaches_everyone_in_the_room_with_name_and_time(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        ann, bob, cleo = await people(stack, daemon, "Ann", "Bob", "Cleo")
        ref = await ann.say("hello, everyone")
        reply = await ann.reply(ref)
        assert reply["status"] == "ok"
        for person in (ann, bob, cleo):
            message = await person.push("chat")
            assert message["id"] == reply["response"]["id"]
            assert (message["from"], message["name"], message["text"]) == (ann.peer_id, "Ann", "hello, everyone")
            assert message["at"].endswith("Z")
        assert "videoroomd_chat_messages_total 1.0" in daemon.metrics.render().decode()


async def test_a_late_joiner_gets_the_last_hundred_messages(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        (ann,) = await people(stack, daemon, "Ann")
        daemon.rooms.get("lobby").chat_log = ChatLog(burst=1000)  # this test is not about the rate
        for n in range(HISTORY + 1):
            assert (await ann.reply(await ann.say(f"message {n}")))["status"] == "ok"
        (late,) = await people(stack, daemon, "Late")
        history = (await late.push("chat_history"))["messages"]
        assert [m["text"] for m in history] == [f"message {n}" for n in range(1, HISTORY + 1)]
        assert {m["name"] for m in history} == {"Ann"}
        ref = await ann.say("welcome")  # and the live messages follow
        assert (await late.push("chat"))["text"] == "welcome"
        await ann.reply(ref)


async def test_nobody_gets_a_history_when_nothing_was_said(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        ann, bob = await people(stack, daemon, "Ann", "Bob")
        assert (await ann.reply(await ann.say("first")))["status"] == "ok"
        assert (await bob.push("chat"))["text"] == "first"
        assert bob.pushes("chat_history") == []


async def test_markup_is_passed_as_text_and_control_characters_are_removed(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        ann, bob = await people(stack, daemon, "Ann", "Bob")
        await ann.say("<b>hi</b><img src=x onerror=alert(1)>\x00\x1b[2J\u202e\r\nbye\x07")
        assert (await bob.push("chat"))["text"] == "<b>hi</b><img src=x onerror=alert(1)>[2J\nbye"


async def test_refused_messages_say_why_and_reach_nobody(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        ann, bob = await people(stack, daemon, "Ann", "Bob")
        long = await ann.say("x" * 60000)  # under the 64 KiB frame limit, far over the chat's
        assert await ann.reply(long) == {"status": "error", "response": {
            "code": "too_long", "reason": f"the message is too long: 60000 characters, at most {MAX_TEXT}"}}
        empty = await ann.say(" \n\x00 ")
        assert await ann.reply(empty) == {"status": "error", "response": {"code": "empty", "reason": "the message is empty"}}
        bad = await ann.client.send("room:lobby", "chat", {"text": 42}, ann.client.join_ref)
        assert await ann.reply(bad) == {"status": "error", "response": {"reason": 'chat payload must be {"text": "..."}'}}
        await ann.say("fine")
        assert (await bob.push("chat"))["text"] == "fine"  # the first message bob sees is the good one
        metrics = daemon.metrics.render().decode()
        assert 'videoroomd_chat_refused_total{reason="too_long"} 1.0' in metrics
        assert 'videoroomd_chat_refused_total{reason="empty"} 1.0' in metrics


async def test_a_megabyte_message_closes_only_its_senders_socket(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        ann, bob, cleo = await people(stack, daemon, "Ann", "Bob", "Cleo")
        with trio.fail_after(5):
            try:
                await ann.say("x" * 1_000_000)
                while True:
                    await ann.client.ws.get_message()
            except ConnectionClosed as closed:
                assert closed.reason.code == 1009  # message too big
        await bob.say("still here")
        assert (await cleo.push("chat"))["text"] == "still here"


async def test_a_flood_is_refused_with_a_wait_and_the_others_chat_on(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        ann, bob, cleo = await people(stack, daemon, "Ann", "Bob", "Cleo")
        refs = [await ann.say(f"spam {n}") for n in range(30)]
        replies = [await ann.reply(ref) for ref in refs]
        assert [r["status"] for r in replies[:RATE_BURST]] == ["ok"] * RATE_BURST
        refused = [r for r in replies if r["status"] == "error"]
        assert len(refused) >= 30 - RATE_BURST - 2  # a token may come back while the flood runs
        assert refused[0]["response"] == {"code": "too_fast", "reason": "you are sending messages too fast; wait 2 s"}
        ref = await bob.say("can you stop?")
        assert (await bob.reply(ref))["status"] == "ok"
        seen = []
        while not seen or seen[-1] != "can you stop?":
            seen.append((await cleo.push("chat"))["text"])
        assert len(seen) == len(replies) - len(refused) + 1
        assert f'videoroomd_chat_refused_total{{reason="too_fast"}} {len(refused)}.0' in daemon.metrics.render().decode()


async def test_chat_before_joining_is_refused(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, phoenix_client(daemon) as client:
        ref = await client.send("room:lobby", "chat", {"text": "hi"})
        assert await client.reply_to(ref) == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_the_history_frame_of_a_full_room_fits_a_client(tmp_path):
    # 100 messages of 2000 four-byte characters: the largest history a newcomer can be sent.
    async with running_daemon(tmp_path, ROOMS) as daemon, AsyncExitStack() as stack:
        (ann,) = await people(stack, daemon, "Ann")
        room = daemon.rooms.get("lobby")
        room.chat_log = ChatLog(burst=HISTORY)
        for _ in range(HISTORY):
            room.chat_log.post("someone", "S" * 64, "😀" * MAX_TEXT, now=trio.current_time())
        (late,) = await people(stack, daemon, "Late")
        history = (await late.push("chat_history", timeout=10))["messages"]
        assert len(history) == HISTORY
        assert len(json.dumps(history, ensure_ascii=False).encode()) < 1024 * 1024
