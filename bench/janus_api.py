"""A client of Janus's API over its WebSocket transport (trio): sessions, handles, requests and events.

Each request carries a transaction id; Janus answers ``ack`` first for an
asynchronous plugin request and then an ``event`` with the same transaction
(VideoRoom's ``join``, ``publish``, ``subscribe``, ``start``), or at once
``success`` / ``error``. Events without a transaction of ours (VideoRoom's
"publishers" notices, say) go to the handle's channel. Every wait is bounded.
"""

from __future__ import annotations

import json
import secrets

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from .janus import PROTOCOL

KEEPALIVE = 20.0  # seconds between keepalives; Janus ends a silent session after its session_timeout (60)
EVENTS = 100      # events a handle may have waiting


class JanusError(Exception):
    """Janus answered a request with an error, or a plugin with ``error``; the text says which."""


class JanusSession:
    """One Janus session on one WebSocket, with its handles' event channels."""

    def __init__(self, ws: WebSocketConnection):
        self.ws = ws
        self.id: int | None = None
        self._waiting: dict[str, trio.MemorySendChannel] = {}
        self._events: dict[int, tuple[trio.MemorySendChannel, trio.MemoryReceiveChannel]] = {}

    async def _read(self) -> None:
        while True:
            message = json.loads(await self.ws.get_message())
            if message.get("janus") == "ack":
                continue
            waiting = self._waiting.pop(message.get("transaction", ""), None)
            if waiting is not None:
                waiting.send_nowait(message)
            elif message.get("sender") in self._events:
                send, _ = self._events[message["sender"]]
                send.send_nowait(message)  # a handle with EVENTS unread events is a bug here: it raises

    async def _keepalive(self) -> None:
        while True:
            await trio.sleep(KEEPALIVE)
            await self.ws.send_message(json.dumps({"janus": "keepalive", "session_id": self.id,
                                                   "transaction": secrets.token_hex(6)}))

    async def request(self, body: dict, timeout: float) -> dict:
        """Send ``body`` (with our transaction and session) and return Janus's answer to it; raises
        JanusError for an error answer and trio.TooSlowError after ``timeout`` seconds."""
        transaction = secrets.token_hex(8)
        send, receive = trio.open_memory_channel(1)
        self._waiting[transaction] = send
        message = {**body, "transaction": transaction}
        if self.id is not None:
            message["session_id"] = self.id
        await self.ws.send_message(json.dumps(message))
        with trio.fail_after(timeout):
            answer = await receive.receive()
        error = answer.get("error") or (answer.get("plugindata", {}).get("data", {}).get("error"))
        if answer.get("janus") == "error" or error:
            raise JanusError(f"{body.get('janus')} {body.get('body', {}).get('request', '')}: {error}")
        return answer

    async def attach(self, plugin: str, timeout: float) -> "JanusHandle":
        """A new handle on ``plugin``; raises as :meth:`request`."""
        answer = await self.request({"janus": "attach", "plugin": plugin}, timeout)
        handle_id = answer["data"]["id"]
        self._events[handle_id] = trio.open_memory_channel(EVENTS)
        return JanusHandle(self, handle_id, self._events[handle_id][1])


class JanusHandle:
    """A handle on a plugin: ``message`` sends it a request (with an SDP), ``events`` what it says unasked."""

    def __init__(self, session: JanusSession, handle_id: int, events: trio.MemoryReceiveChannel):
        self.session = session
        self.id = handle_id
        self.events = events

    async def message(self, body: dict, timeout: float, jsep: dict | None = None) -> tuple[dict, dict | None]:
        """The plugin's answer to ``body``: (its data, its SDP or None); raises as :meth:`request`."""
        request = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        answer = await self.session.request(request, timeout)
        return answer.get("plugindata", {}).get("data", {}), answer.get("jsep")


async def open_session(url: str, nursery: trio.Nursery, timeout: float) -> JanusSession:
    """A new session on a WebSocket to ``url``, read and kept alive by tasks in ``nursery`` (which
    must outlive it); raises JanusError or trio.TooSlowError when Janus does not make one."""
    ws = await nursery.start(_connection, url)
    session = JanusSession(ws)
    nursery.start_soon(session._read)
    answer = await session.request({"janus": "create"}, timeout)
    session.id = answer["data"]["id"]
    nursery.start_soon(session._keepalive)
    return session


async def _connection(url: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with open_websocket_url(url, subprotocols=[PROTOCOL]) as ws:
        task_status.started(ws)
        await trio.sleep_forever()
