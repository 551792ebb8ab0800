"""Just enough of phoenix.js (serializer v2) for a benchmark participant: join, push, read, heartbeat."""

from __future__ import annotations

import itertools
import json

import trio

HEARTBEAT_INTERVAL = 25.0  # phoenix.js sends one every 30 s; the server drops sockets silent for 60 s


class Channel:
    def __init__(self, websocket, room: str):
        self.ws = websocket
        self.topic = f"room:{room}"
        self.refs = itertools.count(1)
        self.join_ref: str | None = None

    async def _send(self, topic: str, event: str, payload, join_ref: str | None = None) -> str:
        ref = str(next(self.refs))
        await self.ws.send_message(json.dumps([join_ref, ref, topic, event, payload]))
        return ref

    async def join(self, timeout: float, **params) -> dict:
        ref = self.join_ref = await self._send(self.topic, "phx_join", params)
        with trio.fail_after(timeout):
            while True:
                _join_ref, got_ref, _topic, event, payload = json.loads(await self.ws.get_message())
                if event == "phx_reply" and got_ref == ref:
                    return payload

    async def push(self, event: dict) -> None:
        await self._send(self.topic, "mediaEvent", {"data": json.dumps(event)}, self.join_ref)

    async def next_media_event(self) -> dict:
        """The next media event; replies and other pushes are skipped, a closed channel raises."""
        while True:
            _join_ref, _ref, _topic, event, payload = json.loads(await self.ws.get_message())
            if event == "mediaEvent":
                return json.loads(payload["data"])
            if event in ("phx_close", "phx_error"):
                raise ConnectionError(f"the server closed the channel: {event} {payload}")

    async def heartbeat(self) -> None:
        while True:
            await trio.sleep(HEARTBEAT_INTERVAL)
            await self._send("phoenix", "heartbeat", {})
