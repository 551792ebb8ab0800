"""Helpers for signalling tests: an in-process daemon on port 0 and a Phoenix v2 client."""

from __future__ import annotations

import itertools
import json
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from videoroomd.config import Location, load
from videoroomd.daemon.daemon import Daemon

from testsupport.daemon import config_text


@asynccontextmanager
async def running_daemon(tmp_path: Path, rooms: str = "[rooms.lobby]\nmax_peers = 4\n", server: str = "",
                         media: str = "workers = 0", **kwargs):
    """A daemon serving on 127.0.0.1 with an OS-chosen port; cancelled on exit.

    Its media runs on a thread of this process unless ``media`` asks for worker processes."""
    path = tmp_path / "videoroomd.toml"
    path.write_text(config_text(rooms, server=server, media=media))
    daemon = Daemon(Location(path), load(Location(path)), watch_interval=0, **kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        daemon.port = daemon.address[1]
        yield daemon
        nursery.cancel_scope.cancel()


class PhoenixClient:
    """Just enough of phoenix.js to drive the server frame by frame."""

    def __init__(self, websocket):
        self.ws = websocket
        self.refs = itertools.count(1)
        self.join_ref: str | None = None
        self.pushes: list[tuple[str, dict]] = []  # (event, payload) of pushes other than mediaEvent

    async def send(self, topic: str, event: str, payload, join_ref: str | None = None) -> str:
        ref = str(next(self.refs))
        await self.ws.send_message(json.dumps([join_ref, ref, topic, event, payload]))
        return ref

    async def receive(self, timeout: float = 5.0) -> list:
        with trio.fail_after(timeout):
            return json.loads(await self.ws.get_message())

    async def reply_to(self, ref: str, timeout: float = 5.0) -> dict:
        """The phx_reply with ``ref``, skipping pushes that arrive first."""
        with trio.fail_after(timeout):
            while True:
                join_ref, got_ref, topic, event, payload = await self.receive()
                if event == "phx_reply" and got_ref == ref:
                    return payload

    async def join(self, room: str, **params) -> dict:
        join_ref = str(next(self.refs))
        await self.ws.send_message(json.dumps([join_ref, join_ref, f"room:{room}", "phx_join", params]))
        reply = await self.reply_to(join_ref)
        if reply["status"] == "ok":
            self.join_ref = join_ref
        return reply

    async def media_event(self, room: str, event: dict) -> None:
        await self.send(f"room:{room}", "mediaEvent", {"data": json.dumps(event)}, self.join_ref)

    async def next_media_event(self, timeout: float = 5.0) -> dict:
        """The next mediaEvent's data; other pushes on the way are kept in ``self.pushes``."""
        with trio.fail_after(timeout):
            while True:
                _join_ref, _ref, _topic, event, payload = await self.receive(timeout)
                if event == "mediaEvent":
                    return json.loads(payload["data"])
                self.pushes.append((event, payload))


@asynccontextmanager
async def phoenix_client(daemon, extra_headers=None):
    url = f"ws://127.0.0.1:{daemon.port}/socket/websocket?vsn=2.0.0"
    async with open_websocket_url(url, extra_headers=extra_headers or []) as websocket:
        yield PhoenixClient(websocket)


@asynccontextmanager
async def relay_client(daemon, room: str, query: str = "", extra_headers=None):
    url = f"ws://127.0.0.1:{daemon.port}/signaling/{room}{query}"
    async with open_websocket_url(url, extra_headers=extra_headers or []) as websocket:
        yield websocket


async def next_json(websocket, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        return json.loads(await websocket.get_message())
