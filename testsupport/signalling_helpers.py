"""Helpers for signalling tests: an in-process daemon on port 0 and the relay's plain WebSocket.

The Phoenix client is testsupport.phoenix."""

from __future__ import annotations

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


@asynccontextmanager
async def relay_client(daemon, room: str, query: str = "", extra_headers=None):
    url = f"ws://127.0.0.1:{daemon.port}/signaling/{room}{query}"
    async with open_websocket_url(url, extra_headers=extra_headers or []) as websocket:
        yield websocket


async def next_json(websocket, timeout: float = 5.0) -> dict:
    with trio.fail_after(timeout):
        return json.loads(await websocket.get_message())
