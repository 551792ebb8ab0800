"""Just enough of phoenix.js (serializer v2) to drive the server frame by frame or to be a participant.

The one Phoenix client of the tests and the benchmark: join, push, read
replies and media events, heartbeat. Frames are ``[join_ref, ref, topic,
event, payload]`` JSON arrays, as phoenix.js sends them.
"""

from __future__ import annotations

import itertools
import json
from contextlib import asynccontextmanager

import trio
from trio_websocket import open_websocket_url

HEARTBEAT_INTERVAL = 25.0  # phoenix.js sends one every 30 s; the server drops sockets silent for 60 s


class ChannelClosed(ConnectionError):
    """The server closed or failed the channel (phx_close, phx_error) while a media event was awaited."""


class PhoenixClient:
    """One Phoenix socket; the channel joined last is the one ``join_ref`` names."""

    def __init__(self, websocket):
        self.ws = websocket
        self.refs = itertools.count(1)
        self.join_ref: str | None = None
        self.pushes: list[tuple[str, dict]] = []  # (event, payload) of pushes other than mediaEvent

    async def send(self, topic: str, event: str, payload, join_ref: str | None = None) -> str:
        """Send one frame; returns its ref."""
        ref = str(next(self.refs))
        await self.ws.send_message(json.dumps([join_ref, ref, topic, event, payload]))
        return ref

    async def receive(self, timeout: float = 5.0) -> list:
        """The next frame, parsed; raises trio.TooSlowError after ``timeout`` seconds."""
        with trio.fail_after(timeout):
            return json.loads(await self.ws.get_message())

    async def reply_to(self, ref: str, timeout: float = 5.0) -> dict:
        """The phx_reply with ``ref``, skipping pushes that arrive first."""
        with trio.fail_after(timeout):
            while True:
                join_ref, got_ref, topic, event, payload = await self.receive()
                if event == "phx_reply" and got_ref == ref:
                    return payload

    async def join(self, room: str, *, timeout: float = 5.0, **params) -> dict:
        """Join ``room:<room>`` with ``params``; returns the reply's payload (status and response)."""
        join_ref = str(next(self.refs))
        await self.ws.send_message(json.dumps([join_ref, join_ref, f"room:{room}", "phx_join", params]))
        reply = await self.reply_to(join_ref, timeout)
        if reply["status"] == "ok":
            self.join_ref = join_ref
        return reply

    async def media_event(self, room: str, event: dict) -> None:
        await self.send(f"room:{room}", "mediaEvent", {"data": json.dumps(event)}, self.join_ref)

    async def next_media_event(self, timeout: float = 5.0, *, closing_raises: bool = False) -> dict:
        """The next mediaEvent's data; other pushes on the way are kept in ``self.pushes``.

        Raises trio.TooSlowError after ``timeout`` seconds (``math.inf``: never), and
        ChannelClosed at a phx_close or phx_error when ``closing_raises``."""
        with trio.fail_after(timeout):
            while True:
                _join_ref, _ref, _topic, event, payload = json.loads(await self.ws.get_message())
                if event == "mediaEvent":
                    return json.loads(payload["data"])
                if closing_raises and event in ("phx_close", "phx_error"):
                    raise ChannelClosed(f"the server closed the channel: {event} {payload}")
                self.pushes.append((event, payload))

    async def heartbeat(self, interval: float = HEARTBEAT_INTERVAL) -> None:
        """Say we are alive every ``interval`` seconds, forever (the server drops a silent socket)."""
        while True:
            await trio.sleep(interval)
            await self.send("phoenix", "heartbeat", {})


@asynccontextmanager
async def phoenix_socket(url: str, extra_headers=None):
    """A PhoenixClient on the socket at ``url`` (ws://…/socket/websocket?vsn=2.0.0), closed on exit."""
    async with open_websocket_url(url, extra_headers=extra_headers or []) as websocket:
        yield PhoenixClient(websocket)


def phoenix_client(daemon, extra_headers=None):
    """A PhoenixClient on the socket of a daemon serving on 127.0.0.1 at ``daemon.port``."""
    return phoenix_socket(f"ws://127.0.0.1:{daemon.port}/socket/websocket?vsn=2.0.0", extra_headers)
