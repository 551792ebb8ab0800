"""A webhook receiver on 127.0.0.1 for the tests: an h11 server on trio that records what it is sent,
and answers as told (at once, late, with a redirect, or never)."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h11
import trio

MAX_REQUEST = 1 << 20


@dataclass
class Received:
    target: str  # the request's path and query
    headers: dict[str, str]
    body: bytes
    at: float  # trio.current_time() when it came in

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """``answer``: "ok" (200), "redirect" (302), "hang" (reads the request, never answers),
    "fail" (500 for the first ``failures`` requests, then 200); ``delay``: seconds before answering."""

    answer: str = "ok"
    delay: float = 0.0
    failures: int = 0
    port: int = 0
    received: list[Received] = field(default_factory=list)  # every request, answered or not
    connections: int = 0
    _new: trio.Event = field(default_factory=trio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/videoroomd?app=secret-part"

    def events(self) -> list[dict]:
        return [r.event for r in self.received]

    async def wait_for(self, predicate, timeout: float = 10.0) -> list[dict]:
        """The events received so far, once ``predicate(events)`` holds; TooSlowError after ``timeout``."""
        with trio.fail_after(timeout):
            while not predicate(events := self.events()):
                self._new = trio.Event()
                await self._new.wait()
        return events

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._serve, listeners)

    async def _serve(self, stream: trio.SocketStream) -> None:
        """Answer requests on one connection, kept open between them (as HTTP/1.1 servers do)."""
        self.connections += 1
        connection = h11.Connection(h11.SERVER)
        async with stream:
            try:
                while await self._answer_one(stream, connection):
                    connection.start_next_cycle()
            except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
                pass  # the daemon went away mid-request (it stopped, or gave up waiting)

    async def _answer_one(self, stream: trio.SocketStream, connection: h11.Connection) -> bool:
        """Read one request and answer it; whether the connection may carry another."""
        request, body = None, b""
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data or len(body) > MAX_REQUEST:
                    return False
                connection.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return False
        headers = {name.decode().lower(): value.decode() for name, value in request.headers}
        self.received.append(Received(request.target.decode(), headers, body, trio.current_time()))
        self._new.set()
        await trio.sleep(self.delay)
        status, extra = self._status()
        if status is None:
            await trio.sleep_forever()
        reply = b"ok" if status == 200 else b"no"
        await stream.send_all(connection.send(h11.Response(
            status_code=status, headers=[("Content-Length", str(len(reply))), *extra]))
            + connection.send(h11.Data(data=reply)) + connection.send(h11.EndOfMessage()))
        return connection.our_state is h11.DONE and connection.their_state is h11.DONE

    def _status(self) -> tuple[int | None, list]:
        if self.answer == "hang":
            return None, []
        if self.answer == "redirect":
            return 302, [("Location", f"http://127.0.0.1:{self.port}/elsewhere")]
        if self.answer == "fail" and len(self.received) <= self.failures:
            return 500, []
        return 200, []


@asynccontextmanager
async def webhook_receiver(answer: str = "ok", **settings):
    """A running :class:`WebhookReceiver`; stopped on exit."""
    async with trio.open_nursery() as nursery:
        receiver = await nursery.start(WebhookReceiver(answer, **settings).run)
        yield receiver
        nursery.cancel_scope.cancel()
